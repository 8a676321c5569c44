/* test_cose: COSE_Sign1/ES256 round trips, what verify refuses, and the
 * strict decoder's limits. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cose.h"
#include "sig.h"
#include "testutil.h"

static EVP_PKEY *key_a, *key_b;

static int
setup(void **state)
{
	(void)state;
	key_a = EVP_EC_gen("P-256");
	key_b = EVP_EC_gen("P-256");
	return key_a != NULL && key_b != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	return 0;
}

static const uint8_t aad[] = "STB-TEST-V1";

static void
sign_sample(buf_t *out, const char *payload)
{
	err_t err;

	buf_init(out, 4096);
	assert_int_equal(cose_sign1_encode(key_a, (const uint8_t *)payload, strlen(payload), aad,
	                                   sizeof(aad) - 1, out, &err),
	                 0);
}

static int
decode_verify(const uint8_t *p, size_t n, EVP_PKEY *k, err_t *err)
{
	cose_sign1_t m;
	int rc = cose_sign1_decode(p, n, 4096, &m, err);

	if (rc == 0)
		rc = cose_sign1_verify(&m, k, aad, sizeof(aad) - 1, err);
	cose_sign1_clear(&m);
	return rc;
}

static void
test_round_trip(void **state)
{
	uint8_t kid[COSE_KID_LEN];
	cose_sign1_t m;
	buf_t b;
	err_t err;

	(void)state;
	sign_sample(&b, "hello payload");
	/* tag 18, an array of 4 */
	assert_int_equal(b.data[0], 0xd2);
	assert_int_equal(b.data[1], 0x84);
	assert_int_equal(cose_sign1_decode(b.data, b.len, 4096, &m, &err), 0);
	assert_int_equal(m.payload_len, 13);
	assert_memory_equal(m.payload, "hello payload", 13);
	assert_int_equal(cose_kid_of_key(key_a, kid, &err), 0);
	assert_int_equal(m.kid_len, COSE_KID_LEN);
	assert_memory_equal(m.kid, kid, COSE_KID_LEN);
	/* protected header {1: -7, 4: kid} */
	assert_int_equal(m.protected_len, 1 + 2 + 1 + 1 + COSE_KID_LEN);
	assert_int_equal(m.protected_hdr[0], 0xa2);
	assert_int_equal(m.protected_hdr[1], 0x01);
	assert_int_equal(m.protected_hdr[2], 0x26);
	assert_int_equal(cose_sign1_verify(&m, key_a, aad, sizeof(aad) - 1, &err), 0);
	cose_sign1_clear(&m);
	buf_free(&b);
}

