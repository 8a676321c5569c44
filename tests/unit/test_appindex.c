/* test_appindex: the signed index snapshot: round trip and lookup,
 * rollback, expiry, forgery, malformed bodies. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appindex.h"
#include "testutil.h"

#define NOW 1800000000u

static EVP_PKEY *op_key, *other_key;

static int
setup(void **state)
{
	(void)state;
	op_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	return op_key != NULL && other_key != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(op_key);
	EVP_PKEY_free(other_key);
	return 0;
}

static void
ref_of(const char *id1, uint8_t ref[APPPAY_REF_LEN])
{
	err_t err;
	assert_int_equal(apppay_ref(id1, ref, &err), 0);
}

/* A snapshot of version v with n apps "app-<i>", every third UNSAFE. */
static void
snapshot(buf_t *out, uint64_t v, uint64_t issued, uint64_t expires, int n, EVP_PKEY *key)
{
	appindex_t ix;
	err_t err;

	appindex_init(&ix);
	ix.version = v;
	ix.issued = issued;
	ix.expires = expires;
	for (int i = 0; i < n; i++) {
		char id[32];
		uint8_t ref[APPPAY_REF_LEN];
		snprintf(id, sizeof(id), "app-%d", i);
		ref_of(id, ref);
		assert_int_equal(appindex_add(&ix, ref, i % 3 == 2 ? APPPAY_UNSAFE : APPPAY_SAFE,
		                              NOW - 100, NOW + 86400,
		                              i % 3 == 2 ? "dangerous permission: SEND_SMS" : NULL,
		                              &err),
		                 0);
	}
	buf_init(out, APPINDEX_MAX);
	assert_int_equal(appindex_encode(&ix, key, out, &err), 0);
	appindex_clear(&ix);
}

static void
test_round_trip(void **state)
{
	const appindex_entry_t *e;
	uint8_t ref[APPPAY_REF_LEN];
	appindex_t ix;
	buf_t b;
	err_t err;

	(void)state;
	snapshot(&b, 7, NOW - 60, NOW + 3600, 50, op_key);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 0, &ix, &err), 0);
	assert_int_equal(ix.version, 7);
	assert_int_equal(ix.n, 50);
	ref_of("app-5", ref);
	assert_non_null(e = appindex_find(&ix, ref));
	assert_int_equal(e->flag, APPPAY_UNSAFE);
	assert_string_equal(e->warning, "dangerous permission: SEND_SMS");
	ref_of("app-6", ref);
	assert_non_null(e = appindex_find(&ix, ref));
	assert_int_equal(e->flag, APPPAY_SAFE);
	assert_string_equal(e->warning, "");
	ref_of("app-50", ref);
	assert_null(appindex_find(&ix, ref));
	appindex_clear(&ix);
	buf_free(&b);
	/* an empty index is fine */
	snapshot(&b, 1, NOW - 60, NOW + 3600, 0, op_key);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 0, &ix, &err), 0);
	assert_int_equal(ix.n, 0);
	assert_null(appindex_find(&ix, ref));
	appindex_clear(&ix);
	buf_free(&b);
}

static void
test_rollback_expiry(void **state)
{
	appindex_t ix;
	buf_t b;
	err_t err;

	(void)state;
	snapshot(&b, 7, NOW - 60, NOW + 3600, 3, op_key);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 7, &ix, &err), 0);
	appindex_clear(&ix);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 8, &ix, &err), -1);
	assert_int_equal(err.status, STB_REPLAY);
	assert_int_equal(ix.n, 0);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW + 3600, 0, &ix, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	buf_free(&b);
}

static void
test_forged(void **state)
{
	appindex_t ix;
	buf_t b;
	err_t err;

	(void)state;
	snapshot(&b, 7, NOW - 60, NOW + 3600, 3, other_key);
	assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 0, &ix, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	buf_free(&b);
	/* any bit flipped: refused */
	snapshot(&b, 7, NOW - 60, NOW + 3600, 3, op_key);
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x10;
		assert_int_equal(appindex_verify(b.data, b.len, op_key, NOW, 0, &ix, &err), -1);
		assert_true(err.status == STB_UNAUTHENTICATED || err.status == STB_BAD_REQUEST ||
		            err.status == STB_TOO_LARGE);
		b.data[i] ^= 0x10;
	}
	buf_free(&b);
}

static void
test_encode_refuses(void **state)
{
	uint8_t ref[APPPAY_REF_LEN];
	appindex_t ix;
	buf_t b;
	err_t err;

	(void)state;
	appindex_init(&ix);
	ref_of("app-1", ref);
	assert_int_equal(appindex_add(&ix, ref, 3, NOW, NOW + 1, NULL, &err), -1);
	assert_int_equal(appindex_add(&ix, ref, APPPAY_SAFE, NOW, NOW, NULL, &err), -1);
	assert_int_equal(appindex_add(&ix, ref, APPPAY_SAFE, NOW, NOW + 1, "bad\x01", &err), -1);
	assert_int_equal(appindex_add(&ix, ref, APPPAY_SAFE, NOW, NOW + 1, "bad \xc3", &err), -1);
	assert_int_equal(appindex_add(&ix, ref, APPPAY_SAFE, NOW, NOW + 1, "ok \xc3\xa9", &err), 0);
	assert_int_equal(appindex_add(&ix, ref, APPPAY_UNSAFE, NOW, NOW + 1, NULL, &err), 0);
	ix.version = 1;
	ix.issued = NOW;
	ix.expires = NOW + 10;
	buf_init(&b, 65536);
	assert_int_equal(appindex_encode(&ix, op_key, &b, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	ix.n = 1;
	free(ix.entries[1].warning);
	ix.version = 0;
	assert_int_equal(appindex_encode(&ix, op_key, &b, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	appindex_clear(&ix);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_rollback_expiry),
	    cmocka_unit_test(test_forged),
	    cmocka_unit_test(test_encode_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
