/* lockout: guessing throttled by source, identity budgets, trusted pairs
 * (see lockout.h). */
#include "lockout.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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
	int64_t stored; /* pairs: the trust end last handed out to be written */
	htab_node_t h;
	struct lk_ent *prev, *next; /* age order: head is the newest change */
} lk_ent_t;

typedef struct lk_tab {
	htab_t t; /* SipHash-keyed: the keys are the peer's choice */
	size_t n, max;
	lk_ent_t *head, *tail;
} lk_tab_t;

struct lockout {
	pthread_mutex_t mu;
	lockout_conf_t conf;
	lk_tab_t tab[3]; /* LOCKOUT_SOURCE, LOCKOUT_SUBJECT, LOCKOUT_PAIR */
	lifecycle_t lc;  /* the owner and each pending lockout_persist_job */
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

	for (int i = 0; i < 3; i++) {
		for (e = l->tab[i].head; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		htab_fini(&l->tab[i].t);
	}
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int
lockout_conf_check(const lockout_conf_t *conf, err_t *err)
{
	if (conf->max_failures < 1 || conf->addr_max_failures < 1 || conf->lockout_s < 1 ||
	    conf->lockout_max_s < 1 || conf->trust_s < 1 || conf->table_max < 1)
		return err_set(err, STB_BAD_REQUEST,
		               "auth.*: every lockout setting must be at least 1");
	if (conf->lockout_s > conf->lockout_max_s)
		return err_set(err, STB_BAD_REQUEST,
		               "auth.lockout_s (%lld) is longer than auth.lockout_max_s (%lld)",
		               conf->lockout_s, conf->lockout_max_s);
	return 0;
}

lockout_t *
lockout_new(const lockout_conf_t *conf, err_t *err)
{
	lockout_t *l;
	size_t max;
	int i;

	if (lockout_conf_check(conf, err) == -1)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	max = (size_t)conf->table_max;
	for (i = 0; i < 3; i++) {
		if (htab_init(&l->tab[i].t, 16, max, lk_eq, err) == -1) {
			while (i-- > 0)
				htab_fini(&l->tab[i].t);
			free(l);
			return NULL;
		}
		l->tab[i].max = max;
	}
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

/* ---- tables ---- */

static lk_ent_t *
lk_find(lk_tab_t *tb, const char *key)
{
	size_t len = strlen(key);
	htab_node_t *n = htab_find(&tb->t, htab_hash(&tb->t, key, len), key, len);

	return n != NULL ? HTAB_ENTRY(n, lk_ent_t, h) : NULL;
}

static void
lk_unlink_age(lk_tab_t *tb, lk_ent_t *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		tb->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		tb->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lk_push_front(lk_tab_t *tb, lk_ent_t *e)
{
	e->prev = NULL;
	e->next = tb->head;
	if (tb->head != NULL)
		tb->head->prev = e;
	tb->head = e;
	if (tb->tail == NULL)
		tb->tail = e;
}

static void
lk_touch(lk_tab_t *tb, lk_ent_t *e)
{
	lk_unlink_age(tb, e);
	lk_push_front(tb, e);
}

static void
lk_remove(lk_tab_t *tb, lk_ent_t *e)
{
	htab_remove(&tb->t, &e->h);
	lk_unlink_age(tb, e);
	tb->n--;
	free(e);
}

/* Failures quiet for lockout_max_s (no failure, no penalty running) are
 * forgotten: the quiet runs from the end of the penalty, so a source that
 * sat one out does not get a fresh allowance at once. */
static void
lk_forget_quiet(const lockout_t *l, lk_ent_t *e, int64_t now)
{
	int64_t last = e->s.last_fail > e->s.until ? e->s.last_fail : e->s.until;

	if (e->s.inflight == 0 && e->s.until <= now && now - last >= l->conf.lockout_max_s) {
		e->s.failures = 0;
		e->s.until = 0;
	}
}

/* An entry that holds nothing worth keeping. */
static int
lk_idle(const lockout_t *l, int table, lk_ent_t *e, int64_t now)
{
	if (e->s.inflight > 0 || e->s.until > now)
		return 0;
	if (table == LOCKOUT_PAIR)
		return 1;
	lk_forget_quiet(l, e, now);
	return e->s.failures == 0;
}

/* Makes room: idle entries from the old end, then the oldest not penalised
 * (or any trusted pair: those only come from successes); -1 when every
 * entry is penalised or in flight. */
static int
lk_evict(lockout_t *l, int table, int64_t now)
{
	lk_tab_t *tb = &l->tab[table];
	lk_ent_t *e, *prev;

	for (e = tb->tail; e != NULL && tb->n >= tb->max; e = prev) {
		prev = e->prev;
		if (lk_idle(l, table, e, now))
			lk_remove(tb, e);
	}
	for (e = tb->tail; e != NULL && tb->n >= tb->max; e = prev) {
		prev = e->prev;
		if (e->s.inflight == 0 && (table == LOCKOUT_PAIR || e->s.until <= now))
			lk_remove(tb, e);
	}
	return tb->n < tb->max ? 0 : -1;
}

/* key's entry, a new one, or NULL when there is no room (uncounted). */
static lk_ent_t *
lk_get(lockout_t *l, int table, const char *key, int64_t now)
{
	lk_tab_t *tb = &l->tab[table];
	size_t len = strlen(key);
	lk_ent_t *e = lk_find(tb, key);

	if (e != NULL) {
		if (table != LOCKOUT_PAIR)
			lk_forget_quiet(l, e, now);
		return e;
	}
	if (len > LOCKOUT_KEY_MAX || (tb->n >= tb->max && lk_evict(l, table, now) == -1) ||
	    (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	htab_insert(&tb->t, &e->h, htab_hash(&tb->t, key, len));
	lk_push_front(tb, e);
	tb->n++;
	return e;
}

static lk_ent_t *
lk_peek(lockout_t *l, int table, const char *key, int64_t now)
{
	lk_ent_t *e = lk_find(&l->tab[table], key);

	if (e != NULL && table != LOCKOUT_PAIR)
		lk_forget_quiet(l, e, now);
	return e;
}

static int
lk_pair_key(char out[LOCKOUT_KEY_MAX + 1], const char *subject, const char *source)
{
	if (strlen(subject) > LOCKOUT_SUBJECT_MAX || strlen(source) > LOCKOUT_SOURCE_MAX)
		return -1;
	snprintf(out, LOCKOUT_KEY_MAX + 1, "%s %s", subject, source);
	return 0;
}

int64_t
lockout_lock_for(const lockout_conf_t *conf, int64_t max, int64_t failures)
{
	int64_t lock = conf->lockout_s;

	if (failures < max)
		return 0;
	for (int64_t k = failures - max; k > 0 && lock < conf->lockout_max_s; k--)
		lock *= 2;
	return lock < conf->lockout_max_s ? lock : conf->lockout_max_s;
}

/* ---- attempts ---- */

static int
lk_trusted(const lockout_t *l, const lk_ent_t *p, int64_t now)
{
	return p != NULL && p->s.until > now &&
	       p->s.failures + p->s.inflight < l->conf.max_failures;
}

/* Under the mutex: 0 when the attempt may go (reserved when t is not
 * NULL), else the seconds to wait. */
static int64_t
lk_decide(lockout_t *l, const char *subject, const char *source, int64_t now, lockout_try_t *t)
{
	char pk[LOCKOUT_KEY_MAX + 1];
	lk_ent_t *p, *src, *sub;
	int guarded;

	if (lk_pair_key(pk, subject, source) == -1)
		return 1; /* no identity or address is that long */
	if (lk_trusted(l, p = lk_peek(l, LOCKOUT_PAIR, pk, now), now)) {
		if (t != NULL) {
			p->s.inflight++;
			t->trusted = 1;
		}
		return 0;
	}
	src = lk_peek(l, LOCKOUT_SOURCE, source, now);
	if (src != NULL && src->s.until > now)
		return src->s.until - now;
	/* once a source has failed, its allowance covers what it has in flight
	 * (a clean one may have any number: many first logins behind one NAT);
	 * past the threshold (the penalty over) it goes one attempt at a time */
	if (src != NULL && src->s.failures > 0 &&
	    (src->s.failures < l->conf.addr_max_failures
	         ? src->s.failures + src->s.inflight >= l->conf.addr_max_failures
	         : src->s.inflight > 0))
		return 1;
	sub = lk_peek(l, LOCKOUT_SUBJECT, subject, now);
	guarded = sub != NULL && sub->s.failures + sub->s.inflight >= l->conf.max_failures;
	if (guarded && src != NULL && src->s.inflight > 0)
		return 1;
	if (t == NULL)
		return 0;
	if (src != NULL || (src = lk_get(l, LOCKOUT_SOURCE, source, now)) != NULL)
		src->s.inflight++;
	if (sub != NULL || (sub = lk_get(l, LOCKOUT_SUBJECT, subject, now)) != NULL)
		sub->s.inflight++;
	t->guarded = guarded;
	return 0;
}

int64_t
lockout_check(lockout_t *l, const char *subject, const char *source, int64_t now)
{
	int64_t left;

	pthread_mutex_lock(&l->mu);
	left = lk_decide(l, subject, source, now, NULL);
	pthread_mutex_unlock(&l->mu);
	return left;
}

int64_t
lockout_begin(lockout_t *l, const char *subject, const char *source, int64_t now, lockout_try_t *t)
{
	int64_t left;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&l->mu);
	if ((left = lk_decide(l, subject, source, now, t)) == 0) {
		snprintf(t->subject, sizeof(t->subject), "%s", subject);
		snprintf(t->source, sizeof(t->source), "%s", source);
		t->held = 1;
	}
	pthread_mutex_unlock(&l->mu);
	return left;
}

static void
lk_release(lockout_t *l, int table, const char *key)
{
	lk_ent_t *e = lk_find(&l->tab[table], key);

	if (e != NULL && e->s.inflight > 0)
		e->s.inflight--;
}

/* A success: the pair is trusted for trust_s from now. */
static int
lk_right(lockout_t *l, const char *pk, int64_t now)
{
	lk_ent_t *p = lk_get(l, LOCKOUT_PAIR, pk, now);

	if (p == NULL)
		return 0;
	lk_touch(&l->tab[LOCKOUT_PAIR], p);
	p->s.failures = 0;
	p->s.last_fail = now;
	p->s.until = now + l->conf.trust_s;
	if (p->stored >= now + l->conf.trust_s / 2)
		return 0; /* what is stored still holds for long enough */
	p->stored = p->s.until;
	return LOCKOUT_WRITE;
}

/* A wrong proof: counted against the pair, the identity and the source. */
static int
lk_wrong(lockout_t *l, const lockout_try_t *t, const char *pk, int64_t now)
{
	const lockout_conf_t *c = &l->conf;
	lk_ent_t *p = lk_find(&l->tab[LOCKOUT_PAIR], pk);
	lk_ent_t *sub = lk_get(l, LOCKOUT_SUBJECT, t->subject, now);
	lk_ent_t *src = lk_get(l, LOCKOUT_SOURCE, t->source, now);
	int guarded = t->guarded, rc = 0;

	if (p != NULL)
		p->s.failures++;
	if (sub != NULL) {
		guarded |= sub->s.failures >= c->max_failures; /* guarded meanwhile */
		if (++sub->s.failures == c->max_failures)
			rc |= LOCKOUT_GUARDED;
		sub->s.last_fail = now;
		lk_touch(&l->tab[LOCKOUT_SUBJECT], sub);
	}
	if (src != NULL) {
		src->s.failures++;
		/* a guess at a guarded identity spends the source's allowance */
		if (guarded && !t->trusted && src->s.failures < c->addr_max_failures)
			src->s.failures = c->addr_max_failures;
		if (src->s.failures >= c->addr_max_failures) {
			if (src->s.until <= now) /* a new penalty, not one extended */
				rc |= LOCKOUT_PENALISED;
			src->s.until =
			    now + lockout_lock_for(c, c->addr_max_failures, src->s.failures);
		}
		src->s.last_fail = now;
		lk_touch(&l->tab[LOCKOUT_SOURCE], src);
	}
	return rc;
}

int
lockout_end(lockout_t *l, lockout_try_t *t, int outcome, int64_t now)
{
	char pk[LOCKOUT_KEY_MAX + 1];
	int rc = 0;

	if (!t->held || lk_pair_key(pk, t->subject, t->source) == -1)
		return 0;
	t->held = 0;
	pthread_mutex_lock(&l->mu);
	if (t->trusted)
		lk_release(l, LOCKOUT_PAIR, pk);
	else {
		lk_release(l, LOCKOUT_SOURCE, t->source);
		lk_release(l, LOCKOUT_SUBJECT, t->subject);
	}
	if (outcome == LOCKOUT_RIGHT)
		rc = lk_right(l, pk, now);
	else if (outcome == LOCKOUT_WRONG)
		rc = lk_wrong(l, t, pk, now);
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int
lockout_get(lockout_t *l, int table, const char *subject, const char *source, lockout_state_t *st)
{
	char pk[LOCKOUT_KEY_MAX + 1];
	const char *key = table == LOCKOUT_SOURCE    ? source
	                  : table == LOCKOUT_SUBJECT ? subject
	                                             : pk;
	lk_ent_t *e = NULL;

	if (table < 0 || table > 2 || (table == LOCKOUT_PAIR && lk_pair_key(pk, subject, source)))
		return 0;
	pthread_mutex_lock(&l->mu);
	if ((e = lk_find(&l->tab[table], key)) != NULL)
		*st = e->s;
	pthread_mutex_unlock(&l->mu);
	return e != NULL;
}

size_t
lockout_size(lockout_t *l, int table)
{
	size_t n;

	if (table < 0 || table > 2)
		return 0;
	pthread_mutex_lock(&l->mu);
	n = l->tab[table].n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* ---- persistence: trusted pairs ---- */

int
lockout_persist(lockout_t *l, store_conn_t *c, const lockout_try_t *t, err_t *err)
{
	lockout_state_t s;
	store_stmt_t *st;
	char pk[LOCKOUT_KEY_MAX + 1];
	int have;

	if (lk_pair_key(pk, t->subject, t->source) == -1)
		return err_set(err, STB_BAD_REQUEST, "lockout key too long");
	/* copied out: no lock held across I/O */
	have = lockout_get(l, LOCKOUT_PAIR, t->subject, t->source, &s) && s.until > 0;
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
	store_bind_str(st, 1, pk);
	if (have) {
		store_bind_int64(st, 2, s.failures);
		store_bind_int64(st, 3, s.last_fail);
		store_bind_int64(st, 4, s.until);
	}
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

struct lk_job {
	lockout_t *l;
	lockout_try_t t;
};

static int
lk_job_write(store_conn_t *c, void *arg, err_t *err)
{
	struct lk_job *j = arg;

	return lockout_persist(j->l, c, &j->t, err);
}

static void
lk_job_done(void *arg, const err_t *err)
{
	struct lk_job *j = arg;

	if (err->status != STB_OK)
		log_warnx("trust of %s from %s not persisted: %s", j->t.subject, j->t.source,
		          err->msg);
	lifecycle_unref(&j->l->lc);
	free(j);
}

int
lockout_persist_job(lockout_t *l, store_t *s, mbox_t *mb, const lockout_try_t *t, err_t *err)
{
	struct lk_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	j->t = *t;
	j->l = l;
	lifecycle_ref(&l->lc);
	if (store_write(s, mb, lk_job_write, lk_job_done, j, err) == -1) {
		lifecycle_unref(&l->lc);
		free(j);
		return -1;
	}
	return 0;
}

/* Puts a loaded pair in (never over one in memory, never evicting: the
 * rows come latest first). */
static void
lk_put(lockout_t *l, const char *key, const lockout_state_t *s, int64_t now)
{
	lk_tab_t *tb = &l->tab[LOCKOUT_PAIR];
	lk_ent_t *e;

	pthread_mutex_lock(&l->mu);
	if (tb->n < tb->max && lk_find(tb, key) == NULL &&
	    (e = lk_get(l, LOCKOUT_PAIR, key, now)) != NULL) {
		e->s = *s;
		e->s.inflight = 0;
		e->stored = s->until;
		lk_unlink_age(tb, e); /* oldest last: append */
		e->prev = tb->tail;
		if (tb->tail != NULL)
			tb->tail->next = e;
		else
			tb->head = e;
		tb->tail = e;
	}
	pthread_mutex_unlock(&l->mu);
}

int
lockout_load(lockout_t *l, store_conn_t *c, int64_t now, err_t *err)
{
	store_stmt_t *st;
	lockout_state_t s = {0};
	const char *key;
	size_t len;
	int rc;

	/* rows without a space are the per-identity lockouts of old versions */
	st = store_stmt(c,
	                "SELECT key, failures, last_fail, locked_until FROM lockouts "
	                "WHERE key LIKE '% %' AND locked_until > ?1 "
	                "ORDER BY locked_until DESC",
	                err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		key = store_col_text(st, 0, &len);
		if (key == NULL || len == 0 || len > LOCKOUT_KEY_MAX)
			continue;
		s.failures = store_col_int64(st, 1);
		s.last_fail = store_col_int64(st, 2);
		s.until = store_col_int64(st, 3);
		lk_put(l, key, &s, now);
	}
	store_reset(st);
	return rc == STORE_DONE ? 0 : -1;
}
