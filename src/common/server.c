#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tlv.h"

#define RSP_MAX         (1024 * 1024)
#define LINGER_MS       1000
#define STATUS_SLOT(st) ((st) >= 0 && (st) < STATUS_COUNT ? (st) : STATUS_IX_INTERNAL)

typedef struct worker {
	srv_t *srv;
	int id;
	pthread_t thread;
	struct event_base *base;
	mbox_t *mb;
	buf_t scratch;     /* responses are built here */
	srv_conn_t *conns; /* live connections, for drain */
	uint32_t nconns;
	int draining;
	/* counters, summed by srv_stats_get from other threads */
	uint64_t requests, errors, unknown_type;
	uint64_t count[MSG_IX_COUNT][STATUS_COUNT];
	hist_t latency[MSG_IX_COUNT];
} worker_t;

struct srv_conn {
	worker_t *w;
	struct bufferevent *bev; /* NULL once closed */
	struct event *deadline;  /* handshake, frame and linger deadline */
	uint32_t roles;
	uint32_t inflight;
	uint32_t next_push_id;
	int handshaken;
	int paused;  /* reading stopped: too many in flight or output backlog */
	int closing; /* flush output, then close */
	int refs;
	int fd;
	void *data;
	char peer[64];
	char subject[96];
	srv_conn_t *prev, *next;
};

struct srv {
	srv_conf_t conf;
	char *listen;
	char bound[80];
	tls_holder_t *tls;
	void *ctx;
	srv_handler_fn handlers[MSG_IX_COUNT];
	srv_push_rsp_fn push_rsp;
	srv_conn_fn conn_fn;
	struct evconnlistener *listener;
	worker_t *workers;
	int nworkers;
	unsigned rr;
	uint32_t nconns; /* atomic */
	uint64_t accepted, rejected;
};

static void conn_close(srv_conn_t *c);
static void conn_readcb(struct bufferevent *bev, void *arg);

static void
conn_free(srv_conn_t *c)
{
	event_free(c->deadline);
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

static void
deadline_set(srv_conn_t *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->deadline, &tv);
}

static void
conn_close(srv_conn_t *c)
{
	worker_t *w = c->w;
	SSL *ssl;

	if (c->bev == NULL)
		return;
	if (c->handshaken && w->srv->conn_fn != NULL)
		w->srv->conn_fn(c, 0, w->srv->ctx);
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl != NULL && c->handshaken)
		SSL_shutdown(ssl); /* one try at close_notify; we do not wait */
	bufferevent_free(c->bev);
	c->bev = NULL;
	evtimer_del(c->deadline);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	__atomic_fetch_sub(&w->srv->nconns, 1, __ATOMIC_RELAXED);
	srv_conn_unref(c);
}

void
srv_conn_close(srv_conn_t *c)
{
	conn_close(c);
}

/* Close once what is queued for the peer is written (or after a linger). */
static void
conn_close_after_flush(srv_conn_t *c)
{
	if (c->bev == NULL || c->closing)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c);
		return;
	}
	deadline_set(c, LINGER_MS);
}

static void
conn_pause(srv_conn_t *c, int pause)
{
	if (c->bev == NULL || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	if (pause)
		bufferevent_disable(c->bev, EV_READ);
	else {
		bufferevent_enable(c->bev, EV_READ);
		/* frames may already wait in the input buffer */
		conn_readcb(c->bev, c);
	}
}

static uint32_t
out_high(const srv_conn_t *c)
{
	return 4 * c->w->srv->conf.max_frame + RSP_MAX;
}

static void
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
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > out_high(c))
		conn_pause(c, 1);
}

/* Builds an error frame for (type, req_id) in the scratch buffer. */
static void
send_error(srv_conn_t *c, uint16_t type, uint32_t req_id, int status, const char *text)
{
	buf_t *b = &c->w->scratch;
	size_t start;
	size_t tl = strnlen(text, 512);

	/* a cut (vsnprintf's or ours) must not leave half a UTF-8 sequence:
	 * the peer checks the text */
	if (tl > 0) {
		size_t i = tl - 1, need = 1;
		unsigned char lead;
		while (i > 0 && ((unsigned char)text[i] & 0xc0) == 0x80)
			i--;
		lead = (unsigned char)text[i];
		if (lead >= 0xf0)
			need = 4;
		else if (lead >= 0xe0)
			need = 3;
		else if (lead >= 0xc0)
			need = 2;
		if (i + need > tl)
			tl = i;
	}

	buf_reset(b);
	if (frame_begin(b, &start) == -1 ||
	    tlv_put_u16(b, STB_TLV_STATUS, (uint16_t)status) == -1 ||
	    tlv_put(b, STB_TLV_ERROR_TEXT, text, tl) == -1 ||
	    frame_end(b, start, type, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, req_id) == -1)
		return;
	conn_send(c, b);
}

