/* test_qualify: flow D's session nonce, credentials encoding and package. */
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "qualify.h"
#include "testutil.h"

/* Fixed vector, computed independently (Python hmac/struct):
 * nonce 00..1f, device "stb-0001", client_random 20..3f. */
static const char vec_session[] =
    "d68ee90b746aa3e59f2d6bbd42c394c90e190e3d2bbda4e8c0b408c4ea180fd6";
static const char vec_creds[] =
    "0006000000087374622d30303031060600000020d68ee90b746aa3e59f2d6bbd42c394c90e190e3d2bbda4e8c0b4"
    "08c4ea180fd6060c0000000f303031303130303030303030303031060d00000010101112131415161718191a1b1c"
    "1d1e1f060e00000010202122232425262728292a2b2c2d2e2f061000000008000000006553f10006110000000800"
    "0000006553ff10";

static void
vec_inputs(uint8_t nonce[32], uint8_t cr[32])
{
	for (int i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)i;
		cr[i] = (uint8_t)(32 + i);
	}
}

static void
unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void
vec_creds_struct(qualify_creds_t *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->device_id, "stb-0001");
	unhex(vec_session, c->session_nonce, 32);
	strcpy(c->imsi, "001010000000001");
	for (int i = 0; i < 16; i++) {
		c->k[i] = (uint8_t)(0x10 + i);
		c->opc[i] = (uint8_t)(0x20 + i);
	}
	c->issued = 1700000000;
	c->expires = 1700003600;
}

