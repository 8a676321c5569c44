/* lockout: failure counters, lockout backoff, persisted (see lockout.h). */
#include "lockout.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "lifecycle.h"
#include "log.h"

typedef struct lk_ent {
	char key[LOCKOUT_KEY_MAX + 1];
	lockout_state_t s;
	htab_node_t h;
	struct lk_ent *prev, *next; /* age order: head is the newest failure */
} lk_ent_t;

struct lockout {
	pthread_mutex_t mu;
	lockout_conf_t conf;
	htab_t t; /* SipHash-keyed: the keys are the peer's choice */
	size_t n, max;
	lk_ent_t *head, *tail;
	lifecycle_t lc; /* the owner and each pending lockout_persist_job */
};

static int
lk_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, lk_ent_t, h)->key, key, len);
}

static void
lk_destroy(void *arg)
{
	lockout_t *l = arg;
	lk_ent_t *e, *next;

	for (e = l->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&l->mu);
	htab_fini(&l->t);
	free(l);
}

lockout_t *
lockout_new(const lockout_conf_t *conf, size_t max_entries, err_t *err)
{
	lockout_t *l;

	if (conf->max_failures < 1 || conf->lockout_s < 1 || conf->lockout_max_s < 1) {
		err_set(err, STB_BAD_REQUEST,
		        "lockout: max_failures, lockout_s and lockout_max_s "
		        "must be at least 1");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (htab_init(&l->t, max_entries, max_entries, lk_eq, err) == -1) {
		free(l);
		return NULL;
	}
	l->max = max_entries > 0 ? max_entries : 1;
	l->conf = *conf;
	pthread_mutex_init(&l->mu, NULL);
	lifecycle_init(&l->lc, lk_destroy, l);
	return l;
}

void
lockout_free(lockout_t *l)
{
	if (l != NULL)
		lifecycle_unref(&l->lc);
}

static lk_ent_t *
lk_find(lockout_t *l, uint64_t h, const char *key, size_t len)
{
	htab_node_t *n = htab_find(&l->t, h, key, len);

	return n != NULL ? HTAB_ENTRY(n, lk_ent_t, h) : NULL;
}

static void
lk_unlink_age(lockout_t *l, lk_ent_t *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lk_push_front(lockout_t *l, lk_ent_t *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head != NULL)
		l->head->prev = e;
	l->head = e;
	if (l->tail == NULL)
		l->tail = e;
}

static void
lk_remove(lockout_t *l, lk_ent_t *e)
{
	htab_remove(&l->t, &e->h);
	lk_unlink_age(l, e);
	l->n--;
	free(e);
}

/* A key quiet for lockout_max_s (no failure, no lock) starts afresh: the
 * quiet time runs from the end of its lock, so a key that sat out the
 * longest lock does not get max_failures fresh tries at once. */
static int
lk_stale(const lockout_t *l, const lk_ent_t *e, int64_t now)
{
	int64_t last = e->s.last_fail > e->s.locked_until ? e->s.last_fail : e->s.locked_until;

	return e->s.locked_until <= now && now - last >= l->conf.lockout_max_s;
}

int64_t
lockout_lock_for(const lockout_conf_t *conf, int64_t failures)
{
	int64_t lock = conf->lockout_s;

	if (failures < conf->max_failures)
		return 0;
	for (int64_t k = failures - conf->max_failures; k > 0 && lock < conf->lockout_max_s; k--)
		lock *= 2;
	return lock < conf->lockout_max_s ? lock : conf->lockout_max_s;
}

int64_t
lockout_check(lockout_t *l, const char *key, int64_t now)
{
	size_t len = strlen(key);
	uint64_t h = htab_hash(&l->t, key, len);
	lk_ent_t *e;
	int64_t left = 0;

	pthread_mutex_lock(&l->mu);
	/* a stale entry stays until a failure or eviction takes it: removing
	 * it here would forget a known key's row without writing */
	if ((e = lk_find(l, h, key, len)) != NULL && e->s.locked_until > now)
		left = e->s.locked_until - now;
	pthread_mutex_unlock(&l->mu);
	return left;
}

/* Makes room: stale keys from the old end, then the oldest unlocked one,
 * then (for a known key only) the oldest locked unknown one. */
static int
lk_evict(lockout_t *l, int known, int64_t now)
{
	lk_ent_t *e, *prev;

	for (e = l->tail; e != NULL && l->n >= l->max; e = prev) {
		prev = e->prev;
		if (lk_stale(l, e, now))
			lk_remove(l, e);
	}
	for (e = l->tail; e != NULL && l->n >= l->max; e = prev) {
		prev = e->prev;
		if (e->s.locked_until <= now)
			lk_remove(l, e);
	}
	for (e = l->tail; known && e != NULL && l->n >= l->max; e = prev) {
		prev = e->prev;
		if (!e->s.known)
			lk_remove(l, e);
	}
	return l->n < l->max ? 0 : -1;
}

/* A new entry for key, or NULL when there is no room (locks stay). */
static lk_ent_t *
lk_add(lockout_t *l, const char *key, size_t len, uint64_t h, int known, int64_t now)
{
	lk_ent_t *e;

	if ((l->n >= l->max && lk_evict(l, known, now) == -1) ||
	    (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	htab_insert(&l->t, &e->h, h);
	l->n++;
	return e;
}

int
lockout_fail(lockout_t *l, const char *key, int known, int64_t now, int64_t *until)
{
	size_t len = strlen(key);
	lk_ent_t *e;
	uint64_t h;
	int64_t lock;
	int rc = 0;

	if (len > LOCKOUT_KEY_MAX)
		return 0;
	h = htab_hash(&l->t, key, len);
	pthread_mutex_lock(&l->mu);
	if ((e = lk_find(l, h, key, len)) != NULL && e->s.locked_until > now) {
		pthread_mutex_unlock(&l->mu); /* refused while locked: nothing changes */
		return 0;
	}
	if (e != NULL && lk_stale(l, e, now)) {
		e->s.failures = 0; /* starts afresh; the row is overwritten below */
		e->s.locked_until = 0;
	}
	if (e != NULL)
		lk_unlink_age(l, e);
	else if ((e = lk_add(l, key, len, h, known, now)) == NULL) {
		pthread_mutex_unlock(&l->mu); /* every slot locked: uncounted */
		return 0;
	}
	lk_push_front(l, e);
	e->s.known |= known != 0;
	e->s.failures++;
	e->s.last_fail = now;
	if ((lock = lockout_lock_for(&l->conf, e->s.failures)) > 0) {
		e->s.locked_until = now + lock;
		rc |= LOCKOUT_LOCKED;
		if (until != NULL)
			*until = e->s.locked_until;
	}
	if (e->s.known)
		rc |= LOCKOUT_WRITE;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int
lockout_success(lockout_t *l, const char *key)
{
	size_t len = strlen(key);
	uint64_t h = htab_hash(&l->t, key, len);
	lk_ent_t *e;
	int rc = 0;

	pthread_mutex_lock(&l->mu);
	if ((e = lk_find(l, h, key, len)) != NULL) {
		rc = e->s.known ? LOCKOUT_WRITE : 0;
		lk_remove(l, e);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int
lockout_get(lockout_t *l, const char *key, lockout_state_t *st)
{
	size_t len = strlen(key);
	uint64_t h = htab_hash(&l->t, key, len);
	lk_ent_t *e;

	pthread_mutex_lock(&l->mu);
	if ((e = lk_find(l, h, key, len)) != NULL)
		*st = e->s;
	pthread_mutex_unlock(&l->mu);
	return e != NULL;
}

size_t
lockout_size(lockout_t *l)
{
	size_t n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* ---- persistence ---- */

int
lockout_persist(lockout_t *l, store_conn_t *c, const char *key, err_t *err)
{
	lockout_state_t s;
	store_stmt_t *st;
	int have = lockout_get(l, key, &s); /* copied out: no lock held across I/O */

	if (have && !s.known)
		return 0;
	if (have)
		st = store_stmt(c,
		                "INSERT INTO lockouts(key, failures, last_fail, locked_until) "
		                "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET "
		                "failures=excluded.failures, last_fail=excluded.last_fail, "
		                "locked_until=excluded.locked_until",
		                err);
	else
		st = store_stmt(c, "DELETE FROM lockouts WHERE key=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, key);
	if (have) {
		store_bind_int64(st, 2, s.failures);
		store_bind_int64(st, 3, s.last_fail);
		store_bind_int64(st, 4, s.locked_until);
	}
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

struct lk_job {
	lockout_t *l;
	char key[LOCKOUT_KEY_MAX + 1];
};

static int
lk_job_write(store_conn_t *c, void *arg, err_t *err)
{
	struct lk_job *j = arg;

	return lockout_persist(j->l, c, j->key, err);
}

static void
lk_job_done(void *arg, const err_t *err)
{
	struct lk_job *j = arg;

	if (err->status != STB_OK)
		log_warnx("lockout of %s not persisted: %s", j->key, err->msg);
	lifecycle_unref(&j->l->lc);
	free(j);
}

int
lockout_persist_job(lockout_t *l, store_t *s, mbox_t *mb, const char *key, err_t *err)
{
	size_t len = strlen(key);
	struct lk_job *j;

	if (len > LOCKOUT_KEY_MAX)
		return err_set(err, STB_BAD_REQUEST, "lockout key too long");
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	memcpy(j->key, key, len + 1);
	j->l = l;
	lifecycle_ref(&l->lc);
	if (store_write(s, mb, lk_job_write, lk_job_done, j, err) == -1) {
		lifecycle_unref(&l->lc);
		free(j);
		return -1;
	}
	return 0;
}

/* Puts a loaded row in (never over a state already in memory, and never
 * evicting one: the rows come most important first). */
static void
lk_put(lockout_t *l, const char *key, size_t len, const lockout_state_t *s, int64_t now)
{
	uint64_t h = htab_hash(&l->t, key, len);
	lk_ent_t *e;

	pthread_mutex_lock(&l->mu);
	if (l->n < l->max && lk_find(l, h, key, len) == NULL &&
	    (e = lk_add(l, key, len, h, 1, now)) != NULL) {
		e->s = *s;
		/* rows come newest lock first: append, so the age order holds */
		e->prev = l->tail;
		e->next = NULL;
		if (l->tail != NULL)
			l->tail->next = e;
		else
			l->head = e;
		l->tail = e;
	}
	pthread_mutex_unlock(&l->mu);
}

int
lockout_load(lockout_t *l, store_conn_t *c, int64_t now, err_t *err)
{
	store_stmt_t *st;
	lockout_state_t s;
	const char *key;
	size_t len;
	int rc;

	st = store_stmt(c,
	                "SELECT key, failures, last_fail, locked_until FROM lockouts "
	                "WHERE locked_until > ?1 OR last_fail > ?1 "
	                "ORDER BY locked_until DESC, last_fail DESC",
	                err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now - l->conf.lockout_max_s);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		key = store_col_text(st, 0, &len);
		if (len == 0 || len > LOCKOUT_KEY_MAX)
			continue;
		s.failures = store_col_int64(st, 1);
		s.last_fail = store_col_int64(st, 2);
		s.locked_until = store_col_int64(st, 3);
		s.known = 1;
		lk_put(l, key, len, &s, now);
	}
	store_reset(st);
	return rc == STORE_DONE ? 0 : -1;
}
