/* Unit tests for lockout: source penalties and their backoff, identity
 * guards that never refuse, trusted pairs, reservations (pipelined
 * attempts), the source key of an address, bounded tables under a flood,
 * and persistence of trust through a real store. */
#include <stdio.h>
#include <string.h>

#include "lockout.h"
#include "store.h"
#include "testutil.h"

#define T0 1000000

/* max_failures, addr_max_failures, lockout_s, lockout_max_s, trust_s, table_max */
static const lockout_conf_t conf = {3, 4, 60, 480, 1000, 100};

/* One whole attempt: 0 (and the lockout_end flags in *flags) when it was
 * let through, else the seconds it was told to wait. */
static int64_t
attempt(lockout_t *l, const char *subject, const char *source, int outcome, int64_t t, int *flags)
{
	lockout_try_t lt;
	int64_t left = lockout_begin(l, subject, source, t, &lt);

	if (left == 0) {
		assert_int_equal(lt.held, 1);
		*flags = lockout_end(l, &lt, outcome, t);
		assert_int_equal(lt.held, 0);
	} else
		assert_int_equal(lt.held, 0);
	return left;
}

static void
test_lock_for(void **state)
{
	static const struct {
		int64_t failures, lock;
	} cases[] = {
	    {0, 0}, {3, 0}, {4, 60}, {5, 120}, {6, 240}, {7, 480}, {8, 480}, {1000, 480},
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++)
		assert_int_equal(lockout_lock_for(&conf, 4, cases[i].failures), cases[i].lock);
}

static void
test_source_penalty(void **state)
{
	lockout_t *l = lockout_new(&conf, NULL);
	char id[32];
	int f = 0;

	(void)state;
	assert_non_null(l);
	/* four failures from s1, each for another ID: the fourth penalises */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "made-up-%d", i);
		assert_int_equal(attempt(l, id, "s1", LOCKOUT_WRONG, T0 + i, &f), 0);
		assert_int_equal(f & LOCKOUT_PENALISED, i == 3 ? LOCKOUT_PENALISED : 0);
	}
	assert_int_equal(lockout_check(l, "any", "s1", T0 + 3), 60);
	assert_int_equal(lockout_check(l, "any", "s2", T0 + 3), 0);
	/* over: one attempt at a time, and the next failure doubles */
	assert_int_equal(lockout_check(l, "any", "s1", T0 + 63), 0);
	assert_int_equal(attempt(l, "x", "s1", LOCKOUT_WRONG, T0 + 63, &f), 0);
	assert_int_equal(f, LOCKOUT_PENALISED);
	assert_int_equal(lockout_check(l, "any", "s1", T0 + 63), 120);
	assert_int_equal(attempt(l, "x", "s1", LOCKOUT_WRONG, T0 + 183, &f), 0);
	assert_int_equal(lockout_check(l, "any", "s1", T0 + 183), 240);
	assert_int_equal(attempt(l, "x", "s1", LOCKOUT_WRONG, T0 + 423, &f), 0);
	assert_int_equal(attempt(l, "x", "s1", LOCKOUT_WRONG, T0 + 903, &f), 0);
	assert_int_equal(lockout_check(l, "any", "s1", T0 + 903), 480); /* the cap */
	/* a success does not clear a source (a NAT's real logins would) */
	assert_int_equal(attempt(l, "real", "s1", LOCKOUT_RIGHT, T0 + 1383, &f), 0);
	assert_int_equal(attempt(l, "y", "s1", LOCKOUT_WRONG, T0 + 1383, &f), 0);
	assert_int_equal(f, LOCKOUT_PENALISED);
	/* quiet for lockout_max_s after the penalty ended: forgotten */
	assert_int_equal(attempt(l, "z", "s1", LOCKOUT_WRONG, T0 + 1383 + 480 + 480, &f), 0);
	assert_int_equal(f, 0);
	lockout_free(l);
}

