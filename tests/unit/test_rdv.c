/* rendezvousd: the overlay pool allocator and the session code wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pool.h"
#include "codewrap.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_parse),
	    cmocka_unit_test(test_pool_addr),
	    cmocka_unit_test(test_pool_first_free),
	    cmocka_unit_test(test_kdf),
	    cmocka_unit_test(test_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
