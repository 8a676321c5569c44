/* keysync: the key sync MAC, the MDN rule and the SMS text (see keysync.h). */
#include "keysync.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "hex.h"
#include "proto.h"
#include "sig.h"

#define KEYSYNC_TAG "KS1"
/* label, key_id, mdn, app_id, ts: each with its u32 length */
#define KEYSYNC_TBS_MAX (5 * 4 + 64 + KEYSYNC_ID_MAX + KEYSYNC_MDN_MAX + KEYSYNC_ID_MAX + 8)

/* HMAC, fetched once: a fetch per sync costs a lookup under a lock */
static CRYPTO_ONCE keysync_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MAC *keysync_hmac;

static void
keysync_fetch(void)
{
	keysync_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int
keysync_mdn_check(const char *mdn, err_t *err)
{
	size_t n = strnlen(mdn, KEYSYNC_MDN_MAX + 1);

	if (n < KEYSYNC_MDN_MIN || n > KEYSYNC_MDN_MAX)
		return err_set(err, STB_BAD_REQUEST, "an MDN is %d to %d digits (E.164, no +)",
		               KEYSYNC_MDN_MIN, KEYSYNC_MDN_MAX);
	for (size_t i = 0; i < n; i++)
		if (mdn[i] < '0' || mdn[i] > '9')
			return err_set(err, STB_BAD_REQUEST, "an MDN is digits only (E.164, no +)");
	return 0;
}

static int
keysync_id_ok(const char *s, int may_be_empty)
{
	size_t n = strnlen(s, KEYSYNC_ID_MAX + 1);

	if (n == 0)
		return may_be_empty;
	return n <= KEYSYNC_ID_MAX && proto_id_valid((const uint8_t *)s, n);
}

static int
keysync_tbs(buf_t *tbs, const char *key_id, const char *mdn, const char *app_id, uint64_t ts,
            err_t *err)
{
	if (!keysync_id_ok(key_id, 0))
		return err_set(err, STB_BAD_REQUEST, "key_id is not an identifier");
	if (!keysync_id_ok(app_id, 1))
		return err_set(err, STB_BAD_REQUEST, "app_id is not an identifier");
	if (keysync_mdn_check(mdn, err) == -1)
		return -1;
	if (sig_tbs_label(tbs, KEYSYNC_LABEL, err) == -1 || sig_tbs_str(tbs, key_id, err) == -1 ||
	    sig_tbs_str(tbs, mdn, err) == -1 || sig_tbs_str(tbs, app_id, err) == -1 ||
	    sig_tbs_u64(tbs, ts, err) == -1)
		return -1;
	return 0;
}

int
keysync_mac(const uint8_t *key, size_t keylen, const char *key_id, const char *mdn,
            const char *app_id, uint64_t timestamp, uint8_t mac[KEYSYNC_MAC_LEN], err_t *err)
{
	buf_t tbs;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int rc = -1;

	if (keylen < KEYSYNC_KEY_MIN || keylen > KEYSYNC_KEY_MAX)
		return err_set(err, STB_BAD_REQUEST, "a terminal key is %d to %d bytes",
		               KEYSYNC_KEY_MIN, KEYSYNC_KEY_MAX);
	if (!CRYPTO_THREAD_run_once(&keysync_once, keysync_fetch) || keysync_hmac == NULL)
		return err_set_ossl(err, STB_INTERNAL, "HMAC is not available");
	buf_init(&tbs, KEYSYNC_TBS_MAX);
	if (keysync_tbs(&tbs, key_id, mdn, app_id ? app_id : "", timestamp, err) == -1)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_MAC_CTX_new(keysync_hmac)) == NULL ||
	    !EVP_MAC_init(ctx, key, keylen, params) || !EVP_MAC_update(ctx, tbs.data, tbs.len) ||
	    !EVP_MAC_final(ctx, mac, &outlen, KEYSYNC_MAC_LEN) || outlen != KEYSYNC_MAC_LEN) {
		err_set_ossl(err, STB_INTERNAL, "HMAC-SHA256 failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	buf_free(&tbs);
	return rc;
}

int
keysync_mac_verify(const uint8_t *key, size_t keylen, const char *key_id, const char *mdn,
                   const char *app_id, uint64_t timestamp, const uint8_t *mac, size_t maclen,
                   err_t *err)
{
	uint8_t want[KEYSYNC_MAC_LEN];
	int ok;

	if (keysync_mac(key, keylen, key_id, mdn, app_id, timestamp, want, err) == -1)
		return -1;
	ok = maclen == KEYSYNC_MAC_LEN && CRYPTO_memcmp(want, mac, KEYSYNC_MAC_LEN) == 0;
	OPENSSL_cleanse(want, sizeof want);
	if (!ok)
		return err_set(err, STB_UNAUTHENTICATED, "the key sync MAC is wrong");
	return 0;
}

int
keysync_sms_encode(const keysync_sms_t *s, char *out, size_t cap, err_t *err)
{
	char mac[2 * KEYSYNC_MAC_LEN + 1];
	int n;

	if (!keysync_id_ok(s->key_id, 0))
		return err_set(err, STB_BAD_REQUEST, "key_id is not an identifier");
	if (!keysync_id_ok(s->app_id, 1))
		return err_set(err, STB_BAD_REQUEST, "app_id is not an identifier");
	hex_encode(s->mac, KEYSYNC_MAC_LEN, mac);
	n = snprintf(out, cap, KEYSYNC_TAG " %s %" PRIu64 " %s%s%s", s->key_id, s->timestamp, mac,
	             s->app_id[0] ? " " : "", s->app_id);
	if (n < 0 || (size_t)n >= cap || n > KEYSYNC_SMS_MAX) {
		if (cap > 0)
			out[0] = '\0';
		return err_set(err, STB_TOO_LARGE,
		               "the key sync SMS would be %d characters, one SMS holds %d", n,
		               KEYSYNC_SMS_MAX);
	}
	return 0;
}

/* The next space-separated word of text[*pos..len); -1 for an empty one. */
static int
keysync_word(const char *text, size_t len, size_t *pos, const char **w, size_t *wlen)
{
	size_t i = *pos;

	while (i < len && text[i] != ' ')
		i++;
	if (i == *pos)
		return -1;
	*w = text + *pos;
	*wlen = i - *pos;
	*pos = i < len ? i + 1 : i;
	/* a separator must be followed by a word: "a " and "a  b" are wrong */
	if (i < len && *pos == len)
		return -1;
	return 0;
}

static int
keysync_copy_id(const char *w, size_t n, char *dst, const char *what, err_t *err)
{
	if (n > KEYSYNC_ID_MAX || !proto_id_valid((const uint8_t *)w, n))
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: %s is not an identifier", what);
	memcpy(dst, w, n);
	dst[n] = '\0';
	return 0;
}

static int
keysync_parse_u64(const char *w, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0 || n > 20 || (n > 1 && w[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return -1;
		if (x > (UINT64_MAX - (uint64_t)(w[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(w[i] - '0');
	}
	*v = x;
	return 0;
}

int
keysync_sms_decode(const char *text, size_t len, keysync_sms_t *s, err_t *err)
{
	const char *w;
	size_t n, pos = 0;

	memset(s, 0, sizeof *s);
	if (len > KEYSYNC_SMS_MAX)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: longer than %d characters",
		               KEYSYNC_SMS_MAX);
	if (memchr(text, '\0', len) != NULL)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: a NUL in the text");
	if (keysync_word(text, len, &pos, &w, &n) == -1 || n != 3 ||
	    CRYPTO_memcmp(w, KEYSYNC_TAG, 3) != 0)
		return err_set(err, STB_BAD_REQUEST,
		               "key sync SMS: does not start with " KEYSYNC_TAG);
	if (keysync_word(text, len, &pos, &w, &n) == -1)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: no key_id");
	if (keysync_copy_id(w, n, s->key_id, "key_id", err) == -1)
		return -1;
	if (keysync_word(text, len, &pos, &w, &n) == -1 ||
	    keysync_parse_u64(w, n, &s->timestamp) == -1)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: the timestamp is not a number");
	if (keysync_word(text, len, &pos, &w, &n) == -1 || n != 2 * KEYSYNC_MAC_LEN)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: the MAC is not %d hex digits",
		               2 * KEYSYNC_MAC_LEN);
	for (size_t i = 0; i < n; i++)
		if (!((w[i] >= '0' && w[i] <= '9') || (w[i] >= 'a' && w[i] <= 'f')))
			return err_set(err, STB_BAD_REQUEST,
			               "key sync SMS: the MAC is not lowercase hex");
	if (hex_decode(w, n, s->mac, sizeof s->mac, NULL) == -1)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: the MAC is not hex");
	if (pos < len) {
		if (keysync_word(text, len, &pos, &w, &n) == -1)
			return err_set(err, STB_BAD_REQUEST, "key sync SMS: an empty field");
		if (keysync_copy_id(w, n, s->app_id, "app_id", err) == -1)
			return -1;
	}
	if (pos != len)
		return err_set(err, STB_BAD_REQUEST, "key sync SMS: text after the app_id");
	return 0;
}

int
keysync_sms_reply(int status, const char *app_id, char *out, size_t cap, err_t *err)
{
	int n;

	if (status == STB_OK) {
		if (!keysync_id_ok(app_id ? app_id : "", 0))
			return err_set(err, STB_BAD_REQUEST, "app_id is not an identifier");
		n = snprintf(out, cap, KEYSYNC_TAG " OK %s", app_id);
	} else {
		n = snprintf(out, cap, KEYSYNC_TAG " ERR %s", stb_status_name(status));
	}
	if (n < 0 || (size_t)n >= cap || n > KEYSYNC_SMS_MAX) {
		if (cap > 0)
			out[0] = '\0';
		return err_set(err, STB_TOO_LARGE, "the reply SMS does not fit");
	}
	return 0;
}

int
keysync_sms_reply_parse(const char *text, size_t len, int *status, char *app_id, size_t cap,
                        err_t *err)
{
	const char *w;
	size_t n, pos = 0;

	if (len > KEYSYNC_SMS_MAX || memchr(text, '\0', len) != NULL ||
	    keysync_word(text, len, &pos, &w, &n) == -1 || n != 3 ||
	    CRYPTO_memcmp(w, KEYSYNC_TAG, 3) != 0 || keysync_word(text, len, &pos, &w, &n) == -1)
		return err_set(err, STB_BAD_REQUEST, "not a key sync reply SMS");
	if (n == 2 && memcmp(w, "OK", 2) == 0) {
		if (keysync_word(text, len, &pos, &w, &n) == -1 || pos != len ||
		    n > KEYSYNC_ID_MAX || n >= cap || !proto_id_valid((const uint8_t *)w, n))
			return err_set(err, STB_BAD_REQUEST, "key sync reply SMS: a bad app_id");
		memcpy(app_id, w, n);
		app_id[n] = '\0';
		*status = STB_OK;
		return 0;
	}
	if (n != 3 || memcmp(w, "ERR", 3) != 0 || keysync_word(text, len, &pos, &w, &n) == -1 ||
	    pos != len)
		return err_set(err, STB_BAD_REQUEST, "not a key sync reply SMS");
	for (int c = 1; c < 256; c++) {
		const char *name = stb_status_name(c);

		if (strcmp(name, "UNKNOWN") != 0 && strlen(name) == n && memcmp(name, w, n) == 0) {
			*status = c;
			if (cap > 0)
				app_id[0] = '\0';
			return 0;
		}
	}
	return err_set(err, STB_BAD_REQUEST, "key sync reply SMS: unknown status");
}
