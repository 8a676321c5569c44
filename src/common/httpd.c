/* httpd: /healthz and /metrics (Prometheus text) on the main loop. */
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

static void
http_reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
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
		http_reply(req, 503, "Service Unavailable", "text/plain", "draining\n", 9);
	else
		http_reply(req, 200, "OK", "text/plain", "ok\n", 3);
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
	    srv_write_metrics(d->srv, &out) == -1 || metrics_store(d, &out) != 0) {
		buf_free(&out);
		evhttp_send_error(req, 500, "metrics too large");
		return;
	}
	http_reply(req, 200, "OK", "text/plain; version=0.0.4", out.data, out.len);
	buf_free(&out);
}

static void
http_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, NULL);
}

int
httpd_start(daemon_t *d, err_t *err)
{
	struct sockaddr_storage ss;
	struct evconnlistener *l;
	int sl = sizeof(ss);

	if (d->conf.http_listen == NULL || *d->conf.http_listen == '\0')
		return 0;
	if (srv_parse_addr(d->conf.http_listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "http_listen: '%s' is not IP:port",
		               d->conf.http_listen);
	if ((d->http = evhttp_new(d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "evhttp_new failed");
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(d->http, 10);
	evhttp_set_max_headers_size(d->http, 8192);
	evhttp_set_max_body_size(d->http, 0);
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
