/* login: flow A transcripts (see login.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "login.h"

static int
login_put_id(buf_t *out, const char *id)
{
	size_t n = strnlen(id, LOGIN_ID_MAX + 1);
	uint8_t len[2];

	if (n == 0 || n > LOGIN_ID_MAX)
		return -1;
	len[0] = (uint8_t)(n >> 8);
	len[1] = (uint8_t)n;
	if (buf_append(out, len, 2) == -1 || buf_append(out, id, n) == -1)
		return -1;
	return 0;
}

int
login_keyinfo_tbs(buf_t *out, const char *device_id, const char *cert_id,
                  const uint8_t session_id[LOGIN_SESSION_LEN],
                  const uint8_t gw_nonce[LOGIN_NONCE_LEN], uint64_t timestamp, err_t *err)
{
	uint8_t ts[8];

	for (int i = 0; i < 8; i++)
		ts[i] = (uint8_t)(timestamp >> (56 - 8 * i));
	if (buf_append(out, LOGIN_KEYINFO_LABEL, sizeof(LOGIN_KEYINFO_LABEL) - 1) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (login_put_id(out, device_id) == -1 || login_put_id(out, cert_id) == -1)
		return err_set(err, STB_BAD_REQUEST, "device or certificate ID empty or too long");
	if (buf_append(out, session_id, LOGIN_SESSION_LEN) == -1 ||
	    buf_append(out, gw_nonce, LOGIN_NONCE_LEN) == -1 || buf_append(out, ts, 8) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	return 0;
}

int
login_auth_mac(const uint8_t *secret, size_t secret_len,
               const uint8_t server_nonce[LOGIN_NONCE_LEN],
               const uint8_t client_nonce[LOGIN_NONCE_LEN], const char *device_id,
               uint8_t mac[LOGIN_MAC_LEN], err_t *err)
{
	uint8_t msg[2 * LOGIN_NONCE_LEN + LOGIN_ID_MAX];
	size_t n = strnlen(device_id, LOGIN_ID_MAX + 1);
	unsigned int maclen = 0;

	if (n == 0 || n > LOGIN_ID_MAX)
		return err_set(err, STB_BAD_REQUEST, "device ID empty or too long");
	memcpy(msg, server_nonce, LOGIN_NONCE_LEN);
	memcpy(msg + LOGIN_NONCE_LEN, client_nonce, LOGIN_NONCE_LEN);
	memcpy(msg + 2 * LOGIN_NONCE_LEN, device_id, n);
	if (HMAC(EVP_sha256(), secret, (int)secret_len, msg, 2 * LOGIN_NONCE_LEN + n, mac,
	         &maclen) == NULL ||
	    maclen != LOGIN_MAC_LEN) {
		OPENSSL_cleanse(mac, LOGIN_MAC_LEN);
		return err_set(err, STB_INTERNAL, "HMAC-SHA256 failed");
	}
	return 0;
}
