#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmode.h"
#include "hex.h"

#define SEALED_NONCE_LEN 12
#define SEALED_TAG_LEN   16
#define KEK_FILE_MAX     128

struct sealed_kek {
	uint8_t key[SEALED_KEY_LEN];
	EVP_CIPHER *aes; /* fetched once */
};

int
sealed_kek_from_bytes(const uint8_t key[SEALED_KEY_LEN], sealed_kek_t **out, err_t *err)
{
	sealed_kek_t *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((k->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL) {
		free(k);
		return err_set(err, STB_INTERNAL, "AES-256-GCM is not available");
	}
	memcpy(k->key, key, SEALED_KEY_LEN);
	*out = k;
	return 0;
}

void
sealed_kek_free(sealed_kek_t *k)
{
	if (k == NULL)
		return;
	EVP_CIPHER_free(k->aes);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

static int
kek_parse(const uint8_t *raw, size_t n, uint8_t key[SEALED_KEY_LEN])
{
	/* raw first: a random key may well end in a newline byte */
	if (n == SEALED_KEY_LEN) {
		memcpy(key, raw, SEALED_KEY_LEN);
		return 0;
	}
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	if (n != 2 * SEALED_KEY_LEN)
		return -1;
	return hex_decode((const char *)raw, n, key, SEALED_KEY_LEN, NULL);
}

int
sealed_kek_load(const char *path, const char *cred_name, sealed_kek_t **out, err_t *err)
{
	char credpath[4096];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	uint8_t raw[KEK_FILE_MAX], key[SEALED_KEY_LEN];
	struct stat st;
	ssize_t n;
	int fd, rc, from_cred = 0;

	if (dir != NULL && cred_name != NULL) {
		snprintf(credpath, sizeof(credpath), "%s/%s", dir, cred_name);
		if (access(credpath, F_OK) == 0) {
			path = credpath;
			from_cred = 1;
		}
	}
	if (path == NULL || *path == '\0')
		return err_set(err, STB_NOT_FOUND, "no key-encryption key configured (kek_file)");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return err_set(err, STB_NOT_FOUND, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1) {
		close(fd);
		return err_set(err, STB_INTERNAL, "%s: %s", path, strerror(errno));
	}
	/* systemd credentials are protected by their directory */
	if (!from_cred && fmode_private(&st, path, "key file", err) == -1) {
		close(fd);
		return -1;
	}
	n = read(fd, raw, sizeof(raw));
	close(fd);
	if (n < 0)
		return err_set(err, STB_INTERNAL, "%s: %s", path, strerror(errno));
	rc = kek_parse(raw, (size_t)n, key);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (rc == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: expected 32 raw bytes or 64 hex digits",
		               path);
	rc = sealed_kek_from_bytes(key, out, err);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
sealed_seal(const sealed_kek_t *k, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
            buf_t *out, err_t *err)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t *p;
	int l, ok = 0;

	if (ptlen > INT32_MAX || aadlen > INT32_MAX)
		return err_set(err, STB_TOO_LARGE, "secret too large to seal");
	if (buf_reserve(out, SEALED_OVERHEAD + ptlen) == -1)
		return err_set(err, STB_TOO_LARGE, "sealed secret does not fit");
	p = out->data + out->len;
	p[0] = 'S';
	p[1] = '1';
	if (RAND_bytes(p + 2, SEALED_NONCE_LEN) != 1)
		return err_set(err, STB_INTERNAL, "RAND_bytes failed");
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (EVP_EncryptInit_ex2(ctx, k->aes, k->key, p + 2, NULL) == 1 &&
	    (aadlen == 0 || EVP_EncryptUpdate(ctx, NULL, &l, aad, (int)aadlen) == 1) &&
	    EVP_EncryptUpdate(ctx, p + 2 + SEALED_NONCE_LEN, &l, pt, (int)ptlen) == 1 &&
	    EVP_EncryptFinal_ex(ctx, p + 2 + SEALED_NONCE_LEN + ptlen, &l) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SEALED_TAG_LEN,
	                        p + 2 + SEALED_NONCE_LEN + ptlen) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return err_set(err, STB_INTERNAL, "AES-256-GCM seal failed");
	out->len += SEALED_OVERHEAD + ptlen;
	return 0;
}

int
sealed_open(const sealed_kek_t *k, const void *aad, size_t aadlen, const void *blob, size_t bloblen,
            uint8_t *pt, size_t cap, size_t *ptlen, err_t *err)
{
	const uint8_t *b = blob;
	EVP_CIPHER_CTX *ctx;
	size_t ctlen;
	uint8_t tag[SEALED_TAG_LEN];
	int l, ok = 0;

	if (bloblen < SEALED_OVERHEAD || b[0] != 'S' || b[1] != '1')
		return err_set(err, STB_BAD_REQUEST, "not a sealed secret");
	ctlen = bloblen - SEALED_OVERHEAD;
	if (ctlen > cap || ctlen > INT32_MAX || aadlen > INT32_MAX)
		return err_set(err, STB_TOO_LARGE, "sealed secret larger than its buffer");
	memcpy(tag, b + 2 + SEALED_NONCE_LEN + ctlen, SEALED_TAG_LEN);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (EVP_DecryptInit_ex2(ctx, k->aes, k->key, b + 2, NULL) == 1 &&
	    (aadlen == 0 || EVP_DecryptUpdate(ctx, NULL, &l, aad, (int)aadlen) == 1) &&
	    EVP_DecryptUpdate(ctx, pt, &l, b + 2 + SEALED_NONCE_LEN, (int)ctlen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SEALED_TAG_LEN, tag) == 1 &&
	    EVP_DecryptFinal_ex(ctx, pt + ctlen, &l) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(pt, ctlen);
		return err_set(err, STB_UNAUTHENTICATED,
		               "sealed secret does not open (wrong key or row)");
	}
	*ptlen = ctlen;
	return 0;
}

int
sealed_derive(const sealed_kek_t *k, const char *label, uint8_t out[32], err_t *err)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM params[4];
	int ok;

	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
		return err_set(err, STB_INTERNAL, "HKDF is not available");
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->key, SEALED_KEY_LEN);
	params[2] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label));
	params[3] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, 32, params) == 1;
	EVP_KDF_CTX_free(kctx);
	return ok ? 0 : err_set(err, STB_INTERNAL, "HKDF failed");
}