static void
req_account(srv_req_t *r, int status)
{
	worker_t *w = r->conn->w;

	ctr_add(&w->requests, 1);
	if (status != STB_OK)
		ctr_add(&w->errors, 1);
	if (r->midx >= 0) {
		ctr_add(&w->count[r->midx][STATUS_SLOT(status)], 1);
		hist_observe(&w->latency[r->midx], (now_ns() - r->t0) / 1000);
	} else
		ctr_add(&w->unknown_type, 1);
}

static void
req_done(srv_req_t *r)
{
	srv_conn_t *c = r->conn;

	r->answered = 1;
	c->inflight--;
	if (c->bev != NULL && c->paused && c->inflight < c->w->srv->conf.max_inflight &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) <= out_high(c))
		conn_pause(c, 0);
	if (c->bev != NULL && c->w->draining && c->inflight == 0)
		conn_close_after_flush(c);
	if (r->heap) {
		srv_conn_unref(c);
		free(r);
	}
}

buf_t *
srv_reply_begin(srv_req_t *r)
{
	buf_t *b = &r->conn->w->scratch;
	size_t start;

	buf_reset(b);
	frame_begin(b, &start); /* scratch always holds a header */
	return b;
}

void
srv_reply_end(srv_req_t *r)
{
	srv_conn_t *c = r->conn;
	buf_t *b = &c->w->scratch;

	if (b->failed) {
		srv_reply_err(r, STB_INTERNAL, "response larger than %d bytes", RSP_MAX);
		return;
	}
	frame_end(b, 0, r->type, STB_FRAME_F_RESPONSE, r->req_id);
	/* count before the peer can see the answer and ask for the counters */
	req_account(r, STB_OK);
	conn_send(c, b);
	req_done(r);
}

void
srv_reply_ok(srv_req_t *r)
{
	srv_reply_begin(r);
	srv_reply_end(r);
}

void
srv_reply_err(srv_req_t *r, int status, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	req_account(r, status);
	send_error(r->conn, r->type, r->req_id, status, text);
	if (status == STB_INTERNAL)
		log_warnx("%s %s from %s: %s", r->midx >= 0 ? proto_msgs[r->midx].name : "?",
		          stb_status_name(status), r->conn->peer, text);
	else
		log_debug("%s %s from %s: %s", r->midx >= 0 ? proto_msgs[r->midx].name : "?",
		          stb_status_name(status), r->conn->peer, text);
	req_done(r);
}

void
srv_reply_errt(srv_req_t *r, const err_t *err)
{
	srv_reply_err(r, err->status == STB_OK ? STB_INTERNAL : err->status, "%s", err->msg);
}

srv_req_t *
srv_req_defer(srv_req_t *r)
{
	srv_req_t *d = malloc(sizeof(*d));

	if (d == NULL)
		return NULL;
	*d = *r;
	d->heap = 1;
	r->answered = 1; /* the copy answers now */
	srv_conn_ref(r->conn);
	return d;
}

mbox_t *
srv_req_mbox(srv_req_t *r)
{
	return r->conn->w->mb;
}

int
srv_conn_push(srv_conn_t *c, uint16_t type, const buf_t *tlvs, uint32_t *req_id)
{
	buf_t *b = &c->w->scratch;
	size_t start;
	uint32_t id;

	if (!srv_conn_is_open(c))
		return -1;
	id = ++c->next_push_id;
	buf_reset(b);
	if (frame_begin(b, &start) == -1 ||
	    (tlvs != NULL && buf_append(b, tlvs->data, tlvs->len) == -1) ||
	    frame_end(b, start, type, STB_FRAME_F_PUSH, id) == -1)
		return -1;
	conn_send(c, b);
	if (req_id != NULL)
		*req_id = id;
	return 0;
}

