/* httpd: /healthz, /readyz, /metrics (Prometheus text) and the daemon's own routes
 * (httpd_route) on the main loop.
 *
 * evhttp's own timeout starts again with every byte, so a client that
 * drips its request head would hold a connection for ever.  The guard
 * below keeps each connection's own record: a deadline for the whole
 * request (head and body) from the connection's start or its last answer,
 * that bytes do not move; a cap per source address and per listener (when
 * full, the oldest connection that was never answered makes room); counts
 * for /metrics.  libevent 2.1 tells no one of a new connection, but it
 * lets us make its bufferevent (evhttp_set_bevcb): the record is made
 * there and completed from the loop at once, when evhttp has set the
 * bufferevent up with its connection as the callbacks' argument. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "connguard.h"
#include "daemon.h"
#include "health.h"
#include "htab.h"
#include "log.h"
#include "tls.h"

typedef struct httpd_guard httpd_guard_t;

typedef struct httpd_conn {
	htab_node_t h; /* by evcon, once attached */
	httpd_guard_t *g;
	struct bufferevent *bev;         /* ours (one reference) until attached */
	struct evhttp_connection *evcon; /* NULL until attached */
	struct event *ev;                /* attach at once, then the deadline */
	connguard_key_t src;
	int served; /* answered a request: evicted last */
	struct httpd_conn *prev, *next;
} httpd_conn_t;

struct httpd_guard {
	connguard_accept_t *accept;
	connguard_src_t *src;
	htab_t byconn;
	httpd_conn_t *head, *tail; /* oldest first */
	uint32_t n;                /* attached */
	uint32_t max;
	int timeout_ms;
	connguard_trim_t trim;
	SSL_CTX *ssl; /* http.tls: the daemon's, made once */
	uint64_t accepted, refused_source, refused_full, evicted, timeouts;
};

static int
hc_eq(const htab_node_t *n, const void *key, size_t len)
{
	(void)len;
	return (const void *)HTAB_ENTRY(n, httpd_conn_t, h)->evcon == *(const void *const *)key;
}

static void
hc_unlink(httpd_conn_t *c)
{
	httpd_guard_t *g = c->g;

	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail = c->prev;
}

/* A record that never got counted (refused, or its connection gone before
 * it was attached). */
static void
hc_drop(httpd_conn_t *c)
{
	hc_unlink(c);
	event_free(c->ev);
	if (c->bev != NULL)
		bufferevent_decref(c->bev);
	free(c);
}

static void
hc_deadline_set(httpd_conn_t *c)
{
	struct timeval tv = {c->g->timeout_ms / 1000, (c->g->timeout_ms % 1000) * 1000};

	evtimer_add(c->ev, &tv);
}

/* evhttp frees the connection (any reason, ours included). */
static void
hc_closed(struct evhttp_connection *evcon, void *arg)
{
	httpd_conn_t *c = arg;
	httpd_guard_t *g = c->g;

	(void)evcon;
	htab_remove(&g->byconn, &c->h);
	hc_unlink(c);
	g->n--;
	connguard_src_give(g->src, &c->src);
	event_free(c->ev);
	free(c);
	connguard_trim_closed(&g->trim, g->n);
}

/* Full: the oldest connection never answered goes; 0 when there was one. */
static int
hc_evict(httpd_guard_t *g)
{
	for (httpd_conn_t *c = g->head; c != NULL; c = c->next)
		if (c->evcon != NULL && !c->served) {
			ctr_add(&g->evicted, 1);
			evhttp_connection_free(c->evcon); /* hc_closed frees c */
			return 0;
		}
	return -1;
}

static void
hc_refuse(httpd_conn_t *c, struct evhttp_connection *evcon, uint64_t *counter)
{
	ctr_add(counter, 1);
	hc_drop(c);
	evhttp_connection_free(evcon);
}

