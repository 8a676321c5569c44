/*
 * fuzz_http: raw bytes on a daemon's HTTP listener.  The server is the real
 * one (httpd_start: evhttp with its limits, /healthz, /metrics and the
 * routes of httpd_route), here with ca-authd's /ocsp and /crl on a real CA
 * (fresh keys and store in a temporary directory, as `ca-authd init` makes
 * them).  Each input is one connection: the bytes are written, the write
 * side is shut, and the loop runs until the server has closed.  A crash, a
 * leak, a sanitizer report or a connection the server never closes (the
 * libFuzzer -timeout) is a finding.
 *
 * The connection comes in over an AF_UNIX socket in the abstract namespace,
 * bound to the same evhttp next to its TCP listener: no port, no TIME_WAIT,
 * and a few microseconds per connection.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <ftw.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ca.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const daemon_def_t fuzz_def = {.name = "ca-authd",
                                      .role = STB_R_CA_AUTHD,
                                      .listen = "127.0.0.1:0",
                                      .http_listen = "127.0.0.1:0",
                                      .client_auth = "require",
                                      .opts = conf_opts,
                                      .nopts = CONF_NOPTS,
                                      .conf = &conf_ca};

static struct {
	daemon_t d;
	ca_t ca;
	char dir[64];
	struct sockaddr_un sun;
	socklen_t sunlen;
	int trace; /* FUZZ_HTTP_TRACE=1: the answers go to stderr */
} fz;

static void
fuzz_die(const char *what, const err_t *err)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, err != NULL ? err->msg : strerror(errno));
	exit(1);
}

static int
fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
fuzz_cleanup(void)
{
	if (fz.dir[0] != '\0')
		nftw(fz.dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int
fuzz_audit(store_conn_t *c, void *arg, err_t *err)
{
	(void)arg;
	return store_exec(c, audit_schema, err);
}

/* ca-authd's configuration defaults, a KEK, the store, a new CA. */
static void
fuzz_ca(void)
{
	uint8_t key[SEALED_KEY_LEN];
	char path[128], text[128];
	pki_t p;
	err_t err;

	snprintf(fz.dir, sizeof(fz.dir), "/tmp/fuzz_http.XXXXXX");
	if (mkdtemp(fz.dir) == NULL) {
		fz.dir[0] = '\0';
		fuzz_die("mkdtemp", NULL);
	}
	atexit(fuzz_cleanup);
	/* the daemon's and ca-authd's defaults (HTTP caps and deadline
	 * included), as -t builds them */
	snprintf(text, sizeof(text), "{\"state_dir\": \"%s\"}", fz.dir);
	if (daemon_conf_text(&fz.d, &fuzz_def, text, "defaults", &err) == -1)
		fuzz_die("config", &err);
	RAND_bytes(key, sizeof(key));
	if (sealed_kek_from_bytes(key, &fz.d.kek, &err) == -1)
		fuzz_die("kek", &err);
	snprintf(path, sizeof(path), "%s/ca.db", fz.dir);
	if ((fz.d.store = store_open(path, certdb_migrations, CERTDB_NMIGRATIONS, &err)) == NULL ||
	    store_write_sync(fz.d.store, fuzz_audit, NULL, &err) == -1)
		fuzz_die("store", &err);
	if (pki_create(&conf_ca, fz.d.kek, fz.dir, &p, &err) == -1)
		fuzz_die("pki", &err);
	pki_clear(&p);
	lifecycle_init(&fz.ca.lc, ca_destroy, &fz.ca);
	if (ca_setup(&fz.ca, &fz.d, &conf_ca, &err) == -1 || !fz.ca.ready)
		fuzz_die("ca", &err);
}

/* The daemon's HTTP server as daemon_start builds it, plus our socket. */
static void
fuzz_httpd(void)
{
	srv_conf_t sc = {.listen = "127.0.0.1:0", .workers = 1};
	struct event_config *cfg;
	struct evconnlistener *l;
	err_t err;
	int fd;

	fz.d.started = time(NULL);
	/* poll: epoll would add and remove every connection's fd in syscalls */
	if ((cfg = event_config_new()) == NULL || event_config_avoid_method(cfg, "epoll") == -1 ||
	    (fz.d.base = event_base_new_with_config(cfg)) == NULL)
		fuzz_die("event_base_new", NULL);
	event_config_free(cfg);
	/* /metrics reads the TLS server's counters; it need not listen */
	if ((fz.d.srv = srv_new(&sc, NULL, NULL, &err)) == NULL)
		fuzz_die("srv_new", &err);
	if (crl_start(&fz.ca, &err) == -1 || ocsp_start(&fz.ca, &err) == -1 ||
	    httpd_start(&fz.d, &err) == -1)
		fuzz_die("httpd", &err);
	memset(&fz.sun, 0, sizeof(fz.sun));
	fz.sun.sun_family = AF_UNIX;
	/* abstract: sun_path[0] is NUL */
	snprintf(fz.sun.sun_path + 1, sizeof(fz.sun.sun_path) - 1, "stbcred-fuzz-http-%ld",
	         (long)getpid());
	fz.sunlen =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(fz.sun.sun_path + 1));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&fz.sun, fz.sunlen) == -1 || listen(fd, 16) == -1)
		fuzz_die("unix socket", NULL);
	if ((l = evconnlistener_new(fz.d.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd)) ==
	        NULL ||
	    evhttp_bind_listener(fz.d.http, l) == NULL)
		fuzz_die("evhttp_bind_listener", NULL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_init("fuzz_http", 0, 0);
	fz.trace = getenv("FUZZ_HTTP_TRACE") != NULL;
	fuzz_ca();
	fuzz_httpd();
	return 0;
}

