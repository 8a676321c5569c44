/* keysyncc: stb_keysync, the terminal's side of the key sync (flow C,
 * PROTOCOL.md): the proof from keysync.c, sent as KM_KEY_SYNC or written
 * as the one-SMS text. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keysync.h"
#include "msgenc.h"
#include "stbc.h"

static int
keysyncc_fail(stb_error_t *err, const err_t *e)
{
	return stbc_fail(err, e->status, "%s", e->msg);
}

static uint64_t
keysyncc_now(uint64_t timestamp)
{
	return timestamp != 0 ? timestamp : (uint64_t)time(NULL);
}

int
stb_keysync(stb_client_t *km, const char *key_id, const char *mdn, const char *app_id,
            const unsigned char *key, size_t key_len, uint64_t timestamp, stb_keysync_result_t *out,
            stb_error_t *err)
{
	uint8_t mac[KEYSYNC_MAC_LEN];
	int named = app_id != NULL && *app_id != '\0', rc;
	uint64_t ts = keysyncc_now(timestamp);
	err_t e;
	buf_t b;
	msg_t m;

	if (km == NULL || key_id == NULL || mdn == NULL || key == NULL || out == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "stb_keysync: missing argument");
	memset(out, 0, sizeof(*out));
	if (keysync_mac(key, key_len, key_id, mdn, named ? app_id : NULL, ts, mac, &e) == -1)
		return keysyncc_fail(err, &e);
	struct msgreq_KM_KEY_SYNC q = {.KM_KEY_ID = MV_STR(key_id),
	                               .KM_MDN = MV_STR(mdn),
	                               .KM_APP_ID = MV_IF(named, MV_STR(named ? app_id : "")),
	                               .KM_TIMESTAMP = MV_U(ts),
	                               .KM_MAC = MV_BYTES(mac, sizeof(mac))};
	buf_init(&b, 1024);
	rc = msgenc_KM_KEY_SYNC(&b, &q, &e);
	OPENSSL_cleanse(mac, sizeof(mac));
	if (rc == -1) {
		buf_free(&b);
		return keysyncc_fail(err, &e);
	}
	rc = stbc_call(km, STB_MSG_KM_KEY_SYNC, &b, &m, err);
	buf_free(&b);
	if (rc == -1)
		return -1;
	msg_get_str(&m, TLV_IX_KM_APP_ID, out->app_id, sizeof(out->app_id));
	msg_get_u64(&m, TLV_IX_KM_PUSH_ID, &out->push_id);
	return 0;
}

int
stb_keysync_sms(const char *key_id, const char *mdn, const char *app_id, const unsigned char *key,
                size_t key_len, uint64_t timestamp, char *out, size_t cap, stb_error_t *err)
{
	keysync_sms_t s;
	int named = app_id != NULL && *app_id != '\0', rc;
	err_t e;

	if (key_id == NULL || mdn == NULL || key == NULL || out == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "stb_keysync_sms: missing argument");
	memset(&s, 0, sizeof(s));
	s.timestamp = keysyncc_now(timestamp);
	if (snprintf(s.key_id, sizeof(s.key_id), "%s", key_id) >= (int)sizeof(s.key_id) ||
	    snprintf(s.app_id, sizeof(s.app_id), "%s", named ? app_id : "") >=
	        (int)sizeof(s.app_id))
		return stbc_fail(err, STB_BAD_REQUEST, "stb_keysync_sms: identifier too long");
	rc = keysync_mac(key, key_len, key_id, mdn, named ? app_id : NULL, s.timestamp, s.mac, &e);
	if (rc == 0)
		rc = keysync_sms_encode(&s, out, cap, &e);
	OPENSSL_cleanse(s.mac, sizeof(s.mac));
	return rc == -1 ? keysyncc_fail(err, &e) : 0;
}

int
stb_keysync_sms_reply(const char *text, char *app_id, size_t cap, stb_error_t *err)
{
	int status = STB_INTERNAL;
	err_t e;

	if (text == NULL || app_id == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "stb_keysync_sms_reply: missing argument");
	if (keysync_sms_reply_parse(text, strlen(text), &status, app_id, cap, &e) == -1)
		return keysyncc_fail(err, &e);
	if (status != STB_OK)
		return stbc_fail(err, status, "keymgmtd refused the sync by SMS: %s", text);
	return 0;
}
