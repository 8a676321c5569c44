/*
 * Unit tests for ocspq: a query to a real RFC 6960 responder (`openssl
 * ocsp` on loopback, over a PKI made by the openssl command), and the
 * answers of servers that misbehave: none listening, silent, HTTP errors,
 * an oversized or non-OCSP body.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocspq.h"
#include "testutil.h"

static const ocspq_conf_t conf = {.timeout_ms = 3000, .max_rsp = 65536};

struct result {
	struct event_base *base;
	int done;
	OCSP_RESPONSE *rsp;
	err_t err;
};

static void
on_done(void *arg, OCSP_RESPONSE *rsp, const err_t *err)
{
	struct result *r = arg;

	r->done++;
	r->rsp = rsp;
	r->err = *err;
	if (r->base != NULL)
		event_base_loopexit(r->base, NULL);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static X509 *
load_cert(const char *name)
{
	char path[256];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", tu_dir, name);
	assert_non_null(f = fopen(path, "r"));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

/* A request for leaf (issued by ca) with a nonce. */
static OCSP_REQUEST *
make_req(const char *leaf, const char *ca)
{
	X509 *l = load_cert(leaf), *c = load_cert(ca);
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, l, c);

	assert_non_null(req);
	assert_non_null(id);
	assert_non_null(OCSP_request_add0_id(req, id));
	assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
	X509_free(l);
	X509_free(c);
	return req;
}

static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void
run_query(const char *url, const OCSP_REQUEST *req, const ocspq_conf_t *c, struct result *r)
{
	struct event_base *base = event_base_new();
	ocspq_t *q;
	tu_guard_t g;
	err_t err;

	memset(r, 0, sizeof(*r));
	assert_non_null(base);
	r->base = base;
	tu_guard_start(&g, base, 10);
	assert_int_equal(ocspq_start(base, url, req, c, on_done, r, &q, &err), 0);
	assert_int_equal(r->done, 0); /* never from inside the call */
	event_base_dispatch(base);
	assert_false(g.fired);
	assert_int_equal(r->done, 1);
	tu_guard_free(&g);
	event_base_free(base);
}

/* ---- a real responder ---- */

/* The responder's pid, so that teardown stops it even when a check failed
 * half-way (cmocka leaves the test function by longjmp). */
static pid_t responder = -1;

static int
responder_teardown(void **state)
{
	if (responder > 0) {
		kill(responder, SIGKILL);
		waitpid(responder, NULL, 0);
		responder = -1;
	}
	return tu_teardown_dir(state);
}

