/* ratelimit: failure counters and lockout backoff (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"

#define RL_KEY_CAP 160

typedef struct rl_ent {
	char key[RL_KEY_CAP];
	int64_t failures;
	int64_t last_fail;
	int64_t locked_until;
	htab_node_t h;
	struct rl_ent *prev, *next; /* age order: head is the newest failure */
} rl_ent_t;

struct cp_rl {
	pthread_mutex_t mu;
	cp_rl_conf_t conf;
	htab_t t; /* SipHash-keyed: the keys are the peer's choice */
	size_t n, max;
	rl_ent_t *head, *tail;
};

static int
rl_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, rl_ent_t, h)->key, key, len);
}

cp_rl_t *
cp_rl_new(const cp_rl_conf_t *conf, size_t max_entries)
{
	cp_rl_t *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	if (htab_init(&rl->t, max_entries, max_entries, rl_eq, NULL) == -1) {
		free(rl);
		return NULL;
	}
	rl->max = max_entries > 0 ? max_entries : 1;
	rl->conf = *conf;
	pthread_mutex_init(&rl->mu, NULL);
	return rl;
}

void
cp_rl_free(cp_rl_t *rl)
{
	rl_ent_t *e, *next;

	if (rl == NULL)
		return;
	for (e = rl->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&rl->mu);
	htab_fini(&rl->t);
	free(rl);
}

static rl_ent_t *
rl_find(cp_rl_t *rl, uint64_t h, const char *key)
{
	htab_node_t *n = htab_find(&rl->t, h, key, strlen(key));

	return n != NULL ? HTAB_ENTRY(n, rl_ent_t, h) : NULL;
}

static void
rl_unlink_age(cp_rl_t *rl, rl_ent_t *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		rl->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		rl->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
rl_push_front(cp_rl_t *rl, rl_ent_t *e)
{
	e->prev = NULL;
	e->next = rl->head;
	if (rl->head != NULL)
		rl->head->prev = e;
	rl->head = e;
	if (rl->tail == NULL)
		rl->tail = e;
}

static void
rl_remove(cp_rl_t *rl, rl_ent_t *e)
{
	htab_remove(&rl->t, &e->h);
	rl_unlink_age(rl, e);
	rl->n--;
	free(e);
}

/* A key whose lock is over and whose last failure is old starts afresh. */
static int
rl_stale(const cp_rl_t *rl, const rl_ent_t *e, int64_t now)
{
	return e->locked_until <= now && now - e->last_fail >= rl->conf.lockout_max_s;
}

int64_t
cp_rl_lock_for(const cp_rl_conf_t *conf, int64_t failures)
{
	int64_t lock = conf->lockout_s;

	if (failures < conf->max_failures)
		return 0;
	for (int64_t k = failures - conf->max_failures; k > 0 && lock < conf->lockout_max_s; k--)
		lock *= 2;
	return lock < conf->lockout_max_s ? lock : conf->lockout_max_s;
}

int64_t
cp_rl_check(cp_rl_t *rl, const char *key, int64_t now)
{
	uint64_t h = htab_hash(&rl->t, key, strlen(key));
	rl_ent_t *e;
	int64_t left = 0;

	pthread_mutex_lock(&rl->mu);
	if ((e = rl_find(rl, h, key)) != NULL) {
		if (rl_stale(rl, e, now))
			rl_remove(rl, e);
		else if (e->locked_until > now)
			left = e->locked_until - now;
	}
	pthread_mutex_unlock(&rl->mu);
	return left;
}

/* Makes room: stale keys from the old end, then the oldest unlocked one. */
static int
rl_evict(cp_rl_t *rl, int64_t now)
{
	rl_ent_t *e, *prev;

	for (e = rl->tail; e != NULL && rl->n >= rl->max; e = prev) {
		prev = e->prev;
		if (rl_stale(rl, e, now))
			rl_remove(rl, e);
	}
	for (e = rl->tail; e != NULL && rl->n >= rl->max; e = prev) {
		prev = e->prev;
		if (e->locked_until <= now)
			rl_remove(rl, e);
	}
	return rl->n < rl->max ? 0 : -1;
}

int
cp_rl_fail(cp_rl_t *rl, const char *key, int64_t now, int64_t *until)
{
	rl_ent_t *e;
	uint64_t h;
	int64_t lock;
	int locked = 0;

	if (strlen(key) >= RL_KEY_CAP)
		return 0;
	h = htab_hash(&rl->t, key, strlen(key));
	pthread_mutex_lock(&rl->mu);
	if ((e = rl_find(rl, h, key)) != NULL && rl_stale(rl, e, now)) {
		rl_remove(rl, e);
		e = NULL;
	}
	if (e == NULL) {
		/* every slot locked: the key goes uncounted, the locks stay */
		if ((rl->n >= rl->max && rl_evict(rl, now) == -1) ||
		    (e = calloc(1, sizeof(*e))) == NULL) {
			pthread_mutex_unlock(&rl->mu);
			return 0;
		}
		memcpy(e->key, key, strlen(key) + 1);
		htab_insert(&rl->t, &e->h, h);
		rl->n++;
	} else
		rl_unlink_age(rl, e);
	rl_push_front(rl, e);
	e->failures++;
	e->last_fail = now;
	if ((lock = cp_rl_lock_for(&rl->conf, e->failures)) > 0) {
		e->locked_until = now + lock;
		locked = 1;
		if (until != NULL)
			*until = e->locked_until;
	}
	pthread_mutex_unlock(&rl->mu);
	return locked;
}

void
cp_rl_success(cp_rl_t *rl, const char *key)
{
	uint64_t h = htab_hash(&rl->t, key, strlen(key));
	rl_ent_t *e;

	pthread_mutex_lock(&rl->mu);
	if ((e = rl_find(rl, h, key)) != NULL)
		rl_remove(rl, e);
	pthread_mutex_unlock(&rl->mu);
}

size_t
cp_rl_size(cp_rl_t *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->mu);
	n = rl->n;
	pthread_mutex_unlock(&rl->mu);
	return n;
}
