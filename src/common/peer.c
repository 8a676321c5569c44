#include "peer.h"
#include "netaddr.h"

#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "framer.h"
#include "log.h"
#include "metrics.h"
#include "sslio.h"
#include "tls.h"

struct pending {
	peer_t *p;
	uint32_t req_id;
	peer_done_fn fn;
	void *arg;
	struct event *timer;
	struct pending *next;
};

struct peer {
	struct event_base *base;
	SSL_CTX *ctx;
	peer_conf_t conf;
	char addr[128];
	struct sockaddr_storage sa;
	int salen;
	/* the connection: SSL_read/SSL_write straight on the socket (sslio) */
	SSL *ssl; /* NULL: not connected */
	int fd;
	struct evbuffer *in, *out;
	struct event *rev;   /* readable, once the TCP connection is up */
	struct event *wev;   /* writable: connecting, or OpenSSL waits to write */
	struct event *flush; /* requests queued: written together from the loop */
	struct event *more;  /* OpenSSL holds bytes no readable event announces */
	int tcp_up;
	int connected; /* handshake done, role checked */
	int writing, write_blocked, read_wants_write;
	int batch;    /* inside a read: its end writes what the callbacks queued */
	uint64_t gen; /* bumped on every drop: a callback's frame loop stops */
	uint32_t next_id;
	struct pending *pending;
	uint64_t retry_at; /* now_ns() before which we do not dial */
	int backoff_ms;
};

/* read per readable event before the loop's other work */
#define PEER_READ_CAP (128 * 1024)