/* From the loop, right after evhttp took the connection. */
static void
hc_attach(httpd_conn_t *c)
{
	httpd_guard_t *g = c->g;
	void (*readcb)(struct bufferevent *, void *) = NULL;
	struct evhttp_connection *evcon;
	void *arg = NULL;
	uint64_t h;

	bufferevent_getcb(c->bev, &readcb, NULL, NULL, &arg);
	evcon = arg;
	/* freed already (our reference kept the bufferevent): callbacks gone */
	if (readcb == NULL || evcon == NULL || evhttp_connection_get_bufferevent(evcon) != c->bev) {
		hc_drop(c);
		return;
	}
	connguard_key_of_fd(bufferevent_getfd(c->bev), &c->src);
	if (connguard_src_take(g->src, &c->src) == -1) {
		hc_refuse(c, evcon, &g->refused_source);
		return;
	}
	if (g->n >= g->max && hc_evict(g) == -1) {
		connguard_src_give(g->src, &c->src);
		hc_refuse(c, evcon, &g->refused_full);
		return;
	}
	bufferevent_decref(c->bev); /* evhttp's from now on */
	c->bev = NULL;
	c->evcon = evcon;
	h = htab_hash(&g->byconn, &evcon, sizeof(evcon));
	htab_insert(&g->byconn, &c->h, h);
	g->n++;
	ctr_add(&g->accepted, 1);
	connguard_trim_opened(&g->trim, g->n);
	evhttp_connection_set_closecb(evcon, hc_closed, c);
	hc_deadline_set(c);
}

static void
hc_event(evutil_socket_t fd, short what, void *arg)
{
	httpd_conn_t *c = arg;

	(void)fd;
	(void)what;
	if (c->evcon == NULL) {
		hc_attach(c);
		return;
	}
	ctr_add(&c->g->timeouts, 1);
	log_debug("http: request deadline passed, closing");
	evhttp_connection_free(c->evcon); /* hc_closed frees c */
}

