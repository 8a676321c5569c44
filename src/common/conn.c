#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "framer.h"
#include "log.h"
#include "srvint.h"

static void conn_readcb(struct bufferevent *bev, void *arg);

static void
conn_free(srv_conn_t *c)
{
	if (c->wait != NULL)
		event_free(c->wait);
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
	return c->bev != NULL && !c->closing;
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
	SSL *ssl;

	if (c->bev == NULL || !c->handshaken || c->roles == STB_R_ANONYMOUS)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return ssl;
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

void
conn_close(srv_conn_t *c)
{
	srv_worker_t *w = c->w;
	srv_t *s = c->srv;
	SSL *ssl;

	if (!c->live)
		return;
	c->live = 0;
	if (c->announced && s->conn_fn != NULL)
		s->conn_fn(c, 0, s->ctx);
	if (c->bev != NULL) {
		ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL && c->handshaken)
			SSL_shutdown(ssl); /* one try at close_notify; we do not wait */
		bufferevent_free(c->bev);
		c->bev = NULL;
	} else {
		close(c->fd); /* no byte came: no TLS state was made */
	}
	if (c->wait != NULL)
		event_del(c->wait);
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

/* Close once what is queued for the peer is written (or after a linger). */
void
conn_close_after_flush(srv_conn_t *c)
{
	if (c->bev == NULL) {
		conn_close(c); /* still waiting for its first byte */
		return;
	}
	if (c->closing)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c);
		return;
	}
	deadline_set(c, SRV_LINGER_MS);
}

/* Resuming reads frames that already wait in the input buffer: from the
 * loop, so a handler that answers (and so resumes) never finds the next
 * request's handler running inside its own stack. */
void
conn_pause(srv_conn_t *c, int pause)
{
	if (c->bev == NULL || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	if (pause) {
		bufferevent_disable(c->bev, EV_READ);
		event_del(c->resume);
	} else {
		bufferevent_enable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			event_active(c->resume, EV_TIMEOUT, 0);
	}
}

static void
conn_resume(evutil_socket_t fd, short what, void *arg)
{
	srv_conn_t *c = arg;

	(void)fd;
	(void)what;
	if (c->bev != NULL && !c->paused && !c->closing)
		conn_readcb(c->bev, c);
}

uint32_t
conn_out_high(const srv_conn_t *c)
{
	return 4 * c->srv->conf.max_frame + SRV_RSP_MAX;
}

void
conn_send(srv_conn_t *c, const buf_t *b)
{
	if (c->bev == NULL)
		return;
	/* the frame in one contiguous chain, so libevent hands it to one
	 * SSL_write: one record, not the tail of a chain and a new one */
	if (evbuffer_expand(bufferevent_get_output(c->bev), b->len) == -1 ||
	    bufferevent_write(c->bev, b->data, b->len) == -1) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > conn_out_high(c))
		conn_pause(c, 1);
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
	 * handler left (a failed d2i, say) would turn libevent's next
	 * WANT_READ into a fatal error on some other connection */
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
	if (c->bev == NULL)
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
	switch (framer_run(bufferevent_get_input(c->bev), s->conf.max_frame, conn_frame, c, &h,
	                   &code, &have_hdr)) {
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

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	srv_conn_t *c = arg;

	(void)bev;
	/* a handler may close the connection and drop the last other ref */
	srv_conn_ref(c);
	conn_read_frames(c);
	srv_conn_unref(c);
}

static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	srv_conn_t *c = arg;

	(void)bev;
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (c->paused && c->inflight < c->srv->conf.max_inflight)
		conn_pause(c, 0);
}

static void
conn_set_idle(srv_conn_t *c)
{
	int ms = c->srv->conf.idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	srv_conn_t *c = arg;
	srv_t *s = c->srv;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		c->handshaken = 1;
		pending_unlink(c);
		c->roles = tls_peer_roles(ssl);
		if (c->roles != STB_R_ANONYMOUS) {
			X509 *cert = SSL_get0_peer_certificate(ssl);
			X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
			                          c->subject, sizeof(c->subject));
		}
		evtimer_del(c->deadline);
		conn_set_idle(c);
		/* a peer this listener does not serve is not announced either */
		if (s->conn_fn != NULL &&
		    (s->conf.accept_roles == 0 || (c->roles & s->conf.accept_roles))) {
			c->announced = 1;
			s->conn_fn(c, 1, s->ctx);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_debug("%s: idle timeout", c->peer);
	else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e != 0 && !c->handshaken) {
			char buf[256];
			const char *fp = NULL, *why;
			ERR_error_string_n(e, buf, sizeof(buf));
			log_debug("%s: TLS handshake failed: %s", c->peer, buf);
			/* a refused client certificate is a failed authentication: it
			 * goes to the refusal summaries (a count, not a line each) */
			why = tls_refused_reason(bufferevent_openssl_get_ssl(bev), &fp);
			if (why == NULL &&
			    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
				why = "no_certificate";
			if (why != NULL && s->tls_refused_fn != NULL)
				s->tls_refused_fn(c, why, fp, s->ctx);
		}
	}
	conn_close(c);
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

/* The first bytes arrived (or the deadline passed first): only now the
 * SSL and its bufferevent, some 40 KB, so an idle socket costs a few
 * hundred bytes. */
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
	SSL *ssl;
	char b;
	ssize_t got;

	if (what & EV_TIMEOUT) {
		log_debug("%s: handshake deadline passed before any byte, closing", c->peer);
		conn_close(c);
		return;
	}
	/* gone without a byte (most idle sockets end so): no TLS state for that */
	if ((got = recv(fd, &b, 1, MSG_PEEK)) < 0 && (errno == EAGAIN || errno == EINTR)) {
		struct timeval tv = {left / 1000, (left % 1000) * 1000};
		event_add(c->wait, &tv);
		return;
	}
	if (got <= 0) {
		conn_close(c);
		return;
	}
	ctx = tls_holder_get(s->tls);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (ssl == NULL)
		goto fail;
	/* idle connections give their record buffers back */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	if ((c->deadline = evtimer_new(w->base, conn_deadline, c)) == NULL ||
	    (c->resume = event_new(w->base, -1, 0, conn_resume, c)) == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	/* on failure this frees ssl too */
	c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		goto fail;
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	deadline_set(c, left);
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
	srv_addr_str(fd, 1, c->peer, sizeof(c->peer));
	if ((c->wait = event_new(w->base, fd, EV_READ, conn_first_bytes, c)) == NULL ||
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
