/* milenage: 3GPP f1-f5* and OPc over AES-128 (see milenage.h). */
#include "milenage.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

/* AES-128-ECB, fetched once: one block at a time is all Milenage needs. */
static CRYPTO_ONCE milenage_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_CIPHER *milenage_aes;

static void
milenage_fetch(void)
{
	milenage_aes = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
}

/* A context keyed with K, padding off. */
static EVP_CIPHER_CTX *
milenage_ctx(const uint8_t k[MILENAGE_K_LEN], err_t *err)
{
	EVP_CIPHER_CTX *ctx;

	if (!CRYPTO_THREAD_run_once(&milenage_once, milenage_fetch) || milenage_aes == NULL) {
		err_set_ossl(err, STB_INTERNAL, "AES-128-ECB is not available");
		return NULL;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(ctx, milenage_aes, k, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		err_set_ossl(err, STB_INTERNAL, "AES-128 key setup");
		return NULL;
	}
	return ctx;
}

static int
milenage_block(EVP_CIPHER_CTX *ctx, const uint8_t in[16], uint8_t out[16], err_t *err)
{
	int n = 0;

	if (EVP_EncryptUpdate(ctx, out, &n, in, 16) != 1 || n != 16)
		return err_set_ossl(err, STB_INTERNAL, "AES-128 block");
	return 0;
}

/* TEMP = E_K(RAND xor OPc) */
static int
milenage_temp(EVP_CIPHER_CTX *ctx, const uint8_t opc[16], const uint8_t rand[16], uint8_t temp[16],
              err_t *err)
{
	uint8_t x[16];
	int rc;

	for (int i = 0; i < 16; i++)
		x[i] = rand[i] ^ opc[i];
	rc = milenage_block(ctx, x, temp, err);
	OPENSSL_cleanse(x, sizeof(x));
	return rc;
}

/* OUTn = E_K(rot(in xor OPc, r) xor cn) xor OPc, where in is TEMP for
 * n = 2..5 (then nothing is added) and IN1 for n = 1 (then TEMP is added
 * after the rotation).  r is a whole number of bytes; cn has its one bit
 * in the last byte. */
static int
milenage_out(EVP_CIPHER_CTX *ctx, const uint8_t opc[16], const uint8_t in[16], const uint8_t *temp,
             unsigned rbytes, uint8_t cbit, uint8_t out[16], err_t *err)
{
	uint8_t x[16];
	int rc;

	for (unsigned i = 0; i < 16; i++) {
		unsigned j = (i + rbytes) % 16;

		x[i] = in[j] ^ opc[j];
		if (temp != NULL)
			x[i] ^= temp[i];
	}
	x[15] ^= cbit;
	rc = milenage_block(ctx, x, out, err);
	for (int i = 0; i < 16; i++)
		out[i] ^= opc[i];
	OPENSSL_cleanse(x, sizeof(x));
	return rc;
}

int
milenage_opc(const uint8_t k[MILENAGE_K_LEN], const uint8_t op[MILENAGE_K_LEN],
             uint8_t opc[MILENAGE_K_LEN], err_t *err)
{
	EVP_CIPHER_CTX *ctx = milenage_ctx(k, err);
	int rc;

	if (ctx == NULL)
		return -1;
	rc = milenage_block(ctx, op, opc, err);
	EVP_CIPHER_CTX_free(ctx);
	if (rc != 0) {
		OPENSSL_cleanse(opc, MILENAGE_K_LEN);
		return -1;
	}
	for (int i = 0; i < MILENAGE_K_LEN; i++)
		opc[i] ^= op[i];
	return 0;
}

int
milenage_f1(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
            const uint8_t rand[MILENAGE_K_LEN], const uint8_t sqn[MILENAGE_SQN_LEN],
            const uint8_t amf[MILENAGE_AMF_LEN], uint8_t mac_a[MILENAGE_MAC_LEN],
            uint8_t mac_s[MILENAGE_MAC_LEN], err_t *err)
{
	EVP_CIPHER_CTX *ctx = milenage_ctx(k, err);
	uint8_t temp[16], in1[16], out1[16];
	int rc;

	if (ctx == NULL)
		return -1;
	/* IN1 = SQN || AMF || SQN || AMF */
	memcpy(in1, sqn, 6);
	memcpy(in1 + 6, amf, 2);
	memcpy(in1 + 8, in1, 8);
	rc = milenage_temp(ctx, opc, rand, temp, err) == 0 &&
	             milenage_out(ctx, opc, in1, temp, 8, 0x00, out1, err) == 0
	         ? 0
	         : -1;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == 0 && mac_a != NULL)
		memcpy(mac_a, out1, MILENAGE_MAC_LEN);
	if (rc == 0 && mac_s != NULL)
		memcpy(mac_s, out1 + 8, MILENAGE_MAC_LEN);
	OPENSSL_cleanse(temp, sizeof(temp));
	OPENSSL_cleanse(out1, sizeof(out1));
	return rc;
}

