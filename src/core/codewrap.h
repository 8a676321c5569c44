/*
 * wrap: the password-derived wrap key and the session code wrapped under
 * it.  The key is scrypt(password, salt, N, r, p) (OpenSSL EVP_KDF
 * "SCRYPT"), 32 bytes.  A wrapped code is nonce(12) | AES-256-GCM
 * ciphertext(32) | tag(16), with associated data
 *   session_id(16) | u8 len | caller_id | u8 len | target_id
 * (lengths keep "ab"+"c" apart from "a"+"bc"), so a code opens only for
 * the session and the pair it was issued to, and only under that device's key.
 */
#ifndef RDV_WRAP_H
#define RDV_WRAP_H

#include <stddef.h>
#include <stdint.h>

#define RDV_KEY_LEN  32
#define RDV_CODE_LEN 32
#define RDV_SID_LEN  16
#define RDV_WRAP_LEN (12 + RDV_CODE_LEN + 16)
#define RDV_SALT_LEN 16

/* Bounds a stored or configured parameter set must meet. */
int rdv_kdf_params_ok(uint64_t n, uint32_t r, uint32_t p);
/* 0, or -1 (bad parameters, out of memory). */
int rdv_kdf_derive(const char *password, size_t pwlen, const uint8_t *salt, size_t saltlen,
                   uint64_t n, uint32_t r, uint32_t p, uint8_t key[RDV_KEY_LEN]);
int rdv_wrap(const uint8_t key[RDV_KEY_LEN], const uint8_t sid[RDV_SID_LEN], const char *caller,
             const char *target, const uint8_t code[RDV_CODE_LEN], uint8_t out[RDV_WRAP_LEN]);
/* -1 when the key, the session or the pair do not match. */
int rdv_unwrap(const uint8_t key[RDV_KEY_LEN], const uint8_t sid[RDV_SID_LEN], const char *caller,
               const char *target, const uint8_t in[RDV_WRAP_LEN], uint8_t code[RDV_CODE_LEN]);

#endif
