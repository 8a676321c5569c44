/*
 * health: what /healthz and /readyz say, from probes on the main loop.
 * Every interval each peer the daemon needs gets a PING through its pool
 * and the store gets an empty write (through the writer, so a stuck or
 * failing writer shows); the answers are kept here and read by the HTTP
 * handlers on the same loop, so a probe request costs nothing but a
 * look-up (no request reaches a peer because someone asked).
 */
#include "health.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "mbox.h"
#include "metrics.h"
#include "peer.h"
#include "peerpool.h"
#include "proto.h"
#include "store.h"

typedef struct health_check {
	health_t *h;
	char name[64];
	peerpool_t *pp; /* NULL: the store */
	int state;      /* HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN */
	int busy;       /* a probe is out */
	int64_t since;  /* when state began */
	uint64_t failures;
	char error[ERR_MSG_MAX];
} health_check_t;

struct health {
	struct event_base *base;
	struct event *timer;
	mbox_t *mb;
	store_t *store;
	int interval_ms;
	int timeout_ms;
	int n;
	int dead; /* health_free ran while PINGs were out: the last answer frees */
	health_check_t checks[HEALTH_CHECKS_MAX];
};

static int
health_busy(const health_t *h)
{
	int n = 0;

	for (int i = 0; i < h->n; i++)
		n += h->checks[i].busy;
	return n;
}

static void
health_set(health_check_t *c, int up, const char *error)
{
	int state = up ? HEALTH_UP : HEALTH_DOWN;

	if (c->state != state) {
		if (state == HEALTH_DOWN)
			log_warnx("health: %s is down: %s", c->name, error);
		else if (c->state == HEALTH_DOWN)
			log_info("health: %s is up again", c->name);
		c->state = state;
		c->since = (int64_t)time(NULL);
	}
	if (!up) {
		c->failures++;
		snprintf(c->error, sizeof(c->error), "%s", error);
	} else
		c->error[0] = '\0';
}

static void
health_peer_done(void *arg, const msg_t *rsp, const err_t *err)
{
	health_check_t *c = arg;

	(void)rsp;
	c->busy = 0;
	if (c->h->dead) {
		if (health_busy(c->h) == 0)
			free(c->h);
		return;
	}
	health_set(c, err == NULL || err->status == STB_OK, err != NULL ? err->msg : "");
}

static int
health_store_probe(store_conn_t *conn, void *arg, err_t *err)
{
	(void)conn;
	(void)arg;
	(void)err;
	return 0;
}

static void
health_store_done(void *arg, const err_t *err)
{
	health_check_t *c = arg;

	c->busy = 0;
	health_set(c, err == NULL || err->status == STB_OK, err != NULL ? err->msg : "");
}

static void
health_probe(health_check_t *c)
{
	err_t err;
	buf_t empty;

	if (c->busy) {
		/* the last probe has not come back in a whole interval */
		health_set(c, 0,
		           c->pp != NULL ? "no answer to the last PING"
		                         : "the store writer has not answered");
		return;
	}
	c->busy = 1;
	if (c->pp == NULL) {
		if (store_write(c->h->store, c->h->mb, health_store_probe, health_store_done, c,
		                &err) == -1) {
			c->busy = 0;
			health_set(c, 0, err.msg);
		}
		return;
	}
	buf_init(&empty, 0);
	if (peerpool_call(c->pp, c->h->base, NULL, STB_MSG_PING, &empty, c->h->timeout_ms,
	                  health_peer_done, c, &err) == -1) {
		c->busy = 0;
		health_set(c, 0, err.msg);
	}
	buf_free(&empty);
}

static void
health_tick(evutil_socket_t fd, short what, void *arg)
{
	health_t *h = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < h->n; i++)
		health_probe(&h->checks[i]);
}

