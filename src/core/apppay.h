/*
 * apppay: the published app QR payload (flow E, step 3), shared by appvetd
 * (encode at publish, verify + open at APP_CHECK) and libstbclient (the
 * TV's offline check).
 *
 * Text: APPPAY_PREFIX followed by the base45 (RFC 9285) of a COSE_Sign1
 * (cose.h, external_aad "STB-APPPAY-V1") signed with the operator's P-256
 * key; every character is in the QR alphanumeric set.  No zlib layer as in
 * the EU DCC: the payload is mostly ciphertext, nonce and signature, which
 * do not compress, and a decoder without inflate has no bomb to defuse.
 *
 * The COSE payload is a CBOR map with unsigned keys, all required:
 *    1: format version (1)
 *    2: flag, APPPAY_SAFE 1 / APPPAY_UNSAFE 2 (as APP_FLAG; at publication)
 *    3: issued, unix seconds
 *    4: expires, unix seconds (> issued)
 *    5: ref, bstr 16: apppay_ref(ID1), the public name of the app that the
 *       signed index (appindex.h) lists; ID1 itself is not revealed
 *    6: key id, bstr 8: which operator ID-encryption key (apppay_key_id)
 *    7: nonce, bstr 12, random
 *    8: ID1 encrypted, bstr: AES-256-GCM ciphertext || 16-byte tag, AAD =
 *       sig_tbs fields "STB-APPPAY-ID1-V1", flag, issued, expires, ref,
 *       key id (u64 fields 8 bytes big-endian), so the ciphertext cannot
 *       be moved under another flag or validity
 *
 * Errors of apppay_verify, in this order: BAD_REQUEST malformed (prefix,
 * base45, CBOR, the COSE structure); UNAUTHENTICATED forged (signature
 * does not verify with the key, or the kid names another key; the
 * payload is parsed only once signed); BAD_REQUEST a signed payload we
 * cannot read (a field's type or range); EXPIRED (now >= expires);
 * BAD_REQUEST "not valid yet" (issued more than APPPAY_SKEW_S after now).
 */
#ifndef STB_APPPAY_H
#define STB_APPPAY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "cose.h"
#include "err.h"
#include "stb/stbproto.h"

#define APPPAY_PREFIX     "STB1:"
#define APPPAY_TEXT_MAX   1024 /* characters, without the NUL */
#define APPPAY_REF_LEN    16
#define APPPAY_KEY_LEN    32 /* AES-256 */
#define APPPAY_KEY_ID_LEN 8
#define APPPAY_NONCE_LEN  12
#define APPPAY_TAG_LEN    16
#define APPPAY_CT_MAX     (STB_ID_MAX + APPPAY_TAG_LEN)
#define APPPAY_SKEW_S     300             /* clock skew tolerated on issued */
#define APPPAY_AAD        "STB-APPPAY-V1" /* COSE external_aad */

/* the values of the APP_FLAG TLV */
enum { APPPAY_SAFE = 1, APPPAY_UNSAFE = 2 };

/* A verified payload. */
typedef struct apppay {
	int flag;
	uint64_t issued;
	uint64_t expires;
	uint8_t ref[APPPAY_REF_LEN];
	uint8_t key_id[APPPAY_KEY_ID_LEN];
	uint8_t nonce[APPPAY_NONCE_LEN];
	uint8_t ct[APPPAY_CT_MAX];
	size_t ct_len;
	uint8_t signer_kid[COSE_KID_MAX]; /* the COSE kid */
	size_t signer_kid_len;
} apppay_t;

/* ref = the first 16 bytes of SHA-256 over the sig_tbs fields
 * "STB-APPREF-V1", id1.  id1 is an identifier (STB_ID_MAX). */
int apppay_ref(const char *id1, uint8_t ref[APPPAY_REF_LEN], err_t *err);
/* key id = the first 8 bytes of HMAC-SHA256(key, "STB-APPPAY-KEYID-V1"). */
int apppay_key_id(const uint8_t key[APPPAY_KEY_LEN], uint8_t id[APPPAY_KEY_ID_LEN], err_t *err);

/* Encrypts id1 under enc_key (fresh random nonce), signs with sign_key
 * (P-256 private) and writes the NUL-terminated text into out (cap bytes;
 * TOO_LARGE when short; APPPAY_TEXT_MAX + 1 always suffices).  BAD_REQUEST
 * for a bad id1, flag, or expires <= issued. */
int apppay_encode(const char *id1, int flag, uint64_t issued, uint64_t expires,
                  const uint8_t enc_key[APPPAY_KEY_LEN], EVP_PKEY *sign_key, char *out, size_t cap,
                  err_t *err);
/* Decodes the len characters at text and verifies them with pub at time
 * now (errors above).  *out is filled once the signature verified, also
 * when the answer is EXPIRED. */
int apppay_verify(const char *text, size_t len, EVP_PKEY *pub, uint64_t now, apppay_t *out,
                  err_t *err);
/* Decrypts a verified payload's ID1 with enc_key: NUL-terminated into id1.
 * UNAUTHENTICATED when the key id is not enc_key's or the tag fails;
 * BAD_REQUEST when the plaintext is not an identifier. */
int apppay_open(const apppay_t *p, const uint8_t enc_key[APPPAY_KEY_LEN], char id1[STB_ID_MAX + 1],
                err_t *err);

/* The operator's public key and payload key set up once for many checks
 * from any thread (appvetd's APP_CHECK): the kid, the verify context, the
 * key id and the AES-256-GCM key schedule made once, so a check costs its
 * one signature verify and little else. */
typedef struct apppay_reader apppay_reader_t;
apppay_reader_t *apppay_reader_new(EVP_PKEY *pub, const uint8_t enc_key[APPPAY_KEY_LEN],
                                   err_t *err);
/* apppay_verify() and apppay_open() with the reader's keys. */
int apppay_reader_verify(apppay_reader_t *rd, const char *text, size_t len, uint64_t now,
                         apppay_t *out, err_t *err);
int apppay_reader_open(apppay_reader_t *rd, const apppay_t *p, char id1[STB_ID_MAX + 1],
                       err_t *err);
/* NULL-safe; no check may be running. */
void apppay_reader_free(apppay_reader_t *rd);

#endif
