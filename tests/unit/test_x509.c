/* test_x509: the SAN URI walk, certificate times, serials, strict DER. */
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "x509.h"

static void
test_san_uri(void **state)
{
	static const char *const exts[] = {
	    "subjectAltName=DNS:a.example,URI:urn:x:first,URI:urn:y:other,URI:urn:x:second-longer,"
	    "URI:urn:x:",
	    NULL};
	static const struct {
		const char *prefix;
		size_t cap;
		int rc;
		const char *want;
	} cases[] = {
	    {"urn:x:", 64, 0, "first"},
	    {"urn:y:", 64, 0, "other"},
	    {"urn:", 64, 0, "x:first"},
	    {"urn:x:", 6, 0, "first"},          /* just fits with the NUL */
	    {"urn:x:", 5, -1, NULL},            /* no rest fits */
	    {"urn:x:first", 64, -1, NULL},      /* the prefix alone is no match */
	    {"urn:x:second", 64, 0, "-longer"}, /* a later one */
	    {"urn:z:", 64, -1, NULL},
	    {"a.example", 64, -1, NULL}, /* DNS names are not URIs */
	};
	EVP_PKEY *k = tu_p256();
	X509 *x = tu_cert("san", k, NULL, NULL, 0, 3600, exts);
	X509 *bare = tu_cert("bare", k, NULL, NULL, 0, 3600, NULL);
	char v[64];

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		assert_int_equal(crt_san_uri(x, cases[i].prefix, v, cases[i].cap), cases[i].rc);
		if (cases[i].rc == 0)
			assert_string_equal(v, cases[i].want);
	}
	assert_int_equal(crt_san_uri(bare, "urn:", v, sizeof(v)), -1);
	assert_int_equal(ERR_peek_error(), 0);
	X509_free(x);
	X509_free(bare);
	EVP_PKEY_free(k);
}

struct walk {
	int n;
	char seen[4][32];
	int stop_after;
};

static int
walk_fn(const char *rest, size_t len, void *arg)
{
	struct walk *w = arg;

	assert_true(len > 0 && len < sizeof(w->seen[0]));
	memcpy(w->seen[w->n], rest, len);
	w->seen[w->n][len] = '\0';
	return ++w->n == w->stop_after;
}

