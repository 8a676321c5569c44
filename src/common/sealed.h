/*
 * sealed: secrets at rest.  AES-256-GCM under a 32-byte key-encryption key
 * (KEK) read from a 0600 file or a systemd credential, with the row's
 * identity as associated data, so a sealed value moved to another row does
 * not open.  Blob: "S1" | nonce(12) | ciphertext | tag(16).
 */
#ifndef STB_SEALED_H
#define STB_SEALED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SEALED_KEY_LEN  32
#define SEALED_OVERHEAD (2 + 12 + 16)

typedef struct sealed_kek sealed_kek_t;

/* Loads the KEK: $CREDENTIALS_DIRECTORY/<cred_name> when that exists, else
 * path.  The file holds 32 raw bytes or 64 hex digits and must not be
 * readable by group or others. */
int sealed_kek_load(const char *path, const char *cred_name, sealed_kek_t **out, err_t *err);
/* A KEK from bytes (tests, derived keys). */
int sealed_kek_from_bytes(const uint8_t key[SEALED_KEY_LEN], sealed_kek_t **out, err_t *err);
void sealed_kek_free(sealed_kek_t *k);

/* Appends the sealed blob to out. */
int sealed_seal(const sealed_kek_t *k, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                buf_t *out, err_t *err);
/* Opens blob into pt (cap bytes); UNAUTHENTICATED when the tag, the AAD or
 * the KEK do not match. */
int sealed_open(const sealed_kek_t *k, const void *aad, size_t aadlen, const void *blob,
                size_t bloblen, uint8_t *pt, size_t cap, size_t *ptlen, err_t *err);
/* Derives a 32-byte subkey for a purpose (HKDF-SHA256 with label as info). */
int sealed_derive(const sealed_kek_t *k, const char *label, uint8_t out[32], err_t *err);

#endif
