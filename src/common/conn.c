#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "framer.h"
#include "log.h"
#include "srvint.h"
#include "sslio.h"

/*
 * The connection's I/O: SSL_read and SSL_write straight on the socket,
 * driven by the loop's readiness.  A readable event reads what the socket
 * holds (read-ahead: one recv takes it all), frames everything read, and
 * the answers the handlers gave at once go out together in one SSL_write.
 * The write event is armed only while OpenSSL waits for the socket to take
 * bytes, so a request costs no epoll_ctl.
 */

/* read per readable event before the next connection's turn */
#define CONN_READ_CAP (128 * 1024)

static void conn_batch(srv_conn_t *c);

static void
conn_free(srv_conn_t *c)
{
	if (c->wait != NULL)
		event_free(c->wait);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->flush != NULL)
		event_free(c->flush);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->resume != NULL)
		event_free(c->resume);
	free(c);
}

void
srv_conn_ref(srv_conn_t *c)
{
	c->refs++;
}

void
srv_conn_unref(srv_conn_t *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

int
srv_conn_is_open(const srv_conn_t *c)
{
	return c->ssl != NULL && !c->closing;
}

uint32_t
srv_conn_roles(const srv_conn_t *c)
{
	return c->roles;
}

const char *
srv_conn_peer(const srv_conn_t *c)
{
	return c->peer;
}

const char *
srv_conn_subject(const srv_conn_t *c)
{
	return c->subject[0] ? c->subject : "-";
}

static SSL *
conn_verified_ssl(const srv_conn_t *c)
{
	if (c->ssl == NULL || !c->handshaken || c->roles == STB_R_ANONYMOUS ||
	    SSL_get_verify_result(c->ssl) != X509_V_OK)
		return NULL;
	return c->ssl;
}

X509 *
srv_conn_peer_cert(const srv_conn_t *c)
{
	SSL *ssl = conn_verified_ssl(c);

	return ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
}

STACK_OF(X509) * srv_conn_peer_chain(const srv_conn_t *c)
{
	SSL *ssl = conn_verified_ssl(c);

	return ssl != NULL ? SSL_get0_verified_chain(ssl) : NULL;
}

void
srv_conn_set_data(srv_conn_t *c, void *data)
{
	c->data = data;
}

void *
srv_conn_data(const srv_conn_t *c)
{
	return c->data;
}

mbox_t *
srv_conn_mbox(srv_conn_t *c)
{
	return c->w->mb;
}

struct event_base *
srv_conn_base(srv_conn_t *c)
{
	return c->w->base;
}

srv_t *
srv_conn_listener(const srv_conn_t *c)
{
	return c->srv;
}

static void
deadline_set(srv_conn_t *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->deadline, &tv);
}

/* The idle timeout rides on the I/O events once the handshake is done
 * (before it, the handshake deadline rules). */
static const struct timeval *
conn_idle_tv(const srv_conn_t *c, struct timeval *tv)
{
	int ms = c->srv->conf.idle_timeout_ms;

	if (!c->handshaken || ms <= 0)
		return NULL;
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
	return tv;
}

static void
conn_reading(srv_conn_t *c, int on)
{
	struct timeval tv;

	if (on && !c->reading)
		c->reading = event_add(c->rev, conn_idle_tv(c, &tv)) == 0;
	else if (!on && c->reading) {
		event_del(c->rev);
		c->reading = 0;
	}
}

static void
conn_writing(srv_conn_t *c, int on)
{
	struct timeval tv;

	if (on && !c->writing)
		c->writing = event_add(c->wev, conn_idle_tv(c, &tv)) == 0;
	else if (!on && c->writing) {
		event_del(c->wev);
		c->writing = 0;
	}
}

static void
pending_unlink(srv_conn_t *c)
{
	srv_worker_t *w = c->w;

	if (!c->pending)
		return;
	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		w->pend_head = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	else
		w->pend_tail = c->pprev;
	c->pprev = c->pnext = NULL;
	c->pending = 0;
}

