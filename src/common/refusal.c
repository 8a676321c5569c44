/* refusal: anonymous refusals counted and summarised (see refusal.h). */
#include "refusal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "htab.h"
#include "log.h"
#include "metrics.h"

/* "action source": the longest action we name, a space, the source */
#define RF_KEY_MAX (64 + 1 + REFUSAL_SOURCE_MAX)

typedef struct rf_ent {
	char key[RF_KEY_MAX + 1];
	refusal_sum_t s;
	htab_node_t h;
	struct rf_ent *next; /* every entry, for the take */
} rf_ent_t;

typedef struct rf_total {
	const char *action, *reason;
	uint64_t n;
} rf_total_t;

struct refusal {
	pthread_mutex_t mu;
	htab_t t;
	rf_ent_t *all;
	size_t n, max;
	int64_t since; /* start of the current interval */
	rf_total_t totals[REFUSAL_TOTALS_MAX];
	int ntotals;
	uint64_t overflow; /* refusals counted under "*" */
	/* the timer (refusal_arm) */
	struct event *ev;
	store_t *store;
	const uint8_t *key;
};

static int
rf_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, rf_ent_t, h)->key, key, len);
}

refusal_t *
refusal_new(size_t max_sources, err_t *err)
{
	refusal_t *r;

	if (max_sources < 1) {
		err_set(err, STB_BAD_REQUEST, "refusal: max_sources must be at least 1");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (htab_init(&r->t, 64, max_sources, rf_eq, err) == -1) {
		free(r);
		return NULL;
	}
	r->max = max_sources;
	r->since = (int64_t)time(NULL);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

static void
rf_clear(refusal_t *r)
{
	rf_ent_t *e, *next;

	for (e = r->all; e != NULL; e = next) {
		next = e->next;
		htab_remove(&r->t, &e->h);
		free(e);
	}
	r->all = NULL;
	r->n = 0;
}

void
refusal_free(refusal_t *r)
{
	if (r == NULL)
		return;
	if (r->ev != NULL)
		event_free(r->ev);
	rf_clear(r);
	htab_fini(&r->t);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void
rf_total_add(refusal_t *r, const char *action, const char *reason)
{
	int i;

	for (i = 0; i < r->ntotals; i++)
		if (r->totals[i].action == action && r->totals[i].reason == reason)
			break;
	if (i == r->ntotals) {
		if (r->ntotals == REFUSAL_TOTALS_MAX)
			i = REFUSAL_TOTALS_MAX - 1; /* the last pair takes the rest */
		else
			r->totals[r->ntotals++] = (rf_total_t){action, reason, 0};
	}
	r->totals[i].n++;
}

static rf_ent_t *
rf_get(refusal_t *r, const char *action, const char *source, int add)
{
	char key[RF_KEY_MAX + 1];
	size_t len;
	uint64_t h;
	htab_node_t *n;
	rf_ent_t *e;

	len = (size_t)snprintf(key, sizeof(key), "%.64s %s", action, source);
	if (len > RF_KEY_MAX)
		len = RF_KEY_MAX;
	h = htab_hash(&r->t, key, len);
	if ((n = htab_find(&r->t, h, key, len)) != NULL)
		return HTAB_ENTRY(n, rf_ent_t, h);
	if (!add || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	snprintf(e->s.source, sizeof(e->s.source), "%s", source);
	e->s.action = action;
	e->s.since = r->since;
	htab_insert(&r->t, &e->h, h);
	e->next = r->all;
	r->all = e;
	r->n++;
	return e;
}

static void
rf_reason_add(refusal_sum_t *s, const char *reason)
{
	int i;

	for (i = 0; i < s->nreasons; i++)
		if (s->reasons[i].reason == reason)
			break;
	if (i == s->nreasons) {
		if (s->nreasons >= REFUSAL_REASONS - 1)
			reason = "other";
		for (i = 0; i < s->nreasons; i++)
			if (strcmp(s->reasons[i].reason, reason) == 0)
				break;
		if (i == s->nreasons)
			s->reasons[s->nreasons++] = (refusal_reason_t){reason, 0};
	}
	s->reasons[i].n++;
}

void
refusal_count(refusal_t *r, const char *peer, const char *action, const char *reason,
              const char *sample)
{
	char src[REFUSAL_SOURCE_MAX + 1];
	rf_ent_t *e;

	srcaddr_key(peer, src);
	pthread_mutex_lock(&r->mu);
	rf_total_add(r, action, reason);
	if ((e = rf_get(r, action, src, r->n < r->max)) == NULL) {
		/* full (or out of memory): counted with the other new sources; one
		 * such entry per action, so past max by the few actions we name */
		r->overflow++;
		e = rf_get(r, action, "*", 1);
	}
	if (e != NULL) {
		e->s.total++;
		rf_reason_add(&e->s, reason);
		if (sample != NULL)
			snprintf(e->s.sample, sizeof(e->s.sample), "%s", sample);
	}
	pthread_mutex_unlock(&r->mu);
}

int
refusal_take(refusal_t *r, refusal_sum_t **out, size_t *n, err_t *err)
{
	refusal_sum_t *v = NULL;
	size_t i = 0;

	pthread_mutex_lock(&r->mu);
	if (r->n > 0 && (v = calloc(r->n, sizeof(*v))) == NULL) {
		pthread_mutex_unlock(&r->mu);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	for (rf_ent_t *e = r->all; e != NULL; e = e->next)
		v[i++] = e->s;
	rf_clear(r);
	r->since = (int64_t)time(NULL);
	pthread_mutex_unlock(&r->mu);
	*out = v;
	*n = i;
	return 0;
}

void
refusal_format(const refusal_sum_t *s, int64_t now, char *out, size_t cap)
{
	size_t len;

	if (cap == 0)
		return;
	snprintf(out, cap,
	         "refused %llu %s from %s in the last %lld s:", (unsigned long long)s->total,
	         s->action, s->source, (long long)(now > s->since ? now - s->since : 0));
	for (int i = 0; i < s->nreasons; i++) {
		len = strlen(out);
		snprintf(out + len, cap - len, "%s %llu %s", i > 0 ? "," : "",
		         (unsigned long long)s->reasons[i].n, s->reasons[i].reason);
	}
	if (s->sample[0] != '\0') {
		len = strlen(out);
		snprintf(out + len, cap - len, " (last: %s)", s->sample);
	}
}

size_t
refusal_sources(refusal_t *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

int
refusal_write_metrics(refusal_t *r, buf_t *out)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = buf_printf(out, "# HELP stbcred_refusals_total refused anonymous requests by action "
	                     "and reason\n# TYPE stbcred_refusals_total counter\n");
	for (int i = 0; i < r->ntotals && rc == 0; i++)
		rc = buf_printf(out, "stbcred_refusals_total{action=\"%s\",reason=\"%s\"} %llu\n",
		                r->totals[i].action, r->totals[i].reason,
		                (unsigned long long)r->totals[i].n);
	if (rc == 0)
		rc = buf_printf(
		    out,
		    "# HELP stbcred_refusal_sources source addresses in the current refusal "
		    "summary\n# TYPE stbcred_refusal_sources gauge\nstbcred_refusal_sources %zu\n"
		    "# HELP stbcred_refusals_pooled_total refusals counted under the pooled source "
		    "*\n# TYPE stbcred_refusals_pooled_total counter\n"
		    "stbcred_refusals_pooled_total %llu\n",
		    r->n, (unsigned long long)r->overflow);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- the daemon's side ---- */

struct rf_flush {
	const refusal_sum_t *v;
	size_t n;
	const uint8_t *key;
	int64_t now;
};

static int
rf_flush_write(store_conn_t *c, void *arg, err_t *err)
{
	struct rf_flush *f = arg;
	char line[AUDIT_FIELD_MAX + 1];

	for (size_t i = 0; i < f->n; i++) {
		refusal_format(&f->v[i], f->now, line, sizeof(line));
		if (audit_append(c, f->key, "refusals", f->v[i].source, line, NULL, err) == -1)
			return -1;
	}
	return 0;
}

int
refusal_flush(refusal_t *r, store_t *s, const uint8_t key[AUDIT_KEY_LEN], err_t *err)
{
	struct rf_flush f = {.key = key, .now = (int64_t)time(NULL)};
	refusal_sum_t *v;
	char line[AUDIT_FIELD_MAX + 1];
	int rc = 0;

	if (r == NULL)
		return 0;
	if (refusal_take(r, &v, &f.n, err) == -1)
		return -1;
	if (f.n == 0)
		return 0;
	f.v = v;
	for (size_t i = 0; i < f.n; i++) {
		refusal_format(&v[i], f.now, line, sizeof(line));
		log_info("%s", line);
	}
	if (s != NULL)
		rc = store_write_sync(s, rf_flush_write, &f, err);
	free(v);
	return rc;
}

static void
rf_tick(evutil_socket_t fd, short what, void *arg)
{
	refusal_t *r = arg;
	err_t err;

	(void)fd;
	(void)what;
	if (refusal_flush(r, r->store, r->key, &err) == -1)
		log_warnx("refusal summary not recorded: %s", err.msg);
}

int
refusal_arm(refusal_t *r, struct event_base *base, int64_t interval_s, store_t *s,
            const uint8_t key[AUDIT_KEY_LEN], err_t *err)
{
	struct timeval tv = {(time_t)interval_s, 0};

	r->store = s;
	r->key = key;
	if ((r->ev = event_new(base, -1, EV_PERSIST, rf_tick, r)) == NULL ||
	    event_add(r->ev, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the refusal summaries");
	return 0;
}
