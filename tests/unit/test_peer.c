/*
 * Unit tests for peer.c (the daemon-to-daemon client) against a real TLS
 * server in the same process: answers matched by request id whatever their
 * order, a deadline giving TIMEOUT, a lost connection failing every pending
 * call with UNAVAILABLE, and a new connection on the next call.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbox.h"
#include "peer.h"
#include "server.h"
#include "testsrv.h"
#include "testutil.h"
#include "tlv.h"

#define PARK_MAX 8

static tu_srv_t ts;
static struct event_base *base; /* the peer's loop: this thread */
static SSL_CTX *cctx;

/* on the worker */
static srv_req_t *parked[PARK_MAX];
static int nparked;
static int parked_count; /* atomic copy of nparked, for the test */
static mbox_t *worker_mb;

struct result {
	int done;
	int status;
	char payload[64];
	int order; /* when it finished, among the calls of a case */
};
static int finished;

static void
on_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct result *r = arg;
	const uint8_t *p;
	size_t len;

	r->done = 1;
	r->order = finished++;
	if (rsp == NULL) {
		r->status = err->status;
		return;
	}
	r->status = msg_status(rsp);
	if (msg_get_bytes(rsp, TLV_IX_PAYLOAD, &p, &len) == 0 && len < sizeof(r->payload)) {
		memcpy(r->payload, p, len);
		r->payload[len] = '\0';
	}
}

static void
answer(srv_req_t *r, const char *text)
{
	buf_t *b = srv_reply_begin(r);

	tlv_put_str(b, STB_TLV_PAYLOAD, text);
	srv_reply_end(r);
}

static void
answer_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	answer(arg, "later");
}

/* "later": answered 100 ms on; "park": held until released; "drop": the
 * connection is closed under the pending calls; else echoed. */
static void
handle_ping(srv_req_t *r, const msg_t *m, void *ctx)
{
	const uint8_t *p = NULL;
	size_t len = 0;
	char text[64];

	(void)ctx;
	__atomic_store_n(&worker_mb, srv_req_mbox(r), __ATOMIC_RELEASE);
	msg_get_bytes(m, TLV_IX_PAYLOAD, &p, &len);
	if (len == 5 && memcmp(p, "later", 5) == 0) {
		struct timeval tv = {0, 100000};
		event_base_once(srv_conn_base(r->conn), -1, EV_TIMEOUT, answer_later,
		                srv_req_defer(r), &tv);
		return;
	}
	if (len == 4 && memcmp(p, "park", 4) == 0 && nparked < PARK_MAX) {
		parked[nparked++] = srv_req_defer(r);
		__atomic_store_n(&parked_count, nparked, __ATOMIC_RELEASE);
		return;
	}
	if (len == 4 && memcmp(p, "drop", 4) == 0) {
		srv_req_t *d = srv_req_defer(r);
		srv_conn_close(d->conn);
		srv_reply_ok(d); /* goes nowhere */
		return;
	}
	snprintf(text, sizeof(text), "%.*s", (int)len, p != NULL ? (const char *)p : "");
	answer(r, text);
}

/* On the worker: answers what is parked (to a closed connection, maybe). */
static void
park_release(void *arg)
{
	(void)arg;
	for (int i = 0; i < nparked; i++)
		srv_reply_ok(parked[i]);
	nparked = 0;
	__atomic_store_n(&parked_count, 0, __ATOMIC_RELEASE);
}

static void
reg(srv_t *s)
{
	srv_handle(s, MSG_IX_PING, handle_ping);
}

