/*
 * Unit tests for the server (listener.c, conn.c, reply.c, framer.c) over
 * real TLS on loopback: frames split at every byte, pipelining, a push
 * inside a deferred answer, back-pressure without re-entry, frame limits;
 * many records in one read (nothing left in OpenSSL's buffer), more than
 * one readable event's worth at once, a client that stops reading (output
 * back-pressure holds, memory stays bounded) and a half frame past its
 * deadline.
 * The client is a plain blocking OpenSSL one, so only the server's loop
 * machinery is under test.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bytes.h"
#include "frame.h"
#include "mbox.h"
#include "server.h"
#include "testsrv.h"
#include "testutil.h"
#include "tlv.h"

#define MAX_FRAME    4096
#define MAX_INFLIGHT 2
#define PARK_MAX     16

static tu_srv_t ts;
static SSL_CTX *cctx;

/* Touched on the worker; read by the test with atomics. */
static int handled;     /* handler calls */
static int depth;       /* handler nesting: a re-entry makes it 2 */
static int reentered;   /* handler ran inside another handler or an answer */
static int answering;   /* inside park_release's answers */
static int parked_peak; /* most requests parked at once */
static srv_req_t *parked[PARK_MAX];
static int nparked;
static mbox_t *worker_mb;
static int released; /* set by park_release: how many it answered, +1000 */

static void
echo(srv_req_t *r, const msg_t *m, const char *prefix)
{
	const uint8_t *p = NULL;
	size_t len = 0;
	buf_t *b;

	msg_get_bytes(m, TLV_IX_PAYLOAD, &p, &len);
	b = srv_reply_begin(r);
	if (prefix != NULL)
		tlv_put_str(b, STB_TLV_PAYLOAD, prefix);
	else if (len > 0)
		tlv_put(b, STB_TLV_PAYLOAD, p, len);
	srv_reply_end(r);
}

/* On the worker, from a zero timer: the answer of a deferred request is
 * built around a push to the same connection. */
static void
push_inside_answer(evutil_socket_t fd, short what, void *arg)
{
	srv_req_t *d = arg;
	buf_t t, *b;

	(void)fd;
	(void)what;
	buf_init(&t, 256);
	tlv_put_str(&t, STB_TLV_PAYLOAD, "the push");
	b = srv_reply_begin(d);
	tlv_put_str(b, STB_TLV_PAYLOAD, "the answer");
	srv_conn_push(d->conn, STB_MSG_PING, &t, NULL);
	srv_reply_end(d);
	buf_free(&t);
}

static void
handle_ping(srv_req_t *r, const msg_t *m, void *ctx)
{
	const uint8_t *p = NULL;
	size_t len = 0;

	(void)ctx;
	if (depth++ != 0 || answering)
		__atomic_add_fetch(&reentered, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&worker_mb, srv_req_mbox(r), __ATOMIC_RELEASE);
	msg_get_bytes(m, TLV_IX_PAYLOAD, &p, &len);
	if (len == 4 && memcmp(p, "park", 4) == 0 && nparked < PARK_MAX) {
		parked[nparked++] = srv_req_defer(r);
		if (nparked > parked_peak)
			__atomic_store_n(&parked_peak, nparked, __ATOMIC_RELAXED);
	} else if (len == 5 && memcmp(p, "dpush", 5) == 0) {
		struct timeval zero = {0, 0};
		event_base_once(srv_conn_base(r->conn), -1, EV_TIMEOUT, push_inside_answer,
		                srv_req_defer(r), &zero);
	} else
		echo(r, m, NULL);
	depth--;
}

/* On the worker: answers every parked request.  An answer that lets the
 * connection read again must not run the next handler from in here. */
static void
park_release(void *arg)
{
	int n = nparked;

	(void)arg;
	answering = 1;
	for (int i = 0; i < n; i++) {
		char text[32];
		snprintf(text, sizeof(text), "parked %d", i);
		buf_t *b = srv_reply_begin(parked[i]);
		tlv_put_str(b, STB_TLV_PAYLOAD, text);
		srv_reply_end(parked[i]);
	}
	answering = 0;
	nparked = 0;
	__atomic_store_n(&released, 1000 + n, __ATOMIC_RELEASE);
}

static void
reg(srv_t *s)
{
	srv_handle(s, MSG_IX_PING, handle_ping);
}