static void
test_real_responder(void **state)
{
	char url[64];
	struct result r;
	OCSP_REQUEST *req;
	OCSP_BASICRESP *bs;
	pid_t pid;
	int port = free_port(), status, reason;
	X509 *good, *ca;
	OCSP_CERTID *id;

	(void)state;
	assert_int_equal(
	    sh("cd %s && exec >log 2>&1 && "
	       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
	       "ca.key "
	       "-out ca.crt -subj /CN=test-ca -days 2 -addext basicConstraints=critical,CA:TRUE "
	       "-addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature && "
	       "for n in good revoked; do "
	       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key "
	       "-out $n.csr -subj /CN=$n && "
	       "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
	       "-out $n.crt || exit 1; done && "
	       "printf '' >index.txt && "
	       "printf 'V\\t300101000000Z\\t\\t%%s\\tunknown\\t/CN=good\\n' "
	       "$(openssl x509 -in good.crt -noout -serial | cut -d= -f2) >>index.txt && "
	       "printf "
	       "'R\\t300101000000Z\\t260101000000Z,keyCompromise\\t%%s\\tunknown\\t/CN=revoked\\n' "
	       "$(openssl x509 -in revoked.crt -noout -serial | cut -d= -f2) >>index.txt",
	       tu_dir),
	    0);
	if ((pid = fork()) == 0) {
		char p[16], idx[256], cac[256], key[256], logp[256];

		/* never outlive the test, however it ends */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() == 1)
			_exit(125);

		snprintf(p, sizeof(p), "%d", port);
		snprintf(idx, sizeof(idx), "%s/index.txt", tu_dir);
		snprintf(cac, sizeof(cac), "%s/ca.crt", tu_dir);
		snprintf(key, sizeof(key), "%s/ca.key", tu_dir);
		snprintf(logp, sizeof(logp), "%s/ocsp.log", tu_dir);
		if (freopen("/dev/null", "w", stdout) == NULL || freopen(logp, "w", stderr) == NULL)
			_exit(126);
		execlp("openssl", "openssl", "ocsp", "-index", idx, "-port", p, "-CA", cac,
		       "-rsigner", cac, "-rkey", key, "-nrequest", "2", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	responder = pid;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	/* until it says it listens (a probe connection would hang it: it
	 * serves one connection at a time, with no deadline); on a loaded CI
	 * machine starting openssl took more than 5 s, so up to 60 s, and a
	 * responder that never listens fails here, not as a refused connect */
	for (int i = 0, up = 0; !up; i++) {
		char logp[256], line[256] = "";
		FILE *lf;

		if (waitpid(pid, NULL, WNOHANG) == pid) {
			responder = -1; /* reaped: nothing for the teardown to kill */
			fail_msg("openssl ocsp on port %d exited before it listened", port);
		}
		if (i == 1200)
			fail_msg("openssl ocsp on port %d did not start listening", port);

		snprintf(logp, sizeof(logp), "%s/ocsp.log", tu_dir);
		if ((lf = fopen(logp, "r")) != NULL) {
			while (fgets(line, sizeof(line), lf) != NULL)
				up |= strstr(line, "waiting for OCSP client") != NULL;
			fclose(lf);
		}
		if (!up)
			usleep(50000);
	}
	good = load_cert("good.crt");
	ca = load_cert("ca.crt");
	for (int round = 0; round < 2; round++) {
		const char *leaf = round == 0 ? "good.crt" : "revoked.crt";
		X509 *l = load_cert(leaf);

		req = make_req(leaf, "ca.crt");
		if (round == 0) {
			run_query(url, req, &conf, &r);
		} else {
			/* a host name looked up at start-up: the URL's own host is
			 * not resolved on the loop */
			struct sockaddr_storage ss;
			ocspq_conf_t named = conf;
			char nurl[64];
			err_t err;
			int sl;

			assert_int_equal(ocspq_resolve(url, &ss, &sl, &err), 0);
			named.addr = &ss;
			named.addrlen = sl;
			snprintf(nurl, sizeof(nurl), "http://ocsp.invalid:%d/", port);
			run_query(nurl, req, &named, &r);
		}
		if (r.err.status != STB_OK)
			fail_msg("%s: %s", leaf, r.err.msg);
		assert_non_null(r.rsp);
		assert_int_equal(OCSP_response_status(r.rsp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
		assert_non_null(bs = OCSP_response_get1_basic(r.rsp));
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
		id = OCSP_cert_to_id(NULL, l, ca);
		assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, NULL, NULL, NULL),
		                 1);
		assert_int_equal(status,
		                 round == 0 ? V_OCSP_CERTSTATUS_GOOD : V_OCSP_CERTSTATUS_REVOKED);
		OCSP_CERTID_free(id);
		OCSP_BASICRESP_free(bs);
		OCSP_RESPONSE_free(r.rsp);
		OCSP_REQUEST_free(req);
		X509_free(l);
	}
	X509_free(good);
	X509_free(ca);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	responder = -1;
}

/* ---- servers that misbehave ---- */

struct fake {
	int lfd, port;
	const char *reply; /* NULL: read and say nothing */
	size_t reply_len;
	pthread_t th;
};

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	char buf[4096];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	(void)!read(fd, buf, sizeof(buf));
	if (f->reply != NULL)
		(void)!write(fd, f->reply, f->reply_len);
	if (f->reply == NULL)
		usleep(1500000); /* silent past the client's deadline */
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, const char *reply, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(a);

	f->reply = reply;
	f->reply_len = len;
	assert_true((f->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &sl), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static void
test_misbehaving_servers(void **state)
{
	static const char http500[] = "HTTP/1.0 500 Internal Server Error\r\n"
	                              "Content-Length: 0\r\n\r\n";
	static const char junk[] = "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
	                           "Content-Length: 8\r\n\r\nnot-der!";
	char big[4096];
	struct {
		const char *name;
		const char *reply;
		size_t len;
		int timeout_ms;
		size_t max_rsp;
		int status;
	} cases[] = {
	    {"silent server", NULL, 0, 500, 65536, STB_TIMEOUT},
	    {"HTTP 500", http500, sizeof(http500) - 1, 3000, 65536, STB_UNAVAILABLE},
	    {"not an OCSP response", junk, sizeof(junk) - 1, 3000, 65536, STB_BAD_REQUEST},
	    {"answer over the cap", big, 0, 3000, 512, STB_TOO_LARGE},
	};
	OCSP_REQUEST *req = OCSP_REQUEST_new();

	(void)state;
	int n = snprintf(big, sizeof(big),
	                 "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
	                 "Content-Length: 2000\r\n\r\n");
	memset(big + n, 0x30, sizeof(big) - (size_t)n);
	cases[3].len = (size_t)n + 2000;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		ocspq_conf_t c = {.timeout_ms = cases[i].timeout_ms, .max_rsp = cases[i].max_rsp};
		struct fake f;
		struct result r;
		char url[64];

		fake_start(&f, cases[i].reply, cases[i].len);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/ocsp", f.port);
		run_query(url, req, &c, &r);
		fake_stop(&f);
		if (r.err.status != cases[i].status || r.rsp != NULL)
			fail_msg("%s: %s (%s), want %s", cases[i].name,
			         stb_status_name(r.err.status), r.err.msg,
			         stb_status_name(cases[i].status));
	}
	OCSP_REQUEST_free(req);
}

static void
test_nobody_listening(void **state)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	struct result r;
	char url[64];

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
	run_query(url, req, &conf, &r);
	assert_int_equal(r.err.status, STB_UNAVAILABLE);
	assert_non_null(strstr(r.err.msg, "connect"));
	OCSP_REQUEST_free(req);
}