static void
test_san_walk(void **state)
{
	static const char *const exts[] = {
	    "subjectAltName=URI:urn:stbcred:role:admin,URI:http://x/,URI:urn:stbcred:role:qualifyd",
	    NULL};
	EVP_PKEY *k = tu_p256();
	X509 *x = tu_cert("walk", k, NULL, NULL, 0, 3600, exts);
	struct walk w = {0, {{0}}, 0};

	(void)state;
	assert_int_equal(crt_san_uri_each(x, "urn:stbcred:role:", walk_fn, &w), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.seen[0], "admin");
	assert_string_equal(w.seen[1], "qualifyd");
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	assert_int_equal(crt_san_uri_each(x, "urn:stbcred:role:", walk_fn, &w), 1);
	assert_int_equal(w.n, 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_time(void **state)
{
	static const struct {
		int type; /* V_ASN1_UTCTIME, V_ASN1_GENERALIZEDTIME */
		const char *s;
		int rc;
		int64_t want;
	} cases[] = {
	    {V_ASN1_UTCTIME, "700101000000Z", 0, 0},
	    {V_ASN1_UTCTIME, "491231235959Z", 0, 2524607999}, /* 2049 */
	    {V_ASN1_UTCTIME, "500101000000Z", 0, -631152000}, /* 1950 */
	    {V_ASN1_GENERALIZEDTIME, "20500101000000Z", 0, 2524608000},
	    {V_ASN1_GENERALIZEDTIME, "99991231235959Z", 0, 253402300799},
	    {V_ASN1_UTCTIME, "garbage", -1, 0},
	    {V_ASN1_UTCTIME, "701301000000Z", -1, 0}, /* month 13 */
	    {V_ASN1_GENERALIZEDTIME, "2050", -1, 0},
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		ASN1_TIME *t = ASN1_STRING_type_new(cases[i].type);
		int64_t v = 42;
		err_t err;

		assert_int_equal(ASN1_STRING_set(t, cases[i].s, -1), 1);
		assert_int_equal(crt_time(t, &v, &err), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(v, cases[i].want);
		else
			assert_int_equal(err.status, STB_BAD_REQUEST);
		assert_int_equal(ERR_peek_error(), 0);
		ASN1_TIME_free(t);
	}
	{
		int64_t v;
		err_t err;
		assert_int_equal(crt_time(NULL, &v, &err), -1);
		assert_int_equal(err.status, STB_BAD_REQUEST);
	}
}

static void
test_serial_get(void **state)
{
	static const struct {
		const char *dec; /* as BN_dec2bn reads it */
		int rc;
		size_t len;
		const char *hex;
	} cases[] = {
	    {"0", 0, 1, "00"},
	    {"1", 0, 1, "01"},
	    {"255", 0, 1, "FF"},
	    {"256", 0, 2, "0100"},
	    {"-5", -1, 0, NULL},
	    /* 2^159: 20 bytes, the most RFC 5280 allows */
	    {"730750818665451459101842416358141509827966271488", 0, 20,
	     "8000000000000000000000000000000000000000"},
	    /* 2^160: 21 bytes */
	    {"1461501637330902918203684832716283019655932542976", -1, 0, NULL},
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		BIGNUM *bn = NULL;
		ASN1_INTEGER *ai;
		uint8_t out[CRT_SERIAL_MAX];
		char hex[CRT_SERIAL_HEX];
		size_t len = 0;
		err_t err;

		assert_true(BN_dec2bn(&bn, cases[i].dec) > 0);
		ai = BN_to_ASN1_INTEGER(bn, NULL);
		assert_non_null(ai);
		assert_int_equal(crt_serial_get(ai, out, &len, &err), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(len, cases[i].len);
			crt_serial_hex(out, len, hex);
			assert_string_equal(hex, cases[i].hex);
		} else {
			assert_int_equal(err.status, STB_BAD_REQUEST);
		}
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
}

static void
test_serial_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		size_t len;
		const char *hex;
	} cases[] = {
	    {"0102", 0, 2, "0102"},
	    {"0x00AB", 0, 1, "AB"},
	    {"abc", 0, 2, "0ABC"},
	    {"00", 0, 1, "00"},
	    {"000000", 0, 1, "00"},
	    {"4B80C8B2B3816E2FA928BB2D15B87270", 0, 16, "4B80C8B2B3816E2FA928BB2D15B87270"},
	    {"000102030405060708090a0b0c0d0e0f1011121314", 0, 20,
	     "0102030405060708090A0B0C0D0E0F1011121314"},
	    {"", -1, 0, NULL},
	    {"zz", -1, 0, NULL},
	    {"z", -1, 0, NULL},
	    {"0x", -1, 0, NULL},
	    {"01 02", -1, 0, NULL},
	    {"0102030405060708090a0b0c0d0e0f101112131415", -1, 0, NULL},
	    {"0000000000000000000000000000000000000000000001", -1, 0, NULL}, /* too many digits */
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t out[CRT_SERIAL_MAX];
		char hex[CRT_SERIAL_HEX];
		size_t len = 0;
		err_t err;

		assert_int_equal(crt_serial_parse(cases[i].in, out, &len, &err), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(len, cases[i].len);
			crt_serial_hex(out, len, hex);
			assert_string_equal(hex, cases[i].hex);
		} else {
			assert_int_equal(err.status, STB_BAD_REQUEST);
		}
	}
}

static void
test_from_der(void **state)
{
	EVP_PKEY *k = tu_p256();
	X509 *x = tu_cert("der", k, NULL, NULL, 0, 3600, NULL), *y;
	unsigned char *der = NULL, *longer;
	int n = i2d_X509(x, &der);
	err_t err;

	(void)state;
	assert_true(n > 0);
	longer = malloc((size_t)n + 1);
	assert_non_null(longer);
	memcpy(longer, der, (size_t)n);
	longer[n] = 0;
	y = crt_from_der(der, (size_t)n, &err);
	assert_non_null(y);
	assert_int_equal(X509_cmp(x, y), 0);
	X509_free(y);
	/* trailing byte, truncated, empty, too large */
	assert_null(crt_from_der(longer, (size_t)n + 1, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(crt_from_der(der, (size_t)n - 1, &err));
	assert_null(crt_from_der(der, 0, &err));
	assert_null(crt_from_der(der, CRT_DER_MAX + 1, &err));
	assert_int_equal(ERR_peek_error(), 0);
	free(longer);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* The memo gives what crt_from_der gives: the same certificate for the
 * same bytes (one object while remembered), another for other bytes, the
 * same refusals; more certificates than slots still parse. */
static void
test_from_der_memo(void **state)
{
	EVP_PKEY *k = tu_p256();
	X509 *x = tu_cert("memo", k, NULL, NULL, 0, 3600, NULL);
	X509 *o = tu_cert("other", k, NULL, NULL, 0, 3600, NULL), *a, *b, *c;
	unsigned char *der = NULL, *oder = NULL;
	int n = i2d_X509(x, &der), on = i2d_X509(o, &oder);
	err_t err;

	(void)state;
	assert_true(n > 0 && on > 0);
	a = crt_from_der_memo(der, (size_t)n, &err);
	b = crt_from_der_memo(der, (size_t)n, &err);
	c = crt_from_der_memo(oder, (size_t)on, &err);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_int_equal(X509_cmp(a, x), 0);
	assert_non_null(c);
	assert_int_equal(X509_cmp(c, o), 0);
	X509_free(a);
	X509_free(b);
	X509_free(c);
	/* a changed byte is another certificate (or none) */
	der[n - 1] ^= 0x01;
	a = crt_from_der_memo(der, (size_t)n, &err);
	assert_true(a == NULL || X509_cmp(a, x) != 0);
	X509_free(a);
	der[n - 1] ^= 0x01;
	assert_null(crt_from_der_memo(der, (size_t)n - 1, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(crt_from_der_memo(der, 0, &err));
	for (int i = 0; i < 20; i++) { /* more than the memo holds */
		char cn[16];
		X509 *y, *z;
		unsigned char *yd = NULL;
		int yn;

		snprintf(cn, sizeof(cn), "m%d", i);
		y = tu_cert(cn, k, NULL, NULL, 0, 3600, NULL);
		yn = i2d_X509(y, &yd);
		z = crt_from_der_memo(yd, (size_t)yn, &err);
		assert_non_null(z);
		assert_int_equal(X509_cmp(y, z), 0);
		X509_free(z);
		X509_free(y);
		OPENSSL_free(yd);
	}
	a = crt_from_der_memo(der, (size_t)n, &err);
	assert_non_null(a);
	assert_int_equal(X509_cmp(a, x), 0);
	X509_free(a);
	assert_int_equal(ERR_peek_error(), 0);
	OPENSSL_free(der);
	OPENSSL_free(oder);
	X509_free(x);
	X509_free(o);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_san_uri),       cmocka_unit_test(test_san_walk),
	    cmocka_unit_test(test_time),          cmocka_unit_test(test_serial_get),
	    cmocka_unit_test(test_serial_parse),  cmocka_unit_test(test_from_der),
	    cmocka_unit_test(test_from_der_memo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
