/*
 * worker: one load thread.  Its own epoll (level-triggered), its share of
 * the connections, non-blocking sockets driven through SSL_connect,
 * SSL_write and SSL_read with WANT_READ/WANT_WRITE handling.
 *
 * Per request in ping mode the cost is one SSL_write (one send), one
 * SSL_read (one recv, with read-ahead), a share of one epoll_wait and two
 * clock reads; nothing is allocated: every buffer is carved out of one
 * arena when the worker is created, and the request frame is a prepared
 * template whose req_id is patched in place.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "bench.h"
#include "bytes.h"
#include "frame.h"
#include "stb/stbclient.h"
#include "stb/stbproto.h"
#include "tlv.h"

#define WORKER_NEV        256
#define WORKER_SLEEP_NS   10000000u    /* a failed handshake slot waits 10 ms */
#define WORKER_CONNECT_NS 10000000000u /* ping: all connections up within 10 s */
#define WORKER_WBUF_MAX   65536u       /* bytes of requests queued per flush */
#define WORKER_RBUF_MIN   8192u

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_RUN, C_SLEEP, C_DEAD };

typedef struct req_slot {
	uint32_t id;
	uint32_t busy;
	uint64_t t; /* ns: sent */
} req_slot_t;

typedef struct conn {
	int fd;
	uint8_t state;
	uint8_t wblocked; /* an SSL_write waits to be retried */
	uint8_t rblocked; /* an SSL_read wants the socket writable */
	uint32_t ev;      /* events registered with epoll; 0 = none */
	SSL *ssl;
	uint32_t next_id;
	uint32_t inflight;
	uint32_t budget; /* requests this connection may still send */
	uint64_t t0;     /* ns: connect() called, or sleep until */
	size_t wlen;
	size_t rlen;
	uint8_t *wbuf;
	uint8_t *rbuf;
	req_slot_t *slots;
} conn_t;

struct worker {
	bench_run_t *run;
	const bench_opts_t *o;
	int idx;
	int epfd;
	int nconns;
	int live;   /* connections not DEAD */
	int nsleep; /* connections in C_SLEEP */
	int started;
	conn_t *conns;
	void *arena;
	size_t wcap;
	size_t rcap;
	uint64_t quota;
	uint64_t now;
	pthread_t tid;
	bench_stats_t st;
};

static int conn_open(worker_t *w, conn_t *c);
static void conn_handshake(worker_t *w, conn_t *c);
static void conn_fill(worker_t *w, conn_t *c);

static void __attribute__((format(printf, 2, 3))) worker_note(worker_t *w, const char *fmt, ...)
{
	va_list ap;

	if (w->st.first_err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->st.first_err, sizeof(w->st.first_err), fmt, ap);
	va_end(ap);
}

static int
worker_measuring(const worker_t *w)
{
	return w->started && w->now >= w->run->t_warm && w->now < w->run->t_stop;
}

/* Counts one completion at w->now if it falls in the measured window and
 * within -n; the thread's clock stops at the last one. */
static int
worker_count(worker_t *w)
{
	if (!worker_measuring(w) || (w->quota > 0 && w->st.done >= w->quota))
		return 0;
	if (++w->st.done == w->quota)
		w->st.t_end = w->now;
	return 1;
}

/* Why an SSL call failed, for the first-error note.  Clears the queue. */
static void
worker_note_ssl(worker_t *w, conn_t *c, const char *what, int rc)
{
	int e = SSL_get_error(c->ssl, rc);
	unsigned long ossl = ERR_peek_error();
	char buf[160];

	if (ossl != 0) {
		ERR_error_string_n(ossl, buf, sizeof(buf));
		if (ERR_GET_REASON(ossl) == SSL_R_CERTIFICATE_VERIFY_FAILED)
			worker_note(w, "%s: %s (%s)", what, buf,
			            X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
		else
			worker_note(w, "%s: %s", what, buf);
	} else if (e == SSL_ERROR_SYSCALL && errno != 0) {
		worker_note(w, "%s: %s", what, strerror(errno));
	} else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
		worker_note(w, "%s: connection closed by peer", what);
	} else {
		worker_note(w, "%s: SSL error %d", what, e);
	}
	ERR_clear_error();
}

static void
conn_events(worker_t *w, conn_t *c, uint32_t ev)
{
	struct epoll_event ee;

	if (c->ev == ev)
		return;
	ee.events = ev;
	ee.data.ptr = c;
	if (epoll_ctl(w->epfd, c->ev == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ee) == -1)
		worker_note(w, "epoll_ctl: %s", strerror(errno));
	c->ev = ev;
}

