/* Unit tests for lockout: thresholds, backoff and its cap, clears, old
 * failures forgotten, eviction under a flood, and persistence through a
 * real store. */
#include <stdio.h>
#include <string.h>

#include "lockout.h"
#include "store.h"
#include "testutil.h"

#define T0 1000000

enum op { FAIL, FAIL_ANON, SUCCESS, CHECK };

/* One step on the key "dev" at T0 + at: FAIL (a known key) and FAIL_ANON
 * (the same, unknown) want lockout_fail's flags, SUCCESS lockout_success's,
 * CHECK the seconds left. */
struct step {
	enum op op;
	int64_t at;
	int64_t want;
};

static void
run_steps(const lockout_conf_t *conf, const struct step *s, size_t n)
{
	lockout_t *l = lockout_new(conf, 16, NULL);
	int64_t got;

	assert_non_null(l);
	for (size_t i = 0; i < n; i++) {
		switch (s[i].op) {
		case FAIL:
		case FAIL_ANON:
			got = lockout_fail(l, "dev", s[i].op == FAIL, T0 + s[i].at, NULL);
			break;
		case SUCCESS:
			got = lockout_success(l, "dev");
			break;
		default:
			got = lockout_check(l, "dev", T0 + s[i].at);
		}
		if (got != s[i].want)
			fail_msg("step %zu (op %d at +%lld): %lld, want %lld", i, (int)s[i].op,
			         (long long)s[i].at, (long long)got, (long long)s[i].want);
	}
	lockout_free(l);
}

#define W  LOCKOUT_WRITE
#define LW (LOCKOUT_LOCKED | LOCKOUT_WRITE)

static void
test_thresholds_backoff_cap(void **state)
{
	static const lockout_conf_t conf = {3, 60, 480};
	static const struct step steps[] = {
	    {FAIL, 0, W},
	    {FAIL, 1, W},
	    {CHECK, 1, 0},
	    {FAIL, 2, LW},
	    {CHECK, 2, 60},
	    {CHECK, 61, 1},
	    /* a failure while locked is refused, not counted, not written */
	    {FAIL, 10, 0},
	    {CHECK, 10, 52},
	    {CHECK, 62, 0},
	    /* each further failure doubles the lock: 120, 240, 480, then the cap */
	    {FAIL, 62, LW},
	    {CHECK, 62, 120},
	    {FAIL, 182, LW},
	    {CHECK, 182, 240},
	    {FAIL, 422, LW},
	    {CHECK, 422, 480},
	    {FAIL, 902, LW},
	    {CHECK, 902, 480},
	    /* a success clears it (and says the row must go); a second has nothing */
	    {SUCCESS, 903, W},
	    {CHECK, 903, 0},
	    {SUCCESS, 903, 0},
	    {FAIL, 904, W},
	    {FAIL, 905, W},
	    {FAIL, 906, LW},
	    {CHECK, 906, 60},
	};
	(void)state;
	run_steps(&conf, steps, TU_NELEM(steps));
}

static void
test_unknown_key_never_writes(void **state)
{
	static const lockout_conf_t conf = {2, 60, 3600};
	static const struct step steps[] = {
	    {FAIL_ANON, 0, 0},
	    {FAIL_ANON, 1, LOCKOUT_LOCKED},
	    {CHECK, 1, 60},
	    {FAIL_ANON, 5, 0},
	    {FAIL_ANON, 61, LOCKOUT_LOCKED},
	    {CHECK, 61, 120},
	    {SUCCESS, 62, 0},
	    {CHECK, 62, 0},
	};
	(void)state;
	run_steps(&conf, steps, TU_NELEM(steps));
}

static void
test_old_failures_forgotten(void **state)
{
	static const lockout_conf_t conf = {3, 60, 480};
	static const struct step steps[] = {
	    /* two failures, then quiet for lockout_max_s: the count starts again */
	    {FAIL, 0, W},
	    {FAIL, 1, W},
	    {FAIL, 481, W},
	    {FAIL, 482, W},
	    {FAIL, 483, LW}, /* the third in a row since the quiet */
	    /* the quiet runs from the end of the lock (483 + 60), not from the
	     * last failure: just short of it, the next failure doubles */
	    {FAIL, 543 + 479, LW},
	    {CHECK, 543 + 479, 120},
	    /* a full lockout_max_s after that lock ended: forgotten */
	    {FAIL, 543 + 479 + 120 + 480, W},
	    {CHECK, 543 + 479 + 120 + 480, 0},
	};
	(void)state;
	run_steps(&conf, steps, TU_NELEM(steps));
}

