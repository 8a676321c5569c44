/* test_apppay: the published QR payload: round trip, and refusals typed
 * forged / expired / malformed. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <string.h>

#include "apppay.h"
#include "base45.h"
#include "testutil.h"

#define NOW 1800000000u

static EVP_PKEY *op_key, *other_key;
static const uint8_t enc_key[APPPAY_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t enc_key2[APPPAY_KEY_LEN] = {9, 8, 7};
static const char id1[] = "id1:5f0c1e9a2b7d4c3e8f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6";

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
sample(char *text, size_t cap, int flag, uint64_t issued, uint64_t expires)
{
	err_t err;

	assert_int_equal(
	    apppay_encode(id1, flag, issued, expires, enc_key, op_key, text, cap, &err), 0);
}

static void
test_round_trip(void **state)
{
	char text[APPPAY_TEXT_MAX + 1], back[STB_ID_MAX + 1];
	uint8_t ref[APPPAY_REF_LEN];
	apppay_t p;
	err_t err;

	(void)state;
	sample(text, sizeof(text), APPPAY_UNSAFE, NOW - 10, NOW + 86400);
	assert_memory_equal(text, "STB1:", 5);
	/* QR alphanumeric characters only */
	for (size_t i = 0; text[i]; i++)
		assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", text[i]));
	assert_true(strlen(text) < 600);
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW, &p, &err), 0);
	assert_int_equal(p.flag, APPPAY_UNSAFE);
	assert_int_equal(p.issued, NOW - 10);
	assert_int_equal(p.expires, NOW + 86400);
	assert_int_equal(apppay_ref(id1, ref, &err), 0);
	assert_memory_equal(p.ref, ref, APPPAY_REF_LEN);
	assert_int_equal(p.signer_kid_len, COSE_KID_LEN);
	/* ID1 is not in the text, only under the key */
	assert_null(strstr(text, "5F0C1E9A"));
	assert_int_equal(apppay_open(&p, enc_key, back, &err), 0);
	assert_string_equal(back, id1);
	assert_int_equal(apppay_open(&p, enc_key2, back, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* two publications of one app: the same ref, other bytes (fresh nonce) */
	{
		char text2[APPPAY_TEXT_MAX + 1];
		apppay_t p2;
		sample(text2, sizeof(text2), APPPAY_UNSAFE, NOW - 10, NOW + 86400);
		assert_string_not_equal(text, text2);
		assert_int_equal(apppay_verify(text2, strlen(text2), op_key, NOW, &p2, &err), 0);
		assert_memory_equal(p2.ref, p.ref, APPPAY_REF_LEN);
	}
}

static void
test_forged(void **state)
{
	char text[APPPAY_TEXT_MAX + 1];
	apppay_t p;
	err_t err;

	(void)state;
	sample(text, sizeof(text), APPPAY_SAFE, NOW - 10, NOW + 86400);
	/* verified with a key that did not sign */
	assert_int_equal(apppay_verify(text, strlen(text), other_key, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* signed by another key with the right payload shape */
	assert_int_equal(apppay_encode(id1, APPPAY_SAFE, NOW, NOW + 60, enc_key, other_key, text,
	                               sizeof(text), &err),
	                 0);
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
}

/* Flips one bit of the COSE bytes at every position: never accepted. */
static void
test_tampered(void **state)
{
	char text[APPPAY_TEXT_MAX + 1], t2[APPPAY_TEXT_MAX + 1];
	uint8_t raw[1024];
	size_t n, tl;
	apppay_t p;
	err_t err;

	(void)state;
	sample(text, sizeof(text), APPPAY_UNSAFE, NOW - 10, NOW + 86400);
	assert_int_equal(base45_decode(text + 5, strlen(text) - 5, raw, sizeof(raw), &n, &err), 0);
	for (size_t i = 0; i < n; i++) {
		raw[i] ^= 0x01;
		memcpy(t2, "STB1:", 5);
		assert_int_equal(base45_encode(raw, n, t2 + 5, sizeof(t2) - 5, &tl, &err), 0);
		assert_int_equal(apppay_verify(t2, tl + 5, op_key, NOW, &p, &err), -1);
		assert_true(err.status == STB_UNAUTHENTICATED || err.status == STB_BAD_REQUEST);
		raw[i] ^= 0x01;
	}
}

static void
test_expired(void **state)
{
	char text[APPPAY_TEXT_MAX + 1];
	apppay_t p;
	err_t err;

	(void)state;
	sample(text, sizeof(text), APPPAY_SAFE, NOW - 100, NOW);
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_int_equal(p.expires, NOW); /* filled: the signature verified */
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW - 1, &p, &err), 0);
	/* issued in the future past the skew */
	sample(text, sizeof(text), APPPAY_SAFE, NOW + APPPAY_SKEW_S + 1, NOW + 86400);
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW + 1, &p, &err), 0);
}

