#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "srvint.h"

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	srv_t *s = arg, *p = s->primary;
	srv_conn_t *c;
	srv_worker_t *w;
	connguard_key_t src;
	int one = 1;

	(void)l;
	(void)salen;
	/* max_connections counts every listener's connections; a little over
	 * it, a worker makes room by evicting an unfinished handshake */
	if (__atomic_fetch_add(&p->nconns, 1, __ATOMIC_RELAXED) >=
	    p->conf.max_connections + SRV_ACCEPT_SLACK) {
		__atomic_fetch_sub(&p->nconns, 1, __ATOMIC_RELAXED);
		ctr_add(&s->rejected, 1);
		close(fd);
		return;
	}
	connguard_key_of(sa, &src);
	if (connguard_src_take(p->src, &src) == -1) {
		__atomic_fetch_sub(&p->nconns, 1, __ATOMIC_RELAXED);
		ctr_add(&s->refused_source, 1);
		close(fd);
		return;
	}
	__atomic_fetch_add(&s->lconns, 1, __ATOMIC_RELAXED);
	ctr_add(&s->accepted, 1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w = &p->workers[p->rr++ % (unsigned)p->nworkers];
	if ((c = calloc(1, sizeof(*c))) != NULL) {
		c->w = w;
		c->srv = s;
		c->fd = fd;
		c->src = src;
		c->t_accept = now_ns();
		/* accept gave the address: the worker needs no getpeername */
		srv_sockaddr_str(sa, 1, c->peer, sizeof(c->peer));
	}
	if (c == NULL || mbox_post(w->mb, conn_take, c) == -1) {
		free(c);
		conn_count_gone(w, s, &src);
		close(fd);
	}
}

static void *
worker_main(void *arg)
{
	srv_worker_t *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static srv_t *
srv_alloc(const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err)
{
	srv_t *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->listen = strdup(conf->listen)) == NULL ||
	    (s->name = strdup(conf->name != NULL ? conf->name : "default")) == NULL) {
		if (s != NULL)
			free(s->listen);
		free(s);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	s->conf = *conf;
	s->conf.listen = s->listen;
	s->conf.name = s->name;
	s->tls = tls;
	s->ctx = ctx;
	s->primary = s;
	return s;
}

static void
srv_free_fields(srv_t *s)
{
	connguard_src_free(s->src);
	free(s->listen);
	free(s->name);
	free(s);
}

srv_t *
srv_new(const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err)
{
	srv_t *s = srv_alloc(conf, tls, ctx, err);

	if (s == NULL)
		return NULL;
	if (s->conf.workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->conf.workers = n > 0 && n < 256 ? (int)n : 1;
	}
	if (s->conf.workers > 255)
		s->conf.workers = 255;
	if ((s->src = connguard_src_new(s->conf.max_per_source, err)) == NULL) {
		srv_free_fields(s);
		return NULL;
	}
	return s;
}