static void
test_eviction_order(void **state)
{
	lockout_t *l = lockout_new(&(lockout_conf_t){3, 60, 3600}, 4, NULL);
	lockout_state_t st;
	char key[32];

	(void)state;
	assert_non_null(l);
	assert_int_equal(lockout_fail(l, "a", 0, T0, NULL), 0);
	assert_int_equal(lockout_fail(l, "b", 0, T0 + 1, NULL), 0);
	assert_int_equal(lockout_fail(l, "c", 0, T0 + 2, NULL), 0);
	for (int i = 0; i < 3; i++)
		lockout_fail(l, "L", 0, T0 + 3, NULL);
	assert_int_equal(lockout_size(l), 4);
	/* full: the oldest unlocked key goes first */
	assert_int_equal(lockout_fail(l, "d", 0, T0 + 4, NULL), 0);
	assert_int_equal(lockout_get(l, "a", &st), 0);
	assert_int_equal(lockout_get(l, "b", &st), 1);
	/* a flood of distinct keys never evicts the lock */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		lockout_fail(l, key, 0, T0 + 5, NULL);
	}
	assert_int_equal(lockout_size(l), 4);
	assert_int_equal(lockout_check(l, "L", T0 + 5), 58);
	lockout_free(l);
}

static void
test_known_key_displaces_locked_unknown(void **state)
{
	lockout_t *l = lockout_new(&(lockout_conf_t){1, 60, 3600}, 2, NULL);

	(void)state;
	assert_non_null(l);
	assert_int_equal(lockout_fail(l, "u1", 0, T0, NULL), LOCKOUT_LOCKED);
	assert_int_equal(lockout_fail(l, "u2", 0, T0 + 1, NULL), LOCKOUT_LOCKED);
	/* every slot locked: a third unknown key goes uncounted */
	assert_int_equal(lockout_fail(l, "u3", 0, T0 + 2, NULL), 0);
	assert_int_equal(lockout_check(l, "u3", T0 + 2), 0);
	/* a known device takes the oldest unknown lock's place */
	assert_int_equal(lockout_fail(l, "k1", 1, T0 + 3, NULL), LW);
	assert_int_equal(lockout_check(l, "u1", T0 + 3), 0);
	assert_int_not_equal(lockout_check(l, "u2", T0 + 3), 0);
	assert_int_equal(lockout_fail(l, "k2", 1, T0 + 4, NULL), LW);
	/* locks of known devices are never displaced */
	assert_int_equal(lockout_fail(l, "k3", 1, T0 + 5, NULL), 0);
	assert_int_not_equal(lockout_check(l, "k1", T0 + 5), 0);
	assert_int_not_equal(lockout_check(l, "k2", T0 + 5), 0);
	/* keys too long are never counted */
	{
		char big[LOCKOUT_KEY_MAX + 2];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(lockout_fail(l, big, 1, T0, NULL), 0);
	}
	lockout_free(l);
}

/* ---- persistence ---- */

static const char *const migs[] = {LOCKOUT_SCHEMA};

struct pjob {
	lockout_t *l;
	const char *key;
};

static int
pjob_write(store_conn_t *c, void *arg, err_t *err)
{
	struct pjob *j = arg;

	return lockout_persist(j->l, c, j->key, err);
}

static void
persist(store_t *s, lockout_t *l, const char *key)
{
	struct pjob j = {l, key};
	err_t err;

	if (store_write_sync(s, pjob_write, &j, &err) == -1)
		fail_msg("persist %s: %s", key, err.msg);
}