static void
test_guard_never_refuses(void **state)
{
	lockout_t *l = lockout_new(&conf, NULL);
	lockout_try_t a, b;
	lockout_state_t st;
	int f = 0;

	(void)state;
	/* three sources, one wrong proof each: the identity is guarded */
	assert_int_equal(attempt(l, "dev", "s1", LOCKOUT_WRONG, T0, &f), 0);
	assert_int_equal(attempt(l, "dev", "s2", LOCKOUT_WRONG, T0, &f), 0);
	assert_int_equal(attempt(l, "dev", "s3", LOCKOUT_WRONG, T0, &f), 0);
	assert_int_equal(f, LOCKOUT_GUARDED);
	/* a fresh source is still let through (the real box, elsewhere) */
	assert_int_equal(lockout_check(l, "dev", "s4", T0 + 1), 0);
	assert_int_equal(attempt(l, "dev", "s4", LOCKOUT_RIGHT, T0 + 1, &f), 0);
	assert_int_equal(f, LOCKOUT_WRITE);
	/* ... but one at a time, and a wrong proof penalises its source at once */
	assert_int_equal(lockout_begin(l, "dev", "s5", T0 + 2, &a), 0);
	assert_int_equal(lockout_begin(l, "dev", "s5", T0 + 2, &b), 1);
	assert_int_equal(lockout_end(l, &a, LOCKOUT_WRONG, T0 + 2), LOCKOUT_PENALISED);
	assert_int_equal(lockout_check(l, "dev", "s5", T0 + 2), 60);
	assert_int_equal(lockout_check(l, "other", "s5", T0 + 2), 60);
	/* s1 (one failure so far) is not penalised, and gets one guess */
	assert_int_equal(attempt(l, "dev", "s1", LOCKOUT_WRONG, T0 + 3, &f), 0);
	assert_int_equal(f, LOCKOUT_PENALISED);
	assert_int_equal(lockout_get(l, LOCKOUT_SUBJECT, "dev", NULL, &st), 1);
	assert_int_equal(st.failures, 5);
	assert_int_equal(st.inflight, 0);
	/* forgotten after lockout_max_s of quiet: no longer guarded */
	assert_int_equal(attempt(l, "dev", "s6", LOCKOUT_WRONG, T0 + 3 + 480, &f), 0);
	assert_int_equal(f, 0);
	lockout_free(l);
}

static void
test_trusted_pair(void **state)
{
	lockout_t *l = lockout_new(&conf, NULL);
	char id[32];
	int f = 0;

	(void)state;
	assert_int_equal(attempt(l, "box", "nat", LOCKOUT_RIGHT, T0, &f), 0);
	assert_int_equal(f, LOCKOUT_WRITE);
	/* many made-up IDs from behind the same NAT penalise the address ... */
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "guess-%d", i);
		attempt(l, id, "nat", LOCKOUT_WRONG, T0 + 1, &f);
	}
	assert_int_not_equal(lockout_check(l, "newbox", "nat", T0 + 2), 0);
	/* a failure of the trusted pair meanwhile extends it, starts none */
	assert_int_equal(attempt(l, "box", "nat", LOCKOUT_WRONG, T0 + 2, &f), 0);
	assert_int_equal(f, 0);
	/* ... and guessing "box" from elsewhere guards it and penalises those */
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "elsewhere-%d", i);
		attempt(l, "box", id, LOCKOUT_WRONG, T0 + 2, &f);
	}
	/* the box that proved itself from the NAT before is let through */
	assert_int_equal(lockout_check(l, "box", "nat", T0 + 3), 0);
	assert_int_equal(attempt(l, "box", "nat", LOCKOUT_RIGHT, T0 + 3, &f), 0);
	assert_int_equal(f, 0); /* the stored trust still holds long enough */
	assert_int_equal(attempt(l, "box", "nat", LOCKOUT_RIGHT, T0 + 600, &f), 0);
	assert_int_equal(f, LOCKOUT_WRITE); /* half of trust_s spent: refreshed */
	/* wrong proofs on the pair itself: max_failures in a row end its standing */
	for (int i = 0; i < 3; i++)
		assert_int_equal(attempt(l, "box", "nat", LOCKOUT_WRONG, T0 + 601, &f), 0);
	/* (the NAT is still penalised: those failures extended it) */
	assert_int_not_equal(lockout_check(l, "box", "nat", T0 + 601), 0);
	/* trust runs out after trust_s */
	assert_int_equal(attempt(l, "box2", "home", LOCKOUT_RIGHT, T0, &f), 0);
	for (int i = 0; i < 4; i++)
		attempt(l, "x", "home", LOCKOUT_WRONG, T0 + 990, &f);
	assert_int_equal(lockout_check(l, "box2", "home", T0 + 999), 0);
	assert_int_not_equal(lockout_check(l, "box2", "home", T0 + 1001), 0);
	lockout_free(l);
}