static void
conn_close(conn_t *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl); /* no close_notify: a benchmark just hangs up */
	if (c->fd != -1)
		close(c->fd); /* also leaves the epoll set */
	c->ssl = NULL;
	c->fd = -1;
	c->ev = 0;
	c->wlen = c->rlen = 0;
	c->inflight = 0;
	c->wblocked = c->rblocked = 0;
	c->state = C_IDLE;
}

/* A connection failed.  Handshake slots wait a little and try again;
 * ping connections are not replaced: the report counts them. */
static void
conn_fail(worker_t *w, conn_t *c)
{
	int was_up = c->state == C_RUN;

	conn_close(c);
	if (w->o->mode == BENCH_HANDSHAKE) {
		if (w->started)
			w->st.failures++;
		c->state = C_SLEEP;
		c->t0 = w->now + WORKER_SLEEP_NS;
		w->nsleep++;
		return;
	}
	if (was_up && w->started)
		w->st.lost++;
	else if (!was_up)
		w->st.failures++;
	c->state = C_DEAD;
	w->live--;
}

/* Handshake mode: this slot is done with its connection; start the next. */
static void
conn_recycle(worker_t *w, conn_t *c)
{
	conn_close(c);
	if (conn_open(w, c) == -1)
		conn_fail(w, c);
}