static int
setup(void **state)
{
	srv_conf_t sc = {NULL, 1, MAX_FRAME, MAX_INFLIGHT, 100, 2000, 10000, 2000, NULL, 0, 0};

	if (tu_setup_dir(state) != 0 || tu_pki_ca(tu_dir) != 0 ||
	    tu_pki_leaf(tu_dir, "srv", "ca-authd") != 0)
		return -1;
	if (tu_srv_start(&ts, tu_dir, &sc, NULL, reg) != 0)
		return -1;
	cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	return cctx != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	SSL_CTX_free(cctx);
	tu_srv_stop(&ts);
	tu_pki_free();
	return tu_teardown_dir(state);
}

/* ---- a blocking client ---- */

static SSL *
cl_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ts.port)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	SSL *ssl;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ssl = SSL_new(cctx);
	SSL_set_fd(ssl, fd);
	assert_int_equal(SSL_connect(ssl), 1);
	return ssl;
}

static void
cl_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

static void
cl_write(SSL *ssl, const void *p, size_t n)
{
	assert_int_equal(SSL_write(ssl, p, (int)n), (int)n);
}

/* 0 with the whole n bytes, -1 at EOF or error */
static int
cl_read_n(SSL *ssl, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int k = SSL_read(ssl, p + got, (int)(n - got));
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

typedef struct rframe {
	frame_hdr_t h;
	uint8_t body[MAX_FRAME];
	msg_t m;
	char payload[64];
} rframe_t;

static int
cl_read_frame(SSL *ssl, rframe_t *f)
{
	uint8_t hb[STB_FRAME_HDR_LEN];
	const uint8_t *p;
	size_t len;
	err_t err;

	if (cl_read_n(ssl, hb, sizeof(hb)) == -1)
		return -1;
	f->h.flags = hb[3];
	f->h.type = load_be16(hb + 4);
	f->h.req_id = load_be32(hb + 8);
	f->h.len = load_be32(hb + 12);
	assert_true(f->h.len <= sizeof(f->body));
	assert_int_equal(cl_read_n(ssl, f->body, f->h.len), 0);
	assert_int_equal(msg_parse(&f->m, &f->h, f->body, &err), 0);
	f->payload[0] = '\0';
	if (msg_get_bytes(&f->m, TLV_IX_PAYLOAD, &p, &len) == 0 && len < sizeof(f->payload)) {
		memcpy(f->payload, p, len);
		f->payload[len] = '\0';
	}
	return 0;
}

static size_t
mk_ping(uint8_t *out, size_t cap, uint32_t id, const char *payload)
{
	buf_t b;
	size_t start, n;

	buf_init(&b, cap);
	frame_begin(&b, &start);
	if (payload != NULL)
		tlv_put_str(&b, STB_TLV_PAYLOAD, payload);
	frame_end(&b, start, STB_MSG_PING, 0, id);
	assert_false(b.failed);
	n = b.len;
	memcpy(out, b.data, n);
	buf_free(&b);
	return n;
}

static void
expect_answer(SSL *ssl, uint32_t id, const char *payload)
{
	rframe_t f;

	assert_int_equal(cl_read_frame(ssl, &f), 0);
	assert_int_equal(f.h.req_id, id);
	assert_true(f.h.flags & STB_FRAME_F_RESPONSE);
	assert_int_equal(msg_status(&f.m), STB_OK);
	assert_string_equal(f.payload, payload);
}

static int
wait_for(int *v, int want)
{
	for (int i = 0; i < 500; i++) {
		if (__atomic_load_n(v, __ATOMIC_ACQUIRE) >= want)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* ---- the cases ---- */

/* Every split of a frame in two, and a frame a byte at a time. */
static void
test_split(void **state)
{
	SSL *ssl = cl_connect();
	uint8_t fr[256];
	size_t n = mk_ping(fr, sizeof(fr), 1, "split-me-everywhere");

	(void)state;
	for (size_t k = 1; k < n; k++) {
		uint8_t f2[256];
		mk_ping(f2, sizeof(f2), (uint32_t)(100 + k), "split-me-everywhere");
		cl_write(ssl, f2, k);
		usleep(2000); /* its own record, most likely its own read */
		cl_write(ssl, f2 + k, n - k);
		expect_answer(ssl, (uint32_t)(100 + k), "split-me-everywhere");
	}
	for (size_t k = 0; k < n; k++) {
		cl_write(ssl, fr + k, 1);
		usleep(1000);
	}
	expect_answer(ssl, 1, "split-me-everywhere");
	cl_close(ssl);
}

/* Many requests in one write: answered in order, each with its own id. */
static void
test_pipelined(void **state)
{
	enum { N = 200 };
	static uint8_t all[N * 64];
	SSL *ssl = cl_connect();
	size_t off = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "req %d", i);
		off += mk_ping(all + off, sizeof(all) - off, (uint32_t)(5000 + i), p);
	}
	cl_write(ssl, all, off);
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "req %d", i);
		expect_answer(ssl, (uint32_t)(5000 + i), p);
	}
	cl_close(ssl);
}