int
milenage_f2345(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
               const uint8_t rand[MILENAGE_K_LEN], milenage_keys_t *out, err_t *err)
{
	EVP_CIPHER_CTX *ctx = milenage_ctx(k, err);
	uint8_t temp[16], out2[16];
	int rc;

	if (ctx == NULL)
		return -1;
	/* r2 = 0, c2 = 1: RES and AK; r3 = 32, c3 = 2: CK; r4 = 64, c4 = 4: IK */
	rc = milenage_temp(ctx, opc, rand, temp, err) == 0 &&
	             milenage_out(ctx, opc, temp, NULL, 0, 0x01, out2, err) == 0 &&
	             milenage_out(ctx, opc, temp, NULL, 4, 0x02, out->ck, err) == 0 &&
	             milenage_out(ctx, opc, temp, NULL, 8, 0x04, out->ik, err) == 0
	         ? 0
	         : -1;
	EVP_CIPHER_CTX_free(ctx);
	memcpy(out->res, out2 + 8, MILENAGE_RES_LEN);
	memcpy(out->ak, out2, MILENAGE_AK_LEN);
	OPENSSL_cleanse(temp, sizeof(temp));
	OPENSSL_cleanse(out2, sizeof(out2));
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

int
milenage_f5star(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                const uint8_t rand[MILENAGE_K_LEN], uint8_t ak_s[MILENAGE_AK_LEN], err_t *err)
{
	EVP_CIPHER_CTX *ctx = milenage_ctx(k, err);
	uint8_t temp[16], out5[16];
	int rc;

	if (ctx == NULL)
		return -1;
	/* r5 = 96, c5 = 8 */
	rc = milenage_temp(ctx, opc, rand, temp, err) == 0 &&
	             milenage_out(ctx, opc, temp, NULL, 12, 0x08, out5, err) == 0
	         ? 0
	         : -1;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == 0)
		memcpy(ak_s, out5, MILENAGE_AK_LEN);
	OPENSSL_cleanse(temp, sizeof(temp));
	OPENSSL_cleanse(out5, sizeof(out5));
	return rc;
}

int
milenage_autn(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
              const uint8_t rand[MILENAGE_K_LEN], const uint8_t sqn[MILENAGE_SQN_LEN],
              const uint8_t amf[MILENAGE_AMF_LEN], uint8_t autn[MILENAGE_AUTN_LEN], err_t *err)
{
	milenage_keys_t keys;
	uint8_t mac_a[MILENAGE_MAC_LEN];

	if (milenage_f2345(k, opc, rand, &keys, err) != 0 ||
	    milenage_f1(k, opc, rand, sqn, amf, mac_a, NULL, err) != 0) {
		OPENSSL_cleanse(&keys, sizeof(keys));
		return -1;
	}
	for (int i = 0; i < MILENAGE_SQN_LEN; i++)
		autn[i] = sqn[i] ^ keys.ak[i];
	memcpy(autn + MILENAGE_SQN_LEN, amf, MILENAGE_AMF_LEN);
	memcpy(autn + MILENAGE_SQN_LEN + MILENAGE_AMF_LEN, mac_a, MILENAGE_MAC_LEN);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return 0;
}

int
milenage_check_autn(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                    const uint8_t rand[MILENAGE_K_LEN], const uint8_t autn[MILENAGE_AUTN_LEN],
                    milenage_keys_t *out, uint8_t sqn[MILENAGE_SQN_LEN], err_t *err)
{
	uint8_t s[MILENAGE_SQN_LEN], mac_a[MILENAGE_MAC_LEN];

	if (milenage_f2345(k, opc, rand, out, err) != 0)
		return -1;
	for (int i = 0; i < MILENAGE_SQN_LEN; i++)
		s[i] = autn[i] ^ out->ak[i];
	if (milenage_f1(k, opc, rand, s, autn + MILENAGE_SQN_LEN, mac_a, NULL, err) != 0) {
		OPENSSL_cleanse(out, sizeof(*out));
		return -1;
	}
	if (CRYPTO_memcmp(mac_a, autn + MILENAGE_SQN_LEN + MILENAGE_AMF_LEN, MILENAGE_MAC_LEN) !=
	    0) {
		OPENSSL_cleanse(out, sizeof(*out));
		return err_set(err, STB_UNAUTHENTICATED,
		               "AUTN's MAC-A does not match: the network holds another K/OPc");
	}
	if (sqn != NULL)
		memcpy(sqn, s, MILENAGE_SQN_LEN);
	return 0;
}
