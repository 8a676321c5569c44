/* cert-proxyd: the pure parts: the issuance flight table,
 * the due logic and the key cache. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "due.h"
#include "flight.h"
#include "keycache.h"
#include "testutil.h"

/* ---- flight ---- */

static void
test_flight_join(void **state)
{
	cp_flight_t *f = cp_flight_new(2);
	cp_waiter_t w[6];
	cp_waiter_t *got;

	(void)state;
	assert_int_equal(cp_flight_join(f, "c1", "dev-a", &w[0]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_join(f, "c1", "dev-a", &w[1]), CP_FLIGHT_JOINED);
	assert_int_equal(cp_flight_join(f, "c1", "dev-b", &w[2]), CP_FLIGHT_OTHER);
	assert_int_equal(cp_flight_join(f, "c1", "dev-a", &w[3]), CP_FLIGHT_JOINED);
	assert_int_equal(cp_flight_join(f, "c2", "dev-b", &w[4]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_join(f, "c3", "dev-b", &w[5]), CP_FLIGHT_FULL);
	assert_int_equal(cp_flight_count(f), 2);
	/* waiters come back in join order, the leader first */
	got = cp_flight_finish(f, "c1");
	assert_ptr_equal(got, &w[0]);
	assert_ptr_equal(got->next, &w[1]);
	assert_ptr_equal(got->next->next, &w[3]);
	assert_null(got->next->next->next);
	assert_null(cp_flight_finish(f, "c1"));
	/* the next request leads a new issuance */
	assert_int_equal(cp_flight_join(f, "c1", "dev-b", &w[2]), CP_FLIGHT_LEADER);
	assert_ptr_equal(cp_flight_finish(f, "c2"), &w[4]);
	assert_ptr_equal(cp_flight_finish(f, "c1"), &w[2]);
	assert_int_equal(cp_flight_count(f), 0);
	cp_flight_free(f);
}

/* New certificates of a device count against its limit while issued. */
static void
test_flight_count_new(void **state)
{
	cp_flight_t *f = cp_flight_new(8);
	cp_waiter_t w[5];

	(void)state;
	assert_int_equal(cp_flight_join(f, "a1", "dev-a", &w[0]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_join(f, "a2", "dev-a", &w[1]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_join(f, "b1", "dev-b", &w[2]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_join(f, "a3", "dev-a", &w[3]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_count_new(f, "a1"), 0);
	assert_int_equal(cp_flight_count_new(f, "b1"), 0); /* another device */
	assert_int_equal(cp_flight_count_new(f, "a3"), 1); /* a2 is a renewal: unmarked */
	assert_int_equal(cp_flight_count_new(f, "a2"), 2);
	assert_int_equal(cp_flight_count_new(f, "nope"), 0);
	/* a finished issuance no longer counts (it is in the store, or failed) */
	assert_ptr_equal(cp_flight_finish(f, "a1"), &w[0]);
	assert_int_equal(cp_flight_join(f, "a4", "dev-a", &w[4]), CP_FLIGHT_LEADER);
	assert_int_equal(cp_flight_count_new(f, "a4"), 2);
	cp_flight_free(f);
}

#define FL_THREADS 8
#define FL_ROUNDS  200

struct fl_arg {
	cp_flight_t *f;
	pthread_barrier_t *bar;
	cp_waiter_t w[FL_ROUNDS];
	int leaders;
};

static void *
fl_thread(void *p)
{
	struct fl_arg *a = p;

	for (int i = 0; i < FL_ROUNDS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "cert-%d", i);
		pthread_barrier_wait(a->bar);
		if (cp_flight_join(a->f, id, "dev", &a->w[i]) == CP_FLIGHT_LEADER)
			a->leaders++;
	}
	return NULL;
}

/* Many loops asking for the same certificate at once: one leads. */
static void
test_flight_threads(void **state)
{
	cp_flight_t *f = cp_flight_new(FL_ROUNDS);
	pthread_barrier_t bar;
	pthread_t th[FL_THREADS];
	static struct fl_arg args[FL_THREADS];
	int leaders = 0;

	(void)state;
	pthread_barrier_init(&bar, NULL, FL_THREADS);
	for (int i = 0; i < FL_THREADS; i++) {
		args[i] = (struct fl_arg){.f = f, .bar = &bar};
		pthread_create(&th[i], NULL, fl_thread, &args[i]);
	}
	for (int i = 0; i < FL_THREADS; i++) {
		pthread_join(th[i], NULL);
		leaders += args[i].leaders;
	}
	assert_int_equal(leaders, FL_ROUNDS);
	for (int i = 0; i < FL_ROUNDS; i++) {
		char id[16];
		int n = 0;
		snprintf(id, sizeof(id), "cert-%d", i);
		for (cp_waiter_t *w = cp_flight_finish(f, id); w != NULL; w = w->next)
			n++;
		assert_int_equal(n, FL_THREADS);
	}
	pthread_barrier_destroy(&bar);
	cp_flight_free(f);
}

/* ---- due ---- */

static void
test_due(void **state)
{
	static const struct {
		int owned, state;
		int64_t not_after, now;
		int keyinfo, fetch_issues;
	} ki[] = {
	    {1, CP_CERT_VALID, 2000, 1000, STB_OK, 0},
	    {1, CP_CERT_VALID, 2000, 1999, STB_OK, 0},
	    {1, CP_CERT_VALID, 2000, 2000, STB_EXPIRED, 1},
	    {1, CP_CERT_REVOKED, 2000, 1000, STB_REVOKED, 1},
	    {1, CP_CERT_REVOKED, 2000, 3000, STB_REVOKED, 1},
	    {1, CP_CERT_RENEWING, 2000, 1000, STB_OK, 1},
	    {0, CP_CERT_VALID, 2000, 1000, STB_FORBIDDEN, 0},
	    {0, CP_CERT_REVOKED, 2000, 3000, STB_FORBIDDEN, 1},
	};
	static const struct {
		int state;
		int64_t not_after, now, before;
		int reason;
	} scan[] = {
	    {CP_CERT_VALID, 10000, 1000, 100, CP_REASON_NONE},
	    {CP_CERT_VALID, 10000, 9900, 100, CP_REASON_EXPIRING},
	    {CP_CERT_VALID, 10000, 9899, 100, CP_REASON_NONE},
	    {CP_CERT_VALID, 10000, 10000, 100, CP_REASON_EXPIRED},
	    {CP_CERT_VALID, 10000, 9999, 0, CP_REASON_NONE},
	    {CP_CERT_RENEWING, 10000, 9950, 100, CP_REASON_EXPIRING},
	    {CP_CERT_REVOKED, 10000, 1000, 100, CP_REASON_REVOKED},
	    {CP_CERT_REVOKED, 10000, 20000, 100, CP_REASON_REVOKED},
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(ki); i++) {
		assert_int_equal(
		    cp_due_keyinfo(ki[i].owned, ki[i].state, ki[i].not_after, ki[i].now),
		    ki[i].keyinfo);
		assert_int_equal(cp_due_fetch_issues(ki[i].state, ki[i].not_after, ki[i].now),
		                 ki[i].fetch_issues);
	}
	for (size_t i = 0; i < TU_NELEM(scan); i++)
		assert_int_equal(
		    cp_due_scan(scan[i].state, scan[i].not_after, scan[i].now, scan[i].before),
		    scan[i].reason);
	assert_int_equal(cp_due_from_ca(CP_CA_GOOD), CP_REASON_NONE);
	assert_int_equal(cp_due_from_ca(CP_CA_REVOKED), CP_REASON_REVOKED);
	assert_int_equal(cp_due_from_ca(CP_CA_EXPIRED), CP_REASON_EXPIRED);
	assert_int_equal(cp_due_from_ca(CP_CA_UNKNOWN), CP_REASON_MISSING);
	assert_int_equal(cp_due_from_ca(200), CP_REASON_MISSING);
	assert_string_equal(cp_due_reason_name(CP_REASON_REVOKED), "revoked");
	assert_string_equal(cp_due_state_name(CP_CERT_RENEWING), "renewing");
}

/* ---- keycache ---- */

static EVP_PKEY *kc_key;

static cp_kent_t *
kent(const char *id, int64_t not_after)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	static const uint8_t serial[] = {0x01, 0x02};

	return cp_kent_new(id, "dev", kc_key, der, sizeof(der), serial, sizeof(serial), not_after,
	                   CP_CERT_VALID);
}

static void
test_kc_basic(void **state)
{
	cp_kc_t *kc = cp_kc_new(2);
	cp_kent_t *a = kent("a", 1), *b = kent("b", 2), *c = kent("c", 3), *g;

	(void)state;
	assert_non_null(a);
	assert_null(cp_kc_get(kc, "a"));
	assert_int_equal(cp_kc_put(kc, a, cp_kc_gen(kc)), 1);
	assert_int_equal(cp_kc_put(kc, b, cp_kc_gen(kc)), 1);
	/* a is used, so b is the oldest when c comes */
	g = cp_kc_get(kc, "a");
	assert_ptr_equal(g, a);
	cp_kent_unref(g);
	assert_int_equal(cp_kc_put(kc, c, cp_kc_gen(kc)), 1);
	assert_int_equal(cp_kc_size(kc), 2);
	assert_null(cp_kc_get(kc, "b"));
	g = cp_kc_get(kc, "c");
	assert_int_equal(g->not_after, 3);
	cp_kent_unref(g);
	/* b was evicted but our reference keeps it whole */
	assert_string_equal(b->cert_id, "b");
	assert_int_equal(EVP_PKEY_get_id(b->pkey), EVP_PKEY_EC);
	cp_kent_unref(a);
	cp_kent_unref(b);
	cp_kent_unref(c);
	cp_kc_free(kc);
}

static void
test_kc_stale(void **state)
{
	cp_kc_t *kc = cp_kc_new(16);
	cp_kent_t *old = kent("x", 1), *fresh = kent("x", 2), *other = kent("y", 9), *g;
	uint64_t gen;

	(void)state;
	assert_int_equal(cp_kc_put(kc, old, cp_kc_gen(kc)), 1);
	/* a load starts, then a renewal commits and invalidates */
	gen = cp_kc_gen(kc);
	cp_kc_invalidate(kc, "x");
	assert_null(cp_kc_get(kc, "x"));
	/* any invalidation makes every load under way stale */
	assert_int_equal(cp_kc_put(kc, other, gen), 0);
	/* the renewal puts its own entry with a fresh generation */
	assert_int_equal(cp_kc_put(kc, fresh, cp_kc_gen(kc)), 1);
	/* the stale load arrives late and is refused */
	assert_int_equal(cp_kc_put(kc, old, gen), 0);
	g = cp_kc_get(kc, "x");
	assert_ptr_equal(g, fresh);
	assert_int_equal(g->not_after, 2);
	cp_kent_unref(g);
	cp_kent_unref(old);
	cp_kent_unref(fresh);
	cp_kent_unref(other);
	cp_kc_free(kc);
}

static void
test_kc_disabled(void **state)
{
	cp_kc_t *kc = cp_kc_new(0);
	cp_kent_t *a = kent("a", 1);

	(void)state;
	assert_int_equal(cp_kc_put(kc, a, cp_kc_gen(kc)), 0);
	assert_null(cp_kc_get(kc, "a"));
	assert_null(cp_kent_new(
	    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
	    "567890123456789012345678901234567890123456789",
	    "dev", kc_key, (const uint8_t *)"x", 1, (const uint8_t *)"s", 1, 0, 0));
	cp_kent_unref(a);
	cp_kc_free(kc);
}

static int
kc_setup(void **state)
{
	(void)state;
	kc_key = EVP_EC_gen("P-256");
	return kc_key != NULL ? 0 : -1;
}

static int
kc_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(kc_key);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flight_join),    cmocka_unit_test(test_flight_count_new),
	    cmocka_unit_test(test_flight_threads), cmocka_unit_test(test_due),
	    cmocka_unit_test(test_kc_basic),       cmocka_unit_test(test_kc_stale),
	    cmocka_unit_test(test_kc_disabled),
	};

	return cmocka_run_group_tests(tests, kc_setup, kc_teardown);
}