static void
test_session_vector(void **state)
{
	uint8_t nonce[32], cr[32], got[32], want[32];
	err_t err;

	(void)state;
	vec_inputs(nonce, cr);
	unhex(vec_session, want, 32);
	assert_int_equal(qualify_session_nonce(nonce, "stb-0001", cr, got, &err), 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(qualify_session_check(nonce, "stb-0001", cr, want, &err), 0);
	/* another device, another random, another nonce: refused */
	assert_int_equal(qualify_session_check(nonce, "stb-0002", cr, want, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	cr[0] ^= 1;
	assert_int_equal(qualify_session_check(nonce, "stb-0001", cr, want, &err), -1);
	cr[0] ^= 1;
	nonce[31] ^= 0x80;
	assert_int_equal(qualify_session_check(nonce, "stb-0001", cr, want, &err), -1);
	/* not an identifier */
	assert_int_equal(qualify_session_nonce(nonce, "bad id", cr, got, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(qualify_session_nonce(nonce, "", cr, got, &err), -1);
}

static void
test_creds_vector(void **state)
{
	uint8_t want[sizeof(vec_creds) / 2];
	qualify_creds_t c, d;
	buf_t b;
	err_t err;

	(void)state;
	unhex(vec_creds, want, sizeof(want));
	vec_creds_struct(&c);
	buf_init(&b, 4096);
	assert_int_equal(qualify_creds_encode(&c, &b, &err), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	assert_int_equal(qualify_creds_decode(b.data, b.len, &d, &err), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	qualify_creds_wipe(&d);
	buf_wipe(&b);
}

static void
test_creds_refusals(void **state)
{
	uint8_t v[sizeof(vec_creds) / 2 + 16];
	size_t n = sizeof(vec_creds) / 2;
	qualify_creds_t c;
	err_t err;

	(void)state;
	unhex(vec_creds, v, n);
	/* truncated, leftover, missing last field */
	assert_int_equal(qualify_creds_decode(v, n - 1, &c, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	memcpy(v + n, "\x00\x03\x00\x00\x00\x00", 6); /* an extra PAYLOAD TLV */
	assert_int_equal(qualify_creds_decode(v, n + 6, &c, &err), -1);
	assert_int_equal(qualify_creds_decode(v, n - 14, &c, &err), -1); /* no QD_EXPIRES */
	/* a duplicate field: DEVICE_ID (14 bytes) again instead of QD_EXPIRES */
	memcpy(v + n - 14, v, 14);
	assert_int_equal(qualify_creds_decode(v, n, &c, &err), -1);
	/* a non-digit IMSI */
	unhex(vec_creds, v, n);
	v[16 + 38 + 6] = 'x';
	assert_int_equal(qualify_creds_decode(v, n, &c, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	/* the encoder refuses a bad IMSI */
	vec_creds_struct(&c);
	strcpy(c.imsi, "12345");
	buf_t b;
	buf_init(&b, 4096);
	assert_int_equal(qualify_creds_encode(&c, &b, &err), -1);
	buf_free(&b);
	assert_true(qualify_imsi_valid("001010000000001", 15));
	assert_false(qualify_imsi_valid("0010100000000012", 16));
	assert_false(qualify_imsi_valid("00101a", 6));
}

static const char *const ca_exts[] = {"basicConstraints=critical,CA:TRUE",
                                      "keyUsage=critical,keyCertSign,cRLSign", NULL};
static const char *const leaf_exts[] = {"basicConstraints=critical,CA:FALSE",
                                        "keyUsage=critical,digitalSignature,keyAgreement", NULL};

static void
test_pkg_roundtrip(void **state)
{
	EVP_PKEY *ca_key = tu_p256(), *op_key = tu_p256(), *dev_key = tu_p256(),
	         *other_key = tu_p256();
	X509 *ca = tu_cert("Operator CA", ca_key, NULL, NULL, -3600, 86400, ca_exts);
	X509 *op = tu_cert("operator", op_key, ca, ca_key, -3600, 86400, leaf_exts);
	X509 *dev = tu_cert("stb-0001", dev_key, ca, ca_key, -3600, 86400, leaf_exts);
	X509_STORE *trust = X509_STORE_new();
	qualify_creds_t c, d;
	uint8_t dg[32], dg2[32], sn[32];
	X509 *signer = NULL;
	buf_t pkg;
	err_t err;

	(void)state;
	assert_int_equal(X509_STORE_add_cert(trust, ca), 1);
	vec_creds_struct(&c);
	memcpy(sn, c.session_nonce, 32);
	buf_init(&pkg, QUALIFY_PKG_MAX);
	assert_int_equal(qualify_pkg_make(&c, dev, op, op_key, NULL, &pkg, &err), 0);
	assert_int_equal(qualify_pkg_open(trust, dev_key, dev, pkg.data, pkg.len, "stb-0001", sn,
	                                  &d, &signer, &err),
	                 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_non_null(signer);
	assert_int_equal(X509_cmp(signer, op), 0);
	X509_free(signer);
	/* bound to the device and the session */
	assert_int_equal(qualify_pkg_open(trust, dev_key, dev, pkg.data, pkg.len, "stb-0002", sn,
	                                  &d, NULL, &err),
	                 -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	sn[0] ^= 1;
	assert_int_equal(qualify_pkg_open(trust, dev_key, dev, pkg.data, pkg.len, "stb-0001", sn,
	                                  &d, NULL, &err),
	                 -1);
	sn[0] ^= 1;
	/* another key does not open it; a flipped byte does not verify */
	assert_int_equal(qualify_pkg_open(trust, other_key, NULL, pkg.data, pkg.len, "stb-0001", sn,
	                                  &d, NULL, &err),
	                 -1);
	assert_int_equal(qualify_pkg_digest(pkg.data, pkg.len, dg, &err), 0);
	pkg.data[pkg.len / 2] ^= 1;
	assert_int_equal(qualify_pkg_open(trust, dev_key, dev, pkg.data, pkg.len, "stb-0001", sn,
	                                  &d, NULL, &err),
	                 -1);
	assert_int_equal(qualify_pkg_digest(pkg.data, pkg.len, dg2, &err), 0);
	assert_memory_not_equal(dg, dg2, 32);
	buf_free(&pkg);
	X509_STORE_free(trust);
	X509_free(ca);
	X509_free(op);
	X509_free(dev);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(op_key);
	EVP_PKEY_free(dev_key);
	EVP_PKEY_free(other_key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_vector),
	    cmocka_unit_test(test_creds_vector),
	    cmocka_unit_test(test_creds_refusals),
	    cmocka_unit_test(test_pkg_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