/* A push sent between srv_reply_begin and srv_reply_end of a deferred
 * answer: both arrive intact. */
static void
test_push_in_deferred_answer(void **state)
{
	SSL *ssl = cl_connect();
	uint8_t fr[64];
	rframe_t f;
	int got_push = 0, got_answer = 0;

	(void)state;
	cl_write(ssl, fr, mk_ping(fr, sizeof(fr), 77, "dpush"));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cl_read_frame(ssl, &f), 0);
		if (f.h.flags & STB_FRAME_F_PUSH) {
			assert_string_equal(f.payload, "the push");
			got_push++;
		} else {
			assert_int_equal(f.h.req_id, 77);
			assert_int_equal(msg_status(&f.m), STB_OK);
			assert_string_equal(f.payload, "the answer");
			got_answer++;
		}
	}
	assert_int_equal(got_push, 1);
	assert_int_equal(got_answer, 1);
	/* the connection still works */
	cl_write(ssl, fr, mk_ping(fr, sizeof(fr), 78, "after"));
	expect_answer(ssl, 78, "after");
	cl_close(ssl);
}

/* max_inflight parked requests stop reading; answering them resumes it,
 * from the loop (no handler runs inside the answers), in order. */
static void
test_backpressure(void **state)
{
	enum { N = 7 };
	uint8_t all[N * 64];
	SSL *ssl = cl_connect();
	size_t off = 0;
	int got = 0, base = __atomic_load_n(&handled, __ATOMIC_ACQUIRE);

	(void)state;
	for (int i = 0; i < N; i++)
		off += mk_ping(all + off, sizeof(all) - off, (uint32_t)(900 + i), "park");
	cl_write(ssl, all, off);
	assert_int_equal(wait_for(&handled, base + MAX_INFLIGHT), 0);
	usleep(200000);
	/* reading paused: the rest wait in the buffers */
	assert_int_equal(__atomic_load_n(&handled, __ATOMIC_ACQUIRE), base + MAX_INFLIGHT);
	while (got < N) {
		int n;
		assert_int_equal(
		    wait_for(&handled, base + (got + MAX_INFLIGHT < N ? got + MAX_INFLIGHT : N)),
		    0);
		usleep(20000);
		__atomic_store_n(&released, 0, __ATOMIC_RELEASE);
		assert_int_equal(
		    mbox_post(__atomic_load_n(&worker_mb, __ATOMIC_ACQUIRE), park_release, NULL),
		    0);
		assert_int_equal(wait_for(&released, 1000), 0);
		n = __atomic_load_n(&released, __ATOMIC_ACQUIRE) - 1000;
		assert_true(n >= 1 && n <= MAX_INFLIGHT);
		for (int i = 0; i < n; i++) {
			char p[32];
			snprintf(p, sizeof(p), "parked %d", i);
			expect_answer(ssl, (uint32_t)(900 + got), p);
			got++;
		}
	}
	assert_true(__atomic_load_n(&parked_peak, __ATOMIC_ACQUIRE) <= MAX_INFLIGHT);
	assert_int_equal(__atomic_load_n(&reentered, __ATOMIC_ACQUIRE), 0);
	cl_close(ssl);
}

/* A declared length over max_frame: TOO_LARGE for that id, then closed. */
static void
test_over_max_frame(void **state)
{
	SSL *ssl = cl_connect();
	uint8_t hb[STB_FRAME_HDR_LEN];
	frame_hdr_t h = {0, STB_MSG_PING, 4242, MAX_FRAME + 1};
	rframe_t f;

	(void)state;
	frame_encode_hdr(hb, &h);
	cl_write(ssl, hb, sizeof(hb));
	assert_int_equal(cl_read_frame(ssl, &f), 0);
	assert_int_equal(f.h.req_id, 4242);
	assert_true(f.h.flags & STB_FRAME_F_ERROR);
	assert_int_equal(msg_status(&f.m), STB_TOO_LARGE);
	assert_int_equal(cl_read_frame(ssl, &f), -1); /* closed */
	cl_close(ssl);
}