/* evhttp's new connection: its bufferevent, and our record of it. */
static struct bufferevent *
hc_bevcb(struct event_base *base, void *arg)
{
	httpd_guard_t *g = arg;
	/* options as evhttp's own (it closes the socket itself), so our extra
	 * reference never holds a descriptor open */
	struct bufferevent *bev = NULL;
	httpd_conn_t *c;
	SSL *ssl;

	if (g->ssl == NULL) {
		bev = bufferevent_socket_new(base, -1, 0);
	} else if ((ssl = SSL_new(g->ssl)) != NULL) {
		/* HTTPS: the bufferevent owns the SSL (and so closes the socket);
		 * evhttp then leaves the descriptor to it.  The handshake counts
		 * against the same request deadline as the head. */
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		                                     BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			SSL_free(ssl);
		else
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	}

	if (bev == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return bev;
	if ((c->ev = evtimer_new(base, hc_event, c)) == NULL) {
		free(c);
		return bev;
	}
	c->g = g;
	c->bev = bev;
	bufferevent_incref(bev); /* so hc_attach finds it even if evhttp gave up */
	c->prev = g->tail;
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
	/* runs before the loop polls again, so before evhttp reads a byte */
	event_active(c->ev, EV_TIMEOUT, 1);
	return bev;
}

/* A request reached a handler: mark the connection, start its deadline
 * again for the answer and the next request. */
static void
hc_request(httpd_guard_t *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	htab_node_t *n;

	if (g == NULL || evcon == NULL)
		return;
	n = htab_find(&g->byconn, htab_hash(&g->byconn, &evcon, sizeof(evcon)), &evcon,
	              sizeof(evcon));
	if (n != NULL) {
		httpd_conn_t *c = HTAB_ENTRY(n, httpd_conn_t, h);
		c->served = 1;
		hc_deadline_set(c);
	}
}

static httpd_guard_t *
hc_guard_new(const daemon_t *d, err_t *err)
{
	httpd_guard_t *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	g->max = (uint32_t)d->conf.http_max_connections;
	g->timeout_ms = (int)d->conf.http_request_timeout_ms;
	if (htab_init(&g->byconn, 64, 0, hc_eq, err) == -1) {
		free(g);
		return NULL;
	}
	if (connguard_trim_init(&g->trim, d->base, err) == -1) {
		htab_fini(&g->byconn);
		free(g);
		return NULL;
	}
	if ((g->src = connguard_src_new((uint32_t)d->conf.http_max_per_source, err)) == NULL) {
		connguard_trim_fini(&g->trim);
		htab_fini(&g->byconn);
		free(g);
		return NULL;
	}
	return g;
}

/* After evhttp_free: every attached record went with its connection. */
static void
hc_guard_free(httpd_guard_t *g)
{
	if (g == NULL)
		return;
	while (g->head != NULL)
		hc_drop(g->head);
	htab_fini(&g->byconn);
	connguard_trim_fini(&g->trim);
	connguard_src_free(g->src);
	free(g);
}

static int
metrics_http(const httpd_guard_t *g, buf_t *out)
{
	if (g == NULL)
		return 0;
	return buf_printf(
	    out,
	    "# HELP stbcred_http_connections open HTTP connections\n# TYPE "
	    "stbcred_http_connections gauge\n"
	    "stbcred_http_connections %u\n"
	    "# HELP stbcred_http_connections_accepted_total HTTP connections accepted\n# TYPE "
	    "stbcred_http_connections_accepted_total counter\n"
	    "stbcred_http_connections_accepted_total %llu\n"
	    "# HELP stbcred_http_connections_refused_total HTTP connections refused by reason\n# "
	    "TYPE stbcred_http_connections_refused_total counter\n"
	    "stbcred_http_connections_refused_total{reason=\"source\"} %llu\n"
	    "stbcred_http_connections_refused_total{reason=\"full\"} %llu\n"
	    "# HELP stbcred_http_connections_evicted_total HTTP connections closed to make room\n# "
	    "TYPE stbcred_http_connections_evicted_total counter\n"
	    "stbcred_http_connections_evicted_total %llu\n"
	    "# HELP stbcred_http_request_timeouts_total HTTP requests closed at "
	    "http.request_timeout_ms\n# TYPE stbcred_http_request_timeouts_total counter\n"
	    "stbcred_http_request_timeouts_total %llu\n"
	    "# HELP stbcred_http_accept_errors_total accept() failures on the HTTP listener\n# "
	    "TYPE stbcred_http_accept_errors_total counter\n"
	    "stbcred_http_accept_errors_total %llu\n",
	    g->n, (unsigned long long)ctr_get(&g->accepted),
	    (unsigned long long)ctr_get(&g->refused_source),
	    (unsigned long long)ctr_get(&g->refused_full), (unsigned long long)ctr_get(&g->evicted),
	    (unsigned long long)ctr_get(&g->timeouts),
	    (unsigned long long)connguard_accept_errors(g->accept));
}

void
httpd_reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
            const void *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(out, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

/* Liveness: the loops run and the store writer answers. */
static void
http_healthz(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	const char *why;
	char body[256];

	hc_request(d->http_guard, req);
	if (d->draining)
		httpd_reply(req, 503, "Service Unavailable", "text/plain", "draining\n", 9);
	else if (!health_live(d->health, &why)) {
		int n = snprintf(body, sizeof(body), "store: %s\n", why);
		httpd_reply(req, 503, "Service Unavailable", "text/plain", body,
		            n > 0 && (size_t)n < sizeof(body) ? (size_t)n : strlen(body));
	} else
		httpd_reply(req, 200, "OK", "text/plain", "ok\n", 3);
}

/* Readiness: live, and every peer the daemon needs answers; the JSON body
 * names each check and what is wrong. */
static void
http_readyz(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	int ready;
	char *body;

	hc_request(d->http_guard, req);
	if ((body = health_ready_json(d->health, d->def->name, d->draining, &ready)) == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	if (ready)
		httpd_reply(req, 200, "OK", "application/json", body, strlen(body));
	else
		httpd_reply(req, 503, "Service Unavailable", "application/json", body,
		            strlen(body));
	free(body);
}

static int
metrics_store(daemon_t *d, buf_t *out)
{
	store_stats_t st;
	int rc = 0;

	store_get_stats(d->store, &st);
	rc |= buf_printf(out,
	                 "# HELP stbcred_store_commits_total store group commits\n# TYPE "
	                 "stbcred_store_commits_total counter\n"
	                 "stbcred_store_commits_total %llu\n"
	                 "# HELP stbcred_store_writes_total store writes by result\n# TYPE "
	                 "stbcred_store_writes_total counter\n"
	                 "stbcred_store_writes_total{result=\"ok\"} %llu\n"
	                 "stbcred_store_writes_total{result=\"failed\"} %llu\n"
	                 "# HELP stbcred_store_queue_depth writes waiting for the store writer\n# "
	                 "TYPE stbcred_store_queue_depth gauge\n"
	                 "stbcred_store_queue_depth %u\n"
	                 "# HELP stbcred_store_commit_seconds time of one group commit\n# TYPE "
	                 "stbcred_store_commit_seconds histogram\n",
	                 (unsigned long long)st.commits, (unsigned long long)st.writes,
	                 (unsigned long long)st.failed, st.queued);
	rc |= hist_write_prom(out, "stbcred_store_commit_seconds", "", &st.commit_latency);
	rc |= buf_printf(out,
	                 "# HELP stbcred_store_up the store writer's connection (1 up)\n"
	                 "# TYPE stbcred_store_up gauge\n"
	                 "stbcred_store_up{backend=\"%s\"} %u\n"
	                 "# HELP stbcred_store_reconnects_total store writer connections made "
	                 "again after a loss\n# TYPE stbcred_store_reconnects_total counter\n"
	                 "stbcred_store_reconnects_total %llu\n",
	                 store_get_backend(d->store) == STORE_PG ? "postgresql" : "sqlite",
	                 st.connected, (unsigned long long)st.reconnects);
	return rc;
}

static void
http_metrics(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	buf_t out;

	hc_request(d->http_guard, req);
	buf_init(&out, 4 * 1024 * 1024);
	if (buf_printf(&out,
	               "# HELP stbcred_info the daemon and its version (always 1)\n# TYPE "
	               "stbcred_info gauge\nstbcred_info{daemon=\"%s\",version=\"%s\"} 1\n"
	               "# HELP stbcred_uptime_seconds seconds since the daemon started\n# TYPE "
	               "stbcred_uptime_seconds gauge\nstbcred_uptime_seconds %lld\n",
	               d->def->name, STBCRED_VERSION, (long long)(time(NULL) - d->started)) == -1 ||
	    metrics_write_process(&out, d->started) == -1 ||
	    srv_write_metrics(d->srv, &out) == -1 || metrics_store(d, &out) != 0 ||
	    health_write_metrics(d->health, &out) != 0 || metrics_http(d->http_guard, &out) != 0 ||
	    (d->refusals != NULL && refusal_write_metrics(d->refusals, &out) == -1) ||
	    (d->def->metrics != NULL && d->def->metrics(d, &out) != 0)) {
		buf_free(&out);
		evhttp_send_error(req, 500, "metrics too large");
		return;
	}
	httpd_reply(req, 200, "OK", "text/plain; version=0.0.4", out.data, out.len);
	buf_free(&out);
}

int
httpd_route(daemon_t *d, const char *prefix, int methods, size_t max_body, httpd_route_fn fn,
            void *arg, err_t *err)
{
	httpd_route_t *r;
	int n;

	if (d->nroutes >= HTTPD_ROUTES_MAX)
		return err_set(err, STB_INTERNAL, "http: more than %d routes", HTTPD_ROUTES_MAX);
	r = &d->routes[d->nroutes];
	n = snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	if (prefix[0] != '/' || n < 2 || (size_t)n >= sizeof(r->prefix) || prefix[n - 1] == '/')
		return err_set(err, STB_INTERNAL, "http: bad route prefix '%s'", prefix);
	r->methods = methods;
	r->max_body = max_body;
	r->fn = fn;
	r->arg = arg;
	d->nroutes++;
	return 0;
}

/* The daemon's own routes: the prefix itself or anything below it. */
static void
http_other(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	hc_request(d->http_guard, req);
	for (int i = 0; path != NULL && i < d->nroutes; i++) {
		const httpd_route_t *r = &d->routes[i];
		size_t l = strlen(r->prefix);
		if (strncmp(path, r->prefix, l) != 0 || (path[l] != '\0' && path[l] != '/'))
			continue;
		if (!(evhttp_request_get_command(req) & r->methods)) {
			evhttp_send_error(req, 405, NULL);
			return;
		}
		r->fn(req, r->arg);
		return;
	}
	evhttp_send_error(req, 404, NULL);
}

int
httpd_start(daemon_t *d, err_t *err)
{
	struct sockaddr_storage ss;
	struct evconnlistener *l;
	int sl = sizeof(ss), methods = EVHTTP_REQ_GET | EVHTTP_REQ_HEAD;
	size_t max_body = 0;

	if (d->conf.http_listen == NULL || *d->conf.http_listen == '\0')
		return 0;
	if (srv_parse_addr(d->conf.http_listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "http_listen: '%s' is not IP:port",
		               d->conf.http_listen);
	if ((d->http_guard = hc_guard_new(d, err)) == NULL)
		return -1;
	if ((d->http = evhttp_new(d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "evhttp_new failed");
	if (d->http_tls) {
		tls_conf_t tc = {.cert = d->conf.tls_cert,
		                 .key = d->conf.tls_key,
		                 .ca = d->conf.tls_ca,
		                 .client_auth = d->http_client_auth};

		if ((d->http_ssl = tls_server_ctx_new(&tc, err)) == NULL)
			return -1;
		d->http_guard->ssl = d->http_ssl;
	}
	evhttp_set_bevcb(d->http, hc_bevcb, d->http_guard);
	for (int i = 0; i < d->nroutes; i++) {
		methods |= d->routes[i].methods;
		if (d->routes[i].max_body > max_body)
			max_body = d->routes[i].max_body;
	}
	evhttp_set_allowed_methods(d->http, (ev_uint16_t)methods);
	evhttp_set_timeout(d->http, 10);
	evhttp_set_max_headers_size(d->http, 8192);
	evhttp_set_max_body_size(d->http, (ev_ssize_t)max_body);
	evhttp_set_cb(d->http, "/healthz", http_healthz, d);
	evhttp_set_cb(d->http, "/readyz", http_readyz, d);
	evhttp_set_cb(d->http, "/metrics", http_metrics, d);
	evhttp_set_gencb(d->http, http_other, d);
	l = evconnlistener_new_bind(
	    d->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, sl);
	if (l == NULL || evhttp_bind_listener(d->http, l) == NULL) {
		if (l != NULL)
			evconnlistener_free(l);
		return err_set(err, STB_UNAVAILABLE, "http_listen: cannot bind %s: %s",
		               d->conf.http_listen, strerror(errno));
	}
	if ((d->http_guard->accept = connguard_accept_new(d->base, l, "http", err)) == NULL)
		return -1;
	log_info("metrics on %s://%s/metrics", d->http_ssl ? "https" : "http", d->conf.http_listen);
	return 0;
}

void
httpd_stop(daemon_t *d)
{
	if (d->http_guard != NULL) {
		connguard_accept_free(d->http_guard->accept); /* before its listener */
		d->http_guard->accept = NULL;
	}
	if (d->http != NULL)
		evhttp_free(d->http);
	d->http = NULL;
	hc_guard_free(d->http_guard);
	d->http_guard = NULL;
	SSL_CTX_free(d->http_ssl);
	d->http_ssl = NULL;
}

uint32_t
httpd_peer_roles(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl != NULL ? tls_peer_roles(ssl) : STB_R_ANONYMOUS;
}

void
httpd_peer_addr(struct evhttp_request *req, char *out, size_t cap)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *host = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &host, &port);
	snprintf(out, cap, "%s:%u", host ? host : "-", (unsigned)port);
}