typedef struct fuzz_conn {
	const uint8_t *data;
	size_t size, sent;
	int closed;
	struct event *wev, *rev;
} fuzz_conn_t;

/* Our end: write the input, then shut the write side. */
static void
fuzz_write(evutil_socket_t fd, short what, void *arg)
{
	fuzz_conn_t *c = arg;
	ssize_t n = 0;

	(void)what;
	if (c->sent < c->size) {
		n = send(fd, c->data + c->sent, c->size - c->sent, MSG_NOSIGNAL);
		if (n > 0)
			c->sent += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			c->sent = c->size; /* the server closed: nothing more goes */
	}
	if (c->sent == c->size) {
		shutdown(fd, SHUT_WR);
		event_del(c->wev);
	}
}

/* Read and drop the answers until the server closes. */
static void
fuzz_read(evutil_socket_t fd, short what, void *arg)
{
	fuzz_conn_t *c = arg;
	char buf[16384];
	ssize_t n;

	(void)what;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (fz.trace)
			fwrite(buf, 1, (size_t)n, stderr);
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		c->closed = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_conn_t c = {data, size, 0, 0, NULL, NULL};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1 || connect(fd, (struct sockaddr *)&fz.sun, fz.sunlen) == -1)
		fuzz_die("connect", NULL);
	c.wev = event_new(fz.d.base, fd, EV_WRITE | EV_PERSIST, fuzz_write, &c);
	c.rev = event_new(fz.d.base, fd, EV_READ | EV_PERSIST, fuzz_read, &c);
	if (c.wev == NULL || c.rev == NULL || event_add(c.wev, NULL) == -1 ||
	    event_add(c.rev, NULL) == -1)
		fuzz_die("event_new", NULL);
	while (!c.closed)
		event_base_loop(fz.d.base, EVLOOP_ONCE);
	event_free(c.wev);
	event_free(c.rev);
	close(fd);
	/* what the server freed late (bufferevent finalizers) goes now */
	event_base_loop(fz.d.base, EVLOOP_NONBLOCK);
	return 0;
}