/* Many frames, each its own TLS record, sent before the first answer is
 * read: with read-ahead one recv takes several records, and every one of
 * them must be handed up (none left behind in OpenSSL's buffer, which no
 * readable event announces). */
static void
test_records_in_one_read(void **state)
{
	enum { N = 64 };
	SSL *ssl = cl_connect();

	(void)state;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			uint8_t fr[64];
			char p[32];
			snprintf(p, sizeof(p), "rec %d", i);
			cl_write(ssl, fr, mk_ping(fr, sizeof(fr), (uint32_t)(20000 + i), p));
		}
		for (int i = 0; i < N; i++) {
			char p[32];
			snprintf(p, sizeof(p), "rec %d", i);
			expect_answer(ssl, (uint32_t)(20000 + i), p);
		}
	}
	cl_close(ssl);
}

/* More than one readable event reads at once (its cap), in one write, and
 * one frame spread over many records: all answered, in order. */
static void
test_more_than_a_read(void **state)
{
	enum { N = 14000 };
	static uint8_t all[N * 48];
	SSL *ssl = cl_connect();
	uint8_t fr[MAX_FRAME];
	char big[MAX_FRAME / 2];
	size_t off = 0, n;

	(void)state;
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "r%d", i);
		off += mk_ping(all + off, sizeof(all) - off, (uint32_t)(30000 + i), p);
	}
	assert_true(off > 256 * 1024);
	cl_write(ssl, all, off);
	for (int i = 0; i < N; i++) {
		char p[32];
		snprintf(p, sizeof(p), "r%d", i);
		expect_answer(ssl, (uint32_t)(30000 + i), p);
	}
	/* a frame in 7-byte records */
	memset(big, 'x', sizeof(big) - 1);
	big[40] = '\0';
	n = mk_ping(fr, sizeof(fr), 31, big);
	for (size_t k = 0; k < n; k += 7)
		cl_write(ssl, fr + k, n - k < 7 ? n - k : 7);
	expect_answer(ssl, 31, big);
	cl_close(ssl);
}

/* A client that sends and never reads: once its answers fill the output
 * past the high-water mark the server stops reading it, so what it has
 * handled stays bounded (a few MB of socket buffers plus the mark) however
 * much the client pushes; when the client reads again every answer comes,
 * in order. */