static void
pending_append(srv_conn_t *c)
{
	srv_worker_t *w = c->w;

	c->pprev = w->pend_tail;
	c->pnext = NULL;
	if (w->pend_tail)
		w->pend_tail->pnext = c;
	else
		w->pend_head = c;
	w->pend_tail = c;
	c->pending = 1;
}

void
conn_count_gone(srv_worker_t *w, srv_t *s, const connguard_key_t *src)
{
	__atomic_fetch_sub(&w->srv->nconns, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&s->lconns, 1, __ATOMIC_RELAXED);
	connguard_src_give(w->srv->src, src);
}

static void
conn_free_io(srv_conn_t *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->in != NULL) {
		evbuffer_free(c->in);
		c->in = NULL;
	}
	if (c->out != NULL) {
		evbuffer_free(c->out);
		c->out = NULL;
	}
}

void
conn_close(srv_conn_t *c)
{
	srv_worker_t *w = c->w;
	srv_t *s = c->srv;

	if (!c->live)
		return;
	c->live = 0;
	if (c->announced && s->conn_fn != NULL)
		s->conn_fn(c, 0, s->ctx);
	if (c->ssl != NULL && c->handshaken) {
		ERR_clear_error();
		SSL_shutdown(c->ssl); /* one try at close_notify; we do not wait */
		ERR_clear_error();
	}
	conn_free_io(c);
	if (c->wait != NULL)
		event_del(c->wait);
	if (c->rev != NULL)
		event_del(c->rev);
	if (c->wev != NULL)
		event_del(c->wev);
	if (c->flush != NULL)
		event_del(c->flush);
	c->reading = c->writing = 0;
	close(c->fd);
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	if (c->resume != NULL)
		event_del(c->resume);
	pending_unlink(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	conn_count_gone(w, s, &c->src);
	connguard_trim_closed(&w->trim, w->nconns);
	srv_conn_unref(c);
}

void
srv_conn_close(srv_conn_t *c)
{
	conn_close(c);
}

size_t
conn_out_len(const srv_conn_t *c)
{
	return c->out != NULL ? evbuffer_get_length(c->out) : 0;
}

/* Writes what is queued: one SSL_write per record's worth.  On WANT_WRITE
 * the write event takes over; once everything is out, a closing connection
 * closes and a paused one may read again. */
static void
conn_flush(srv_conn_t *c)
{
	if (c->ssl == NULL || !c->handshaken)
		return;
	if (sslio_write(c->ssl, c->out, &c->write_blocked) == SSLIO_ERROR) {
		log_debug("%s: write failed, closing", c->peer);
		ERR_clear_error();
		conn_close(c);
		return;
	}
	if (c->write_blocked) {
		/* retried with the same bytes (the buffer may move) from wev */
		conn_writing(c, 1);
		return;
	}
	if (!c->read_wants_write)
		conn_writing(c, 0);
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (c->paused && c->inflight < c->srv->conf.max_inflight)
		conn_pause(c, 0);
}

static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;

	(void)fd;
	(void)what;
	if (!c->write_blocked)
		conn_flush(c);
}

/* Close once what is queued for the peer is written (or after a linger). */
void
conn_close_after_flush(srv_conn_t *c)
{
	if (c->ssl == NULL) {
		conn_close(c); /* still waiting for its first byte */
		return;
	}
	if (c->closing)
		return;
	c->closing = 1;
	conn_reading(c, 0);
	event_del(c->resume);
	if (!c->handshaken || evbuffer_get_length(c->out) == 0) {
		conn_close(c);
		return;
	}
	deadline_set(c, SRV_LINGER_MS);
	if (!c->batch)
		event_active(c->flush, EV_TIMEOUT, 0);
}

/* Resuming reads frames that already wait in the input buffer (or in
 * OpenSSL's): from the loop, so a handler that answers (and so resumes)
 * never finds the next request's handler running inside its own stack. */
