/*
 * peer_test: the daemon-to-daemon client (peer.c) against a real server
 * (server.c) in one process: calls, role pinning, request deadlines, a lost
 * server failing what is pending, backoff, and reconnection.
 *
 * usage: peer_test PKI_DIR
 */
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "metrics.h"
#include "peer.h"
#include "server.h"
#include "tlv.h"

static const char *pki;
static struct event_base *base;
static tls_holder_t holder;

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

static uint32_t pushed_id; /* request id of our push */
static int push_answered;  /* set on the worker by on_push_rsp */

static void
on_push_rsp(srv_conn_t *c, const msg_t *m, void *ctx)
{
	(void)c;
	(void)ctx;
	if (m->req_id == pushed_id && m->type == STB_MSG_PING && msg_status(m) == STB_OK)
		__atomic_store_n(&push_answered, 1, __ATOMIC_RELEASE);
}

/* Echo; "push" first pushes a PING to the caller; "slow" answers after 600 ms (blocking the worker
 * on purpose); "drop" loses the connection while the request is pending. */
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
	if (len == 4 && memcmp(p, "push", 4) == 0) {
		buf_t t;
		buf_init(&t, 64);
		tlv_put_str(&t, STB_TLV_PAYLOAD, "pushed");
		if (srv_conn_push(r->conn, STB_MSG_PING, &t, &pushed_id) == -1)
			pushed_id = 0;
		buf_free(&t);
	}
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
	srv_conf_t sc = {listen, 2, 65536, 16, 100, 2000, 10000, 2000, NULL, 0, 0};
	err_t err;
	srv_t *s = srv_new(&sc, &holder, NULL, &err);

	if (s == NULL) {
		fprintf(stderr, "srv_new: %s\n", err.msg);
		exit(2);
	}
	srv_handle(s, MSG_IX_PING, handle_ping);
	srv_on_push_response(s, on_push_rsp);
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

/* Reads one frame from a blocking TLS connection. */
static int
read_frame(SSL *ssl, frame_hdr_t *h, uint8_t *body, size_t cap)
{
	uint8_t hdr[STB_FRAME_HDR_LEN];
	size_t got = 0;

	while (got < sizeof(hdr)) {
		int n = SSL_read(ssl, hdr + got, (int)(sizeof(hdr) - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	if (frame_decode(hdr, sizeof(hdr), (uint32_t)cap, h) == FRAME_OK)
		return 0;
	for (got = 0; got < h->len;) {
		int n = SSL_read(ssl, body + got, (int)(h->len - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

struct push_client {
	const char *addr, *ca, *cert, *key;
	int got_push, got_rsp, done;
};

/* A blocking client on its own thread: the main thread runs the listener. */
static void *
push_client_main(void *arg)
{
	struct push_client *pc = arg;
	const char *addr = pc->addr, *ca = pc->ca;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct sockaddr_storage ss;
	int sl = sizeof(ss), fd, got_push = 0, got_rsp = 0;
	uint8_t out[64], body[256];
	frame_hdr_t h;
	SSL *ssl;
	buf_t b;

	(void)got_push;
	(void)got_rsp;
	SSL_CTX_load_verify_locations(ctx, ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* the server requires a client certificate */
	SSL_CTX_use_certificate_chain_file(ctx, pc->cert);
	SSL_CTX_use_PrivateKey_file(ctx, pc->key, SSL_FILETYPE_PEM);
	srv_parse_addr(addr, &ss, &sl);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) == -1)
		exit(2);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		exit(2);
	buf_init(&b, sizeof(out));
	frame_begin(&b, &(size_t){0});
	tlv_put_str(&b, STB_TLV_PAYLOAD, "push");
	frame_end(&b, 0, STB_MSG_PING, 0, 7);
	SSL_write(ssl, b.data, (int)b.len);
	for (int i = 0; i < 2 && read_frame(ssl, &h, body, sizeof(body)) == 0; i++) {
		if (h.flags == STB_FRAME_F_PUSH && h.type == STB_MSG_PING && h.len == 12 &&
		    memcmp(body + 6, "pushed", 6) == 0) {
			got_push = 1;
			buf_reset(&b);
			frame_begin(&b, &(size_t){0});
			frame_end(&b, 0, STB_MSG_PING, STB_FRAME_F_RESPONSE, h.req_id);
			SSL_write(ssl, b.data, (int)b.len);
		} else if (h.flags == STB_FRAME_F_RESPONSE && h.req_id == 7)
			got_rsp = 1;
	}
	for (int i = 0; i < 200 && !__atomic_load_n(&push_answered, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	pc->got_push = got_push;
	pc->got_rsp = got_rsp;
	buf_free(&b);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	__atomic_store_n(&pc->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Server push: the server sends a PUSH frame on a client's connection and
 * gets the client's answer through srv_on_push_response. */
static void
push_case(const char *addr, const char *ca, const char *cert, const char *key)
{
	struct push_client pc = {addr, ca, cert, key, 0, 0, 0};
	pthread_t th;

	pthread_create(&th, NULL, push_client_main, &pc);
	for (int i = 0; i < 10000 && !__atomic_load_n(&pc.done, __ATOMIC_ACQUIRE); i++)
		spin(1);
	pthread_join(th, NULL);
	CHECK("server push reaches the client before the answer", pc.got_push && pc.got_rsp,
	      "push %d answer %d", pc.got_push, pc.got_rsp);
	CHECK("the client's answer to a push reaches the server",
	      __atomic_load_n(&push_answered, __ATOMIC_ACQUIRE), "no push answer");
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
	server = (tls_conf_t){.cert = scert,
	                      .key = skey,
	                      .ca = ca,
	                      .client_auth = TLS_CLIENT_AUTH_REQUIRE,
	                      .tls13_only = 1};
	client = (tls_conf_t){.cert = cert, .key = key, .ca = ca, .tls13_only = 1};
	if ((sctx = tls_server_ctx_new(&server, &err)) == NULL ||
	    (cctx = tls_client_ctx_new(&client, &err)) == NULL) {
		fprintf(stderr, "tls: %s\n", err.msg);
		return 2;
	}
	tls_holder_init(&holder, sctx);
	s = server_start("127.0.0.1:0");
	snprintf(addr, sizeof(addr), "%s", srv_bound(s));

	p = peer_new(base, cctx, &(peer_conf_t){addr, STB_R_CA_AUTHD, 0, 100, 400, NULL, NULL, 0},
	             &err);
	wrong = peer_new(base, cctx,
	                 &(peer_conf_t){addr, STB_R_KEYMGMTD, 0, 100, 400, NULL, NULL, 0}, &err);
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

	push_case(addr, ca, cert, key);
	peer_free(wrong);
	peer_free(p);
	server_stop(s);
	SSL_CTX_free(cctx);
	tls_holder_destroy(&holder);
	event_base_free(base);
	return check_report();
}
