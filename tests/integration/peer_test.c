/*
 * peer_test: the daemon-to-daemon client (peer.c) against a real server
 * (server.c) in one process: calls, role pinning, request deadlines, a lost
 * server failing what is pending, backoff, and reconnection.
 *
 * usage: peer_test PKI_DIR
 */
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "peer.h"
#include "server.h"
#include "tlv.h"

static const char *pki;
static int passed, failed;
static struct event_base *base;
static tls_holder_t holder;

#define CHECK(name, cond, ...)                                                                     \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok: %s\n", name);                                                  \
			passed++;                                                                  \
		} else {                                                                           \
			printf("FAIL: %s: ", name);                                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			failed++;                                                                  \
		}                                                                                  \
	} while (0)

struct result {
	int done;
	int status;
	char text[256];
	char payload[64];
};

static void
on_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct result *r = arg;
	const uint8_t *p;
	size_t len;

	r->done = 1;
	if (rsp == NULL) {
		r->status = err->status;
		snprintf(r->text, sizeof(r->text), "%s", err->msg);
		return;
	}
	r->status = msg_status(rsp);
	if (msg_get_bytes(rsp, TLV_IX_PAYLOAD, &p, &len) == 0 && len < sizeof(r->payload)) {
		memcpy(r->payload, p, len);
		r->payload[len] = '\0';
	}
}

/* Echo; "slow" answers after 600 ms (blocking the worker on purpose);
 * "drop" loses the connection while the request is pending. */
static void
handle_ping(srv_req_t *r, const msg_t *m, void *ctx)
{
	const uint8_t *p;
	size_t len = 0;
	buf_t *b;

	(void)ctx;
	if (msg_get_bytes(m, TLV_IX_PAYLOAD, &p, &len) == 0 && len == 4 &&
	    memcmp(p, "slow", 4) == 0)
		usleep(600000);
	if (len == 4 && memcmp(p, "drop", 4) == 0) {
		srv_req_t *d = srv_req_defer(r);
		srv_conn_close(d->conn);
		srv_reply_ok(d); /* goes nowhere: the connection is gone */
		return;
	}
	b = srv_reply_begin(r);
	if (len > 0)
		tlv_put(b, STB_TLV_PAYLOAD, p, len);
	srv_reply_end(r);
}

static srv_t *
server_start(const char *listen)
{
	srv_conf_t sc = {listen, 2, 65536, 16, 100, 2000, 10000, 2000};
	err_t err;
	srv_t *s = srv_new(&sc, &holder, NULL, &err);

	if (s == NULL) {
		fprintf(stderr, "srv_new: %s\n", err.msg);
		exit(2);
	}
	srv_handle(s, MSG_IX_PING, handle_ping);
	if (srv_start(s, base, &err) == -1) {
		fprintf(stderr, "srv_start: %s\n", err.msg);
		exit(2);
	}
	return s;
}

static void
server_stop(srv_t *s)
{
	srv_drain(s, 1000);
	srv_free(s);
}

/* Calls PING and runs the loop until the answer (or 5 s). */
static struct result
call(peer_t *p, const char *payload, int timeout_ms, int *queued)
{
	struct result r;
	uint64_t deadline = now_ns() + 5000000000u;
	buf_t b;
	err_t err;

	memset(&r, 0, sizeof(r));
	buf_init(&b, 128);
	tlv_put_str(&b, STB_TLV_PAYLOAD, payload);
	*queued = peer_call(p, STB_MSG_PING, &b, timeout_ms, on_done, &r, &err) == 0;
	buf_free(&b);
	if (!*queued) {
		r.status = err.status;
		snprintf(r.text, sizeof(r.text), "%s", err.msg);
		return r;
	}
	while (!r.done && now_ns() < deadline)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	return r;
}

