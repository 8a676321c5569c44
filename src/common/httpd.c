/* httpd: /healthz, /metrics (Prometheus text) and the daemon's own routes
 * (httpd_route) on the main loop. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon.h"
#include "log.h"

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

static void
http_healthz(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;

	if (d->draining)
		httpd_reply(req, 503, "Service Unavailable", "text/plain", "draining\n", 9);
	else
		httpd_reply(req, 200, "OK", "text/plain", "ok\n", 3);
}

static int
metrics_store(daemon_t *d, buf_t *out)
{
	store_stats_t st;
	int rc = 0;

	store_get_stats(d->store, &st);
	rc |= buf_printf(out,
	                 "# TYPE stbcred_store_commits_total counter\n"
	                 "stbcred_store_commits_total %llu\n"
	                 "# TYPE stbcred_store_writes_total counter\n"
	                 "stbcred_store_writes_total{result=\"ok\"} %llu\n"
	                 "stbcred_store_writes_total{result=\"failed\"} %llu\n"
	                 "# TYPE stbcred_store_queue_depth gauge\n"
	                 "stbcred_store_queue_depth %u\n"
	                 "# TYPE stbcred_store_commit_seconds histogram\n",
	                 (unsigned long long)st.commits, (unsigned long long)st.writes,
	                 (unsigned long long)st.failed, st.queued);
	rc |= hist_write_prom(out, "stbcred_store_commit_seconds", "", &st.commit_latency);
	return rc;
}

static void
http_metrics(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	buf_t out;

	buf_init(&out, 4 * 1024 * 1024);
	if (buf_printf(&out,
	               "# TYPE stbcred_info gauge\nstbcred_info{daemon=\"%s\",version=\"%s\"} 1\n"
	               "# TYPE stbcred_uptime_seconds gauge\nstbcred_uptime_seconds %lld\n",
	               d->def->name, STBCRED_VERSION, (long long)(time(NULL) - d->started)) == -1 ||
	    srv_write_metrics(d->srv, &out) == -1 || metrics_store(d, &out) != 0 ||
	    (d->refusals != NULL && refusal_write_metrics(d->refusals, &out) == -1)) {
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
	if ((d->http = evhttp_new(d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "evhttp_new failed");
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
	log_info("metrics on http://%s/metrics", d->conf.http_listen);
	return 0;
}

void
httpd_stop(daemon_t *d)
{
	if (d->http != NULL)
		evhttp_free(d->http);
	d->http = NULL;
}
