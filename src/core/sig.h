/*
 * sig: detached ECDSA P-256 / SHA-256 signatures over canonical bytes.
 *
 * The canonical bytes ("to be signed") are a sequence of fields, each a
 * u32 big-endian length and that many bytes; the first field is a
 * domain-separation label ("STB-SNAPSHOT-V1"), so bytes signed for one
 * purpose never verify for another, and no two field lists give the same
 * bytes.  Build them with sig_tbs_*() into a buf_t, then sign or verify.
 * (The flow A transcripts in login.c predate this and keep their own
 * u16-prefixed layout, which deployed STBs compute.)
 */
#ifndef STB_SIG_H
#define STB_SIG_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SIG_MAX       72 /* DER ECDSA-Sig-Value for P-256 */
#define SIG_LABEL_MAX 64
#define SIG_FIELD_MAX (16u << 20) /* one field */

/* Appends the label field: 1 to SIG_LABEL_MAX printable ASCII characters.
 * -1 with BAD_REQUEST for a bad label, TOO_LARGE past the buffer's max. */
int sig_tbs_label(buf_t *tbs, const char *label, err_t *err);
/* Appends one field of n bytes (n may be 0; at most SIG_FIELD_MAX). */
int sig_tbs_bytes(buf_t *tbs, const void *p, size_t n, err_t *err);
/* A string field (its bytes, no NUL). */
int sig_tbs_str(buf_t *tbs, const char *s, err_t *err);
/* An 8-byte big-endian field. */
int sig_tbs_u64(buf_t *tbs, uint64_t v, err_t *err);

/* 1 when key is an EC key on P-256 encoded as the named curve; 0 for
 * another key, and for P-256 given by explicit parameters.  The one rule
 * for every EC key a peer hands us (CSRs, certificates, key info). */
int sig_key_is_p256(EVP_PKEY *key);

/* ECDSA-SHA256 over msg with the P-256 private key, DER into sig
 * (*siglen bytes).  -1 with BAD_REQUEST for another kind of key,
 * INTERNAL when signing fails. */
int sig_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[SIG_MAX], size_t *siglen,
             err_t *err);
/* 0 when sig is a valid DER ECDSA-SHA256 signature of msg by pub (a P-256
 * public or private key); -1 with UNAUTHENTICATED when it is not (also
 * when sig is not DER or longer than SIG_MAX), BAD_REQUEST for a key that
 * is not P-256. */
int sig_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
               err_t *err);
/* sig_verify() with cert's public key; does not check the certificate. */
int sig_verify_cert(X509 *cert, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
                    err_t *err);

/* One public key set up once for many sig_verify()s from any thread (a
 * daemon's hot path): the key is checked once and its verify context is
 * made once, then copied for each thread that needs one and kept; a
 * context per verify costs a provider lookup under a lock and a key
 * export, a third of the verify itself. */
typedef struct sig_verifier sig_verifier_t;
/* BAD_REQUEST for a key that is not P-256; holds a reference to pub. */
sig_verifier_t *sig_verifier_new(EVP_PKEY *pub, err_t *err);
/* sig_verify() with v's key. */
int sig_verifier_verify(sig_verifier_t *v, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t siglen, err_t *err);
/* NULL-safe; no verify may be running. */
void sig_verifier_free(sig_verifier_t *v);

#endif