void
conn_pause(srv_conn_t *c, int pause)
{
	if (c->ssl == NULL || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	if (pause) {
		conn_reading(c, 0);
		event_del(c->resume);
	} else {
		conn_reading(c, 1);
		event_active(c->resume, EV_TIMEOUT, 0);
	}
}

static void
conn_resume(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;

	(void)fd;
	(void)what;
	if (c->ssl != NULL && c->handshaken && !c->paused && !c->closing) {
		srv_conn_ref(c);
		conn_batch(c);
		srv_conn_unref(c);
	}
}

uint32_t
conn_out_high(const srv_conn_t *c)
{
	return 4 * c->srv->conf.max_frame + SRV_RSP_MAX;
}

void
conn_send(srv_conn_t *c, const buf_t *b)
{
	if (c->ssl == NULL)
		return;
	/* contiguous, so the flush's pull-up seldom copies */
	if (evbuffer_expand(c->out, b->len) == -1 || evbuffer_add(c->out, b->data, b->len) == -1) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->out) > conn_out_high(c))
		conn_pause(c, 1);
	/* answers given inside the connection's read batch go out at its end,
	 * together; the others (deferred answers, pushes) at once, so a push
	 * to one connection leaves before the answer that another gets in the
	 * same handler (a session offer before the caller's grant) */
	if (!c->batch && !c->write_blocked)
		conn_flush(c);
}

static void
conn_dispatch(srv_conn_t *c, const frame_hdr_t *h, const uint8_t *body)
{
	srv_t *s = c->srv;
	srv_req_t r = {c, h->type, -1, h->req_id, c->roles, now_ns(), 0, 0};
	msg_t m;
	err_t err;

	if (h->flags & STB_FRAME_F_RESPONSE) {
		/* the peer answers one of our pushes */
		if (s->push_rsp != NULL && msg_parse(&m, h, body, &err) == 0)
			s->push_rsp(c, &m, s->ctx);
		else
			log_debug("push response from %s dropped", c->peer);
		return;
	}
	c->inflight++;
	r.midx = proto_msg_index(h->type);
	if (h->flags & STB_FRAME_F_PUSH) {
		srv_reply_err(&r, STB_BAD_REQUEST, "clients may not push");
		return;
	}
	if (msg_parse(&m, h, body, &err) == -1 || msg_check_role(&m, c->roles, &err) == -1) {
		srv_reply_errt(&r, &err);
		return;
	}
	if (s->conf.accept_roles != 0 && !(c->roles & s->conf.accept_roles)) {
		srv_reply_err(&r, STB_FORBIDDEN, "listener %s does not serve this peer's roles",
		              s->name);
		return;
	}
	if (s->handlers[r.midx] == NULL) {
		srv_reply_err(&r, STB_UNSUPPORTED, "%s is not served here",
		              proto_msgs[r.midx].name);
		return;
	}
	s->handlers[r.midx](&r, &m, s->ctx);
	/* OpenSSL's SSL_get_error reads this thread's error queue: an entry a
	 * handler left (a failed d2i, say) would turn the next WANT_READ into
	 * a fatal error on some other connection */
	ERR_clear_error();
	if (!r.answered) {
		log_warnx("handler for %s returned without answering", proto_msgs[r.midx].name);
		srv_reply_err(&r, STB_INTERNAL, "request was not answered");
	}
}

static int
conn_frame(void *arg, const frame_hdr_t *h, const uint8_t *body)
{
	srv_conn_t *c = arg;

	evtimer_del(c->deadline);
	conn_dispatch(c, h, body);
	if (c->ssl == NULL)
		return FRAMER_GONE;
	if (c->inflight >= c->srv->conf.max_inflight)
		conn_pause(c, 1);
	return c->closing || c->paused ? FRAMER_STOP : FRAMER_NEXT;
}