static void
test_malformed(void **state)
{
	static const char *bad[] = {
	    "",          "STB1",     "STB2:BB8", "stb1:BB8", "STB1:",
	    "STB1:BB8A", "STB1:bb8", "STB1:GGW", "STB1:BB8", /* CBOR "AB": not COSE */
	    "STB1:0",
	};
	char big[APPPAY_TEXT_MAX + 8];
	apppay_t p;
	err_t err;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(bad); i++) {
		assert_int_equal(apppay_verify(bad[i], strlen(bad[i]), op_key, NOW, &p, &err), -1);
		assert_int_equal(err.status, STB_BAD_REQUEST);
	}
	memset(big, 'A', sizeof(big));
	memcpy(big, "STB1:", 5);
	assert_int_equal(apppay_verify(big, sizeof(big), op_key, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
}

static void
test_encode_refuses(void **state)
{
	char text[APPPAY_TEXT_MAX + 1];
	err_t err;

	(void)state;
	assert_int_equal(apppay_encode("not an id!", APPPAY_SAFE, NOW, NOW + 1, enc_key, op_key,
	                               text, sizeof(text), &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(
	    apppay_encode(id1, 3, NOW, NOW + 1, enc_key, op_key, text, sizeof(text), &err), -1);
	assert_int_equal(
	    apppay_encode(id1, APPPAY_SAFE, NOW, NOW, enc_key, op_key, text, sizeof(text), &err),
	    -1);
	assert_int_equal(
	    apppay_encode(id1, APPPAY_SAFE, NOW, NOW + 1, enc_key, op_key, text, 40, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
}

/* The reader (keys set up once) answers as apppay_verify and apppay_open
 * do: the same fields, the same refusals. */
static void
test_reader(void **state)
{
	char text[APPPAY_TEXT_MAX + 1], forged[APPPAY_TEXT_MAX + 1], back[STB_ID_MAX + 1];
	apppay_reader_t *rd, *rd_other, *rd_key2;
	apppay_t p, q;
	err_t err;

	(void)state;
	sample(text, sizeof(text), APPPAY_SAFE, NOW - 10, NOW + 600);
	assert_non_null(rd = apppay_reader_new(op_key, enc_key, &err));
	assert_non_null(rd_other = apppay_reader_new(other_key, enc_key, &err));
	assert_non_null(rd_key2 = apppay_reader_new(op_key, enc_key2, &err));
	for (int i = 0; i < 3; i++) { /* the contexts are reused */
		assert_int_equal(apppay_reader_verify(rd, text, strlen(text), NOW, &p, &err), 0);
		assert_int_equal(apppay_verify(text, strlen(text), op_key, NOW, &q, &err), 0);
		assert_memory_equal(&p, &q, sizeof(p));
		memset(back, 0, sizeof(back));
		assert_int_equal(apppay_reader_open(rd, &p, back, &err), 0);
		assert_string_equal(back, id1);
	}
	assert_int_equal(apppay_reader_verify(rd_other, text, strlen(text), NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_int_equal(apppay_reader_verify(rd, text, strlen(text), NOW + 600, &p, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_int_equal(apppay_reader_verify(rd, text, strlen(text), NOW, &p, &err), 0);
	assert_int_equal(apppay_reader_open(rd_key2, &p, back, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* a flipped ciphertext byte under a good signature cannot be made, so
	 * a tag failure is tried on the parsed payload: refused, and the
	 * context still opens the next one */
	p.ct[0] ^= 1;
	assert_int_equal(apppay_reader_open(rd, &p, back, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	p.ct[0] ^= 1;
	assert_int_equal(apppay_reader_open(rd, &p, back, &err), 0);
	assert_string_equal(back, id1);
	/* signed by another key */
	assert_int_equal(apppay_encode(id1, APPPAY_SAFE, NOW, NOW + 60, enc_key, other_key, forged,
	                               sizeof(forged), &err),
	                 0);
	assert_int_equal(apppay_reader_verify(rd, forged, strlen(forged), NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_int_equal(apppay_reader_verify(rd, "STB1:%%", 7, NOW, &p, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	apppay_reader_free(rd);
	apppay_reader_free(rd_other);
	apppay_reader_free(rd_key2);
	apppay_reader_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_forged),
	    cmocka_unit_test(test_tampered),   cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_malformed),  cmocka_unit_test(test_encode_refuses),
	    cmocka_unit_test(test_reader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
