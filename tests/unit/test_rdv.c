/* rendezvousd: the overlay pool allocator, the session code wrap, the
 * enrolment codes and the CONNECT_REQ limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "climit.h"
#include "codewrap.h"
#include "enrol.h"
#include "pool.h"

static void
test_pool_parse(void **state)
{
	static const struct {
		const char *cidr;
		int ok;
		uint32_t size;
	} cases[] = {
	    {"10.77.0.0/16", 0, 65534},
	    {"192.168.1.0/24", 0, 254},
	    {"10.0.0.0/8", 0, 16777214},
	    {"10.0.0.4/30", 0, 2},
	    {"10.0.0.0/31", -1, 0},
	    {"10.0.0.0/7", -1, 0},
	    {"10.77.0.1/16", -1, 0},
	    {"10.77.0.0", -1, 0},
	    {"10.77.0.0/", -1, 0},
	    {"10.77.0.0/16x", -1, 0},
	    {"/16", -1, 0},
	    {"::1/64", -1, 0},
	    {"10.77.0.0/-16", -1, 0},
	    {"300.1.1.0/24", -1, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rdv_pool_t p = {0, 0};
		int rc = rdv_pool_parse(cases[i].cidr, &p);
		assert_int_equal(rc, cases[i].ok);
		if (rc == 0)
			assert_int_equal(p.size, cases[i].size);
	}
}

static void
test_pool_addr(void **state)
{
	rdv_pool_t p;
	char a[RDV_ADDR_MAX];

	(void)state;
	assert_int_equal(rdv_pool_parse("10.77.0.0/16", &p), 0);
	assert_int_equal(rdv_pool_addr(&p, 1, a), 0);
	assert_string_equal(a, "10.77.0.1");
	assert_int_equal(rdv_pool_addr(&p, 256, a), 0);
	assert_string_equal(a, "10.77.1.0");
	assert_int_equal(rdv_pool_addr(&p, 65534, a), 0);
	assert_string_equal(a, "10.77.255.254");
	assert_int_equal(rdv_pool_addr(&p, 0, a), -1);     /* network */
	assert_int_equal(rdv_pool_addr(&p, 65535, a), -1); /* broadcast */
}

static void
test_pool_first_free(void **state)
{
	static const uint32_t u1[] = {1, 2, 3}, u2[] = {1, 3, 4}, u3[] = {2, 3},
	                      u4[] = {1, 1, 2, 2, 4}, u5[] = {0, 1, 2}, u6[] = {1, 2},
	                      u7[] = {5, 9};
	static const struct {
		const uint32_t *used;
		size_t n;
		uint32_t want;
	} cases[] = {
	    {NULL, 0, 1}, {u1, 3, 4}, {u2, 3, 2}, {u3, 2, 1}, {u4, 5, 3}, {u5, 3, 3}, {u7, 2, 1},
	};
	rdv_pool_t p, small;

	(void)state;
	assert_int_equal(rdv_pool_parse("10.77.0.0/16", &p), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rdv_pool_first_free(&p, cases[i].used, cases[i].n), cases[i].want);
	/* a /30 holds two addresses: full after both */
	assert_int_equal(rdv_pool_parse("10.0.0.4/30", &small), 0);
	assert_int_equal(rdv_pool_first_free(&small, u6, 2), 0);
	assert_int_equal(rdv_pool_first_free(&small, u3, 2), 1);
}

static const uint8_t salt_a[RDV_SALT_LEN] = "0123456789abcdef";
static const uint8_t salt_b[RDV_SALT_LEN] = "fedcba9876543210";

static void
test_kdf(void **state)
{
	uint8_t k1[RDV_KEY_LEN], k2[RDV_KEY_LEN], k3[RDV_KEY_LEN], k4[RDV_KEY_LEN];

	(void)state;
	assert_int_equal(rdv_kdf_derive("password1", 9, salt_a, 16, 1024, 8, 1, k1), 0);
	assert_int_equal(rdv_kdf_derive("password1", 9, salt_a, 16, 1024, 8, 1, k2), 0);
	assert_memory_equal(k1, k2, RDV_KEY_LEN);
	assert_int_equal(rdv_kdf_derive("password1", 9, salt_b, 16, 1024, 8, 1, k3), 0);
	assert_memory_not_equal(k1, k3, RDV_KEY_LEN);
	assert_int_equal(rdv_kdf_derive("password2", 9, salt_a, 16, 1024, 8, 1, k4), 0);
	assert_memory_not_equal(k1, k4, RDV_KEY_LEN);
	assert_int_equal(rdv_kdf_derive("password1", 9, salt_a, 16, 1000, 8, 1, k4), -1);
	assert_int_equal(rdv_kdf_params_ok(16384, 8, 1), 1);
	assert_int_equal(rdv_kdf_params_ok(1u << 21, 8, 1), 0);
	assert_int_equal(rdv_kdf_params_ok(1024, 0, 1), 0);
	assert_int_equal(rdv_kdf_params_ok(1024, 8, 0), 0);
	assert_int_equal(rdv_kdf_params_ok(1u << 20, 16, 1), 0); /* 2 GiB */
}