static void
test_client_stops_reading(void **state)
{
	enum { N = 20000, PAY = 3000 };
	size_t fl, total, sent = 0;
	uint8_t *all;
	char *pay = malloc(PAY + 1);
	SSL *ssl = cl_connect();
	int fd = SSL_get_fd(ssl), base = __atomic_load_n(&handled, __ATOMIC_ACQUIRE), stalled = 0;
	int h1, h2, answered = 0;
	uint8_t fr[MAX_FRAME];

	(void)state;
	assert_non_null(pay);
	memset(pay, 'p', PAY);
	pay[PAY] = '\0';
	fl = mk_ping(fr, sizeof(fr), 0, pay);
	total = fl * N;
	all = malloc(total);
	assert_non_null(all);
	for (int i = 0; i < N; i++)
		mk_ping(all + (size_t)i * fl, fl, (uint32_t)(40000 + i), pay);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* write until the socket takes nothing for a while */
	while (sent < total && stalled < 50) {
		int k =
		    SSL_write(ssl, all + sent, (int)(total - sent > 16384 ? 16384 : total - sent));
		if (k > 0) {
			sent += (size_t)k;
			stalled = 0;
			continue;
		}
		assert_int_equal(SSL_get_error(ssl, k), SSL_ERROR_WANT_WRITE);
		stalled++;
		usleep(10000);
	}
	assert_true(sent < total); /* the server stopped reading */
	h1 = __atomic_load_n(&handled, __ATOMIC_ACQUIRE) - base;
	usleep(300000);
	h2 = __atomic_load_n(&handled, __ATOMIC_ACQUIRE) - base;
	assert_int_equal(h1, h2);
	/* bounded: the high-water mark (1 MB and 4 frames) plus socket buffers */
	assert_true((size_t)h2 * fl < 24u * 1024 * 1024);
	assert_true(h2 < N / 2);
	/* read again: the rest goes in as the server reads again, and every
	 * answer comes, in order (a retried SSL_write keeps its length) */
	while (answered < N) {
		struct pollfd pf = {fd, POLLIN | (sent < total ? POLLOUT : 0), 0};
		rframe_t f;
		uint8_t hb[STB_FRAME_HDR_LEN];
		int k;

		/* answers already in OpenSSL's buffer leave nothing on the socket */
		if (SSL_pending(ssl) == 0)
			assert_true(poll(&pf, 1, 5000) > 0);
		if (sent < total) {
			k = SSL_write(ssl, all + sent,
			              (int)(total - sent > 16384 ? 16384 : total - sent));
			if (k > 0)
				sent += (size_t)k;
			else
				assert_int_equal(SSL_get_error(ssl, k), SSL_ERROR_WANT_WRITE);
		}
		/* a whole answer at a time: blocking reads are fine once a byte
		 * is there (the server writes frames whole) */
		k = SSL_read(ssl, hb, 1);
		if (k <= 0) {
			assert_int_equal(SSL_get_error(ssl, k), SSL_ERROR_WANT_READ);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		assert_int_equal(cl_read_n(ssl, hb + 1, sizeof(hb) - 1), 0);
		f.h.flags = hb[3];
		f.h.req_id = load_be32(hb + 8);
		f.h.len = load_be32(hb + 12);
		assert_true(f.h.len <= sizeof(f.body));
		assert_int_equal(cl_read_n(ssl, f.body, f.h.len), 0);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		assert_true(f.h.flags & STB_FRAME_F_RESPONSE);
		assert_false(f.h.flags & STB_FRAME_F_ERROR);
		assert_int_equal(f.h.req_id, (uint32_t)(40000 + answered));
		answered++;
	}
	free(all);
	free(pay);
	cl_close(ssl);
}

/* Half a frame, then silence: closed once the frame deadline passes (the
 * read sees the end of the stream, not its own timeout). */
static void
test_half_frame_deadline(void **state)
{
	SSL *ssl = cl_connect();
	uint8_t fr[128], b;
	size_t n = mk_ping(fr, sizeof(fr), 51, "never finished");
	struct timeval tv = {8, 0};
	int k;

	(void)state;
	setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cl_write(ssl, fr, n / 2);
	errno = 0;
	k = SSL_read(ssl, &b, 1);
	assert_true(k <= 0);
	assert_true(errno != EAGAIN && errno != EWOULDBLOCK);
	cl_close(ssl);
}

/* A second listener on the same workers that serves the admin role only:
 * an anonymous PING there is FORBIDDEN, on the first it is answered. */
static void
test_attached_listener(void **state)
{
	srv_conf_t sc = {"127.0.0.1:0", 0,    MAX_FRAME, MAX_INFLIGHT, 0, 2000,
	                 10000,         2000, "ops",     STB_R_ADMIN,  0};
	uint8_t fr[64];
	rframe_t f;
	err_t err;
	srv_t *ops = srv_attach(ts.srv, &sc, &ts.holder, NULL, &err);
	int port, first = ts.port;
	SSL *ssl;

	(void)state;
	assert_non_null(ops);
	srv_handle(ops, MSG_IX_PING, handle_ping);
	assert_int_equal(srv_start(ops, ts.base, &err), 0);
	assert_string_equal(srv_name(ops), "ops");
	port = atoi(strrchr(srv_bound(ops), ':') + 1);
	ts.port = port;
	ssl = cl_connect();
	cl_write(ssl, fr, mk_ping(fr, sizeof(fr), 9, "hello"));
	assert_int_equal(cl_read_frame(ssl, &f), 0);
	assert_int_equal(f.h.req_id, 9);
	assert_int_equal(msg_status(&f.m), STB_FORBIDDEN);
	cl_close(ssl);
	ts.port = first;
	ssl = cl_connect();
	cl_write(ssl, fr, mk_ping(fr, sizeof(fr), 10, "hello"));
	expect_answer(ssl, 10, "hello");
	cl_close(ssl);
	assert_int_equal(srv_nworkers(ops), srv_nworkers(ts.srv));
	/* freed with the primary */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_push_in_deferred_answer),
	    cmocka_unit_test(test_backpressure),
	    cmocka_unit_test(test_over_max_frame),
	    cmocka_unit_test(test_records_in_one_read),
	    cmocka_unit_test(test_more_than_a_read),
	    cmocka_unit_test(test_client_stops_reading),
	    cmocka_unit_test(test_half_frame_deadline),
	    cmocka_unit_test(test_attached_listener),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