/* Point 13: attempts reserved before the (slow) check count at once, so
 * twenty pipelined guesses get the identity's budget and no more. */
static void
test_reservation(void **state)
{
	lockout_t *l = lockout_new(&conf, NULL);
	lockout_try_t t[20];
	int admitted = 0;

	(void)state;
	for (int i = 0; i < 20; i++)
		admitted += lockout_begin(l, "dev", "s1", T0, &t[i]) == 0;
	assert_int_equal(admitted, 3);
	for (int i = 0; i < 20; i++)
		lockout_end(l, &t[i], LOCKOUT_WRONG, T0);
	/* a clean source may have any number in flight (first logins behind a
	 * NAT); once it has failed, its allowance covers what is in flight */
	admitted = 0;
	for (int i = 0; i < 20; i++) {
		char id[16];
		snprintf(id, sizeof(id), "c%d", i);
		admitted += lockout_begin(l, id, "s2", T0, &t[i]) == 0;
	}
	assert_int_equal(admitted, 20);
	for (int i = 0; i < 20; i++)
		lockout_end(l, &t[i], LOCKOUT_RIGHT, T0);
	{
		int f;
		assert_int_equal(attempt(l, "x", "s2", LOCKOUT_WRONG, T0, &f), 0);
	}
	admitted = 0;
	for (int i = 0; i < 20; i++) {
		char id[16];
		snprintf(id, sizeof(id), "d%d", i);
		admitted += lockout_begin(l, id, "s2", T0, &t[i]) == 0;
	}
	assert_int_equal(admitted, 3);
	/* a VOID settles nothing: released, the allowance is back */
	for (int i = 0; i < 20; i++)
		assert_int_equal(lockout_end(l, &t[i], LOCKOUT_VOID, T0), 0);
	assert_int_equal(lockout_check(l, "d0", "s2", T0), 0);
	/* a trusted pair's pipelined attempts stop at max_failures too */
	{
		int f;
		assert_int_equal(attempt(l, "box", "s3", LOCKOUT_RIGHT, T0, &f), 0);
	}
	admitted = 0;
	for (int i = 0; i < 20; i++)
		admitted += lockout_begin(l, "box", "s3", T0, &t[i]) == 0 && t[i].trusted;
	assert_int_equal(admitted, 3);
	for (int i = 0; i < 20; i++)
		lockout_end(l, &t[i], LOCKOUT_VOID, T0);
	lockout_free(l);
}

/* The attack of the issue: a guesser sends one wrong proof whenever it may,
 * for two simulated hours; the real box (from another source, never seen
 * before, or from the guesser's own NAT after one login) always gets in,
 * and the guesser gets a handful of checks. */
static void
test_steady_guesser(void **state)
{
	lockout_t *l = lockout_new(&(lockout_conf_t){5, 10, 60, 3600, 86400, 1000}, NULL);
	int guesses = 0, ok = 0, tries = 0, f;

	(void)state;
	assert_int_equal(attempt(l, "box", "nat", LOCKOUT_RIGHT, T0, &f), 0);
	for (int64_t t = T0; t < T0 + 7200; t++) {
		if (attempt(l, "box", "attacker", LOCKOUT_WRONG, t, &f) == 0)
			guesses++;
		if (attempt(l, "guess", "nat", LOCKOUT_WRONG, t, &f) == 0)
			guesses++;
		if (t % 300 == 0) {
			tries += 2;
			ok += attempt(l, "box", "fresh", LOCKOUT_RIGHT, t, &f) == 0;
			ok += attempt(l, "box", "nat", LOCKOUT_RIGHT, t, &f) == 0;
		}
	}
	assert_int_equal(ok, tries);
	/* 10 each, then one per doubling penalty (60 .. 3600 s) */
	if (guesses > 2 * (10 + 7))
		fail_msg("%d guesses in two hours", guesses);
	lockout_free(l);
}