static void
test_wrap(void **state)
{
	uint8_t ka[RDV_KEY_LEN], kb[RDV_KEY_LEN], sid[RDV_SID_LEN] = {1, 2, 3},
	                                          sid2[RDV_SID_LEN] = {1, 2, 4};
	uint8_t code[RDV_CODE_LEN], out[RDV_CODE_LEN], w1[RDV_WRAP_LEN], w2[RDV_WRAP_LEN];

	(void)state;
	memset(code, 0x5a, sizeof(code));
	assert_int_equal(rdv_kdf_derive("password-a", 10, salt_a, 16, 1024, 8, 1, ka), 0);
	assert_int_equal(rdv_kdf_derive("password-b", 10, salt_b, 16, 1024, 8, 1, kb), 0);
	assert_int_equal(rdv_wrap(ka, sid, "ab", "c", code, w1), 0);
	assert_int_equal(rdv_unwrap(ka, sid, "ab", "c", w1, out), 0);
	assert_memory_equal(out, code, RDV_CODE_LEN);
	/* fresh nonce: two wraps of one code differ */
	assert_int_equal(rdv_wrap(ka, sid, "ab", "c", code, w2), 0);
	assert_memory_not_equal(w1, w2, RDV_WRAP_LEN);
	/* the other device's key, another session, another pair: no */
	assert_int_equal(rdv_unwrap(kb, sid, "ab", "c", w1, out), -1);
	assert_int_equal(rdv_unwrap(ka, sid2, "ab", "c", w1, out), -1);
	assert_int_equal(rdv_unwrap(ka, sid, "a", "bc", w1, out), -1);
	assert_int_equal(rdv_unwrap(ka, sid, "c", "ab", w1, out), -1);
	/* any flipped bit: no */
	for (size_t i = 0; i < RDV_WRAP_LEN; i += 7) {
		memcpy(w2, w1, sizeof(w2));
		w2[i] ^= 0x01;
		assert_int_equal(rdv_unwrap(ka, sid, "ab", "c", w2, out), -1);
	}
}

/* A drawn code verifies for its device only; the text is 32 hex digits
 * in either case and nothing else. */
static void
test_enrol(void **state)
{
	char code[RDV_ENROL_CODE_CAP], code2[RDV_ENROL_CODE_CAP], upper[RDV_ENROL_CODE_CAP];
	uint8_t v[RDV_ENROL_VERIFIER_LEN], w[RDV_ENROL_VERIFIER_LEN], x[RDV_ENROL_VERIFIER_LEN];
	static const char *bad[] = {"", "00", "0123456789abcdef0123456789abcdeg",
	                            "0123456789abcdef0123456789abcdef00",
	                            " 123456789abcdef0123456789abcdef"};

	(void)state;
	assert_int_equal(rdv_enrol_draw("stb-1", code, v), 0);
	assert_int_equal(strlen(code), 32);
	assert_int_equal(rdv_enrol_verifier("stb-1", code, w), 0);
	assert_memory_equal(v, w, sizeof(v));
	for (size_t i = 0; i <= strlen(code); i++)
		upper[i] = (code[i] >= 'a' && code[i] <= 'f') ? (char)(code[i] - 32) : code[i];
	assert_int_equal(rdv_enrol_verifier("stb-1", upper, x), 0);
	assert_memory_equal(v, x, sizeof(v));
	assert_int_equal(rdv_enrol_verifier("stb-2", code, x), 0); /* bound to the ID */
	assert_memory_not_equal(v, x, sizeof(v));
	assert_int_equal(rdv_enrol_draw("stb-1", code2, w), 0);
	assert_string_not_equal(code, code2);
	assert_memory_not_equal(v, w, sizeof(v));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rdv_enrol_verifier("stb-1", bad[i], x), -1);
}