srv_t *
srv_attach(srv_t *primary, const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err)
{
	srv_t *s;

	if (primary->primary != primary)
		primary = primary->primary;
	if (primary->nattached >= SRV_ATTACH_MAX) {
		err_set(err, STB_BAD_REQUEST, "at most %d listeners share one set of workers",
		        SRV_ATTACH_MAX + 1);
		return NULL;
	}
	if ((s = srv_alloc(conf, tls, ctx, err)) == NULL)
		return NULL;
	/* the worker loops and the connection limit are the primary's */
	s->conf.workers = primary->conf.workers;
	s->conf.max_connections = primary->conf.max_connections;
	s->conf.max_per_source = primary->conf.max_per_source;
	s->primary = primary;
	primary->attached[primary->nattached++] = s;
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

void
srv_on_tls_refused(srv_t *s, srv_tls_refused_fn fn)
{
	s->tls_refused_fn = fn;
}

void
srv_inherit(srv_t *dst, const srv_t *src, const uint8_t *serve)
{
	for (int m = 0; m < MSG_IX_COUNT; m++)
		if (dst->handlers[m] == NULL && (serve == NULL || serve[m]))
			dst->handlers[m] = src->handlers[m];
	if (dst->push_rsp == NULL)
		dst->push_rsp = src->push_rsp;
	if (dst->conn_fn == NULL)
		dst->conn_fn = src->conn_fn;
}

int
srv_nworkers(const srv_t *s)
{
	return s->primary->nworkers;
}

const char *
srv_bound(const srv_t *s)
{
	return s->bound;
}

const char *
srv_name(const srv_t *s)
{
	return s->name;
}

static int
srv_start_workers(srv_t *s, err_t *err)
{
	if ((s->workers = calloc((size_t)s->conf.workers, sizeof(*s->workers))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	for (int i = 0; i < s->conf.workers; i++) {
		srv_worker_t *w = &s->workers[i];
		w->srv = s;
		w->id = i;
		buf_init(&w->reply, SRV_RSP_MAX + STB_FRAME_HDR_LEN);
		buf_init(&w->push, SRV_RSP_MAX + STB_FRAME_HDR_LEN);
		buf_init(&w->error, 1024);
		if ((w->base = event_base_new()) == NULL || (w->mb = mbox_new(w->base)) == NULL)
			return err_set(err, STB_INTERNAL, "cannot create worker loop");
		if (connguard_trim_init(&w->trim, w->base, err) == -1)
			return -1;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return err_set(err, STB_INTERNAL, "cannot start worker thread");
		s->nworkers++;
	}
	return 0;
}

int
srv_start(srv_t *s, struct event_base *main_base, err_t *err)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);

	if (srv_parse_addr(s->listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "listen: '%s' is not IP:port", s->listen);
	if (s->primary == s && srv_start_workers(s, err) == -1)
		return -1;
	if (s->primary->nworkers == 0)
		return err_set(err, STB_INTERNAL, "listener %s: its primary is not started",
		               s->name);
	s->listener = evconnlistener_new_bind(main_base, accept_cb, s,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                          LEV_OPT_CLOSE_ON_EXEC,
	                                      1024, (struct sockaddr *)&ss, sl);
	if (s->listener == NULL)
		return err_set(err, STB_UNAVAILABLE, "listen on %s: %s", s->listen,
		               strerror(errno));
	if ((s->guard = connguard_accept_new(main_base, s->listener, s->name, err)) == NULL)
		return -1;
	srv_addr_str(evconnlistener_get_fd(s->listener), 0, s->bound, sizeof(s->bound));
	return 0;
}

/* Runs on each worker when the daemon drains. */
static void
worker_drain(void *arg)
{
	srv_worker_t *w = arg;
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
	srv_worker_t *w = arg;
	srv_conn_t *c;

	while ((c = w->conns) != NULL)
		conn_close(c);
	event_base_loopbreak(w->base);
}

static void
srv_stop_accepting(srv_t *s)
{
	connguard_accept_free(s->guard);
	s->guard = NULL;
	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
}

void
srv_drain(srv_t *s, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;

	s = s->primary;
	srv_stop_accepting(s);
	for (int i = 0; i < s->nattached; i++)
		srv_stop_accepting(s->attached[i]);
	for (int i = 0; i < s->nworkers; i++)
		mbox_post(s->workers[i].mb, worker_drain, &s->workers[i]);
	while (__atomic_load_n(&s->nconns, __ATOMIC_RELAXED) > 0 && now_ns() < deadline)
		usleep(10000);
}

static void
srv_free_one(srv_t *s)
{
	srv_stop_accepting(s);
	srv_free_fields(s);
}

void
srv_free(srv_t *s)
{
	if (s == NULL || s->primary != s)
		return; /* an attached listener goes with its primary */
	srv_stop_accepting(s);
	for (int i = 0; i < s->nattached; i++)
		srv_stop_accepting(s->attached[i]);
	for (int i = 0; i < s->nworkers; i++) {
		srv_worker_t *w = &s->workers[i];
		mbox_post(w->mb, worker_stop, w);
		pthread_join(w->thread, NULL);
	}
	for (int i = 0; i < s->conf.workers && s->workers != NULL; i++) {
		srv_worker_t *w = &s->workers[i];
		mbox_free(w->mb);
		connguard_trim_fini(&w->trim);
		if (w->base)
			event_base_free(w->base);
		buf_free(&w->reply);
		buf_free(&w->push);
		buf_free(&w->error);
	}
	free(s->workers);
	/* connections are gone: nothing points at the attached ones now */
	for (int i = 0; i < s->nattached; i++)
		srv_free_one(s->attached[i]);
	srv_free_one(s);
}
