/*
 * cose: COSE_Sign1 (RFC 9052 section 4.2) with ES256 only, built and read
 * with libcbor.
 *
 *   COSE_Sign1 = #6.18([ protected: bstr .cbor {1: -7, 4: kid},
 *                        unprotected: {},
 *                        payload: bstr,
 *                        signature: bstr (r || s, 64 bytes) ])
 *
 * The signature is ECDSA P-256 / SHA-256 over the Sig_structure
 * ["Signature1", protected, external_aad, payload].  We write the kid into
 * the protected header (so it is signed) and accept it in either header.
 * A kid is the first COSE_KID_LEN bytes of SHA-256 over the key's
 * SubjectPublicKeyInfo DER (cose_kid_of_key): it names the key, it does
 * not authenticate it.
 *
 * Decoding is strict: one definite-length item with nothing after it,
 * nesting at most COSE_DEPTH_MAX deep, the tag 18 optional, the protected
 * header a map holding alg -7 and nothing we do not understand as
 * critical, and the caller's cap on the whole input.  Errors: BAD_REQUEST
 * for anything malformed, UNAUTHENTICATED for a signature that does not
 * verify (forged or altered), TOO_LARGE past a cap.
 */
#ifndef STB_COSE_H
#define STB_COSE_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define COSE_ALG_ES256 (-7)
#define COSE_KID_LEN   8           /* what cose_kid_of_key gives */
#define COSE_KID_MAX   64          /* a kid read from a message */
#define COSE_SIG_LEN   64          /* r || s */
#define COSE_DEPTH_MAX 8           /* nesting of any COSE or payload item */
#define COSE_MAX       (16u << 20) /* hard cap on any message */

/* A decoded, not yet verified, COSE_Sign1.  Owns its bytes. */
typedef struct cose_sign1 {
	uint8_t *protected_hdr; /* the protected header's bstr contents */
	size_t protected_len;
	uint8_t *payload;
	size_t payload_len;
	uint8_t sig[COSE_SIG_LEN];
	uint8_t kid[COSE_KID_MAX];
	size_t kid_len; /* 0: no kid */
} cose_sign1_t;

/* The kid of a P-256 key (public or private). */
int cose_kid_of_key(EVP_PKEY *key, uint8_t kid[COSE_KID_LEN], err_t *err);

/* Signs payload (len bytes) with the P-256 private key, kid = the key's
 * kid, and appends the tagged COSE_Sign1 to out.  aad (may be NULL when
 * aad_len is 0) is the external_aad, bound but not carried. */
int cose_sign1_encode(EVP_PKEY *key, const uint8_t *payload, size_t len, const uint8_t *aad,
                      size_t aad_len, buf_t *out, err_t *err);
/* Parses in (len bytes, at most max and COSE_MAX) into *out; verifies
 * nothing.  Free with cose_sign1_clear, also after a failure. */
int cose_sign1_decode(const uint8_t *in, size_t len, size_t max, cose_sign1_t *out, err_t *err);
/* Verifies m's signature with pub (P-256) and the external aad; when m
 * names a kid it must be pub's (UNAUTHENTICATED otherwise). */
int cose_sign1_verify(const cose_sign1_t *m, EVP_PKEY *pub, const uint8_t *aad, size_t aad_len,
                      err_t *err);
/* NULL-safe; frees and zeroes *m. */
void cose_sign1_clear(cose_sign1_t *m);

/* Strict CBOR check shared by the payload readers: in is exactly one
 * well-formed definite-length item, nesting at most COSE_DEPTH_MAX deep.
 * BAD_REQUEST otherwise.  Run before libcbor builds a tree from it. */
int cose_cbor_check(const uint8_t *in, size_t len, err_t *err);

#endif
