#include "peer.h"
#include "netaddr.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "frame.h"
#include "framer.h"
#include "log.h"
#include "metrics.h"
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
	struct bufferevent *bev;
	int connected;
	uint32_t next_id;
	struct pending *pending;
	uint64_t retry_at; /* now_ns() before which we do not dial */
	int backoff_ms;
};

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
	ERR_clear_error(); /* see conn_dispatch in server.c */
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
peer_drop(peer_t *p, const char *why)
{
	if (p->bev != NULL) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
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

/* One frame from the server: an answer finds its pending call by id. */
static int
peer_frame(void *arg, const frame_hdr_t *h, const uint8_t *body)
{
	peer_t *p = arg;
	struct bufferevent *bev = p->bev;
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
	/* the callback may have freed the connection */
	return p->bev != bev ? FRAMER_GONE : FRAMER_NEXT;
}

static void
peer_readcb(struct bufferevent *bev, void *arg)
{
	peer_t *p = arg;
	frame_hdr_t h;
	int code = 0, have_hdr = 0;

	switch (framer_run(bufferevent_get_input(bev), p->conf.max_frame, peer_frame, p, &h, &code,
	                   &have_hdr)) {
	case FRAMER_BAD:
		peer_drop(p, frame_strerror(code));
		break;
	case FRAMER_NOMEM:
		peer_drop(p, "out of memory");
		break;
	default:
		break;
	}
}

static void
peer_eventcb(struct bufferevent *bev, short what, void *arg)
{
	peer_t *p = arg;
	char why[256];

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		int fd = (int)bufferevent_getfd(bev), one = 1;
		if (!(tls_peer_roles(ssl) & p->conf.expect_roles)) {
			peer_drop(p, "server certificate lacks the expected role");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p->connected = 1;
		p->backoff_ms = 0;
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e != 0)
			ERR_error_string_n(e, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s",
			         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	} else
		snprintf(why, sizeof(why), "connection closed");
	peer_drop(p, why);
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
	p->bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL)
		return err_set(err, STB_INTERNAL, "cannot create a connection to %s", p->addr);
	bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
	bufferevent_setcb(p->bev, peer_readcb, NULL, peer_eventcb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&p->sa, p->salen) == -1) {
		bufferevent_free(p->bev);
		p->bev = NULL;
		return err_set(err, STB_UNAVAILABLE, "cannot connect to %s", p->addr);
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

	if (p->bev == NULL) {
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
	/* header and body in one contiguous chain: one SSL_write, one record,
	 * one wake-up at the peer */
	if (evbuffer_expand(bufferevent_get_output(p->bev), sizeof(hdr) + h.len) == -1 ||
	    bufferevent_write(p->bev, hdr, sizeof(hdr)) == -1 ||
	    (h.len > 0 && bufferevent_write(p->bev, tlvs->data, tlvs->len) == -1)) {
		event_free(q->timer);
		free(q);
		return err_set(err, STB_INTERNAL, "cannot queue a request to %s", p->addr);
	}
	evtimer_add(q->timer, &tv);
	q->next = p->pending;
	p->pending = q;
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
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	p->bev = NULL;
	peer_fail_all(p, STB_UNAVAILABLE, "shutting down");
	SSL_CTX_free(p->ctx);
	free(p);
}
