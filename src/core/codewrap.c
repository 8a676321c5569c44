#include "codewrap.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <string.h>

#define NONCE_LEN 12
#define TAG_LEN   16
#define AAD_MAX   (RDV_SID_LEN + 2 + 2 * 255)

int
rdv_kdf_params_ok(uint64_t n, uint32_t r, uint32_t p)
{
	/* N a power of two; memory 128*r*N at most 256 MiB */
	if (n < 2 || n > (1u << 20) || (n & (n - 1)) != 0 || r < 1 || r > 16 || p < 1 || p > 4)
		return 0;
	return 128 * (uint64_t)r * n <= 256u * 1024 * 1024;
}

int
rdv_kdf_derive(const char *password, size_t pwlen, const uint8_t *salt, size_t saltlen, uint64_t n,
               uint32_t r, uint32_t p, uint8_t key[RDV_KEY_LEN])
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx;
	OSSL_PARAM params[6];
	uint64_t maxmem = 128 * (uint64_t)r * (n + p + 2) + (1u << 20);
	int rc;

	if (!rdv_kdf_params_ok(n, r, p))
		return -1;
	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL)
		return -1;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return -1;
	params[0] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password, pwlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_end();
	/* maxmem goes in its own call: older providers reject it with N */
	{
		OSSL_PARAM mm[2] = {
		    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		    OSSL_PARAM_construct_end()};
		EVP_KDF_CTX_set_params(ctx, mm);
	}
	rc = EVP_KDF_derive(ctx, key, RDV_KEY_LEN, params) == 1 ? 0 : -1;
	EVP_KDF_CTX_free(ctx);
	return rc;
}

static size_t
aad_build(uint8_t *aad, const uint8_t sid[RDV_SID_LEN], const char *caller, const char *target)
{
	size_t cl = strnlen(caller, 255), tl = strnlen(target, 255), n = 0;

	memcpy(aad, sid, RDV_SID_LEN);
	n += RDV_SID_LEN;
	aad[n++] = (uint8_t)cl;
	memcpy(aad + n, caller, cl);
	n += cl;
	aad[n++] = (uint8_t)tl;
	memcpy(aad + n, target, tl);
	return n + tl;
}

static int
gcm(int enc, const uint8_t key[RDV_KEY_LEN], const uint8_t *nonce, const uint8_t *aad,
    size_t aadlen, const uint8_t *in, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len, ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1 &&
	     EVP_CipherUpdate(ctx, out, &len, in, RDV_CODE_LEN) == 1 && len == RDV_CODE_LEN &&
	     (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + len, &len) == 1 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
rdv_wrap(const uint8_t key[RDV_KEY_LEN], const uint8_t sid[RDV_SID_LEN], const char *caller,
         const char *target, const uint8_t code[RDV_CODE_LEN], uint8_t out[RDV_WRAP_LEN])
{
	uint8_t aad[AAD_MAX];
	size_t al = aad_build(aad, sid, caller, target);

	if (RAND_bytes(out, NONCE_LEN) != 1)
		return -1;
	if (gcm(1, key, out, aad, al, code, out + NONCE_LEN, out + NONCE_LEN + RDV_CODE_LEN) ==
	    -1) {
		OPENSSL_cleanse(out, RDV_WRAP_LEN);
		return -1;
	}
	return 0;
}

int
rdv_unwrap(const uint8_t key[RDV_KEY_LEN], const uint8_t sid[RDV_SID_LEN], const char *caller,
           const char *target, const uint8_t in[RDV_WRAP_LEN], uint8_t code[RDV_CODE_LEN])
{
	uint8_t aad[AAD_MAX], tag[TAG_LEN];
	size_t al = aad_build(aad, sid, caller, target);

	memcpy(tag, in + NONCE_LEN + RDV_CODE_LEN, TAG_LEN);
	if (gcm(0, key, in, aad, al, in + NONCE_LEN, code, tag) == -1) {
		OPENSSL_cleanse(code, RDV_CODE_LEN);
		return -1;
	}
	return 0;
}
