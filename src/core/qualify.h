/*
 * qualify: what flow D's device and qualifyd both compute.
 *
 * The session nonce binds a credential request to the registration nonce
 * drawn at enrolment:
 *
 *   session_nonce = HMAC-SHA256(key = nonce,
 *                               tbs("STB-QUALIFY-V1", device_id, client_random))
 *
 * where tbs() is sig.h's canonical bytes: each field a u32 big-endian
 * length and its bytes, the label first.
 *
 * A package is CMS: SignedData (SHA-256, the operator certificate, content
 * attached) whose content is EnvelopedData (AES-256-CBC, ECDH to the device
 * certificate's key) whose content is the credentials: the TLV body of the
 * registry message QD_CREDENTIALS, that is the TLVs DEVICE_ID,
 * QD_SESSION_NONCE, QD_IMSI, QD_K, QD_OPC, QD_ISSUED, QD_EXPIRES in that
 * order, each exactly once, nothing else (decoding checks this with the
 * registry's own validator: unknown, duplicate, missing or leftover bytes
 * are errors).  `openssl cms -verify -inform DER | openssl cms -decrypt
 * -inform DER` opens one by hand.
 */
#ifndef STB_QUALIFY_H
#define STB_QUALIFY_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "stb/stbproto.h"

#define QUALIFY_LABEL       "STB-QUALIFY-V1"
#define QUALIFY_NONCE_LEN   32 /* registration nonce */
#define QUALIFY_RANDOM_LEN  32 /* client_random */
#define QUALIFY_SESSION_LEN 32 /* session nonce, HMAC-SHA256 */
#define QUALIFY_TICKET_LEN  32
#define QUALIFY_DIGEST_LEN  32 /* SHA-256 of a package */
#define QUALIFY_KEY_LEN     16 /* K, OPc, OP */
#define QUALIFY_IMSI_MIN    6
#define QUALIFY_IMSI_MAX    15
#define QUALIFY_PKG_MAX     16384 /* QD_PACKAGE's registry maximum */

typedef struct qualify_creds {
	char device_id[STB_ID_MAX + 1];
	uint8_t session_nonce[QUALIFY_SESSION_LEN];
	char imsi[QUALIFY_IMSI_MAX + 1];
	uint8_t k[QUALIFY_KEY_LEN];
	uint8_t opc[QUALIFY_KEY_LEN];
	uint64_t issued;  /* unix time */
	uint64_t expires; /* unix time */
} qualify_creds_t;

/* The session nonce of (nonce, device_id, client_random) into out.
 * BAD_REQUEST for a device_id that is not an identifier, INTERNAL when
 * HMAC fails. */
int qualify_session_nonce(const uint8_t nonce[QUALIFY_NONCE_LEN], const char *device_id,
                          const uint8_t client_random[QUALIFY_RANDOM_LEN],
                          uint8_t out[QUALIFY_SESSION_LEN], err_t *err);
/* 0 when got is the session nonce of the other three (constant time);
 * -1 with UNAUTHENTICATED when it is not. */
int qualify_session_check(const uint8_t nonce[QUALIFY_NONCE_LEN], const char *device_id,
                          const uint8_t client_random[QUALIFY_RANDOM_LEN],
                          const uint8_t got[QUALIFY_SESSION_LEN], err_t *err);

/* 1 when s[0..n) is an IMSI: QUALIFY_IMSI_MIN..QUALIFY_IMSI_MAX digits. */
int qualify_imsi_valid(const char *s, size_t n);

/* Appends the credentials' TLV body (see above) to out, which then holds
 * secrets: buf_wipe() it.  BAD_REQUEST for a field out of bounds. */
int qualify_creds_encode(const qualify_creds_t *c, buf_t *out, err_t *err);
/* Decodes and checks a credentials body into c (wipe it with
 * qualify_creds_wipe).  BAD_REQUEST naming what is wrong. */
int qualify_creds_decode(const uint8_t *p, size_t n, qualify_creds_t *c, err_t *err);
void qualify_creds_wipe(qualify_creds_t *c);

/* SHA-256 of a package's DER: what QD_PKG_CONFIRM carries. */
int qualify_pkg_digest(const uint8_t *der, size_t len, uint8_t out[QUALIFY_DIGEST_LEN], err_t *err);

/* Makes a package of c for the device certificate device (EC key), signed
 * by signer/key with the certificates in extra (may be NULL) carried
 * along; the DER is appended to out.  BAD_REQUEST, TOO_LARGE (past
 * QUALIFY_PKG_MAX or out's cap) or INTERNAL. */
int qualify_pkg_make(const qualify_creds_t *c, X509 *device, X509 *signer, EVP_PKEY *key,
                     STACK_OF(X509) * extra, buf_t *out, err_t *err);
/* Opens a package: the signature and signer chain against trust (the
 * operator's CA), the envelope with the device's key (cert may be NULL),
 * then the credentials, whose device_id and session_nonce must be the
 * expected ones.  *signer (may be NULL) gets the signer certificate to
 * free.  UNAUTHENTICATED (signature, chain, envelope, binding),
 * BAD_REQUEST (format). */
int qualify_pkg_open(X509_STORE *trust, EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len,
                     const char *device_id, const uint8_t session_nonce[QUALIFY_SESSION_LEN],
                     qualify_creds_t *c, X509 **signer, err_t *err);
/* The same; *certs (may be NULL) gets the certificates the package
 * carries (sk_X509_pop_free), e.g. to find the signer's issuer. */
int qualify_pkg_open_certs(X509_STORE *trust, EVP_PKEY *key, X509 *cert, const uint8_t *der,
                           size_t len, const char *device_id,
                           const uint8_t session_nonce[QUALIFY_SESSION_LEN], qualify_creds_t *c,
                           X509 **signer, STACK_OF(X509) * *certs, err_t *err);

#endif
