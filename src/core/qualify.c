/* qualify: flow D's session nonce and credential package (see qualify.h). */
#include "qualify.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "cmsmsg.h"
#include "msgenc.h"
#include "proto.h"
#include "sig.h"

/* SHA-256, fetched once (a fetch per HMAC would take a lock each time) */
static CRYPTO_ONCE qualify_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *qualify_sha256;

static void
qualify_fetch(void)
{
	qualify_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static const EVP_MD *
qualify_md(void)
{
	if (!CRYPTO_THREAD_run_once(&qualify_once, qualify_fetch))
		return NULL;
	return qualify_sha256;
}

int
qualify_session_nonce(const uint8_t nonce[QUALIFY_NONCE_LEN], const char *device_id,
                      const uint8_t client_random[QUALIFY_RANDOM_LEN],
                      uint8_t out[QUALIFY_SESSION_LEN], err_t *err)
{
	const EVP_MD *md = qualify_md();
	size_t idlen = strnlen(device_id, STB_ID_MAX + 1);
	unsigned int outlen = 0;
	buf_t tbs;
	int rc = -1;

	if (!proto_id_valid((const uint8_t *)device_id, idlen))
		return err_set(err, STB_BAD_REQUEST, "device_id is not an identifier");
	if (md == NULL)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256 is not available");
	buf_init(&tbs, 4 + sizeof(QUALIFY_LABEL) + 4 + STB_ID_MAX + 4 + QUALIFY_RANDOM_LEN);
	if (sig_tbs_label(&tbs, QUALIFY_LABEL, err) == -1 ||
	    sig_tbs_bytes(&tbs, device_id, idlen, err) == -1 ||
	    sig_tbs_bytes(&tbs, client_random, QUALIFY_RANDOM_LEN, err) == -1)
		goto out;
	if (HMAC(md, nonce, QUALIFY_NONCE_LEN, tbs.data, tbs.len, out, &outlen) == NULL ||
	    outlen != QUALIFY_SESSION_LEN) {
		err_set_ossl(err, STB_INTERNAL, "HMAC-SHA256 failed");
		goto out;
	}
	rc = 0;
out:
	buf_free(&tbs);
	return rc;
}

int
qualify_session_check(const uint8_t nonce[QUALIFY_NONCE_LEN], const char *device_id,
                      const uint8_t client_random[QUALIFY_RANDOM_LEN],
                      const uint8_t got[QUALIFY_SESSION_LEN], err_t *err)
{
	uint8_t want[QUALIFY_SESSION_LEN];
	int ok;

	if (qualify_session_nonce(nonce, device_id, client_random, want, err) == -1)
		return -1;
	ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	if (!ok)
		return err_set(err, STB_UNAUTHENTICATED,
		               "session nonce is not derived from this device's nonce");
	return 0;
}

int
qualify_imsi_valid(const char *s, size_t n)
{
	if (n < QUALIFY_IMSI_MIN || n > QUALIFY_IMSI_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
qualify_creds_encode(const qualify_creds_t *c, buf_t *out, err_t *err)
{
	size_t imsilen = strnlen(c->imsi, sizeof(c->imsi));
	struct msgreq_QD_CREDENTIALS q = {
	    .DEVICE_ID = MV_STR(c->device_id),
	    .QD_SESSION_NONCE = MV_BYTES(c->session_nonce, QUALIFY_SESSION_LEN),
	    .QD_IMSI = MV_BYTES(c->imsi, imsilen),
	    .QD_K = MV_BYTES(c->k, QUALIFY_KEY_LEN),
	    .QD_OPC = MV_BYTES(c->opc, QUALIFY_KEY_LEN),
	    .QD_ISSUED = MV_U(c->issued),
	    .QD_EXPIRES = MV_U(c->expires),
	};

	if (!qualify_imsi_valid(c->imsi, imsilen))
		return err_set(err, STB_BAD_REQUEST, "IMSI is not 6 to 15 digits");
	return msgenc_QD_CREDENTIALS(out, &q, err);
}

static int
qualify_copy(const msg_t *m, int tix, void *dst, size_t want, const char *what, err_t *err)
{
	const uint8_t *p;
	size_t n;

	if (msg_get_bytes(m, tix, &p, &n) == -1 || n != want)
		return err_set(err, STB_BAD_REQUEST, "credentials: %s is missing or not %zu bytes",
		               what, want);
	memcpy(dst, p, n);
	return 0;
}

int
qualify_creds_decode(const uint8_t *p, size_t n, qualify_creds_t *c, err_t *err)
{
	frame_hdr_t hdr = {.flags = 0, .type = STB_MSG_QD_CREDENTIALS, .len = (uint32_t)n};
	msg_t m;

	memset(c, 0, sizeof(*c));
	if (n > QUALIFY_PKG_MAX)
		return err_set(err, STB_BAD_REQUEST, "credentials longer than %d bytes",
		               QUALIFY_PKG_MAX);
	if (msg_parse(&m, &hdr, p, err) == -1)
		return err_set(err, STB_BAD_REQUEST, "credentials: %s", err ? err->msg : "");
	if (msg_get_str(&m, TLV_IX_DEVICE_ID, c->device_id, sizeof(c->device_id)) == -1 ||
	    msg_get_str(&m, TLV_IX_QD_IMSI, c->imsi, sizeof(c->imsi)) == -1 ||
	    msg_get_u64(&m, TLV_IX_QD_ISSUED, &c->issued) == -1 ||
	    msg_get_u64(&m, TLV_IX_QD_EXPIRES, &c->expires) == -1) {
		qualify_creds_wipe(c);
		return err_set(err, STB_BAD_REQUEST, "credentials: a field is missing");
	}
	if (!qualify_imsi_valid(c->imsi, strlen(c->imsi))) {
		qualify_creds_wipe(c);
		return err_set(err, STB_BAD_REQUEST, "credentials: IMSI is not 6 to 15 digits");
	}
	if (qualify_copy(&m, TLV_IX_QD_SESSION_NONCE, c->session_nonce, QUALIFY_SESSION_LEN,
	                 "session nonce", err) == -1 ||
	    qualify_copy(&m, TLV_IX_QD_K, c->k, QUALIFY_KEY_LEN, "K", err) == -1 ||
	    qualify_copy(&m, TLV_IX_QD_OPC, c->opc, QUALIFY_KEY_LEN, "OPc", err) == -1) {
		qualify_creds_wipe(c);
		return -1;
	}
	return 0;
}

void
qualify_creds_wipe(qualify_creds_t *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

int
qualify_pkg_digest(const uint8_t *der, size_t len, uint8_t out[QUALIFY_DIGEST_LEN], err_t *err)
{
	const EVP_MD *md = qualify_md();
	unsigned int n = 0;

	if (md == NULL || !EVP_Digest(der, len, out, &n, md, NULL) || n != QUALIFY_DIGEST_LEN)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256 failed");
	return 0;
}

int
qualify_pkg_make(const qualify_creds_t *c, X509 *device, X509 *signer, EVP_PKEY *key,
                 STACK_OF(X509) * extra, buf_t *out, err_t *err)
{
	buf_t plain, env;
	size_t start = out->len;
	int rc = -1;

	buf_init(&plain, 1024);
	buf_init(&env, QUALIFY_PKG_MAX);
	if (qualify_creds_encode(c, &plain, err) == -1 ||
	    cmsmsg_encrypt(device, plain.data, plain.len, CMSMSG_AES256_CBC, &env, err) == -1 ||
	    cmsmsg_sign(signer, key, extra, env.data, env.len, CMSMSG_ATTACHED, out, err) == -1)
		goto done;
	if (out->len - start > QUALIFY_PKG_MAX) {
		out->len = start;
		err_set(err, STB_TOO_LARGE, "package longer than %d bytes", QUALIFY_PKG_MAX);
		goto done;
	}
	rc = 0;
done:
	buf_wipe(&plain);
	buf_free(&env);
	return rc;
}

int
qualify_pkg_open(X509_STORE *trust, EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len,
                 const char *device_id, const uint8_t session_nonce[QUALIFY_SESSION_LEN],
                 qualify_creds_t *c, X509 **signer, err_t *err)
{
	return qualify_pkg_open_certs(trust, key, cert, der, len, device_id, session_nonce, c,
	                              signer, NULL, err);
}

int
qualify_pkg_open_certs(X509_STORE *trust, EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len,
                       const char *device_id, const uint8_t session_nonce[QUALIFY_SESSION_LEN],
                       qualify_creds_t *c, X509 **signer, STACK_OF(X509) * *certs, err_t *err)
{
	buf_t env, plain;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (signer != NULL)
		*signer = NULL;
	if (certs != NULL)
		*certs = NULL;
	buf_init(&env, QUALIFY_PKG_MAX);
	buf_init(&plain, QUALIFY_PKG_MAX);
	if (cmsmsg_verify_certs(trust, NULL, der, len, NULL, 0, &env, signer, certs, err) == -1 ||
	    cmsmsg_decrypt(key, cert, env.data, env.len, &plain, err) == -1 ||
	    qualify_creds_decode(plain.data, plain.len, c, err) == -1)
		goto done;
	if (strcmp(c->device_id, device_id) != 0 ||
	    CRYPTO_memcmp(c->session_nonce, session_nonce, QUALIFY_SESSION_LEN) != 0) {
		qualify_creds_wipe(c);
		err_set(err, STB_UNAUTHENTICATED,
		        "package is not bound to this device and session");
		goto done;
	}
	rc = 0;
done:
	if (rc == -1 && signer != NULL && *signer != NULL) {
		X509_free(*signer);
		*signer = NULL;
	}
	if (rc == -1 && certs != NULL) {
		sk_X509_pop_free(*certs, X509_free);
		*certs = NULL;
	}
	buf_wipe(&plain);
	buf_free(&env);
	return rc;
}
