/* sig: detached ECDSA signatures over canonical bytes (see sig.h). */
#include "sig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/* SHA-256, fetched once: a fetch per signature costs a lookup under a lock */
static CRYPTO_ONCE sig_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sig_sha256;

static void
sig_fetch(void)
{
	sig_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static const EVP_MD *
sig_md(void)
{
	if (!CRYPTO_THREAD_run_once(&sig_once, sig_fetch))
		return NULL;
	return sig_sha256;
}

static int
sig_field(buf_t *tbs, const void *p, size_t n, err_t *err)
{
	uint8_t len[4];

	if (n > SIG_FIELD_MAX)
		return err_set(err, STB_TOO_LARGE, "a signed field is at most %u bytes",
		               SIG_FIELD_MAX);
	if (tbs->len > tbs->max || tbs->max - tbs->len < 4 + n)
		return err_set(err, STB_TOO_LARGE, "signed bytes longer than %zu", tbs->max);
	store_be32(len, (uint32_t)n);
	if (buf_append(tbs, len, 4) == -1 || buf_append(tbs, p, n) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	return 0;
}

int
sig_tbs_label(buf_t *tbs, const char *label, err_t *err)
{
	size_t n = strnlen(label, SIG_LABEL_MAX + 1);

	if (n == 0 || n > SIG_LABEL_MAX)
		return err_set(err, STB_BAD_REQUEST, "a signature label is 1 to %d characters",
		               SIG_LABEL_MAX);
	for (size_t i = 0; i < n; i++)
		if (label[i] < 0x21 || label[i] > 0x7e)
			return err_set(err, STB_BAD_REQUEST,
			               "a signature label is printable ASCII");
	return sig_field(tbs, label, n, err);
}

int
sig_tbs_bytes(buf_t *tbs, const void *p, size_t n, err_t *err)
{
	return sig_field(tbs, p, n, err);
}

int
sig_tbs_str(buf_t *tbs, const char *s, err_t *err)
{
	return sig_field(tbs, s, strnlen(s, SIG_FIELD_MAX + 1), err);
}

int
sig_tbs_u64(buf_t *tbs, uint64_t v, err_t *err)
{
	uint8_t b[8];

	store_be64(b, v);
	return sig_field(tbs, b, 8, err);
}

int
sig_key_is_p256(EVP_PKEY *key)
{
	char group[32];
	size_t len = 0;
	int ok;

	char enc[32];
	size_t elen = 0;

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return 0;
	/* OpenSSL names explicit parameters that match P-256 "prime256v1"
	 * too; only the named-curve encoding (the OID) is accepted, as RFC
	 * 5480 asks and verifiers insist (X509_V_ERR_EC_KEY_EXPLICIT_PARAMS) */
	ok = EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1 &&
	     (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) &&
	     EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
	                                    &elen) == 1 &&
	     strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
	ERR_clear_error();
	return ok;
}

/* SHA-256 of msg and a context for sign or verify with key. */
static EVP_PKEY_CTX *
sig_prepare(EVP_PKEY *key, const uint8_t *msg, size_t len, int verify, uint8_t md[32], err_t *err)
{
	const EVP_MD *sha = sig_md();
	unsigned int mdlen = 0;
	EVP_PKEY_CTX *ctx;

	if (!sig_key_is_p256(key)) {
		err_set(err, STB_BAD_REQUEST, "signature key is not EC P-256");
		return NULL;
	}
	if (sha == NULL || EVP_Digest(msg, len, md, &mdlen, sha, NULL) != 1 || mdlen != 32) {
		err_set_ossl(err, STB_INTERNAL, "SHA-256");
		return NULL;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    (verify ? EVP_PKEY_verify_init(ctx) : EVP_PKEY_sign_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, sha) != 1) {
		EVP_PKEY_CTX_free(ctx);
		err_set_ossl(err, STB_INTERNAL, "ECDSA %s setup", verify ? "verify" : "sign");
		return NULL;
	}
	return ctx;
}

int
sig_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[SIG_MAX], size_t *siglen,
         err_t *err)
{
	uint8_t md[32];
	EVP_PKEY_CTX *ctx = sig_prepare(key, msg, len, 0, md, err);
	size_t n = SIG_MAX;
	int rc;

	if (ctx == NULL)
		return -1;
	rc = EVP_PKEY_sign(ctx, sig, &n, md, sizeof(md)) == 1 && n <= SIG_MAX
	         ? 0
	         : err_set_ossl(err, STB_INTERNAL, "ECDSA signing");
	EVP_PKEY_CTX_free(ctx);
	if (rc == 0)
		*siglen = n;
	return rc;
}