static void
test_bounded(void **state)
{
	lockout_t *l = lockout_new(&(lockout_conf_t){3, 1, 60, 3600, 1000, 4}, NULL);
	lockout_try_t held;
	char src[32];
	int f;

	(void)state;
	/* four penalised sources fill the table */
	for (int i = 0; i < 4; i++) {
		snprintf(src, sizeof(src), "p%d", i);
		attempt(l, "x", src, LOCKOUT_WRONG, T0, &f);
	}
	assert_int_equal(lockout_size(l, LOCKOUT_SOURCE), 4);
	/* a flood of new sources never evicts a penalty: they go uncounted */
	for (int i = 0; i < 1000; i++) {
		snprintf(src, sizeof(src), "flood-%d", i);
		attempt(l, "y", src, LOCKOUT_WRONG, T0 + 1, &f);
	}
	assert_int_equal(lockout_size(l, LOCKOUT_SOURCE), 4);
	for (int i = 0; i < 4; i++) {
		snprintf(src, sizeof(src), "p%d", i);
		assert_int_not_equal(lockout_check(l, "x", src, T0 + 1), 0);
	}
	assert_int_equal(lockout_check(l, "x", "flood-1", T0 + 1), 0);
	/* penalties over: room again, but never over an attempt in flight */
	assert_int_equal(lockout_begin(l, "z", "p0", T0 + 61, &held), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(src, sizeof(src), "late-%d", i);
		attempt(l, "y", src, LOCKOUT_WRONG, T0 + 61, &f);
	}
	assert_int_equal(lockout_size(l, LOCKOUT_SOURCE), 4);
	assert_int_equal(lockout_end(l, &held, LOCKOUT_WRONG, T0 + 61), LOCKOUT_PENALISED);
	assert_int_equal(lockout_check(l, "z", "p0", T0 + 61), 120);
	/* keys too long are refused, never counted */
	{
		char big[LOCKOUT_SUBJECT_MAX + 2];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_not_equal(lockout_begin(l, big, "s", T0, &held), 0);
		assert_int_equal(held.held, 0);
	}
	lockout_free(l);
}

/* ---- persistence ---- */

static const char *const migs[] = {LOCKOUT_SCHEMA};
static const char *const migs_pg[] = {LOCKOUT_SCHEMA_PG};

struct pjob {
	lockout_t *l;
	lockout_try_t *t;
};

static int
pjob_write(store_conn_t *c, void *arg, err_t *err)
{
	struct pjob *j = arg;

	return lockout_persist(j->l, c, j->t, err);
}

static store_t *
open_store(const char *db)
{
	err_t err;
	store_t *s = tu_store_open(db, migs, migs_pg, (int)TU_NELEM(migs), &err);

	if (s == NULL)
		fail_msg("store_open: %s", err.msg);
	return s;
}

static int64_t
count_rows(store_t *s)
{
	err_t err;
	store_conn_t *c = store_reader(s, &err);
	store_stmt_t *st;
	int64_t n = -1;

	assert_non_null(c);
	st = store_stmt(c, "SELECT count(*) FROM lockouts", &err);
	assert_non_null(st);
	if (store_step(st, &err) == STORE_ROW)
		n = store_col_int64(st, 0);
	store_reset(st);
	return n;
}

/* One attempt, written when lockout_end says so. */
static int
attempt_persist(store_t *s, lockout_t *l, const char *subject, const char *source, int outcome,
                int64_t t)
{
	lockout_try_t lt;
	struct pjob j = {l, &lt};
	err_t err;
	int f;

	if (lockout_begin(l, subject, source, t, &lt) != 0)
		return -1;
	f = lockout_end(l, &lt, outcome, t);
	if ((f & LOCKOUT_WRITE) && store_write_sync(s, pjob_write, &j, &err) == -1)
		fail_msg("persist: %s", err.msg);
	return f;
}