static void
test_forged(void **state)
{
	buf_t b;
	err_t err;

	(void)state;
	sign_sample(&b, "hello payload");
	/* another key: its kid differs */
	assert_int_equal(decode_verify(b.data, b.len, key_b, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* a payload byte changed */
	for (size_t i = 0; i + 13 < b.len; i++)
		if (memcmp(b.data + i, "hello", 5) == 0) {
			b.data[i] ^= 1;
			break;
		}
	assert_int_equal(decode_verify(b.data, b.len, key_a, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	buf_free(&b);
	/* a signature byte changed */
	sign_sample(&b, "hello payload");
	b.data[b.len - 1] ^= 0x80;
	assert_int_equal(decode_verify(b.data, b.len, key_a, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	buf_free(&b);
	/* another external_aad */
	{
		cose_sign1_t m;
		sign_sample(&b, "x");
		assert_int_equal(cose_sign1_decode(b.data, b.len, 4096, &m, &err), 0);
		assert_int_equal(cose_sign1_verify(&m, key_a, (const uint8_t *)"other", 5, &err),
		                 -1);
		assert_int_equal(err.status, STB_UNAUTHENTICATED);
		cose_sign1_clear(&m);
		buf_free(&b);
	}
}

/* A COSE_Sign1 with the headers given, signed correctly with key_a. */
static void
craft(buf_t *out, cbor_item_t *prot, cbor_item_t *unprot, int tagged, size_t siglen)
{
	uint8_t der[SIG_MAX], rs[COSE_SIG_LEN + 1];
	cbor_item_t *tbs = cbor_new_definite_array(4), *msg = cbor_new_definite_array(4), *top;
	buf_t pb, tb;
	size_t derlen;
	err_t err;

	buf_init(&pb, 1024);
	buf_init(&tb, 4096);
	assert_int_equal(cose_cbor_serialize(prot, &pb, &err), 0);
	cbor_decref(&prot);
	assert_true(cose_cbor_push(tbs, cbor_build_stringn("Signature1", 10)));
	assert_true(cose_cbor_push(tbs, cbor_build_bytestring(pb.data, pb.len)));
	assert_true(cose_cbor_push(tbs, cbor_build_bytestring(aad, sizeof(aad) - 1)));
	assert_true(cose_cbor_push(tbs, cbor_build_bytestring((const uint8_t *)"p", 1)));
	assert_int_equal(cose_cbor_serialize(tbs, &tb, &err), 0);
	cbor_decref(&tbs);
	assert_int_equal(sig_sign(key_a, tb.data, tb.len, der, &derlen, &err), 0);
	{
		const unsigned char *q = der;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
		assert_non_null(s);
		BN_bn2binpad(ECDSA_SIG_get0_r(s), rs, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(s), rs + 32, 32);
		rs[64] = 0;
		ECDSA_SIG_free(s);
	}
	assert_true(cose_cbor_push(msg, cbor_build_bytestring(pb.data, pb.len)));
	assert_true(cose_cbor_push(msg, unprot));
	assert_true(cose_cbor_push(msg, cbor_build_bytestring((const uint8_t *)"p", 1)));
	assert_true(cose_cbor_push(msg, cbor_build_bytestring(rs, siglen)));
	top = tagged ? cbor_build_tag(18, msg) : msg;
	if (tagged)
		cbor_decref(&msg);
	buf_init(out, 4096);
	assert_int_equal(cose_cbor_serialize(top, out, &err), 0);
	cbor_decref(&top);
	buf_free(&pb);
	buf_free(&tb);
}

static cbor_item_t *
hdr(int alg, int with_kid, int crit)
{
	uint8_t kid[COSE_KID_LEN];
	cbor_item_t *m = cbor_new_definite_map(3);
	err_t err;

	if (alg != 0)
		assert_true(cose_cbor_put(m, 1,
		                          alg < 0 ? cbor_build_negint8((uint8_t)(-1 - alg))
		                                  : cbor_build_uint8((uint8_t)alg)));
	if (crit)
		assert_true(cose_cbor_put(m, 2, cbor_new_definite_array(0)));
	if (with_kid) {
		assert_int_equal(cose_kid_of_key(key_a, kid, &err), 0);
		assert_true(cose_cbor_put(m, 4, cbor_build_bytestring(kid, sizeof(kid))));
	}
	return m;
}

static void
test_headers(void **state)
{
	static const struct {
		int alg, pkid, ukid, crit, tagged;
		size_t siglen;
		int status; /* 0: verifies */
	} cases[] = {
	    {-7, 1, 0, 0, 1, 64, 0},
	    {-7, 0, 1, 0, 1, 64, 0},                /* kid unprotected */
	    {-7, 0, 0, 0, 0, 64, 0},                /* untagged, no kid */
	    {-35, 1, 0, 0, 1, 64, STB_BAD_REQUEST}, /* ES384 */
	    {0, 1, 0, 0, 1, 64, STB_BAD_REQUEST},   /* no alg */
	    {-7, 1, 0, 1, 1, 64, STB_BAD_REQUEST},  /* crit */
	    {-7, 1, 1, 0, 1, 64, STB_BAD_REQUEST},  /* kid twice */
	    {-7, 1, 0, 0, 1, 63, STB_BAD_REQUEST},  /* short signature */
	    {-7, 1, 0, 0, 1, 65, STB_BAD_REQUEST},
	};
	err_t err;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		cbor_item_t *u = cases[i].ukid ? hdr(0, 1, 0) : cbor_new_definite_map(0);
		buf_t b;
		int rc;

		craft(&b, hdr(cases[i].alg, cases[i].pkid, cases[i].crit), u, cases[i].tagged,
		      cases[i].siglen);
		rc = decode_verify(b.data, b.len, key_a, &err);
		if (cases[i].status == 0) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(err.status, cases[i].status);
		}
		buf_free(&b);
	}
}

static void
test_malformed(void **state)
{
	/* indefinite array, trailing byte, another tag, a bare map, deep
	 * nesting, a claimed length past the end, a stray break */
	static const uint8_t indef[] = {0xd2, 0x9f, 0xff};
	static const uint8_t tag17[] = {0xd1, 0x84, 0x40, 0xa0, 0x40, 0x40};
	static const uint8_t bare[] = {0xa0};
	static const uint8_t longbstr[] = {0xd2, 0x84, 0x5a, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t brk[] = {0xff};
	uint8_t deep[64];
	buf_t b;
	err_t err;

	(void)state;
	assert_int_equal(decode_verify(indef, sizeof(indef), key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(decode_verify(tag17, sizeof(tag17), key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(decode_verify(bare, sizeof(bare), key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(decode_verify(longbstr, sizeof(longbstr), key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(decode_verify(brk, sizeof(brk), key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	memset(deep, 0x81, sizeof(deep)); /* [[[[...]]]] */
	deep[sizeof(deep) - 1] = 0x00;
	assert_int_equal(cose_cbor_check(deep, sizeof(deep), &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(
	    cose_cbor_check(deep + sizeof(deep) - COSE_DEPTH_MAX - 1, COSE_DEPTH_MAX + 1, &err), 0);
	assert_int_equal(
	    cose_cbor_check(deep + sizeof(deep) - COSE_DEPTH_MAX - 2, COSE_DEPTH_MAX + 2, &err),
	    -1);
	/* every prefix of a good message is refused; a trailing byte too */
	sign_sample(&b, "payload");
	for (size_t n = 0; n < b.len; n++) {
		assert_int_equal(decode_verify(b.data, n, key_a, &err), -1);
		assert_int_equal(err.status, STB_BAD_REQUEST);
	}
	assert_int_equal(buf_append(&b, "\x00", 1), 0);
	assert_int_equal(decode_verify(b.data, b.len, key_a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	/* the caller's cap */
	{
		cose_sign1_t m;
		assert_int_equal(cose_sign1_decode(b.data, b.len - 1, b.len - 2, &m, &err), -1);
		assert_int_equal(err.status, STB_TOO_LARGE);
		cose_sign1_clear(&m);
	}
	buf_free(&b);
}

static void
test_fields(void **state)
{
	const cbor_item_t *v[4];
	cbor_item_t *m = cbor_new_definite_map(2);
	err_t err;

	(void)state;
	assert_true(cose_cbor_put(m, 1, cbor_build_uint8(5)));
	assert_true(cose_cbor_put(m, 3, cbor_build_stringn("x", 1)));
	assert_int_equal(cose_cbor_fields(m, v, 4, "t", &err), 0);
	assert_null(v[0]);
	assert_non_null(v[1]);
	assert_null(v[2]);
	assert_non_null(v[3]);
	assert_int_equal(cose_cbor_fields(m, v, 3, "t", &err), -1); /* key 3 unknown */
	cbor_decref(&m);
	m = cbor_new_definite_map(2);
	assert_true(cose_cbor_put(m, 1, cbor_build_uint8(5)));
	assert_true(cose_cbor_put(m, 1, cbor_build_uint8(6)));
	assert_int_equal(cose_cbor_fields(m, v, 4, "t", &err), -1); /* repeated */
	assert_int_equal(err.status, STB_BAD_REQUEST);
	cbor_decref(&m);
}

/* The flat map reader (the app payload's body): values, and each shape it
 * refuses. */
static void
test_flat_map(void **state)
{
	static const uint8_t good[] = {0xa2, 0x01, 0x05, 0x02, 0x42, 0x01, 0x02};
	static const struct {
		const char *what;
		uint8_t in[8];
		size_t len;
	} bad[] = {
	    {"unknown key", {0xa1, 0x03, 0x00}, 3},
	    {"repeated key", {0xa2, 0x01, 0x00, 0x01, 0x00}, 5},
	    {"nested array", {0xa1, 0x01, 0x81, 0x00}, 4},
	    {"empty array", {0xa1, 0x01, 0x80}, 3},
	    {"nested map", {0xa1, 0x01, 0xa1, 0x01, 0x00}, 5},
	    {"negative integer", {0xa1, 0x01, 0x20}, 3},
	    {"text value", {0xa1, 0x01, 0x61, 0x61}, 4},
	    {"tagged value", {0xa1, 0x01, 0xc1, 0x00}, 4},
	    {"text key", {0xa1, 0x61, 0x61, 0x00}, 4},
	    {"not a map", {0x82, 0x01, 0x02}, 3},
	    {"bytes after", {0xa1, 0x01, 0x00, 0x00}, 4},
	    {"indefinite map", {0xbf, 0x01, 0x00, 0xff}, 4},
	    {"truncated", {0xa2, 0x01, 0x00}, 3},
	    {"empty", {0}, 0},
	};
	cose_flat_t v[3];
	const uint8_t *p;
	uint64_t u = 0;
	size_t n = 0;
	err_t err;

	(void)state;
	assert_int_equal(cose_cbor_flat_map(good, sizeof(good), v, 3, "t", &err), 0);
	assert_int_equal(v[0].kind, COSE_FLAT_NONE);
	assert_int_equal(cose_flat_uint(&v[1], &u, "t", &err), 0);
	assert_int_equal(u, 5);
	assert_int_equal(cose_flat_bstr(&v[2], 2, 2, &p, &n, "t", &err), 0);
	assert_int_equal(n, 2);
	assert_ptr_equal(p, good + 5); /* borrowed, not copied */
	assert_int_equal(cose_flat_bstr(&v[2], 3, 9, &p, &n, "t", &err), -1);
	assert_int_equal(cose_flat_uint(&v[0], &u, "t", &err), -1);
	assert_int_equal(cose_flat_bstr(&v[1], 0, 9, &p, &n, "t", &err), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.status = STB_OK;
		if (cose_cbor_flat_map(bad[i].in, bad[i].len, v, 3, "t", &err) != -1 ||
		    err.status != STB_BAD_REQUEST)
			fail_msg("%s: accepted", bad[i].what);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_forged),
	    cmocka_unit_test(test_headers),    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_fields),     cmocka_unit_test(test_flat_map),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