static void
conn_start_tls(worker_t *w, conn_t *c)
{
	if ((c->ssl = SSL_new(w->run->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		worker_note(w, "SSL_new failed");
		ERR_clear_error();
		conn_fail(w, c);
		return;
	}
	if (!w->run->host_is_ip)
		SSL_set_tlsext_host_name(c->ssl, w->run->host);
	c->state = C_HANDSHAKE;
	conn_handshake(w, c);
}

static int
conn_open(worker_t *w, conn_t *c)
{
	const bench_run_t *run = w->run;
	int one = 1;

	c->fd = socket(run->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		worker_note(w, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0 = bench_now();
	c->next_id = 1;
	if (connect(c->fd, (const struct sockaddr *)&run->sa, run->salen) == 0) {
		conn_start_tls(w, c);
		return 0;
	}
	if (errno != EINPROGRESS) {
		worker_note(w, "connect %s: %s", w->o->addr, strerror(errno));
		return -1;
	}
	c->state = C_CONNECTING;
	conn_events(w, c, EPOLLOUT);
	return 0;
}

static void
conn_connected(worker_t *w, conn_t *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		worker_note(w, "connect %s: %s", w->o->addr, strerror(err));
		conn_fail(w, c);
		return;
	}
	conn_start_tls(w, c);
}

static void
conn_handshake_done(worker_t *w, conn_t *c)
{
	if (w->o->mode == BENCH_PING) {
		c->state = C_RUN;
		c->budget = UINT32_MAX;
		w->st.up++;
		conn_events(w, c, EPOLLIN);
		if (w->started)
			conn_fill(w, c);
		return;
	}
	w->now = bench_now();
	if (SSL_session_reused(c->ssl)) {
		worker_note(w, "a session was resumed; the handshake is not a full one");
		conn_fail(w, c);
		return;
	}
	if (worker_count(w))
		hist_observe(&w->st.lat, (w->now - c->t0) / 1000);
	if (!w->o->hs_ping) {
		conn_recycle(w, c);
		return;
	}
	c->state = C_RUN;
	c->budget = 1;
	conn_events(w, c, EPOLLIN);
	conn_fill(w, c);
}

static void
conn_handshake(worker_t *w, conn_t *c)
{
	int rc = SSL_connect(c->ssl);

	if (rc == 1) {
		conn_handshake_done(w, c);
		return;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		conn_events(w, c, EPOLLIN);
		return;
	case SSL_ERROR_WANT_WRITE:
		conn_events(w, c, EPOLLOUT);
		return;
	}
	worker_note_ssl(w, c, "TLS handshake", rc);
	conn_fail(w, c);
}

/* Sends what wbuf holds.  0, or -1 when the connection failed. */
static int
conn_flush(worker_t *w, conn_t *c)
{
	int rc;

	if (c->wlen == 0)
		return 0;
	/* A retry after WANT_WRITE passes the same buffer and length: nothing
	 * is appended while wblocked. */
	rc = SSL_write(c->ssl, c->wbuf, (int)c->wlen);
	if (rc > 0) {
		c->wlen = 0; /* partial writes are off: all or nothing */
		c->wblocked = 0;
		return 0;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_WRITE:
		c->wblocked = 1;
		conn_events(w, c, EPOLLIN | EPOLLOUT);
		return 0;
	case SSL_ERROR_WANT_READ:
		c->wblocked = 1; /* retried on the next readable event */
		return 0;
	}
	worker_note_ssl(w, c, "SSL_write", rc);
	conn_fail(w, c);
	return -1;
}

/* Queues requests up to the pipeline depth and sends them in one write. */
static void
conn_fill(worker_t *w, conn_t *c)
{
	const bench_run_t *run = w->run;
	uint32_t depth = (uint32_t)w->o->pipeline;

	while (!c->wblocked && c->inflight < depth && c->budget > 0) {
		while (c->inflight < depth && c->budget > 0 && c->wlen + run->ping_len <= w->wcap) {
			req_slot_t *s = c->slots;
			uint8_t *f = c->wbuf + c->wlen;

			while (s->busy)
				s++; /* inflight < depth: a free slot exists */
			memcpy(f, run->ping, run->ping_len);
			store_be32(f + 8, c->next_id);
			s->id = c->next_id++;
			s->busy = 1;
			s->t = w->now;
			c->wlen += run->ping_len;
			c->inflight++;
			c->budget--;
		}
		if (conn_flush(w, c) == -1)
			return;
	}
}

void
bench_error_rsp(const uint8_t *body, uint32_t len, char *out, size_t cap)
{
	tlv_cursor_t cur;
	uint16_t type, status = 0xffff;
	const uint8_t *val;
	uint32_t vlen;
	const char *text = "";
	int tlen = 0;

	tlv_cursor_init(&cur, body, len);
	while (tlv_next(&cur, &type, &val, &vlen) == TLV_NEXT) {
		if (type == STB_TLV_STATUS && vlen == 2)
			status = load_be16(val);
		else if (type == STB_TLV_ERROR_TEXT) {
			text = (const char *)val;
			tlen = vlen > 200 ? 200 : (int)vlen;
		}
	}
	snprintf(out, cap, "%s: %.*s", stb_status_name(status), tlen, text);
}

static void
conn_note_error_rsp(worker_t *w, const uint8_t *body, uint32_t len)
{
	char why[256];

	bench_error_rsp(body, len, why, sizeof(why));
	worker_note(w, "PING answered with %s", why);
}

/* True when an OK PING response echoes our PAYLOAD. */
static int
conn_check_echo(const worker_t *w, const uint8_t *body, uint32_t len)
{
	const bench_run_t *run = w->run;
	size_t plen = w->o->payload;
	tlv_cursor_t cur;
	uint16_t type;
	const uint8_t *val;
	uint32_t vlen;

	if (plen == 0)
		return 1;
	tlv_cursor_init(&cur, body, len);
	while (tlv_next(&cur, &type, &val, &vlen) == TLV_NEXT)
		if (type == STB_TLV_PAYLOAD)
			return vlen == plen &&
			       memcmp(val, run->ping + run->ping_len - plen, plen) == 0;
	return 0;
}

/* One response frame.  0, or -1 for a protocol violation. */
static int
conn_response(worker_t *w, conn_t *c, const frame_hdr_t *h, const uint8_t *body)
{
	req_slot_t *s = c->slots, *end = c->slots + w->o->pipeline;

	if (!(h->flags & STB_FRAME_F_RESPONSE) || h->type != STB_MSG_PING) {
		w->st.errors++;
		worker_note(w, "unexpected frame: type 0x%04x flags 0x%02x", h->type, h->flags);
		return -1;
	}
	while (s < end && !(s->busy && s->id == h->req_id))
		s++;
	if (s == end) {
		w->st.errors++;
		worker_note(w, "response to unknown req_id %u", h->req_id);
		return -1;
	}
	s->busy = 0;
	c->inflight--;
	w->now = bench_now();
	if (h->flags & STB_FRAME_F_ERROR) {
		w->st.errors++;
		conn_note_error_rsp(w, body, h->len);
	} else if (!conn_check_echo(w, body, h->len)) {
		w->st.errors++;
		worker_note(w, "PING response does not echo the PAYLOAD");
	} else if (w->o->mode == BENCH_PING && worker_count(w)) {
		hist_observe(&w->st.lat, (w->now - s->t) / 1000);
	}
	return 0;
}

/* Decodes the complete frames in rbuf and keeps a partial one. */
static int
conn_frames(worker_t *w, conn_t *c)
{
	size_t off = 0;
	frame_hdr_t h;
	int rc;

	while ((rc = frame_decode(c->rbuf + off, c->rlen - off,
	                          (uint32_t)(w->rcap - STB_FRAME_HDR_LEN), &h)) == FRAME_OK) {
		if (conn_response(w, c, &h, c->rbuf + off + STB_FRAME_HDR_LEN) == -1)
			return -1;
		off += STB_FRAME_HDR_LEN + h.len;
	}
	if (rc != FRAME_NEED_MORE) {
		w->st.errors++;
		worker_note(w, "bad response frame: %s", frame_strerror(rc));
		return -1;
	}
	if (off > 0 && off < c->rlen)
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	return 0;
}

/* Reads what the socket has.  One recv per readable event: with
 * read-ahead, OpenSSL takes everything at once; level-triggered epoll
 * reports again when more is left in the socket. */
static void
conn_read(worker_t *w, conn_t *c)
{
	for (;;) {
		int rc = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(w->rcap - c->rlen));

		if (rc <= 0) {
			switch (SSL_get_error(c->ssl, rc)) {
			case SSL_ERROR_WANT_READ:
				goto out;
			case SSL_ERROR_WANT_WRITE:
				c->rblocked = 1;
				conn_events(w, c, EPOLLIN | EPOLLOUT);
				goto out;
			}
			worker_note_ssl(w, c, "SSL_read", rc);
			conn_fail(w, c);
			return;
		}
		c->rlen += (size_t)rc;
		if (conn_frames(w, c) == -1) {
			conn_fail(w, c);
			return;
		}
		if (!SSL_has_pending(c->ssl))
			break;
	}
out:
	if (c->budget == 0 && c->inflight == 0) {
		conn_recycle(w, c); /* handshake --ping: its one PING is answered */
		return;
	}
	conn_fill(w, c);
}

static void
conn_event(worker_t *w, conn_t *c, uint32_t ev)
{
	switch (c->state) {
	case C_CONNECTING:
		conn_connected(w, c);
		return;
	case C_HANDSHAKE:
		conn_handshake(w, c);
		return;
	case C_RUN:
		if (c->wblocked && conn_flush(w, c) == -1)
			return;
		if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->rblocked) {
			c->rblocked = 0;
			conn_read(w, c);
		}
		/* level-triggered: drop EPOLLOUT once nothing waits for it */
		if (c->state == C_RUN && !c->wblocked && !c->rblocked && (c->ev & EPOLLOUT))
			conn_events(w, c, EPOLLIN);
		return;
	}
}

static void
worker_wake(worker_t *w)
{
	for (int i = 0; i < w->nconns && w->nsleep > 0; i++) {
		conn_t *c = &w->conns[i];

		if (c->state != C_SLEEP || c->t0 > w->now)
			continue;
		w->nsleep--;
		c->state = C_IDLE;
		if (conn_open(w, c) == -1)
			conn_fail(w, c);
	}
}

/* Runs the loop until `until`, or (when connecting) until every
 * connection is up or dead. */
static void
worker_loop(worker_t *w, uint64_t until, int connecting)
{
	struct epoll_event ev[WORKER_NEV];

	while (w->live > 0) {
		int n, ms;

		w->now = bench_now();
		if (w->now >= until)
			break;
		if (connecting && (int)w->st.up + (w->nconns - w->live) == w->nconns)
			break;
		if (w->quota > 0 && w->st.done >= w->quota)
			break;
		ms = (int)((until - w->now) / 1000000u) + 1;
		if (ms > 100)
			ms = 100;
		if (w->nsleep > 0 && ms > 10)
			ms = 10;
		n = epoll_wait(w->epfd, ev, WORKER_NEV, ms);
		if (n == -1 && errno != EINTR) {
			worker_note(w, "epoll_wait: %s", strerror(errno));
			break;
		}
		w->now = bench_now();
		for (int i = 0; i < n; i++)
			conn_event(w, ev[i].data.ptr, ev[i].events);
		if (w->nsleep > 0)
			worker_wake(w);
	}
}

static void *
worker_main(void *arg)
{
	worker_t *w = arg;
	bench_run_t *run = w->run;

	if (w->o->mode == BENCH_PING) {
		for (int i = 0; i < w->nconns; i++)
			if (conn_open(w, &w->conns[i]) == -1)
				conn_fail(w, &w->conns[i]);
		worker_loop(w, bench_now() + WORKER_CONNECT_NS, 1);
		for (int i = 0; i < w->nconns; i++) {
			conn_t *c = &w->conns[i];
			if (c->state != C_RUN && c->state != C_DEAD) {
				worker_note(w, "connection not established within 10 s");
				conn_fail(w, c);
			}
		}
	}
	pthread_barrier_wait(&run->gate); /* connected */
	pthread_barrier_wait(&run->gate); /* main has set t_warm and t_stop */
	w->started = 1;
	w->now = bench_now();
	for (int i = 0; i < w->nconns; i++) {
		conn_t *c = &w->conns[i];
		if (w->o->mode == BENCH_HANDSHAKE) {
			if (conn_open(w, c) == -1)
				conn_fail(w, c);
		} else if (c->state == C_RUN) {
			conn_fill(w, c);
		}
	}
	worker_loop(w, run->t_stop, 0);
	if (w->st.t_end == 0)
		w->st.t_end = w->now < run->t_stop ? w->now : run->t_stop;
	for (int i = 0; i < w->nconns; i++)
		conn_close(&w->conns[i]);
	return NULL;
}

worker_t *
worker_new(bench_run_t *run, int idx, int nconns, uint64_t quota)
{
	const bench_opts_t *o = run->o;
	worker_t *w = calloc(1, sizeof(*w));
	size_t per, depth = (size_t)o->pipeline;
	uint8_t *p;

	if (w == NULL)
		return NULL;
	w->run = run;
	w->o = o;
	w->idx = idx;
	w->nconns = w->live = nconns;
	w->quota = quota;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	/* wbuf: up to `depth` requests, at most WORKER_WBUF_MAX per flush;
	 * rbuf: one whole response frame and then some */
	if (depth * run->ping_len > WORKER_WBUF_MAX)
		depth = WORKER_WBUF_MAX / run->ping_len > 0 ? WORKER_WBUF_MAX / run->ping_len : 1;
	w->wcap = depth * run->ping_len;
	w->rcap = 2 * run->rsp_max > WORKER_RBUF_MIN ? 2 * run->rsp_max : WORKER_RBUF_MIN;
	per = w->wcap + w->rcap + (size_t)o->pipeline * sizeof(req_slot_t);
	per = (per + 63) & ~(size_t)63;
	if ((w->conns = calloc((size_t)nconns, sizeof(conn_t))) != NULL)
		for (int i = 0; i < nconns; i++)
			w->conns[i].fd = -1;
	w->arena = calloc((size_t)nconns, per);
	if (w->epfd == -1 || w->conns == NULL || w->arena == NULL) {
		worker_free(w);
		return NULL;
	}
	p = w->arena;
	for (int i = 0; i < nconns; i++, p += per) {
		conn_t *c = &w->conns[i];

		c->slots = (req_slot_t *)(void *)p;
		c->wbuf = p + (size_t)o->pipeline * sizeof(req_slot_t);
		c->rbuf = c->wbuf + w->wcap;
	}
	return w;
}

int
worker_start(worker_t *w)
{
	return pthread_create(&w->tid, NULL, worker_main, w) == 0 ? 0 : -1;
}

void
worker_join(worker_t *w)
{
	pthread_join(w->tid, NULL);
}

const bench_stats_t *
worker_stats(const worker_t *w)
{
	return &w->st;
}

void
worker_free(worker_t *w)
{
	if (w == NULL)
		return;
	if (w->conns != NULL)
		for (int i = 0; i < w->nconns; i++)
			conn_close(&w->conns[i]);
	if (w->epfd != -1)
		close(w->epfd);
	free(w->arena);
	free(w->conns);
	free(w);
}

stb_client_t *
bench_client(const bench_opts_t *o, const char *addr, const char *cert, const char *key,
             int timeout_ms, stb_error_t *err)
{
	stb_client_t *c = NULL;

	if (stb_client_new(&c, err) == -1)
		return NULL;
	if ((o->ca != NULL && stb_client_set_ca_file(c, o->ca, err) == -1) ||
	    (cert != NULL && stb_client_set_identity(c, cert, key, err) == -1) ||
	    stb_connect_addr(c, addr, err) == -1) {
		stb_client_free(c);
		return NULL;
	}
	stb_client_set_timeout(c, timeout_ms);
	return c;
}
