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

#include <cbor.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "sig.h"

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

/* A public key set up once for many cose_sign1_verify_by()s from any
 * thread: its kid and its verify context (sig.h's verifier) made once. */
typedef struct cose_verifier {
	sig_verifier_t *sig;
	uint8_t kid[COSE_KID_LEN];
} cose_verifier_t;
/* BAD_REQUEST for a key that is not P-256. */
int cose_verifier_init(cose_verifier_t *v, EVP_PKEY *pub, err_t *err);
/* NULL-safe. */
void cose_verifier_clear(cose_verifier_t *v);
/* cose_sign1_verify() with v's key. */
int cose_sign1_verify_by(const cose_sign1_t *m, cose_verifier_t *v, const uint8_t *aad,
                         size_t aad_len, err_t *err);

/*
 * The libcbor helpers the payload codecs on top of COSE share (apppay.c,
 * appindex.c).  Builders take the caller's reference to item (NULL, an
 * allocation that failed, is refused) and return false on failure.
 */
/* Strict CBOR check: in is exactly one well-formed item of definite
 * lengths, nesting at most COSE_DEPTH_MAX deep, with at most len / 4 + 16
 * items (none of our formats packs items tighter; it bounds the tree
 * libcbor then builds); BAD_REQUEST otherwise.  Run before cbor_load. */
int cose_cbor_check(const uint8_t *in, size_t len, err_t *err);
/* cose_cbor_check, then libcbor's tree into *out (cbor_decref it). */
int cose_cbor_load(const uint8_t *in, size_t len, cbor_item_t **out, err_t *err);
/* item's encoding appended to out (TOO_LARGE past its max). */
int cose_cbor_serialize(const cbor_item_t *item, buf_t *out, err_t *err);
/* An unsigned integer in its shortest form (deterministic encoding). */
cbor_item_t *cose_cbor_build_uint(uint64_t v);
bool cose_cbor_push(cbor_item_t *array, cbor_item_t *item);
bool cose_cbor_put(cbor_item_t *map, uint64_t key, cbor_item_t *value);
/* A map with unsigned keys below nkeys: vals[key] = its value (borrowed),
 * NULL for absent keys.  BAD_REQUEST for another type, an indefinite
 * map, another key or a duplicate; what of names the thing in messages. */
int cose_cbor_fields(const cbor_item_t *map, const cbor_item_t **vals, size_t nkeys,
                     const char *what, err_t *err);
/* A map of unsigned keys below nkeys to unsigned integers and byte
 * strings only (the app payload's body), read in one pass of libcbor's
 * streaming decoder after cose_cbor_check: no item tree, no allocation;
 * byte strings point into in.  BAD_REQUEST (naming what) for anything
 * else: another key, a key twice, a value of another type. */
typedef struct cose_flat {
	int kind; /* COSE_FLAT_NONE (the key is absent), _UINT, _BSTR */
	uint64_t u;
	const uint8_t *p;
	size_t n;
} cose_flat_t;
enum { COSE_FLAT_NONE, COSE_FLAT_UINT, COSE_FLAT_BSTR, COSE_FLAT_MAP, COSE_FLAT_OTHER };
int cose_cbor_flat_map(const uint8_t *in, size_t len, cose_flat_t *vals, size_t nkeys,
                       const char *what, err_t *err);
/* Its typed readers, as cose_cbor_uint and cose_cbor_bstr. */
int cose_flat_uint(const cose_flat_t *v, uint64_t *out, const char *what, err_t *err);
int cose_flat_bstr(const cose_flat_t *v, size_t min, size_t max, const uint8_t **p, size_t *len,
                   const char *what, err_t *err);

/* Typed readers: BAD_REQUEST (naming what) for another type or a size
 * outside [min, max]. */
int cose_cbor_uint(const cbor_item_t *item, uint64_t *v, const char *what, err_t *err);
int cose_cbor_bstr(const cbor_item_t *item, size_t min, size_t max, const uint8_t **p, size_t *len,
                   const char *what, err_t *err);
int cose_cbor_tstr(const cbor_item_t *item, size_t min, size_t max, const char **p, size_t *len,
                   const char *what, err_t *err);

#endif