static void
pending_finish(struct pending *q, const msg_t *rsp, const err_t *err)
{
	peer_t *p = q->p;
	struct pending **pp;

	for (pp = &p->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	event_free(q->timer);
	q->fn(q->arg, rsp, err);
	ERR_clear_error(); /* see conn_dispatch in conn.c */
	free(q);
}

static void
peer_fail_all(peer_t *p, int status, const char *why)
{
	err_t err;

	err_set(&err, status, "%s: %s", p->addr, why);
	while (p->pending != NULL)
		pending_finish(p->pending, NULL, &err);
}

static void
peer_event_free(struct event **ev)
{
	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
}

/* The connection's state, gone (callbacks of its events may be running:
 * libevent lets an event be freed from its own callback). */
static void
peer_close_io(peer_t *p)
{
	peer_event_free(&p->rev);
	peer_event_free(&p->wev);
	peer_event_free(&p->flush);
	peer_event_free(&p->more);
	if (p->ssl != NULL) {
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
	if (p->in != NULL)
		evbuffer_free(p->in);
	if (p->out != NULL)
		evbuffer_free(p->out);
	p->in = p->out = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->tcp_up = p->writing = p->write_blocked = p->read_wants_write = p->batch = 0;
	p->gen++;
}

static void
peer_drop(peer_t *p, const char *why)
{
	peer_close_io(p);
	ERR_clear_error();
	if (!p->connected)
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : p->conf.backoff_min_ms;
	else
		p->backoff_ms = p->conf.backoff_min_ms;
	if (p->backoff_ms > p->conf.backoff_max_ms)
		p->backoff_ms = p->conf.backoff_max_ms;
	p->retry_at = now_ns() + (uint64_t)p->backoff_ms * 1000000u;
	p->connected = 0;
	log_debug("peer %s: %s", p->addr, why);
	peer_fail_all(p, STB_UNAVAILABLE, why);
}

/* why: the error queue's first entry, or errno's text */
static void
peer_drop_err(peer_t *p, const char *what)
{
	unsigned long e = ERR_peek_error();
	char why[300], es[256];

	if (e != 0) {
		ERR_error_string_n(e, es, sizeof(es));
		snprintf(why, sizeof(why), "%s: %s", what, es);
	} else
		snprintf(why, sizeof(why), "%s", what);
	peer_drop(p, why);
}

static void
peer_writing(peer_t *p, int on)
{
	if (on && !p->writing)
		p->writing = event_add(p->wev, NULL) == 0;
	else if (!on && p->writing) {
		event_del(p->wev);
		p->writing = 0;
	}
}

static void
peer_flush(peer_t *p)
{
	if (p->ssl == NULL || !p->connected)
		return;
	if (sslio_write(p->ssl, p->out, &p->write_blocked) == SSLIO_ERROR) {
		peer_drop_err(p, "write failed");
		return;
	}
	peer_writing(p, p->write_blocked || p->read_wants_write);
}

static void
peer_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	peer_t *p = arg;

	(void)fd;
	(void)what;
	if (!p->write_blocked)
		peer_flush(p);
}

/* One frame from the server: an answer finds its pending call by id. */
static int
peer_frame(void *arg, const frame_hdr_t *h, const uint8_t *body)
{
	peer_t *p = arg;
	uint64_t gen = p->gen;
	struct pending *q;
	msg_t m;
	err_t err;

	for (q = p->pending; q != NULL && q->req_id != h->req_id; q = q->next)
		;
	/* pushes to daemons are not part of any flow yet */
	if (!(h->flags & STB_FRAME_F_RESPONSE) || q == NULL)
		return FRAMER_NEXT;
	if (msg_parse(&m, h, body, &err) == -1) {
		err_t e2;
		err_set(&e2, STB_INTERNAL, "%s sent an invalid answer: %s", p->addr, err.msg);
		pending_finish(q, NULL, &e2);
	} else {
		err_clear(&err);
		pending_finish(q, &m, &err);
	}
	/* the callback may have dropped the connection */
	return p->gen != gen ? FRAMER_GONE : FRAMER_NEXT;
}

/* Reads what there is, hands every answer up, then writes what the
 * callbacks queued, together. */
static void
peer_read(peer_t *p)
{
	uint64_t gen = p->gen;
	frame_hdr_t h;
	int code = 0, have_hdr = 0, more, want_write, rc, fr;

	rc = sslio_read(p->ssl, p->in, PEER_READ_CAP, PEER_READ_CAP + p->conf.max_frame, &more,
	                &want_write);
	if (rc == SSLIO_ERROR) {
		peer_drop_err(p, "read failed");
		return;
	}
	if (more)
		event_active(p->more, EV_TIMEOUT, 0);
	p->read_wants_write = want_write;
	p->batch = 1;
	fr = framer_run(p->in, p->conf.max_frame, peer_frame, p, &h, &code, &have_hdr);
	if (p->gen != gen)
		return;
	p->batch = 0;
	if (fr == FRAMER_BAD) {
		peer_drop(p, frame_strerror(code));
		return;
	}
	if (fr == FRAMER_NOMEM) {
		peer_drop(p, "out of memory");
		return;
	}
	if (rc == SSLIO_EOF) {
		peer_drop(p, "connection closed");
		return;
	}
	if (!p->write_blocked)
		peer_flush(p);
	else
		peer_writing(p, 1);
}

static void
peer_more_cb(evutil_socket_t fd, short what, void *arg)
{
	peer_t *p = arg;

	(void)fd;
	(void)what;
	if (p->ssl != NULL && p->connected)
		peer_read(p);
}

static void
peer_handshake(peer_t *p)
{
	int n, one = 1;

	ERR_clear_error();
	n = SSL_do_handshake(p->ssl);
	if (n != 1) {
		switch (SSL_get_error(p->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			peer_writing(p, 0);
			return;
		case SSL_ERROR_WANT_WRITE:
			peer_writing(p, 1);
			return;
		default:
			peer_drop_err(p, "TLS handshake failed");
			return;
		}
	}
	if (!(tls_peer_roles(p->ssl) & p->conf.expect_roles)) {
		peer_drop(p, "server certificate lacks the expected role");
		return;
	}
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->connected = 1;
	p->backoff_ms = 0;
	peer_writing(p, 0);
	/* what was queued while connecting, and anything already read */
	peer_read(p);
}

static void
peer_on_io(evutil_socket_t fd, short what, void *arg)
{
	peer_t *p = arg;

	if (!p->tcp_up) {
		int e = 0;
		socklen_t el = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == -1)
			e = errno;
		if (e != 0) {
			peer_drop(p, strerror(e));
			return;
		}
		p->tcp_up = 1;
		if (event_add(p->rev, NULL) == -1) {
			peer_drop(p, "cannot watch the connection");
			return;
		}
	}
	if (!p->connected) {
		peer_handshake(p);
		return;
	}
	if ((what & EV_WRITE) && p->write_blocked) {
		uint64_t gen = p->gen;
		p->write_blocked = 0;
		peer_flush(p);
		if (p->gen != gen)
			return;
	}
	if ((what & EV_READ) || p->read_wants_write)
		peer_read(p);
}

static int
peer_dial(peer_t *p, err_t *err)
{
	SSL_CTX *ctx = p->conf.tls != NULL ? tls_holder_get(p->conf.tls) : p->ctx;
	SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;

	if (p->conf.tls != NULL)
		SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	if (ssl == NULL)
		return err_set(err, STB_INTERNAL, "SSL_new failed");
	p->ssl = ssl;
	p->fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd == -1 || SSL_set_fd(ssl, p->fd) != 1 || (p->in = evbuffer_new()) == NULL ||
	    (p->out = evbuffer_new()) == NULL ||
	    (p->rev = event_new(p->base, p->fd, EV_READ | EV_PERSIST, peer_on_io, p)) == NULL ||
	    (p->wev = event_new(p->base, p->fd, EV_WRITE | EV_PERSIST, peer_on_io, p)) == NULL ||
	    (p->flush = event_new(p->base, -1, 0, peer_flush_cb, p)) == NULL ||
	    (p->more = event_new(p->base, -1, 0, peer_more_cb, p)) == NULL) {
		peer_close_io(p);
		return err_set(err, STB_INTERNAL, "cannot create a connection to %s", p->addr);
	}
	SSL_set_connect_state(ssl);
	sslio_setup(ssl);
	if (connect(p->fd, (struct sockaddr *)&p->sa, (socklen_t)p->salen) == -1 &&
	    errno != EINPROGRESS) {
		peer_close_io(p);
		return err_set(err, STB_UNAVAILABLE, "cannot connect to %s", p->addr);
	}
	/* writable once connected (or failed) */
	peer_writing(p, 1);
	if (!p->writing) {
		peer_close_io(p);
		return err_set(err, STB_INTERNAL, "cannot watch the connection to %s", p->addr);
	}
	return 0;
}