static void
conn_read_frames(srv_conn_t *c)
{
	srv_t *s = c->srv;
	frame_hdr_t h;
	int code = 0, have_hdr = 0;

	if (c->closing || c->paused)
		return;
	switch (framer_run(c->in, s->conf.max_frame, conn_frame, c, &h, &code, &have_hdr)) {
	case FRAMER_EMPTY:
		evtimer_del(c->deadline);
		break;
	case FRAMER_PARTIAL:
		/* a started frame must finish in time: no slow drip */
		if (!evtimer_pending(c->deadline, NULL))
			deadline_set(c, s->conf.frame_timeout_ms);
		break;
	case FRAMER_BAD:
		log_debug("%s: %s", c->peer, frame_strerror(code));
		if (have_hdr) {
			srv_req_t r = {
			    c, h.type, proto_msg_index(h.type), h.req_id, c->roles, now_ns(), 0, 0};
			c->inflight++;
			srv_reply_err(&r, frame_error_status(code), "%s", frame_strerror(code));
		}
		conn_close_after_flush(c);
		break;
	case FRAMER_NOMEM:
		conn_close(c);
		break;
	default: /* FRAMER_STOPPED */
		break;
	}
}

/* What the last SSL call's failure means for a connection that has not
 * finished its handshake: a refused client certificate is a failed
 * authentication and goes to the refusal summaries (a count, not a line
 * each). */
static void
conn_tls_failed(srv_conn_t *c)
{
	srv_t *s = c->srv;
	unsigned long e = ERR_peek_error();
	char buf[256];
	const char *fp = NULL, *why;

	if (e == 0 || c->handshaken)
		return;
	ERR_error_string_n(e, buf, sizeof(buf));
	log_debug("%s: TLS handshake failed: %s", c->peer, buf);
	why = tls_refused_reason(c->ssl, &fp);
	if (why == NULL && ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		why = "no_certificate";
	if (why != NULL && s->tls_refused_fn != NULL)
		s->tls_refused_fn(c, why, fp, s->ctx);
}

/* Reads what the socket and OpenSSL hold, up to the per-event cap and the
 * input bound (a whole frame fits): SSLIO_OK, _EOF or _ERROR. */
static int
conn_fill(srv_conn_t *c)
{
	size_t bound = CONN_READ_CAP;
	int more, want_write, rc;

	if ((size_t)c->srv->conf.max_frame + STB_FRAME_HDR_LEN > bound)
		bound = (size_t)c->srv->conf.max_frame + STB_FRAME_HDR_LEN;
	rc = sslio_read(c->ssl, c->in, CONN_READ_CAP, bound, &more, &want_write);
	/* bytes in OpenSSL's buffer, which no readable event announces: come
	 * back from the loop */
	if (more)
		event_active(c->resume, EV_TIMEOUT, 0);
	if (want_write) {
		c->read_wants_write = 1;
		conn_writing(c, 1);
	}
	return rc;
}

/* One batch: read, frame, and write the answers together. */
static void
conn_batch(srv_conn_t *c)
{
	int rc = SSLIO_OK;

	c->batch = 1;
	if (!c->paused && !c->closing)
		rc = conn_fill(c);
	if (rc != SSLIO_ERROR && c->ssl != NULL)
		conn_read_frames(c);
	c->batch = 0;
	if (c->ssl == NULL)
		return;
	if (rc == SSLIO_ERROR) {
		log_debug("%s: read failed, closing", c->peer);
		ERR_clear_error();
		conn_close(c);
		return;
	}
	if (!c->write_blocked)
		conn_flush(c);
	if (rc == SSLIO_EOF && c->ssl != NULL)
		conn_close(c);
}

static void
conn_connected(srv_conn_t *c)
{
	srv_t *s = c->srv;

	c->handshaken = 1;
	pending_unlink(c);
	c->roles = tls_peer_roles(c->ssl);
	if (c->roles != STB_R_ANONYMOUS) {
		X509 *cert = SSL_get0_peer_certificate(c->ssl);
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, c->subject,
		                          sizeof(c->subject));
	}
	evtimer_del(c->deadline);
	/* from now on the I/O events carry the idle timeout */
	c->reading = 0;
	conn_reading(c, 1);
	if (c->writing) {
		c->writing = 0;
		conn_writing(c, 1);
	}
	/* a peer this listener does not serve is not announced either */
	if (s->conn_fn != NULL &&
	    (s->conf.accept_roles == 0 || (c->roles & s->conf.accept_roles))) {
		c->announced = 1;
		s->conn_fn(c, 1, s->ctx);
	}
}

