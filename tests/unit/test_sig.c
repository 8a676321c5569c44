/* test_sig: canonical bytes, ECDSA P-256 sign and verify, openssl dgst. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"
#include "testutil.h"

/* The canonical bytes of one sample transcript under label. */
static void
tbs_sample(buf_t *b, const char *label, const char *dev)
{
	static const uint8_t nonce[4] = {1, 2, 3, 4};
	err_t err;

	buf_init(b, 4096);
	assert_int_equal(sig_tbs_label(b, label, &err), 0);
	assert_int_equal(sig_tbs_str(b, dev, &err), 0);
	assert_int_equal(sig_tbs_bytes(b, nonce, sizeof(nonce), &err), 0);
	assert_int_equal(sig_tbs_u64(b, 1700000000, &err), 0);
}

static void
test_tbs_layout(void **state)
{
	static const uint8_t want[] = {0,   0,   0, 3, 'S', '-', '1', 0,    0,    0,    2,
	                               'a', 'b', 0, 0, 0,   4,   1,   2,    3,    4,    0,
	                               0,   0,   8, 0, 0,   0,   0,   0x65, 0x53, 0xf1, 0x00};
	buf_t a, b;
	err_t err;

	(void)state;
	tbs_sample(&a, "S-1", "ab");
	assert_int_equal(a.len, sizeof(want));
	assert_memory_equal(a.data, want, sizeof(want));
	buf_free(&a);
	/* ("ab", "c") and ("a", "bc") are different bytes */
	buf_init(&a, 64);
	buf_init(&b, 64);
	assert_int_equal(sig_tbs_label(&a, "L", &err), 0);
	assert_int_equal(sig_tbs_label(&b, "L", &err), 0);
	assert_int_equal(sig_tbs_str(&a, "ab", &err), 0);
	assert_int_equal(sig_tbs_str(&a, "c", &err), 0);
	assert_int_equal(sig_tbs_str(&b, "a", &err), 0);
	assert_int_equal(sig_tbs_str(&b, "bc", &err), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.data, b.data, a.len);
	/* an empty field is a field */
	assert_int_equal(sig_tbs_bytes(&a, NULL, 0, &err), 0);
	assert_int_equal(a.len, b.len + 4);
	buf_free(&a);
	buf_free(&b);
}