peer_t *
peer_new(struct event_base *base, SSL_CTX *ctx, const peer_conf_t *conf, err_t *err)
{
	peer_t *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	p->base = base;
	p->fd = -1;
	p->ctx = ctx;
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	p->conf = *conf;
	if (p->conf.max_frame == 0)
		p->conf.max_frame = STB_FRAME_DEFAULT_MAX;
	if (p->conf.backoff_min_ms <= 0)
		p->conf.backoff_min_ms = 100;
	if (p->conf.backoff_max_ms < p->conf.backoff_min_ms)
		p->conf.backoff_max_ms = 5000;
	snprintf(p->addr, sizeof(p->addr), "%s", conf->addr);
	p->conf.addr = p->addr;
	p->conf.sa = NULL;
	if (conf->sa != NULL && conf->salen > 0 && (size_t)conf->salen <= sizeof(p->sa)) {
		memcpy(&p->sa, conf->sa, (size_t)conf->salen);
		p->salen = conf->salen;
	} else if (netaddr_resolve(p->addr, &p->sa, &p->salen, err) == -1) {
		SSL_CTX_free(ctx);
		free(p);
		return NULL;
	}
	return p;
}

static void
pending_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *q = arg;
	err_t err;

	(void)fd;
	(void)what;
	/* a server that took none of our bytes all that while (a handshake
	 * that never ends, a peer that stopped reading) is dropped: the calls
	 * behind it fail now and the next one dials again, instead of queueing
	 * on a dead connection without bound */
	if (q->p->ssl != NULL && (!q->p->connected || evbuffer_get_length(q->p->out) > 0)) {
		peer_drop(q->p, "did not answer in time (not reading)");
		return;
	}
	err_set(&err, STB_TIMEOUT, "%s did not answer in time", q->p->addr);
	pending_finish(q, NULL, &err);
}

int
peer_call(peer_t *p, uint16_t type, const buf_t *tlvs, int timeout_ms, peer_done_fn fn, void *arg,
          err_t *err)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	uint8_t hdr[STB_FRAME_HDR_LEN];
	struct pending *q;
	frame_hdr_t h;

	if (p->ssl == NULL) {
		if (now_ns() < p->retry_at)
			return err_set(err, STB_UNAVAILABLE, "%s is unreachable (retrying shortly)",
			               p->addr);
		if (peer_dial(p, err) == -1)
			return -1;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((q->timer = evtimer_new(p->base, pending_timeout, q)) == NULL) {
		free(q);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	q->p = p;
	q->req_id = ++p->next_id;
	q->fn = fn;
	q->arg = arg;
	h.flags = 0;
	h.type = type;
	h.req_id = q->req_id;
	h.len = tlvs != NULL ? (uint32_t)tlvs->len : 0;
	frame_encode_hdr(hdr, &h);
	/* header and body contiguous; the requests of one loop turn go out
	 * together, in one SSL_write */
	if (evbuffer_expand(p->out, sizeof(hdr) + h.len) == -1 ||
	    evbuffer_add(p->out, hdr, sizeof(hdr)) == -1 ||
	    (h.len > 0 && evbuffer_add(p->out, tlvs->data, tlvs->len) == -1)) {
		event_free(q->timer);
		free(q);
		return err_set(err, STB_INTERNAL, "cannot queue a request to %s", p->addr);
	}
	evtimer_add(q->timer, &tv);
	q->next = p->pending;
	p->pending = q;
	if (p->connected && !p->batch && !p->write_blocked)
		event_active(p->flush, EV_TIMEOUT, 0);
	return 0;
}

int
peer_connected(const peer_t *p)
{
	return p->connected;
}

void
peer_free(peer_t *p)
{
	if (p == NULL)
		return;
	peer_close_io(p);
	peer_fail_all(p, STB_UNAVAILABLE, "shutting down");
	SSL_CTX_free(p->ctx);
	free(p);
}