/* 1 once the handshake is done, 0 while it waits for the socket, -1 when
 * the connection is gone. */
static int
conn_handshake(srv_conn_t *c)
{
	int n;

	ERR_clear_error();
	n = SSL_do_handshake(c->ssl);
	if (n == 1) {
		c->read_wants_write = 0;
		conn_writing(c, 0);
		conn_connected(c);
		return c->ssl != NULL && c->live ? 1 : -1;
	}
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		c->read_wants_write = 0;
		conn_writing(c, 0);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		c->read_wants_write = 1;
		conn_writing(c, 1);
		return 0;
	default:
		conn_tls_failed(c);
		ERR_clear_error();
		conn_close(c);
		return -1;
	}
}

/* The socket is readable, or writable after a WANT_WRITE. */
static void
conn_io(srv_conn_t *c, short what)
{
	if ((what & EV_WRITE) && c->write_blocked) {
		c->write_blocked = 0;
		conn_flush(c);
		if (c->ssl == NULL)
			return;
	}
	if (!c->handshaken) {
		if (conn_handshake(c) != 1)
			return;
	} else if ((what & EV_WRITE) && !c->read_wants_write)
		return;
	c->read_wants_write = 0;
	if (!c->write_blocked)
		conn_writing(c, 0);
	conn_batch(c);
}

static void
conn_on_io(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		log_debug("%s: idle timeout", c->peer);
		conn_close(c);
		return;
	}
	/* a handler may close the connection and drop the last other ref */
	srv_conn_ref(c);
	conn_io(c, what);
	srv_conn_unref(c);
}

static void
conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;

	(void)fd;
	(void)what;
	log_debug("%s: %s deadline passed, closing", c->peer,
	          c->closing      ? "linger"
	          : c->handshaken ? "frame"
	                          : "handshake");
	conn_close(c);
}

/* EV_READ, with EV_CLOSED where epoll reports a peer's FIN apart
 * (EPOLLRDHUP): readable without it is bytes, no peek needed.  c->wait
 * and c->rev carry the same flags so that the hand-over from one to the
 * other changes nothing in epoll. */
static short
conn_read_events(const srv_worker_t *w)
{
	return (
	    short)(EV_READ |
	           ((event_base_get_features(w->base) & EV_FEATURE_EARLY_CLOSE) ? EV_CLOSED : 0));
}

/* The first bytes arrived (or the deadline passed first): only now the
 * SSL and its buffers, some 40 KB, so an idle socket costs a few hundred
 * bytes. */