static void
test_resolve(void **state)
{
	struct sockaddr_storage ss;
	err_t err;
	int sl;

	(void)state;
	assert_int_equal(ocspq_resolve("http://127.0.0.1:8080/ocsp", &ss, &sl, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(ocspq_resolve("http://localhost:8082/", &ss, &sl, &err), 0);
	assert_int_equal(ocspq_resolve("http://no-such-host.invalid:80/", &ss, &sl, &err), -1);
	assert_non_null(strstr(err.msg, "no-such-host.invalid"));
	assert_int_equal(ocspq_resolve("not a url", &ss, &sl, &err), -1);
}

static void
test_bad_urls(void **state)
{
	static const char *urls[] = {"ftp://x", "https://127.0.0.1:1/", "http://ocsp.example/",
	                             "http://127.0.0.1:1/?q=1", "not a url"};
	struct event_base *base = event_base_new();
	OCSP_REQUEST *req = OCSP_REQUEST_new();

	(void)state;
	for (size_t i = 0; i < TU_NELEM(urls); i++) {
		struct result r = {0};
		ocspq_t *q = (ocspq_t *)1;
		err_t err;

		if (ocspq_start(base, urls[i], req, &conf, on_done, &r, &q, &err) != -1)
			fail_msg("%s: accepted", urls[i]);
		assert_int_equal(err.status, STB_BAD_REQUEST);
		assert_null(q);
	}
	OCSP_REQUEST_free(req);
	event_base_free(base);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	struct result r = {0};
	struct fake f;
	ocspq_t *q;
	char url[64];
	err_t err;

	(void)state;
	fake_start(&f, NULL, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f.port);
	assert_int_equal(ocspq_start(base, url, req, &conf, on_done, &r, &q, &err), 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ocspq_cancel(q);
	event_base_dispatch(base); /* nothing left: returns at once */
	assert_int_equal(r.done, 0);
	fake_stop(&f);
	OCSP_REQUEST_free(req);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_real_responder, tu_setup_dir, responder_teardown),
	    cmocka_unit_test(test_misbehaving_servers),
	    cmocka_unit_test(test_nobody_listening),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
