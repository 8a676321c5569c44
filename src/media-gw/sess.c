/* sess: login sessions in memory, hashed by their random id, with striped
 * locks so loops rarely meet (see gw.h for why memory is enough).  A
 * consumed session leaves the open set at once (max counts logins in
 * progress only) and is remembered by a small record until it would have
 * expired plus a TTL, so a replay hears REPLAY rather than NOT_FOUND. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "gw.h"

#define SESS_BUCKETS 8192
#define SESS_STRIPES 64

/* A consumed session: its id, when it can be forgotten, whose it was. */
struct sess_used {
	uint8_t sid[LOGIN_SESSION_LEN];
	int64_t expires;
	struct sess_used *next;
	char ids[]; /* device_id NUL cert_id NUL */
};

struct gw_sessions {
	pthread_mutex_t mu[SESS_STRIPES];
	gw_sess_t *bucket[SESS_BUCKETS];
	struct sess_used *used[SESS_BUCKETS];
	size_t max;
	size_t count;    /* open sessions; atomic */
	size_t nused;    /* consumed ones remembered; atomic */
	size_t max_used; /* past it a replay is NOT_FOUND: still refused */
};

/* Session ids are random, so their first bytes spread evenly. */
static size_t
sess_bucket(const uint8_t sid[LOGIN_SESSION_LEN])
{
	return load_be32(sid) % SESS_BUCKETS;
}

static pthread_mutex_t *
sess_lock(gw_sessions_t *t, size_t b)
{
	pthread_mutex_t *mu = &t->mu[b % SESS_STRIPES];

	pthread_mutex_lock(mu);
	return mu;
}

gw_sessions_t *
gw_sess_new(size_t max)
{
	gw_sessions_t *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	for (int i = 0; i < SESS_STRIPES; i++)
		pthread_mutex_init(&t->mu[i], NULL);
	t->max = max;
	t->max_used = 4 * max + 1024; /* logins per TTL at a busy gateway */
	return t;
}

static void
sess_drop(gw_sess_t *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

void
gw_sess_free(gw_sessions_t *t)
{
	if (t == NULL)
		return;
	for (size_t b = 0; b < SESS_BUCKETS; b++) {
		while (t->bucket[b] != NULL) {
			gw_sess_t *s = t->bucket[b];
			t->bucket[b] = s->next;
			sess_drop(s);
		}
		while (t->used[b] != NULL) {
			struct sess_used *u = t->used[b];
			t->used[b] = u->next;
			free(u);
		}
	}
	for (int i = 0; i < SESS_STRIPES; i++)
		pthread_mutex_destroy(&t->mu[i]);
	free(t);
}

int
gw_sess_open(gw_sessions_t *t, const char *device_id, const char *cert_id, int64_t expires,
             gw_sess_t *out, err_t *err)
{
	gw_sess_t *s;
	pthread_mutex_t *mu;
	size_t b;

	if (strlen(device_id) >= GW_ID_CAP || strlen(cert_id) >= GW_ID_CAP)
		return err_set(err, STB_BAD_REQUEST, "identifier too long");
	if (__atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED) > t->max) {
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		return err_set(err, STB_RATE_LIMITED, "too many logins in progress; retry shortly");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if (RAND_bytes(s->sid, sizeof(s->sid)) != 1 ||
	    RAND_bytes(s->nonce, sizeof(s->nonce)) != 1) {
		sess_drop(s);
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		return err_set(err, STB_INTERNAL, "no randomness");
	}
	memcpy(s->device_id, device_id, strlen(device_id) + 1);
	memcpy(s->cert_id, cert_id, strlen(cert_id) + 1);
	s->expires = expires;
	b = sess_bucket(s->sid);
	mu = sess_lock(t, b);
	s->next = t->bucket[b];
	t->bucket[b] = s;
	*out = *s;
	pthread_mutex_unlock(mu);
	out->next = NULL;
	return 0;
}

/* Moves s from the open set to the consumed records of bucket b (locked). */
static void
sess_consume(gw_sessions_t *t, size_t b, gw_sess_t **pp)
{
	gw_sess_t *s = *pp;
	size_t dl = strlen(s->device_id) + 1, cl = strlen(s->cert_id) + 1;
	struct sess_used *u = NULL;

	*pp = s->next;
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&t->nused, 1, __ATOMIC_RELAXED) > t->max_used ||
	    (u = malloc(sizeof(*u) + dl + cl)) == NULL) {
		__atomic_sub_fetch(&t->nused, 1, __ATOMIC_RELAXED);
	} else {
		memcpy(u->sid, s->sid, LOGIN_SESSION_LEN);
		u->expires = s->expires;
		memcpy(u->ids, s->device_id, dl);
		memcpy(u->ids + dl, s->cert_id, cl);
		u->next = t->used[b];
		t->used[b] = u;
	}
	sess_drop(s);
}

