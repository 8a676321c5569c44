/* sid: login session ids that every instance of media-gw can check
 * (README "Several instances").
 *
 *   sid      = expires (4 bytes, big-endian unix seconds) | 4 random bytes | tag (8)
 *   tag      = HMAC-SHA256(K, "sid" | sid[0..8] | device_id NUL cert_id)[0..8]
 *   gw_nonce = HMAC-SHA256(K, "nonce" | sid)
 *
 * K is derived from the KEK, which every instance holds, so the instance
 * that gets LOGIN_FINISH needs neither the LOGIN_START's instance nor a
 * database row to know the session: its expiry is in the id, its device and
 * certificate IDs are the presented certificate's (the tag binds them), and
 * its nonce is recomputed.  Only the nonce's single use needs the database
 * (login_used, written with the token in gwlogin.c). */
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <string.h>

#include "bytes.h"
#include "gw.h"
#include "x509.h"

#define SID_HEAD 8 /* expires + random */
#define SID_TAG  (LOGIN_SESSION_LEN - SID_HEAD)

static int
sid_mac(gw_t *gw, const char *label, const uint8_t *head, size_t headlen, const char *device_id,
        const char *cert_id, uint8_t out[32])
{
	size_t dl = strlen(device_id) + 1, cl = strlen(cert_id), ll = strlen(label);
	uint8_t msg[8 + LOGIN_SESSION_LEN + 2 * GW_ID_CAP];
	unsigned int outlen = 0;
	size_t n = 0;

	if (ll + headlen + dl + cl > sizeof(msg))
		return -1;
	memcpy(msg, label, ll);
	n += ll;
	memcpy(msg + n, head, headlen);
	n += headlen;
	memcpy(msg + n, device_id, dl);
	n += dl;
	memcpy(msg + n, cert_id, cl);
	n += cl;
	if (HMAC(gw->sha256, gw->sid_key, sizeof(gw->sid_key), msg, n, out, &outlen) == NULL ||
	    outlen != 32) {
		OPENSSL_cleanse(out, 32);
		return -1;
	}
	return 0;
}

static int
sid_nonce(gw_t *gw, const uint8_t sid[LOGIN_SESSION_LEN], uint8_t nonce[LOGIN_NONCE_LEN])
{
	return sid_mac(gw, "nonce", sid, LOGIN_SESSION_LEN, "", "", nonce);
}

int
gw_sid_mint(void *arg, const char *device_id, const char *cert_id, int64_t expires,
            uint8_t sid[LOGIN_SESSION_LEN], uint8_t nonce[LOGIN_NONCE_LEN], err_t *err)
{
	gw_t *gw = arg;
	uint8_t tag[32];

	store_be32(sid, (uint32_t)expires);
	if (RAND_bytes(sid + 4, SID_HEAD - 4) != 1)
		return err_set(err, STB_INTERNAL, "no randomness");
	if (sid_mac(gw, "sid", sid, SID_HEAD, device_id, cert_id, tag) == -1)
		return err_set(err, STB_INTERNAL, "cannot mint a login session id");
	memcpy(sid + SID_HEAD, tag, SID_TAG);
	OPENSSL_cleanse(tag, sizeof(tag));
	if (sid_nonce(gw, sid, nonce) == -1)
		return err_set(err, STB_INTERNAL, "cannot mint a login nonce");
	return 0;
}

int
gw_sid_check(gw_t *gw, const uint8_t sid[LOGIN_SESSION_LEN], const uint8_t *cert, size_t certlen,
             int64_t now, gw_sess_t *out, err_t *err)
{
	const unsigned char *p = cert;
	uint8_t tag[32];
	X509 *x;
	int ok;

	memset(out, 0, sizeof(*out));
	/* certlen is the registry's bound on CERT_DER (msg_parse checked it) */
	x = certlen <= 65535 ? d2i_X509(NULL, &p, (long)certlen) : NULL;
	ok = x != NULL && p == cert + certlen &&
	     crt_san_uri(x, CRT_DEVICE_URI, out->device_id, sizeof(out->device_id)) == 0 &&
	     crt_san_uri(x, CRT_CERT_URI, out->cert_id, sizeof(out->cert_id)) == 0 &&
	     sid_mac(gw, "sid", sid, SID_HEAD, out->device_id, out->cert_id, tag) == 0 &&
	     CRYPTO_memcmp(tag, sid + SID_HEAD, SID_TAG) == 0;
	X509_free(x);
	OPENSSL_cleanse(tag, sizeof(tag));
	if (!ok) {
		memset(out, 0, sizeof(*out));
		return err_set(err, STB_NOT_FOUND,
		               "no such login session (never issued, replaced, or forgotten)");
	}
	out->expires = (int64_t)load_be32(sid);
	if (now >= out->expires)
		return err_set(err, STB_EXPIRED, "login session expired %lld s ago; start again",
		               (long long)(now - out->expires));
	memcpy(out->sid, sid, LOGIN_SESSION_LEN);
	if (sid_nonce(gw, sid, out->nonce) == -1)
		return err_set(err, STB_INTERNAL, "cannot check the login session id");
	return 0;
}