static void
conn_dispatch(srv_conn_t *c, const frame_hdr_t *h, const uint8_t *body)
{
	srv_t *s = c->w->srv;
	srv_req_t r = {c, h->type, -1, h->req_id, c->roles, now_ns(), 0, 0};
	msg_t m;
	err_t err;

	c->inflight++;
	if (h->flags & STB_FRAME_F_RESPONSE) {
		/* the peer answers one of our pushes */
		c->inflight--;
		if (s->push_rsp != NULL && msg_parse(&m, h, body, &err) == 0)
			s->push_rsp(c, &m, s->ctx);
		else
			log_debug("push response from %s dropped", c->peer);
		return;
	}
	r.midx = proto_msg_index(h->type);
	if (h->flags & STB_FRAME_F_PUSH) {
		srv_reply_err(&r, STB_BAD_REQUEST, "clients may not push");
		return;
	}
	if (msg_parse(&m, h, body, &err) == -1 || msg_check_role(&m, c->roles, &err) == -1) {
		srv_reply_errt(&r, &err);
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

static void conn_read_frames(srv_conn_t *c, struct evbuffer *in);

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	srv_conn_t *c = arg;

	/* a handler may close the connection and drop the last other ref */
	srv_conn_ref(c);
	conn_read_frames(c, bufferevent_get_input(bev));
	srv_conn_unref(c);
}

static void
conn_read_frames(srv_conn_t *c, struct evbuffer *in)
{
	srv_t *s = c->w->srv;

	while (c->bev != NULL && !c->closing && !c->paused) {
		uint8_t hb[STB_FRAME_HDR_LEN];
		size_t avail = evbuffer_get_length(in);
		frame_hdr_t h;
		int rc;
		uint8_t *frame;

		if (avail == 0) {
			evtimer_del(c->deadline);
			return;
		}
		evbuffer_copyout(in, hb, avail < sizeof(hb) ? avail : sizeof(hb));
		rc = frame_decode(hb, avail, s->conf.max_frame, &h);
		if (rc == FRAME_NEED_MORE) {
			/* a started frame must finish in time: no slow drip */
			if (!evtimer_pending(c->deadline, NULL))
				deadline_set(c, s->conf.frame_timeout_ms);
			return;
		}
		if (rc != FRAME_OK) {
			log_debug("%s: %s", c->peer, frame_strerror(rc));
			if (rc != FRAME_BAD_MAGIC && avail >= STB_FRAME_HDR_LEN) {
				srv_req_t r = {c,        h.type,   proto_msg_index(h.type),
				               h.req_id, c->roles, now_ns(),
				               0,        0};
				c->inflight++;
				srv_reply_err(&r, frame_error_status(rc), "%s", frame_strerror(rc));
			}
			conn_close_after_flush(c);
			return;
		}
		frame = evbuffer_pullup(in, (ev_ssize_t)(STB_FRAME_HDR_LEN + h.len));
		if (frame == NULL) {
			conn_close(c);
			return;
		}
		evtimer_del(c->deadline);
		conn_dispatch(c, &h, frame + STB_FRAME_HDR_LEN);
		if (c->bev == NULL)
			return;
		evbuffer_drain(in, STB_FRAME_HDR_LEN + h.len);
		if (c->inflight >= s->conf.max_inflight)
			conn_pause(c, 1);
	}
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
	if (c->paused && c->inflight < c->w->srv->conf.max_inflight)
		conn_pause(c, 0);
}

static void
conn_set_idle(srv_conn_t *c)
{
	int ms = c->w->srv->conf.idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	srv_conn_t *c = arg;
	srv_t *s = c->w->srv;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		c->handshaken = 1;
		c->roles = tls_peer_roles(ssl);
		if (c->roles != STB_R_ANONYMOUS) {
			X509 *cert = SSL_get0_peer_certificate(ssl);
			X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
			                          c->subject, sizeof(c->subject));
		}
		evtimer_del(c->deadline);
		conn_set_idle(c);
		if (s->conn_fn != NULL)
			s->conn_fn(c, 1, s->ctx);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_debug("%s: idle timeout", c->peer);
	else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e != 0 && !c->handshaken) {
			char buf[256];
			ERR_error_string_n(e, buf, sizeof(buf));
			log_debug("%s: TLS handshake failed: %s", c->peer, buf);
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

static void
peer_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(out, cap, "%s:%d", host, port);
}