static void
spin(int ms)
{
	uint64_t until = now_ns() + (uint64_t)ms * 1000000u;

	while (now_ns() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
}

int
main(int argc, char **argv)
{
	char cert[512], key[512], ca[512], scert[512], skey[512], addr[80];
	tls_conf_t client, server;
	SSL_CTX *cctx, *sctx;
	peer_t *p, *wrong;
	srv_t *s;
	err_t err;
	struct result r;
	int queued;

	if (argc != 2)
		return 2;
	pki = argv[1];
	snprintf(cert, sizeof(cert), "%s/media-gw.crt", pki);
	snprintf(key, sizeof(key), "%s/media-gw.key", pki);
	snprintf(scert, sizeof(scert), "%s/ca-authd.crt", pki);
	snprintf(skey, sizeof(skey), "%s/ca-authd.key", pki);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	signal(SIGPIPE, SIG_IGN); /* as every daemon does */
	evthread_use_pthreads();
	base = event_base_new();
	server = (tls_conf_t){scert, skey, ca, TLS_CLIENT_AUTH_REQUIRE, 1};
	client = (tls_conf_t){cert, key, ca, 0, 1};
	if ((sctx = tls_server_ctx_new(&server, &err)) == NULL ||
	    (cctx = tls_client_ctx_new(&client, &err)) == NULL) {
		fprintf(stderr, "tls: %s\n", err.msg);
		return 2;
	}
	tls_holder_init(&holder, sctx);
	s = server_start("127.0.0.1:0");
	snprintf(addr, sizeof(addr), "%s", srv_bound(s));

	p = peer_new(base, cctx, &(peer_conf_t){addr, STB_R_CA_AUTHD, 0, 100, 400}, &err);
	wrong = peer_new(base, cctx, &(peer_conf_t){addr, STB_R_KEYMGMTD, 0, 100, 400}, &err);
	if (p == NULL || wrong == NULL)
		return 2;

	r = call(p, "hello", 2000, &queued);
	CHECK("call answered",
	      queued && r.done && r.status == STB_OK && strcmp(r.payload, "hello") == 0,
	      "queued %d status %d payload '%s' %s", queued, r.status, r.payload, r.text);
	r = call(p, "again", 2000, &queued);
	CHECK("second call on the same connection", r.status == STB_OK && peer_connected(p),
	      "status %d", r.status);

	r = call(wrong, "x", 2000, &queued);
	CHECK("server without the expected role is refused",
	      r.status == STB_UNAVAILABLE && strstr(r.text, "role") != NULL, "status %d '%s'",
	      r.status, r.text);

	r = call(p, "slow", 200, &queued);
	CHECK("deadline passes: TIMEOUT", r.status == STB_TIMEOUT, "status %d '%s'", r.status,
	      r.text);
	spin(700); /* the late answer arrives and is dropped */
	r = call(p, "after", 2000, &queued);
	CHECK("late answer to a timed-out call is ignored",
	      r.status == STB_OK && strcmp(r.payload, "after") == 0, "status %d payload '%s'",
	      r.status, r.payload);

	{
		struct result pending;
		buf_t b;
		memset(&pending, 0, sizeof(pending));
		buf_init(&b, 64);
		tlv_put_str(&b, STB_TLV_PAYLOAD, "drop");
		peer_call(p, STB_MSG_PING, &b, 5000, on_done, &pending, &err);
		buf_free(&b);
		for (int i = 0; i < 2000 && !pending.done; i++)
			spin(1);
		CHECK("lost server fails the pending call with UNAVAILABLE",
		      pending.done && pending.status == STB_UNAVAILABLE, "done %d status %d",
		      pending.done, pending.status);
	}
	server_stop(s);
	r = call(p, "down", 500, &queued);
	CHECK("call while the server is down fails", r.status == STB_UNAVAILABLE, "status %d '%s'",
	      r.status, r.text);

	s = server_start(addr);
	spin(450); /* past the backoff */
	r = call(p, "back", 2000, &queued);
	CHECK("reconnects once the server is back",
	      r.status == STB_OK && strcmp(r.payload, "back") == 0, "status %d '%s'", r.status,
	      r.text);

	peer_free(wrong);
	peer_free(p);
	server_stop(s);
	SSL_CTX_free(cctx);
	tls_holder_destroy(&holder);
	event_base_free(base);
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