health_t *
health_new(struct event_base *base, store_t *store, int interval_ms, err_t *err)
{
	health_t *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	h->base = base;
	h->store = store;
	h->interval_ms = interval_ms;
	h->timeout_ms = interval_ms > 2000 ? 2000 : interval_ms;
	if ((h->mb = mbox_new(base)) == NULL ||
	    (h->timer = event_new(base, -1, EV_PERSIST, health_tick, h)) == NULL) {
		health_free(h);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (store != NULL && health_watch_peer(h, "store", NULL, err) == -1) {
		health_free(h);
		return NULL;
	}
	return h;
}

int
health_watch_peer(health_t *h, const char *name, peerpool_t *pp, err_t *err)
{
	health_check_t *c;

	if (h->n >= HEALTH_CHECKS_MAX)
		return err_set(err, STB_INTERNAL, "health: more than %d checks", HEALTH_CHECKS_MAX);
	c = &h->checks[h->n++];
	memset(c, 0, sizeof(*c));
	c->h = h;
	c->pp = pp;
	c->since = (int64_t)time(NULL);
	snprintf(c->name, sizeof(c->name), "%s", name);
	return 0;
}

int
health_start(health_t *h, err_t *err)
{
	struct timeval tv = {h->interval_ms / 1000, (h->interval_ms % 1000) * 1000};

	if (event_add(h->timer, &tv) == -1)
		return err_set(err, STB_INTERNAL, "health: cannot arm the probe timer");
	health_tick(-1, 0, h); /* the first answers come within a round trip */
	return 0;
}

void
health_stop(health_t *h)
{
	if (h != NULL && h->timer != NULL)
		event_del(h->timer);
}

void
health_free(health_t *h)
{
	if (h == NULL)
		return;
	if (h->timer != NULL)
		event_free(h->timer);
	/* runs the store probe's answer if it is queued */
	mbox_free(h->mb);
	h->mb = NULL;
	h->timer = NULL;
	/* a PING still out answers when its pool goes (UNAVAILABLE) */
	if (health_busy(h) > 0) {
		h->dead = 1;
		return;
	}
	free(h);
}

int
health_live(const health_t *h, const char **why)
{
	*why = NULL;
	for (int i = 0; h != NULL && i < h->n; i++)
		if (h->checks[i].pp == NULL && h->checks[i].state == HEALTH_DOWN) {
			*why = h->checks[i].error;
			return 0;
		}
	return 1;
}

static const char *
health_state_name(int state)
{
	return state == HEALTH_UP ? "up" : state == HEALTH_DOWN ? "down" : "unknown";
}

char *
health_ready_json(const health_t *h, const char *daemon, int draining, int *ready)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	char *text;

	*ready = !draining;
	cJSON_AddStringToObject(o, "daemon", daemon);
	for (int i = 0; h != NULL && i < h->n; i++) {
		const health_check_t *c = &h->checks[i];
		cJSON *e = cJSON_CreateObject();
		char when[32];
		struct tm tm;
		time_t t = (time_t)c->since;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cJSON_AddStringToObject(e, "name", c->name);
		cJSON_AddStringToObject(e, "state", health_state_name(c->state));
		cJSON_AddStringToObject(e, "since", when);
		if (c->state == HEALTH_DOWN)
			cJSON_AddStringToObject(e, "error", c->error);
		cJSON_AddItemToArray(arr, e);
		/* not ready until every check has answered once */
		if (c->state != HEALTH_UP)
			*ready = 0;
	}
	cJSON_AddBoolToObject(o, "ready", *ready);
	if (draining)
		cJSON_AddStringToObject(o, "error", "draining");
	cJSON_AddItemToObject(o, "checks", arr);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

int
health_write_metrics(const health_t *h, buf_t *out)
{
	int rc = 0;

	if (h == NULL)
		return 0;
	rc |= buf_printf(out, "# HELP stbcred_dependency_up 1 when the last probe of a dependency "
	                      "(a peer, the store) succeeded\n"
	                      "# TYPE stbcred_dependency_up gauge\n");
	for (int i = 0; i < h->n; i++)
		rc |= buf_printf(out, "stbcred_dependency_up{dependency=\"%s\"} %d\n",
		                 h->checks[i].name, h->checks[i].state == HEALTH_UP);
	rc |= buf_printf(out, "# HELP stbcred_dependency_probe_failures_total failed probes of a "
	                      "dependency\n"
	                      "# TYPE stbcred_dependency_probe_failures_total counter\n");
	for (int i = 0; i < h->n; i++)
		rc |= buf_printf(
		    out, "stbcred_dependency_probe_failures_total{dependency=\"%s\"} %llu\n",
		    h->checks[i].name, (unsigned long long)h->checks[i].failures);
	return rc;
}