/* Runs on the worker: a socket arrives from the listener. */
static void
worker_take(void *arg)
{
	srv_conn_t *c = arg;
	worker_t *w = c->w;
	srv_t *s = w->srv;
	int fd = c->fd;
	SSL_CTX *ctx;
	SSL *ssl;

	if (w->draining)
		goto fail;
	c->refs = 1;
	c->roles = STB_R_ANONYMOUS;
	peer_name(fd, c->peer, sizeof(c->peer));
	ctx = tls_holder_get(s->tls);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (ssl == NULL)
		goto fail;
	if ((c->deadline = evtimer_new(w->base, conn_deadline, c)) == NULL) {
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
	deadline_set(c, s->conf.handshake_timeout_ms);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return;
fail:
	if (c->deadline)
		event_free(c->deadline);
	free(c);
	close(fd);
	__atomic_fetch_sub(&s->nconns, 1, __ATOMIC_RELAXED);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	srv_t *s = arg;
	srv_conn_t *c;
	worker_t *w;
	int one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	if (__atomic_fetch_add(&s->nconns, 1, __ATOMIC_RELAXED) >= s->conf.max_connections) {
		__atomic_fetch_sub(&s->nconns, 1, __ATOMIC_RELAXED);
		ctr_add(&s->rejected, 1);
		close(fd);
		return;
	}
	ctr_add(&s->accepted, 1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w = &s->workers[s->rr++ % (unsigned)s->nworkers];
	if ((c = calloc(1, sizeof(*c))) != NULL) {
		c->w = w;
		c->fd = fd;
	}
	if (c == NULL || mbox_post(w->mb, worker_take, c) == -1) {
		free(c);
		__atomic_fetch_sub(&s->nconns, 1, __ATOMIC_RELAXED);
		close(fd);
	}
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: keep going, the next accept may succeed */
	log_warn("accept");
}

static void *
worker_main(void *arg)
{
	worker_t *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

srv_t *
srv_new(const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err)
{
	srv_t *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->listen = strdup(conf->listen)) == NULL) {
		free(s);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	s->conf = *conf;
	s->conf.listen = s->listen;
	if (s->conf.workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->conf.workers = n > 0 && n < 256 ? (int)n : 1;
	}
	if (s->conf.workers > 255)
		s->conf.workers = 255;
	s->tls = tls;
	s->ctx = ctx;
	return s;
}

void
srv_handle(srv_t *s, int midx, srv_handler_fn fn)
{
	if (midx >= 0 && midx < MSG_IX_COUNT)
		s->handlers[midx] = fn;
}

void
srv_on_push_response(srv_t *s, srv_push_rsp_fn fn)
{
	s->push_rsp = fn;
}

void
srv_on_conn(srv_t *s, srv_conn_fn fn)
{
	s->conn_fn = fn;
}

int
srv_nworkers(const srv_t *s)
{
	return s->nworkers;
}

const char *
srv_bound(const srv_t *s)
{
	return s->bound;
}

static void
record_bound(srv_t *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	evutil_socket_t fd = evconnlistener_get_fd(s->listener);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
			snprintf(s->bound, sizeof(s->bound), "%s:%d", host, port);
			return;
		}
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	snprintf(s->bound, sizeof(s->bound), "[%s]:%d", host, port);
}

int
srv_parse_addr(const char *spec, struct sockaddr_storage *ss, int *sl)
{
	const char *colon = strrchr(spec, ':');
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hl;
	long port;

	if (colon == NULL || (hl = (size_t)(colon - spec)) == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*sl = sizeof(*a);
	return 0;
}

int
srv_start(srv_t *s, struct event_base *main_base, err_t *err)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);

	if (srv_parse_addr(s->listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "listen: '%s' is not IP:port", s->listen);
	if ((s->workers = calloc((size_t)s->conf.workers, sizeof(*s->workers))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	for (int i = 0; i < s->conf.workers; i++) {
		worker_t *w = &s->workers[i];
		w->srv = s;
		w->id = i;
		buf_init(&w->scratch, RSP_MAX + STB_FRAME_HDR_LEN);
		if ((w->base = event_base_new()) == NULL || (w->mb = mbox_new(w->base)) == NULL)
			return err_set(err, STB_INTERNAL, "cannot create worker loop");
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return err_set(err, STB_INTERNAL, "cannot start worker thread");
		s->nworkers++;
	}
	s->listener = evconnlistener_new_bind(main_base, accept_cb, s,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                          LEV_OPT_CLOSE_ON_EXEC,
	                                      1024, (struct sockaddr *)&ss, sl);
	if (s->listener == NULL)
		return err_set(err, STB_UNAVAILABLE, "listen on %s: %s", s->listen,
		               strerror(errno));
	evconnlistener_set_error_cb(s->listener, accept_error_cb);
	record_bound(s);
	return 0;
}

/* Runs on each worker when the daemon drains. */
static void
worker_drain(void *arg)
{
	worker_t *w = arg;
	srv_conn_t *c, *next;

	w->draining = 1;
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->inflight == 0)
			conn_close_after_flush(c);
	}
}

static void
worker_stop(void *arg)
{
	worker_t *w = arg;
	srv_conn_t *c;

	while ((c = w->conns) != NULL)
		conn_close(c);
	event_base_loopbreak(w->base);
}

void
srv_drain(srv_t *s, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;

	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	for (int i = 0; i < s->nworkers; i++)
		mbox_post(s->workers[i].mb, worker_drain, &s->workers[i]);
	while (__atomic_load_n(&s->nconns, __ATOMIC_RELAXED) > 0 && now_ns() < deadline)
		usleep(10000);
}

void
srv_free(srv_t *s)
{
	if (s == NULL)
		return;
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	for (int i = 0; i < s->nworkers; i++) {
		worker_t *w = &s->workers[i];
		mbox_post(w->mb, worker_stop, w);
		pthread_join(w->thread, NULL);
	}
	for (int i = 0; i < s->conf.workers && s->workers != NULL; i++) {
		worker_t *w = &s->workers[i];
		mbox_free(w->mb);
		if (w->base)
			event_base_free(w->base);
		buf_free(&w->scratch);
	}
	free(s->workers);
	free(s->listen);
	free(s);
}

srv_stats_t *
srv_stats_get(srv_t *s)
{
	srv_stats_t *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->connections = __atomic_load_n(&s->nconns, __ATOMIC_RELAXED);
	st->accepted = ctr_get(&s->accepted);
	st->rejected = ctr_get(&s->rejected);
	for (int i = 0; i < s->nworkers; i++) {
		worker_t *w = &s->workers[i];
		st->requests += ctr_get(&w->requests);
		st->errors += ctr_get(&w->errors);
		st->unknown_type += ctr_get(&w->unknown_type);
		for (int m = 0; m < MSG_IX_COUNT; m++) {
			for (int k = 0; k < STATUS_COUNT; k++)
				st->count[m][k] += ctr_get(&w->count[m][k]);
			hist_merge(&st->latency[m], &w->latency[m]);
		}
	}
	return st;
}

int
srv_write_metrics(srv_t *s, buf_t *out)
{
	srv_stats_t *st = srv_stats_get(s);
	int rc = 0;

	if (st == NULL)
		return -1;
	rc |= buf_printf(out,
	                 "# TYPE stbcred_connections gauge\nstbcred_connections %u\n"
	                 "# TYPE stbcred_connections_accepted_total counter\n"
	                 "stbcred_connections_accepted_total %llu\n"
	                 "# TYPE stbcred_connections_rejected_total counter\n"
	                 "stbcred_connections_rejected_total %llu\n"
	                 "# TYPE stbcred_requests_total counter\n",
	                 st->connections, (unsigned long long)st->accepted,
	                 (unsigned long long)st->rejected);
	for (int m = 0; m < MSG_IX_COUNT; m++)
		for (int k = 0; k < STATUS_COUNT; k++)
			if (st->count[m][k] != 0)
				rc |=
				    buf_printf(out,
				               "stbcred_requests_total{type=\"%s\",status=\"%s\"} "
				               "%llu\n",
				               proto_msgs[m].name, stb_status_name(k),
				               (unsigned long long)st->count[m][k]);
	rc |= buf_printf(out,
	                 "stbcred_requests_total{type=\"UNKNOWN\",status=\"UNSUPPORTED\"} %llu\n",
	                 (unsigned long long)st->unknown_type);
	rc |= buf_printf(out, "# TYPE stbcred_request_seconds histogram\n");
	for (int m = 0; m < MSG_IX_COUNT; m++) {
		char label[96];
		if (st->latency[m].count == 0)
			continue;
		snprintf(label, sizeof(label), "type=\"%s\"", proto_msgs[m].name);
		rc |= hist_write_prom(out, "stbcred_request_seconds", label, &st->latency[m]);
	}
	free(st);
	return rc == 0 ? 0 : -1;
}