static int
old_row_write(store_conn_t *c, void *arg, err_t *err)
{
	store_stmt_t *st =
	    store_stmt(c,
	               "INSERT INTO lockouts(key, failures, last_fail, locked_until) "
	               "VALUES('box', 9, 0, 9999999999)",
	               err);

	(void)arg;
	return st == NULL || store_step(st, err) != STORE_DONE ? -1 : 0;
}

static void
test_persist_trust(void **state)
{
	char db[TU_WHERE_MAX];
	lockout_state_t st;
	lockout_t *l;
	store_t *s;
	err_t err;

	(void)state;
	tu_store_where(db, sizeof(db), tu_dir, "lockout.sqlite");
	s = open_store(db);
	l = lockout_new(&conf, &err);
	assert_non_null(l);
	assert_int_equal(attempt_persist(s, l, "box", "10.0.0.1", LOCKOUT_RIGHT, T0),
	                 LOCKOUT_WRITE);
	assert_int_equal(attempt_persist(s, l, "box", "10.0.0.1", LOCKOUT_RIGHT, T0 + 1), 0);
	assert_int_equal(attempt_persist(s, l, "old", "10.0.0.2", LOCKOUT_RIGHT, T0 - 2000),
	                 LOCKOUT_WRITE);
	/* failures, penalties and guards are never written */
	for (int i = 0; i < 10; i++)
		attempt_persist(s, l, "box", "10.9.9.9", LOCKOUT_WRONG, T0 + 2);
	assert_int_equal(count_rows(s), 2);

	/* a row of the per-identity lockouts of old versions */
	if (store_write_sync(s, old_row_write, NULL, &err) == -1)
		fail_msg("old row: %s", err.msg);
	store_close(s);
	lockout_free(l);

	/* a restart: the trust that holds comes back, nothing else */
	s = open_store(db);
	l = lockout_new(&conf, &err);
	assert_non_null(l);
	assert_int_equal(lockout_load(l, store_reader(s, &err), T0 + 2, &err), 0);
	assert_int_equal(lockout_size(l, LOCKOUT_PAIR), 1);
	assert_int_equal(lockout_get(l, LOCKOUT_PAIR, "box", "10.0.0.1", &st), 1);
	assert_int_equal(st.until, T0 + 1000); /* as written at T0 */
	assert_int_equal(lockout_size(l, LOCKOUT_SOURCE), 0);
	assert_int_equal(lockout_size(l, LOCKOUT_SUBJECT), 0); /* the old row ignored */
	assert_int_equal(lockout_check(l, "box", "10.5.5.5", T0 + 2), 0);
	/* and it still lets the box through a penalised address */
	for (int i = 0; i < 4; i++)
		attempt_persist(s, l, "guess", "10.0.0.1", LOCKOUT_WRONG, T0 + 3);
	assert_int_not_equal(lockout_check(l, "other", "10.0.0.1", T0 + 3), 0);
	assert_int_equal(lockout_check(l, "box", "10.0.0.1", T0 + 3), 0);
	store_close(s);
	lockout_free(l);
}

static void
test_conf_check(void **state)
{
	lockout_conf_t c = conf;
	err_t err;

	(void)state;
	assert_int_equal(lockout_conf_check(&c, &err), 0);
	c.lockout_s = c.lockout_max_s + 1;
	assert_int_equal(lockout_conf_check(&c, &err), -1);
	assert_non_null(strstr(err.msg, "auth.lockout_s"));
	assert_null(lockout_new(&c, &err));
}

#define TD(f) cmocka_unit_test_setup_teardown(f, tu_setup_dir, tu_teardown_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lock_for),
	    cmocka_unit_test(test_source_penalty),
	    cmocka_unit_test(test_guard_never_refuses),
	    cmocka_unit_test(test_trusted_pair),
	    cmocka_unit_test(test_reservation),
	    cmocka_unit_test(test_steady_guesser),
	    cmocka_unit_test(test_bounded),
	    TD(test_persist_trust),
	    cmocka_unit_test(test_conf_check),
	};

	return cmocka_run_group_tests_name("lockout", tests, NULL, NULL);
}
