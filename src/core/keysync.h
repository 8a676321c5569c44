/*
 * keysync: what the terminal and keymgmtd both compute for a key sync
 * (flow C): the MAC that proves the terminal holds its key, the MDN rule,
 * and the one-SMS text that carries a sync through an SMS gateway.
 *
 * MAC = HMAC-SHA256(key, "STB-KEYSYNC-V1" | key_id | mdn | app_id | ts)
 * with every field u32-length-prefixed as in sig.h's canonical bytes (the
 * label too; ts is 8 bytes big-endian); a missing app_id is the empty
 * field.
 *
 * SMS text (the MDN is the sender's, never in the text):
 *   KS1 <key_id> <timestamp> <mac: 64 lowercase hex>[ <app_id>]
 * single spaces, nothing before or after, timestamp decimal without leading
 * zeros; at most KEYSYNC_SMS_MAX characters, all in the GSM 7-bit default
 * alphabet.  The reply SMS: "KS1 OK <app_id>" or "KS1 ERR <STATUS_NAME>".
 */
#ifndef STB_KEYSYNC_H
#define STB_KEYSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KEYSYNC_LABEL   "STB-KEYSYNC-V1"
#define KEYSYNC_MAC_LEN 32
#define KEYSYNC_KEY_MIN 16
#define KEYSYNC_KEY_MAX 64
#define KEYSYNC_MDN_MIN 8
#define KEYSYNC_MDN_MAX 15
#define KEYSYNC_SMS_MAX 160
#define KEYSYNC_ID_MAX  128

/* A parsed key sync SMS; the strings are NUL-terminated copies. */
typedef struct keysync_sms {
	char key_id[KEYSYNC_ID_MAX + 1];
	char app_id[KEYSYNC_ID_MAX + 1]; /* "" when the text names none */
	uint64_t timestamp;
	uint8_t mac[KEYSYNC_MAC_LEN];
} keysync_sms_t;

/* 0 when mdn is 8 to 15 ASCII digits (E.164 without "+"); -1 with
 * BAD_REQUEST naming the rule otherwise. */
int keysync_mdn_check(const char *mdn, err_t *err);
/* The MAC over the fields (app_id NULL or "" for none).  key_id and app_id
 * must be identifiers, mdn an MDN, the key 16 to 64 bytes: -1 with
 * BAD_REQUEST otherwise, INTERNAL when HMAC fails. */
int keysync_mac(const uint8_t *key, size_t keylen, const char *key_id, const char *mdn,
                const char *app_id, uint64_t timestamp, uint8_t mac[KEYSYNC_MAC_LEN], err_t *err);
/* 0 when mac is the MAC of the fields under key (compared in constant
 * time); -1 with UNAUTHENTICATED when it is not, or keysync_mac()'s error. */
int keysync_mac_verify(const uint8_t *key, size_t keylen, const char *key_id, const char *mdn,
                       const char *app_id, uint64_t timestamp, const uint8_t *mac, size_t maclen,
                       err_t *err);
/* Writes the SMS text for s into out (cap bytes, NUL included; cap of
 * KEYSYNC_SMS_MAX + 1 always suffices).  -1 with BAD_REQUEST for a field
 * that is not an identifier, TOO_LARGE when the text would pass
 * KEYSYNC_SMS_MAX characters or cap. */
int keysync_sms_encode(const keysync_sms_t *s, char *out, size_t cap, err_t *err);
/* Parses len bytes of SMS text strictly into *s; -1 with BAD_REQUEST (the
 * text says which part is wrong) for anything but the format above. */
int keysync_sms_decode(const char *text, size_t len, keysync_sms_t *s, err_t *err);
/* The reply SMS for a status (OK: app_id names the app bound). */
int keysync_sms_reply(int status, const char *app_id, char *out, size_t cap, err_t *err);
/* Reads a reply SMS: *status, and the app into app_id (cap bytes) for OK.
 * -1 with BAD_REQUEST for a text that is not a reply. */
int keysync_sms_reply_parse(const char *text, size_t len, int *status, char *app_id, size_t cap,
                            err_t *err);

#endif