static rdv_climit_t *
climit(int64_t per_minute, int64_t burst, int64_t pair, int64_t caller, int64_t target)
{
	rdv_climit_conf_t c = {per_minute, burst, pair, caller, target};
	err_t err;
	rdv_climit_t *l = rdv_climit_new(&c, 8, &err);

	assert_non_null(l);
	return l;
}

#define T0      1800000000000LL /* ms */
#define EXP(ms) ((ms) / 1000 + 60)

/* The bucket: burst at once, then per_minute; refusals reported once a
 * minute. */
static void
test_climit_rate(void **state)
{
	rdv_climit_t *l = climit(60, 3, 100, 100, 100);
	uint64_t rep;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(rdv_climit_take(l, "a", "b", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0, EXP(T0), &rep), RDV_CLIMIT_RATE);
	assert_int_equal(rep, 1);
	assert_int_equal(rdv_climit_take(l, "a", "c", T0 + 10, EXP(T0), &rep), RDV_CLIMIT_RATE);
	assert_int_equal(rep, 0); /* reported a moment ago */
	/* one a second at 60 a minute */
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 1000, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 1000, EXP(T0), &rep), RDV_CLIMIT_RATE);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 61000, EXP(T0 + 61000), &rep),
	                 RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 61000, EXP(T0 + 61000), &rep),
	                 RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 61000, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "b", T0 + 61000, EXP(T0), &rep), RDV_CLIMIT_RATE);
	assert_int_equal(rep, 3); /* the refusals since the last report, this one too */
	/* another caller has its own bucket */
	assert_int_equal(rdv_climit_take(l, "z", "b", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	rdv_climit_free(l);
}

/* Offers held per pair, per caller and per target; expiry and release
 * give them back. */
static void
test_climit_offers(void **state)
{
	rdv_climit_t *l = climit(6000, 1000, 2, 3, 4);
	uint64_t rep;

	(void)state;
	assert_int_equal(rdv_climit_take(l, "a", "t", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "t", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "t", T0, EXP(T0), &rep), RDV_CLIMIT_PAIR);
	assert_int_equal(rdv_climit_take(l, "a", "u", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "v", T0, EXP(T0), &rep), RDV_CLIMIT_CALLER);
	/* a refused offer made: given back */
	rdv_climit_release(l, "a", "u", EXP(T0));
	assert_int_equal(rdv_climit_take(l, "a", "v", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	/* t holds 2 of a's; two more from others fill it */
	assert_int_equal(rdv_climit_take(l, "b", "t", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "c", "t", T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "d", "t", T0, EXP(T0), &rep), RDV_CLIMIT_TARGET);
	/* all expired a minute later */
	assert_int_equal(rdv_climit_take(l, "d", "t", T0 + 61000, EXP(T0 + 61000), &rep),
	                 RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_take(l, "a", "t", T0 + 61000, EXP(T0 + 61000), &rep),
	                 RDV_CLIMIT_OK);
	rdv_climit_free(l);
}

/* A full table drops idle records for new ones; busy ones stay. */
static void
test_climit_full(void **state)
{
	rdv_climit_t *l = climit(60, 1, 1, 1, 1);
	char id[16];
	uint64_t rep;

	(void)state;
	for (int i = 0; i < 4; i++) { /* 8 records: 4 callers, 4 targets */
		snprintf(id, sizeof(id), "c%d", i);
		char t[16];
		snprintf(t, sizeof(t), "t%d", i);
		assert_int_equal(rdv_climit_take(l, id, t, T0, EXP(T0), &rep), RDV_CLIMIT_OK);
	}
	assert_int_equal(rdv_climit_take(l, "new", "t0", T0, EXP(T0), &rep), RDV_CLIMIT_FULL);
	assert_int_equal(rdv_climit_prune(l, T0), 0);
	/* two minutes on, everything is idle */
	assert_int_equal(rdv_climit_take(l, "new", "t9", T0 + 120000, EXP(T0 + 120000), &rep),
	                 RDV_CLIMIT_OK);
	assert_int_equal(rdv_climit_prune(l, T0 + 120000), 0); /* gone already */
	assert_int_equal(rdv_climit_prune(l, T0 + 240000), 2);
	rdv_climit_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_parse),
	    cmocka_unit_test(test_pool_addr),
	    cmocka_unit_test(test_pool_first_free),
	    cmocka_unit_test(test_kdf),
	    cmocka_unit_test(test_wrap),
	    cmocka_unit_test(test_enrol),
	    cmocka_unit_test(test_climit_rate),
	    cmocka_unit_test(test_climit_offers),
	    cmocka_unit_test(test_climit_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