static store_t *
open_store(const char *db)
{
	err_t err;
	store_t *s = store_open(db, migs, (int)TU_NELEM(migs), &err);

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

/* Fails key n times at t and writes it when lockout_fail says so. */
static void
fail_n(store_t *s, lockout_t *l, const char *key, int known, int n, int64_t t)
{
	for (int i = 0; i < n; i++)
		if (lockout_fail(l, key, known, t, NULL) & LOCKOUT_WRITE)
			persist(s, l, key);
}

static void
test_persist_round_trip(void **state)
{
	static const lockout_conf_t conf = {3, 60, 3600};
	char db[TU_DIR_MAX + 32];
	lockout_state_t st;
	lockout_t *l;
	store_t *s;
	err_t err;

	(void)state;
	snprintf(db, sizeof(db), "%s/lockout.sqlite", tu_dir);
	s = open_store(db);
	l = lockout_new(&conf, 100, &err);
	assert_non_null(l);
	fail_n(s, l, "dev-locked", 1, 3, T0);
	fail_n(s, l, "dev-partial", 1, 1, T0);
	fail_n(s, l, "dev-old", 1, 3, T0 - 10000); /* lock and quiet long over */
	fail_n(s, l, "dev-cleared", 1, 2, T0);
	if (lockout_success(l, "dev-cleared") & LOCKOUT_WRITE)
		persist(s, l, "dev-cleared");
	/* an unknown key: lockout_fail never asks for a write, and a write
	 * asked for anyway leaves nothing */
	fail_n(s, l, "anon", 0, 3, T0);
	assert_int_not_equal(lockout_check(l, "anon", T0), 0);
	persist(s, l, "anon");
	assert_int_equal(count_rows(s), 3); /* locked, partial, old */
	store_close(s);
	lockout_free(l);

	/* a restart: reopen, load */
	s = open_store(db);
	l = lockout_new(&conf, 100, &err);
	assert_non_null(l);
	assert_int_equal(lockout_load(l, store_reader(s, &err), T0 + 1, &err), 0);
	assert_int_equal(lockout_check(l, "dev-locked", T0 + 1), 59);
	assert_int_equal(lockout_get(l, "dev-partial", &st), 1);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.known, 1);
	assert_int_equal(lockout_get(l, "dev-old", &st), 0);
	assert_int_equal(lockout_get(l, "dev-cleared", &st), 0);
	assert_int_equal(lockout_get(l, "anon", &st), 0);
	assert_int_equal(lockout_size(l), 2);
	/* the count goes on where it stopped */
	assert_int_equal(lockout_fail(l, "dev-partial", 0, T0 + 2, NULL), W);
	assert_int_equal(lockout_fail(l, "dev-partial", 0, T0 + 3, NULL), LW);
	store_close(s);
	lockout_free(l);
}

static void
test_load_bounded_locks_first(void **state)
{
	static const lockout_conf_t conf = {2, 60, 3600};
	char db[TU_DIR_MAX + 32], key[32];
	lockout_t *l;
	store_t *s;
	err_t err;

	(void)state;
	snprintf(db, sizeof(db), "%s/bounded.sqlite", tu_dir);
	s = open_store(db);
	l = lockout_new(&conf, 100, &err);
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		fail_n(s, l, key, 1, 1, T0 + i);
	}
	fail_n(s, l, "lock1", 1, 2, T0);
	fail_n(s, l, "lock2", 1, 2, T0);
	lockout_free(l);
	/* a smaller table after the restart keeps the locks */
	l = lockout_new(&conf, 3, &err);
	assert_int_equal(lockout_load(l, store_reader(s, &err), T0 + 10, &err), 0);
	assert_int_equal(lockout_size(l), 3);
	assert_int_not_equal(lockout_check(l, "lock1", T0 + 10), 0);
	assert_int_not_equal(lockout_check(l, "lock2", T0 + 10), 0);
	store_close(s);
	lockout_free(l);
}

#define TD(f) cmocka_unit_test_setup_teardown(f, tu_setup_dir, tu_teardown_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thresholds_backoff_cap),
	    cmocka_unit_test(test_unknown_key_never_writes),
	    cmocka_unit_test(test_old_failures_forgotten),
	    cmocka_unit_test(test_eviction_order),
	    cmocka_unit_test(test_known_key_displaces_locked_unknown),
	    TD(test_persist_round_trip),
	    TD(test_load_bounded_locks_first),
	};

	return cmocka_run_group_tests_name("lockout", tests, NULL, NULL);
}