int
gw_sess_take(gw_sessions_t *t, const uint8_t sid[LOGIN_SESSION_LEN], int64_t now, gw_sess_t *out,
             err_t *err)
{
	size_t b = sess_bucket(sid);
	pthread_mutex_t *mu = sess_lock(t, b);
	gw_sess_t **pp;
	struct sess_used *u;
	int rc = 0;

	for (pp = &t->bucket[b]; *pp != NULL; pp = &(*pp)->next)
		if (CRYPTO_memcmp((*pp)->sid, sid, LOGIN_SESSION_LEN) == 0)
			break;
	if (*pp != NULL) {
		gw_sess_t *s = *pp;
		if (now >= s->expires) {
			memcpy(out->device_id, s->device_id, sizeof(out->device_id));
			memcpy(out->cert_id, s->cert_id, sizeof(out->cert_id));
			rc = err_set(err, STB_EXPIRED,
			             "login session expired %lld s ago; start again",
			             (long long)(now - s->expires));
		} else {
			/* consumed before anyone checks the proof: a second try fails */
			*out = *s;
			out->next = NULL;
			sess_consume(t, b, pp);
		}
		pthread_mutex_unlock(mu);
		return rc;
	}
	for (u = t->used[b]; u != NULL; u = u->next)
		if (CRYPTO_memcmp(u->sid, sid, LOGIN_SESSION_LEN) == 0)
			break;
	if (u != NULL) { /* whose it was, for the audit */
		size_t dl = strlen(u->ids) + 1;
		snprintf(out->device_id, sizeof(out->device_id), "%s", u->ids);
		snprintf(out->cert_id, sizeof(out->cert_id), "%s", u->ids + dl);
		rc = err_set(err, STB_REPLAY,
		             "login session was already used: its nonce works once");
	} else
		rc = err_set(err, STB_NOT_FOUND,
		             "no such login session (never issued, or forgotten)");
	pthread_mutex_unlock(mu);
	return rc;
}

size_t
gw_sess_sweep(gw_sessions_t *t, int64_t before)
{
	size_t gone = 0, gone_used = 0;

	for (size_t b = 0; b < SESS_BUCKETS; b++) {
		pthread_mutex_t *mu;
		gw_sess_t **pp;
		struct sess_used **up;

		mu = sess_lock(t, b);
		for (pp = &t->bucket[b]; *pp != NULL;) {
			gw_sess_t *s = *pp;
			if (s->expires < before) {
				*pp = s->next;
				sess_drop(s);
				gone++;
			} else
				pp = &s->next;
		}
		for (up = &t->used[b]; *up != NULL;) {
			struct sess_used *u = *up;
			if (u->expires < before) {
				*up = u->next;
				free(u);
				gone_used++;
			} else
				up = &u->next;
		}
		pthread_mutex_unlock(mu);
	}
	__atomic_sub_fetch(&t->count, gone, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&t->nused, gone_used, __ATOMIC_RELAXED);
	return gone + gone_used;
}

size_t
gw_sess_count(gw_sessions_t *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}