static int
setup(void **state)
{
	srv_conf_t sc = {NULL, 1, 65536, 16, 100, 2000, 10000, 2000, NULL, 0, 0};
	char ca[512];
	tls_conf_t tc = {.client_auth = TLS_CLIENT_AUTH_NONE, .tls13_only = 1};
	err_t err;

	if (tu_setup_dir(state) != 0 || tu_pki_ca(tu_dir) != 0 ||
	    tu_pki_leaf(tu_dir, "srv", "ca-authd") != 0 ||
	    tu_srv_start(&ts, tu_dir, &sc, NULL, reg) != 0)
		return -1;
	tc.ca = tu_pki_path(ca, sizeof(ca), tu_dir, "ca.crt");
	if ((cctx = tls_client_ctx_new(&tc, &err)) == NULL || (base = event_base_new()) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	mbox_t *mb = __atomic_load_n(&worker_mb, __ATOMIC_ACQUIRE);

	if (mb != NULL)
		mbox_post(mb, park_release, NULL);
	usleep(50000);
	SSL_CTX_free(cctx);
	event_base_free(base);
	tu_srv_stop(&ts);
	tu_pki_free();
	return tu_teardown_dir(state);
}

static peer_t *
mk_peer(void)
{
	peer_conf_t pc = {ts.addr, STB_R_CA_AUTHD, 65536, 10, 100, NULL, NULL, 0};
	err_t err;
	peer_t *p = peer_new(base, cctx, &pc, &err);

	assert_non_null(p);
	return p;
}

static void
call(peer_t *p, const char *payload, int timeout_ms, struct result *r)
{
	buf_t t;
	err_t err;

	memset(r, 0, sizeof(*r));
	buf_init(&t, 256);
	tlv_put_str(&t, STB_TLV_PAYLOAD, payload);
	assert_int_equal(peer_call(p, STB_MSG_PING, &t, timeout_ms, on_done, r, &err), 0);
	buf_free(&t);
}

/* Runs the loop until every r is done (or 10 s). */
static void
run_until(struct result *r, int n)
{
	tu_guard_t g;

	tu_guard_start(&g, base, 10);
	for (;;) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all &= r[i].done;
		if (all || g.fired)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	assert_false(g.fired);
	tu_guard_free(&g);
}

static int
wait_parked(int want)
{
	for (int i = 0; i < 500; i++) {
		/* the peer's output goes out only while its loop runs */
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (__atomic_load_n(&parked_count, __ATOMIC_ACQUIRE) >= want)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* The later call's answer comes first: each goes to its own caller. */
static void
test_matched_by_id(void **state)
{
	peer_t *p = mk_peer();
	struct result r[3];

	(void)state;
	finished = 0;
	call(p, "later", 5000, &r[0]);
	call(p, "first", 5000, &r[1]);
	call(p, "second", 5000, &r[2]);
	run_until(r, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].status, STB_OK);
	assert_string_equal(r[0].payload, "later");
	assert_string_equal(r[1].payload, "first");
	assert_string_equal(r[2].payload, "second");
	assert_int_equal(r[0].order, 2); /* answered last */
	assert_true(peer_connected(p));
	peer_free(p);
}

/* No answer within the deadline: TIMEOUT, and the peer still serves. */
static void
test_deadline(void **state)
{
	peer_t *p = mk_peer();
	struct result r[2];
	uint64_t t0 = now_ns();

	(void)state;
	call(p, "park", 200, &r[0]);
	run_until(r, 1);
	assert_int_equal(r[0].status, STB_TIMEOUT);
	assert_true(now_ns() - t0 >= 190 * 1000000ull);
	call(p, "still here", 5000, &r[1]);
	run_until(&r[1], 1);
	assert_int_equal(r[1].status, STB_OK);
	assert_string_equal(r[1].payload, "still here");
	peer_free(p);
}

/* The server closes the connection: every pending call fails with
 * UNAVAILABLE at once (not at its deadline); after the backoff the next
 * call connects again. */
static void
test_lost_connection(void **state)
{
	peer_t *p = mk_peer();
	struct result r[4];
	uint64_t t0;
	int before = __atomic_load_n(&parked_count, __ATOMIC_ACQUIRE);

	(void)state;
	call(p, "park", 8000, &r[0]);
	call(p, "park", 8000, &r[1]);
	assert_int_equal(wait_parked(before + 2), 0);
	t0 = now_ns();
	call(p, "drop", 8000, &r[2]);
	run_until(r, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].status, STB_UNAVAILABLE);
	assert_true(now_ns() - t0 < 5000 * 1000000ull);
	assert_false(peer_connected(p));
	usleep(150000); /* past backoff_max */
	call(p, "again", 5000, &r[3]);
	run_until(&r[3], 1);
	assert_int_equal(r[3].status, STB_OK);
	assert_string_equal(r[3].payload, "again");
	peer_free(p);
}

/* Freeing the peer fails what is pending with UNAVAILABLE. */
static void
test_free_fails_pending(void **state)
{
	peer_t *p = mk_peer();
	struct result r;

	(void)state;
	call(p, "park", 8000, &r);
	assert_int_equal(wait_parked(1), 0);
	peer_free(p);
	assert_true(r.done);
	assert_int_equal(r.status, STB_UNAVAILABLE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matched_by_id),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_lost_connection),
	    cmocka_unit_test(test_free_fails_pending),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