static void
test_tbs_refusals(void **state)
{
	static const struct {
		const char *label;
		int status;
	} cases[] = {
	    {"", STB_BAD_REQUEST},
	    {"has space", STB_BAD_REQUEST},
	    {"tab\t", STB_BAD_REQUEST},
	    {"\xc3\xa9t\xc3\xa9", STB_BAD_REQUEST},
	    {"L2345678901234567890123456789012345678901234567890123456789012345", STB_BAD_REQUEST},
	    {"L234567890123456789012345678901234567890123456789012345678901234", STB_OK},
	};
	buf_t b;
	err_t err;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		buf_init(&b, 256);
		if (cases[i].status == STB_OK) {
			assert_int_equal(sig_tbs_label(&b, cases[i].label, &err), 0);
		} else {
			assert_int_equal(sig_tbs_label(&b, cases[i].label, &err), -1);
			assert_int_equal(err.status, cases[i].status);
			assert_int_equal(b.len, 0);
		}
		buf_free(&b);
	}
	/* the buffer's cap is the bound: nothing half-written */
	buf_init(&b, 16);
	assert_int_equal(sig_tbs_label(&b, "L", &err), 0);
	assert_int_equal(sig_tbs_bytes(&b, "0123456789ab", 12, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(b.len, 5);
	assert_int_equal(sig_tbs_bytes(&b, "0123456", 7, &err), 0);
	assert_int_equal(b.len, 16);
	buf_free(&b);
}

enum { MUT_NONE, MUT_SIG_BIT, MUT_MSG_BIT, MUT_SIG_SHORT, MUT_SIG_LONG };

static void
test_sign_verify(void **state)
{
	static const struct {
		const char *name;
		const char *sign_label, *verify_label;
		int other_key; /* verify with another P-256 key */
		int mut;
		int status;
	} cases[] = {
	    {"valid", "STB-SNAP-V1", "STB-SNAP-V1", 0, MUT_NONE, STB_OK},
	    {"flipped signature bit", "STB-SNAP-V1", "STB-SNAP-V1", 0, MUT_SIG_BIT,
	     STB_UNAUTHENTICATED},
	    {"flipped message bit", "STB-SNAP-V1", "STB-SNAP-V1", 0, MUT_MSG_BIT,
	     STB_UNAUTHENTICATED},
	    {"wrong key", "STB-SNAP-V1", "STB-SNAP-V1", 1, MUT_NONE, STB_UNAUTHENTICATED},
	    {"wrong label", "STB-SNAP-V1", "STB-QR-V1", 0, MUT_NONE, STB_UNAUTHENTICATED},
	    {"trailing byte", "STB-SNAP-V1", "STB-SNAP-V1", 0, MUT_SIG_LONG, STB_UNAUTHENTICATED},
	    {"truncated", "STB-SNAP-V1", "STB-SNAP-V1", 0, MUT_SIG_SHORT, STB_UNAUTHENTICATED},
	};
	EVP_PKEY *key = tu_p256(), *other = tu_p256();
	X509 *cert = tu_cert("signer", key, NULL, NULL, 0, 3600, NULL);

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t sig[SIG_MAX + 1];
		size_t siglen = 0;
		buf_t s, v;
		err_t err;
		int rc;

		tbs_sample(&s, cases[i].sign_label, "stb-1");
		tbs_sample(&v, cases[i].verify_label, "stb-1");
		assert_int_equal(sig_sign(key, s.data, s.len, sig, &siglen, &err), 0);
		assert_true(siglen >= 8 && siglen <= SIG_MAX);
		switch (cases[i].mut) {
		case MUT_SIG_BIT:
			sig[siglen / 2] ^= 0x01;
			break;
		case MUT_MSG_BIT:
			v.data[v.len - 1] ^= 0x80;
			break;
		case MUT_SIG_SHORT:
			siglen--;
			break;
		case MUT_SIG_LONG:
			sig[siglen++] = 0;
			break;
		default:
			break;
		}
		rc = sig_verify(cases[i].other_key ? other : key, v.data, v.len, sig, siglen, &err);
		if (cases[i].status == STB_OK) {
			assert_int_equal(rc, 0);
			assert_int_equal(sig_verify_cert(cert, v.data, v.len, sig, siglen, &err),
			                 0);
		} else {
			if (rc != -1 || err.status != cases[i].status)
				fail_msg("%s: rc %d status %d", cases[i].name, rc, err.status);
			if (!cases[i].other_key)
				assert_int_equal(
				    sig_verify_cert(cert, v.data, v.len, sig, siglen, &err), -1);
		}
		assert_int_equal(ERR_peek_error(), 0);
		buf_free(&s);
		buf_free(&v);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void
test_wrong_keys(void **state)
{
	EVP_PKEY *p384 = EVP_EC_gen("P-384"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *p256 = tu_p256();
	uint8_t sig[SIG_MAX];
	size_t siglen = 0;
	err_t err;

	(void)state;
	assert_non_null(p384);
	assert_non_null(ed);
	assert_int_equal(sig_sign(p384, (const uint8_t *)"m", 1, sig, &siglen, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(sig_sign(ed, (const uint8_t *)"m", 1, sig, &siglen, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(sig_sign(NULL, (const uint8_t *)"m", 1, sig, &siglen, &err), -1);
	assert_int_equal(sig_sign(p256, (const uint8_t *)"m", 1, sig, &siglen, &err), 0);
	assert_int_equal(sig_verify(p384, (const uint8_t *)"m", 1, sig, siglen, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(sig_verify(p256, (const uint8_t *)"m", 1, sig, 0, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_int_equal(sig_verify_cert(NULL, (const uint8_t *)"m", 1, sig, siglen, &err), -1);
	assert_int_equal(ERR_peek_error(), 0);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p256);
}

/* The verifier: what sig_verify says, from several threads at once (each
 * takes its own context), and the same refusals. */
struct vthread {
	sig_verifier_t *v;
	const uint8_t *sig;
	size_t siglen;
	int good, bad;
};

static void *
verifier_thread(void *arg)
{
	struct vthread *t = arg;
	err_t err;

	for (int i = 0; i < 50; i++) {
		t->good += sig_verifier_verify(t->v, (const uint8_t *)"msg", 3, t->sig, t->siglen,
		                               &err) == 0;
		t->bad += sig_verifier_verify(t->v, (const uint8_t *)"msh", 3, t->sig, t->siglen,
		                              &err) == -1 &&
		          err.status == STB_UNAUTHENTICATED;
	}
	return NULL;
}

static void
test_verifier(void **state)
{
	EVP_PKEY *p256 = tu_p256(), *other = tu_p256(), *p384 = EVP_EC_gen("P-384");
	uint8_t sig[SIG_MAX];
	size_t siglen = 0;
	sig_verifier_t *v, *vo;
	struct vthread t[4];
	pthread_t tid[4];
	err_t err;

	(void)state;
	assert_null(sig_verifier_new(p384, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(sig_verifier_new(NULL, &err));
	assert_non_null(v = sig_verifier_new(p256, &err));
	assert_non_null(vo = sig_verifier_new(other, &err));
	assert_int_equal(sig_sign(p256, (const uint8_t *)"msg", 3, sig, &siglen, &err), 0);
	assert_int_equal(sig_verifier_verify(v, (const uint8_t *)"msg", 3, sig, siglen, &err), 0);
	assert_int_equal(sig_verifier_verify(vo, (const uint8_t *)"msg", 3, sig, siglen, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_int_equal(sig_verifier_verify(v, (const uint8_t *)"msg", 3, sig, 0, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	sig[siglen - 1] ^= 1;
	assert_int_equal(sig_verifier_verify(v, (const uint8_t *)"msg", 3, sig, siglen, &err), -1);
	sig[siglen - 1] ^= 1;
	for (int i = 0; i < 4; i++) {
		t[i] = (struct vthread){v, sig, siglen, 0, 0};
		assert_int_equal(pthread_create(&tid[i], NULL, verifier_thread, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(t[i].good, 50);
		assert_int_equal(t[i].bad, 50);
	}
	assert_int_equal(ERR_peek_error(), 0);
	sig_verifier_free(v);
	sig_verifier_free(vo);
	sig_verifier_free(NULL);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p384);
}

/* P-256 given by explicit parameters (openssl ecparam -param_enc explicit):
 * OpenSSL still names the group prime256v1, the rule must not take it. */
static void
test_explicit_params(void **state)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	char group[] = "P-256", enc[] = "explicit";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, enc, 0),
	    OSSL_PARAM_construct_end()};
	EVP_PKEY *ex = NULL, *p256 = tu_p256();
	uint8_t sig[SIG_MAX];
	size_t siglen = 0;
	err_t err;

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	assert_int_equal(EVP_PKEY_generate(ctx, &ex), 1);
	assert_int_equal(sig_key_is_p256(p256), 1);
	assert_int_equal(sig_key_is_p256(ex), 0);
	assert_int_equal(sig_sign(ex, (const uint8_t *)"m", 1, sig, &siglen, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ERR_peek_error(), 0);
	EVP_PKEY_free(ex);
	EVP_PKEY_free(p256);
	EVP_PKEY_CTX_free(ctx);
}

/* Our signatures are what `openssl dgst -sha256 -sign` makes, both ways. */
static void
test_openssl_interop(void **state)
{
	EVP_PKEY *key = tu_p256();
	char path[4][TU_DIR_MAX + 16], cmd[1024];
	uint8_t sig[SIG_MAX + 8];
	size_t siglen = 0;
	buf_t m;
	FILE *f;
	err_t err;

	(void)state;
	snprintf(path[0], sizeof(path[0]), "%s/key.pem", tu_dir);
	snprintf(path[1], sizeof(path[1]), "%s/msg", tu_dir);
	snprintf(path[2], sizeof(path[2]), "%s/ours.sig", tu_dir);
	snprintf(path[3], sizeof(path[3]), "%s/theirs.sig", tu_dir);
	tu_write_key(path[0], key);
	tbs_sample(&m, "STB-SNAP-V1", "stb-interop");
	assert_non_null(f = fopen(path[1], "wb"));
	assert_int_equal(fwrite(m.data, 1, m.len, f), m.len);
	fclose(f);
	assert_int_equal(sig_sign(key, m.data, m.len, sig, &siglen, &err), 0);
	assert_non_null(f = fopen(path[2], "wb"));
	assert_int_equal(fwrite(sig, 1, siglen, f), siglen);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "openssl dgst -sha256 -prverify %s -signature %s %s >/dev/null && "
	         "openssl dgst -sha256 -sign %s -out %s %s",
	         path[0], path[2], path[1], path[0], path[3], path[1]);
	assert_int_equal(system(cmd), 0);
	assert_non_null(f = fopen(path[3], "rb"));
	siglen = fread(sig, 1, sizeof(sig), f);
	fclose(f);
	assert_int_equal(sig_verify(key, m.data, m.len, sig, siglen, &err), 0);
	buf_free(&m);
	EVP_PKEY_free(key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tbs_layout),
	    cmocka_unit_test(test_tbs_refusals),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_wrong_keys),
	    cmocka_unit_test(test_verifier),
	    cmocka_unit_test(test_explicit_params),
	    cmocka_unit_test_setup_teardown(test_openssl_interop, tu_setup_dir, tu_teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
