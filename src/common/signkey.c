/*
 * signkey: an EVP_PKEY whose ECDSA signatures the signer process makes.
 * OpenSSL 3.0 treats an EC_KEY with its own EC_KEY_METHOD as a "foreign"
 * legacy key and keeps every signing call (X509_sign, X509_CRL_sign,
 * OCSP_basic_sign, X509_REQ_sign, EVP_DigestSign) on that method, which
 * hands us the digest; a provider would take a keymgmt, a signature and an
 * encoder implementation for the same effect.  The EC_KEY API is
 * deprecated in 3.0, so this is the one file that suppresses the warning.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "signer.h"

typedef struct signkey {
	signer_t *s;
	size_t aadlen, bloblen;
	uint8_t *aad, *blob;
} signkey_t;

static pthread_once_t signkey_once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *signkey_method;
static int signkey_ix = -1;
static _Thread_local err_t signkey_err;
static _Thread_local int signkey_failed;

static void
signkey_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	signkey_t *k = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (k == NULL)
		return;
	free(k->aad);
	free(k->blob);
	free(k);
}

static int
signkey_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
             unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	signkey_t *k = EC_KEY_get_ex_data(ec, signkey_ix);
	size_t len = 0;

	(void)type;
	(void)kinv;
	(void)r;
	if (k == NULL || dlen < 0) {
		signkey_failed = 1;
		err_set(&signkey_err, STB_INTERNAL, "not a signer key");
		return 0;
	}
	if (signer_sign(k->s, k->aad, k->aadlen, k->blob, k->bloblen, dgst, (size_t)dlen, sig,
	                (size_t)ECDSA_size(ec), &len, &signkey_err) == -1) {
		signkey_failed = 1;
		return 0;
	}
	*siglen = (unsigned int)len;
	signkey_failed = 0; /* a failure reported is the last one's */
	return 1;
}

static ECDSA_SIG *
signkey_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
                 EC_KEY *ec)
{
	unsigned char der[SIGNER_SIG_MAX];
	const unsigned char *p = der;
	unsigned int len = 0;

	if ((size_t)ECDSA_size(ec) > sizeof(der) ||
	    signkey_sign(0, dgst, dlen, der, &len, kinv, r, ec) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

static void
signkey_init(void)
{
	if ((signkey_method = EC_KEY_METHOD_new(EC_KEY_get_default_method())) == NULL)
		return;
	EC_KEY_METHOD_set_sign(signkey_method, signkey_sign, NULL, signkey_sign_sig);
	signkey_ix = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, signkey_ex_free);
}

EVP_PKEY *
signer_pkey(signer_t *s, EVP_PKEY *pub, const void *aad, size_t aadlen, const void *blob,
            size_t bloblen, err_t *err)
{
	EC_KEY *ec = NULL;
	EVP_PKEY *out = NULL;
	signkey_t *k;

	pthread_once(&signkey_once, signkey_init);
	if (signkey_method == NULL || signkey_ix < 0) {
		err_set(err, STB_INTERNAL, "the signer key method is not available");
		return NULL;
	}
	if (s == NULL || !EVP_PKEY_is_a(pub, "EC") || aadlen > SIGNER_AAD_MAX ||
	    bloblen > SIGNER_BLOB_MAX) {
		err_set(err, STB_BAD_REQUEST, "not a key the signer can hold");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL || (k->aad = malloc(aadlen + 1)) == NULL ||
	    (k->blob = malloc(bloblen + 1)) == NULL) {
		signkey_ex_free(NULL, k, NULL, 0, 0, NULL);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	k->s = s;
	memcpy(k->aad, aad, aadlen);
	k->aadlen = aadlen;
	memcpy(k->blob, blob, bloblen);
	k->bloblen = bloblen;
	/* a copy of the public key only, on our method */
	if ((ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(pub))) == NULL ||
	    EC_KEY_set_method(ec, signkey_method) != 1 ||
	    EC_KEY_set_ex_data(ec, signkey_ix, k) != 1) {
		EC_KEY_free(ec);
		signkey_ex_free(NULL, k, NULL, 0, 0, NULL);
		ERR_clear_error();
		err_set(err, STB_INTERNAL, "cannot make a signer key");
		return NULL;
	}
	k = NULL; /* the EC_KEY's now */
	if ((out = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_EC_KEY(out, ec) != 1) {
		EVP_PKEY_free(out);
		EC_KEY_free(ec);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	return out;
}

int
signer_take_err(err_t *err)
{
	if (!signkey_failed)
		return 0;
	signkey_failed = 0;
	*err = signkey_err;
	ERR_clear_error();
	return 1;
}