int
sig_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
           err_t *err)
{
	uint8_t md[32];
	EVP_PKEY_CTX *ctx;
	int rc;

	if (siglen < 8 || siglen > SIG_MAX)
		return err_set(err, STB_UNAUTHENTICATED,
		               "signature malformed: an ECDSA P-256 signature is 8 to %d bytes",
		               SIG_MAX);
	if ((ctx = sig_prepare(pub, msg, len, 1, md, err)) == NULL)
		return -1;
	/* OpenSSL refuses DER that is not the canonical encoding */
	rc = EVP_PKEY_verify(ctx, sig, siglen, md, sizeof(md)) == 1
	         ? 0
	         : err_set(err, STB_UNAUTHENTICATED, "signature does not verify");
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int
sig_verify_cert(X509 *cert, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
                err_t *err)
{
	EVP_PKEY *pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;

	if (pub == NULL) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "no certificate public key");
	}
	return sig_verify(pub, msg, len, sig, siglen, err);
}

/* Idle verify contexts: taken for one verify and put back, so each
 * thread that verifies at once has its own and none is made per verify. */
#define SIG_VERIFIER_IDLE 32

struct sig_verifier {
	EVP_PKEY_CTX *tmpl; /* verify-initialised, SHA-256 set */
	pthread_mutex_t mu;
	EVP_PKEY_CTX *idle[SIG_VERIFIER_IDLE];
	int nidle;
};

sig_verifier_t *
sig_verifier_new(EVP_PKEY *pub, err_t *err)
{
	const EVP_MD *sha = sig_md();
	sig_verifier_t *v;

	if (!sig_key_is_p256(pub)) {
		err_set(err, STB_BAD_REQUEST, "signature key is not EC P-256");
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (sha == NULL || (v->tmpl = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(v->tmpl) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(v->tmpl, sha) != 1) {
		err_set_ossl(err, STB_INTERNAL, "ECDSA verify setup");
		EVP_PKEY_CTX_free(v->tmpl);
		free(v);
		return NULL;
	}
	pthread_mutex_init(&v->mu, NULL);
	return v;
}

static EVP_PKEY_CTX *
sig_verifier_take(sig_verifier_t *v)
{
	EVP_PKEY_CTX *ctx = NULL;

	pthread_mutex_lock(&v->mu);
	if (v->nidle > 0)
		ctx = v->idle[--v->nidle];
	pthread_mutex_unlock(&v->mu);
	return ctx != NULL ? ctx : EVP_PKEY_CTX_dup(v->tmpl);
}

static void
sig_verifier_put(sig_verifier_t *v, EVP_PKEY_CTX *ctx)
{
	pthread_mutex_lock(&v->mu);
	if (v->nidle < SIG_VERIFIER_IDLE) {
		v->idle[v->nidle++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&v->mu);
	EVP_PKEY_CTX_free(ctx);
}

int
sig_verifier_verify(sig_verifier_t *v, const uint8_t *msg, size_t len, const uint8_t *sig,
                    size_t siglen, err_t *err)
{
	uint8_t md[32];
	unsigned int mdlen = 0;
	EVP_PKEY_CTX *ctx;
	int rc;

	if (siglen < 8 || siglen > SIG_MAX)
		return err_set(err, STB_UNAUTHENTICATED,
		               "signature malformed: an ECDSA P-256 signature is 8 to %d bytes",
		               SIG_MAX);
	if (EVP_Digest(msg, len, md, &mdlen, sig_md(), NULL) != 1 || mdlen != 32)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256");
	if ((ctx = sig_verifier_take(v)) == NULL)
		return err_set_ossl(err, STB_INTERNAL, "ECDSA verify setup");
	rc = EVP_PKEY_verify(ctx, sig, siglen, md, sizeof(md)) == 1
	         ? 0
	         : err_set(err, STB_UNAUTHENTICATED, "signature does not verify");
	ERR_clear_error();
	sig_verifier_put(v, ctx);
	return rc;
}

void
sig_verifier_free(sig_verifier_t *v)
{
	if (v == NULL)
		return;
	for (int i = 0; i < v->nidle; i++)
		EVP_PKEY_CTX_free(v->idle[i]);
	EVP_PKEY_CTX_free(v->tmpl);
	pthread_mutex_destroy(&v->mu);
	free(v);
}
