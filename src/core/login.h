/* login: the flow A transcripts that the STB, cert-proxyd and ca-authd must
 * compute byte for byte alike (DESIGN 5.A steps 2 and 4). */
#ifndef STB_LOGIN_H
#define STB_LOGIN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define LOGIN_NONCE_LEN     32  /* gw_nonce, server_nonce, client_nonce */
#define LOGIN_SESSION_LEN   16  /* media-gw login session id */
#define LOGIN_MAC_LEN       32  /* HMAC-SHA256 */
#define LOGIN_ID_MAX        128 /* device_id, cert_id */
#define LOGIN_KEYINFO_LABEL "STB-LOGIN-V1"
/* Longest transcript login_keyinfo_tbs() writes. */
#define LOGIN_TBS_MAX                                                                              \
	(sizeof(LOGIN_KEYINFO_LABEL) - 1 + 2 * (2 + LOGIN_ID_MAX) + LOGIN_SESSION_LEN +            \
	 LOGIN_NONCE_LEN + 8)

/*
 * What the certificate's key signs for one login:
 *   "STB-LOGIN-V1" | u16 len | device_id | u16 len | cert_id | session_id(16)
 *   | gw_nonce(32) | u64 timestamp        (integers big-endian)
 * Appends to out; -1 with BAD_REQUEST if an ID is empty or too long.
 */
int login_keyinfo_tbs(buf_t *out, const char *device_id, const char *cert_id,
                      const uint8_t session_id[LOGIN_SESSION_LEN],
                      const uint8_t gw_nonce[LOGIN_NONCE_LEN], uint64_t timestamp, err_t *err);

/* HMAC-SHA256(secret, server_nonce | client_nonce | device_id) into mac. */
int login_auth_mac(const uint8_t *secret, size_t secret_len,
                   const uint8_t server_nonce[LOGIN_NONCE_LEN],
                   const uint8_t client_nonce[LOGIN_NONCE_LEN], const char *device_id,
                   uint8_t mac[LOGIN_MAC_LEN], err_t *err);

#endif