static void
conn_first_bytes(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;
	srv_worker_t *w = c->w;
	srv_t *s = c->srv;
	uint64_t spent = (now_ns() - c->t_accept) / 1000000u;
	int left = (int)((uint64_t)s->conf.handshake_timeout_ms > spent
	                     ? (uint64_t)s->conf.handshake_timeout_ms - spent
	                     : 1);
	SSL_CTX *ctx;

	if (what & EV_TIMEOUT) {
		log_debug("%s: handshake deadline passed before any byte, closing", c->peer);
		conn_close(c);
		return;
	}
	/* gone without a byte (most idle sockets end so): no TLS state for
	 * that.  Readable with no FIN, error or hang-up (EV_CLOSED, or EV_WRITE
	 * as libevent reports EPOLLERR/EPOLLHUP) is bytes: no peek for those. */
	if (!(conn_read_events(w) & EV_CLOSED) || (what & (EV_CLOSED | EV_WRITE)) ||
	    !(what & EV_READ)) {
		char b;
		ssize_t got = recv(fd, &b, 1, MSG_PEEK);

		if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct timeval tv = {left / 1000, (left % 1000) * 1000};
			event_add(c->wait, &tv); /* still in epoll: this only moves the timeout */
			return;
		}
		if (got <= 0) {
			conn_close(c);
			return;
		}
	}
	ctx = tls_holder_get(s->tls);
	c->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (c->ssl == NULL || (c->in = evbuffer_new()) == NULL ||
	    (c->out = evbuffer_new()) == NULL || SSL_set_fd(c->ssl, fd) != 1)
		goto fail;
	SSL_set_accept_state(c->ssl);
	sslio_setup(c->ssl);
	if ((c->deadline = evtimer_new(w->base, conn_deadline, c)) == NULL ||
	    (c->resume = event_new(w->base, -1, 0, conn_resume, c)) == NULL ||
	    (c->flush = event_new(w->base, -1, 0, conn_flush_cb, c)) == NULL ||
	    (c->rev = event_new(w->base, fd, conn_read_events(w) | EV_PERSIST, conn_on_io, c)) ==
	        NULL ||
	    (c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_on_io, c)) == NULL)
		goto fail;
	conn_reading(c, 1);
	if (!c->reading)
		goto fail;
	/* after c->rev is in: the fd's epoll entry is never dropped */
	event_del(c->wait);
	deadline_set(c, left);
	/* the bytes are there: start the handshake now */
	srv_conn_ref(c);
	conn_io(c, EV_READ);
	srv_conn_unref(c);
	return;
fail:
	log_debug("%s: no memory for the TLS state, closing", c->peer);
	conn_close(c);
}

/* Over max_connections: the oldest connection of this worker still short
 * of its handshake goes, so a flood of idle sockets cannot shut out a
 * client that completes one; 0 when there was one. */
static int
conn_make_room(srv_conn_t *c)
{
	srv_worker_t *w = c->w;
	srv_conn_t *victim = w->pend_head;

	if (victim == NULL || victim == c)
		return -1;
	log_debug("%s: full, closing %s (no handshake yet)", c->peer, victim->peer);
	ctr_add(&c->srv->evicted, 1);
	conn_close(victim);
	return 0;
}

/* Runs on the worker: a socket arrives from the listener. */
void
conn_take(void *arg)
{
	srv_conn_t *c = arg;
	srv_worker_t *w = c->w;
	srv_t *s = c->srv;
	struct timeval tv = {s->conf.handshake_timeout_ms / 1000,
	                     (s->conf.handshake_timeout_ms % 1000) * 1000};
	int fd = c->fd;

	if (w->draining)
		goto fail;
	c->refs = 1;
	c->roles = STB_R_ANONYMOUS;
	if (c->peer[0] == '\0')
		srv_addr_str(fd, 1, c->peer, sizeof(c->peer));
	/* persistent, so that the socket stays in epoll while c->rev takes
	 * over from it (conn_first_bytes): no epoll_ctl DEL and ADD again */
	if ((c->wait = event_new(w->base, fd, conn_read_events(w) | EV_PERSIST, conn_first_bytes,
	                         c)) == NULL ||
	    event_add(c->wait, &tv) == -1)
		goto fail;
	c->live = 1;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	pending_append(c);
	connguard_trim_opened(&w->trim, w->nconns);
	if (__atomic_load_n(&w->srv->nconns, __ATOMIC_RELAXED) > w->srv->conf.max_connections &&
	    conn_make_room(c) == -1) {
		ctr_add(&s->rejected, 1);
		conn_close(c);
	}
	return;
fail:
	conn_count_gone(w, s, &c->src);
	conn_free(c);
	close(fd);
}
