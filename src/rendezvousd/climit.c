/* climit: RDV_CONNECT_REQ limits per caller and per target (climit.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "climit.h"
#include "htab.h"
#include "stb/stbproto.h"

#define MILLI 1000 /* a token, in milli-tokens */

struct offer {
	uint64_t target; /* htab_hash of the target's ID */
	int64_t expires;
};

/* One device, as a caller (bucket, offers it holds) and as a target. */
typedef struct rec {
	htab_node_t h;
	char id[STB_ID_MAX + 1];
	int64_t tokens; /* milli-tokens */
	int64_t refill_ms;
	uint64_t refused;
	int64_t reported_ms;
	struct offer *out; /* per_caller slots, expires 0: free; NULL until it calls */
	int64_t *in;       /* per_target slots: expiry of an offer to it; NULL until offered */
} rec_t;

struct rdv_climit {
	pthread_mutex_t mu;
	rdv_climit_conf_t conf;
	htab_t t;
	size_t max;
};

static int
rec_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, rec_t, h)->id, key, len);
}

rdv_climit_t *
rdv_climit_new(const rdv_climit_conf_t *conf, size_t max_entries, err_t *err)
{
	rdv_climit_t *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (conf->per_minute < 1 || conf->burst < 1 || conf->per_pair < 1 || conf->per_caller < 1 ||
	    conf->per_target < 1) {
		free(l);
		err_set(err, STB_BAD_REQUEST, "connect limits must be at least 1");
		return NULL;
	}
	l->conf = *conf;
	l->max = max_entries > 0 ? max_entries : 1;
	if (htab_init(&l->t, 64, 0, rec_eq, err) == -1) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

static void
rec_free(rec_t *r)
{
	if (r == NULL)
		return;
	free(r->out);
	free(r->in);
	free(r);
}

void
rdv_climit_free(rdv_climit_t *l)
{
	size_t b = 0;
	htab_node_t *n, *next;

	if (l == NULL)
		return;
	for (n = htab_next(&l->t, &b, NULL); n != NULL; n = next) {
		next = htab_next(&l->t, &b, n);
		rec_free(HTAB_ENTRY(n, rec_t, h));
	}
	htab_fini(&l->t);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void
rec_refill(const rdv_climit_t *l, rec_t *r, int64_t now_ms)
{
	int64_t cap = l->conf.burst * MILLI, dt = now_ms - r->refill_ms;

	if (dt <= 0)
		return; /* the clock went back: wait for it */
	/* per_minute tokens per 60000 ms, in milli-tokens per ms */
	if (dt > 60000 * cap / (l->conf.per_minute * MILLI) + 1)
		r->tokens = cap;
	else
		r->tokens += dt * l->conf.per_minute * MILLI / 60000;
	if (r->tokens > cap)
		r->tokens = cap;
	r->refill_ms = now_ms;
}

/* Nothing held, nothing to report: the record may go. */
static int
rec_idle(const rdv_climit_t *l, rec_t *r, int64_t now_ms)
{
	int64_t now_s = now_ms / 1000;

	rec_refill(l, r, now_ms);
	if (r->tokens < l->conf.burst * MILLI || r->refused != 0)
		return 0;
	for (int64_t i = 0; r->out != NULL && i < l->conf.per_caller; i++)
		if (r->out[i].expires > now_s)
			return 0;
	for (int64_t i = 0; r->in != NULL && i < l->conf.per_target; i++)
		if (r->in[i] > now_s)
			return 0;
	return 1;
}

static size_t
prune_locked(rdv_climit_t *l, int64_t now_ms)
{
	size_t b = 0, n = 0;
	htab_node_t *h, *next;

	for (h = htab_next(&l->t, &b, NULL); h != NULL; h = next) {
		rec_t *r = HTAB_ENTRY(h, rec_t, h);
		next = htab_next(&l->t, &b, h);
		if (rec_idle(l, r, now_ms)) {
			htab_remove(&l->t, h);
			rec_free(r);
			n++;
		}
	}
	return n;
}

size_t
rdv_climit_prune(rdv_climit_t *l, int64_t now_ms)
{
	size_t n;

	pthread_mutex_lock(&l->mu);
	n = prune_locked(l, now_ms);
	pthread_mutex_unlock(&l->mu);
	return n;
}

static rec_t *
rec_find(rdv_climit_t *l, const char *id)
{
	size_t len = strlen(id);
	htab_node_t *n = htab_find(&l->t, htab_hash(&l->t, id, len), id, len);

	return n != NULL ? HTAB_ENTRY(n, rec_t, h) : NULL;
}

/* id's record, made when absent (a full table drops its idle ones first);
 * NULL when there is no room. */
static rec_t *
rec_get(rdv_climit_t *l, const char *id, int64_t now_ms)
{
	size_t len = strlen(id);
	rec_t *r = rec_find(l, id);

	if (r != NULL)
		return r;
	if (len > STB_ID_MAX || (l->t.n >= l->max && prune_locked(l, now_ms) == 0))
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	memcpy(r->id, id, len + 1);
	r->tokens = l->conf.burst * MILLI;
	r->refill_ms = now_ms;
	htab_insert(&l->t, &r->h, htab_hash(&l->t, id, len));
	return r;
}

static int
take_locked(rdv_climit_t *l, rec_t *c, const char *target, int64_t now_ms, int64_t expires)
{
	int64_t now_s = now_ms / 1000, pair = 0;
	uint64_t th = htab_hash(&l->t, target, strlen(target));
	struct offer *free_out = NULL;
	int64_t *free_in = NULL;
	rec_t *t;

	rec_refill(l, c, now_ms);
	if (c->tokens < MILLI)
		return RDV_CLIMIT_RATE;
	c->tokens -= MILLI; /* every request costs one, granted or not */
	if (c->out == NULL &&
	    (c->out = calloc((size_t)l->conf.per_caller, sizeof(*c->out))) == NULL)
		return RDV_CLIMIT_FULL;
	for (int64_t i = 0; i < l->conf.per_caller; i++) {
		struct offer *o = &c->out[i];
		if (o->expires <= now_s) {
			if (free_out == NULL)
				free_out = o;
		} else if (o->target == th)
			pair++;
	}
	if (pair >= l->conf.per_pair)
		return RDV_CLIMIT_PAIR;
	if (free_out == NULL)
		return RDV_CLIMIT_CALLER;
	if ((t = rec_get(l, target, now_ms)) == NULL ||
	    (t->in == NULL && (t->in = calloc((size_t)l->conf.per_target, sizeof(*t->in))) == NULL))
		return RDV_CLIMIT_FULL;
	for (int64_t i = 0; i < l->conf.per_target && free_in == NULL; i++)
		if (t->in[i] <= now_s)
			free_in = &t->in[i];
	if (free_in == NULL)
		return RDV_CLIMIT_TARGET;
	free_out->target = th;
	free_out->expires = expires;
	*free_in = expires;
	return RDV_CLIMIT_OK;
}

int
rdv_climit_take(rdv_climit_t *l, const char *caller, const char *target, int64_t now_ms,
                int64_t expires, uint64_t *report)
{
	rec_t *c;
	int rc;

	*report = 0;
	pthread_mutex_lock(&l->mu);
	if ((c = rec_get(l, caller, now_ms)) == NULL)
		rc = RDV_CLIMIT_FULL;
	else if ((rc = take_locked(l, c, target, now_ms, expires)) != RDV_CLIMIT_OK) {
		c->refused++;
		if (c->reported_ms == 0 || now_ms - c->reported_ms >= RDV_CLIMIT_REPORT_MS) {
			*report = c->refused;
			c->refused = 0;
			c->reported_ms = now_ms;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void
rdv_climit_release(rdv_climit_t *l, const char *caller, const char *target, int64_t expires)
{
	uint64_t th = htab_hash(&l->t, target, strlen(target));
	rec_t *r;

	pthread_mutex_lock(&l->mu);
	if ((r = rec_find(l, caller)) != NULL && r->out != NULL)
		for (int64_t i = 0; i < l->conf.per_caller; i++)
			if (r->out[i].target == th && r->out[i].expires == expires) {
				r->out[i].expires = 0;
				break;
			}
	if ((r = rec_find(l, target)) != NULL && r->in != NULL)
		for (int64_t i = 0; i < l->conf.per_target; i++)
			if (r->in[i] == expires) {
				r->in[i] = 0;
				break;
			}
	pthread_mutex_unlock(&l->mu);
}

const char *
rdv_climit_why(int rc)
{
	switch (rc) {
	case RDV_CLIMIT_RATE:
		return "too many RDV_CONNECT_REQs from this device; slow down";
	case RDV_CLIMIT_PAIR:
		return "this device already holds the most unused offers allowed at this target";
	case RDV_CLIMIT_CALLER:
		return "this device already holds the most unused session offers allowed";
	case RDV_CLIMIT_TARGET:
		return "the target already holds the most unused session offers allowed";
	case RDV_CLIMIT_FULL:
		return "rendezvousd tracks too many callers right now";
	default:
		return "ok";
	}
}
