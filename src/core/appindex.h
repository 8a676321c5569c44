/*
 * appindex: the operator's signed index snapshot (flow E, step 4), so a TV
 * checks apps offline; TUF-like signed, versioned, expiring metadata.
 *
 * A COSE_Sign1 (cose.h, external_aad "STB-APPINDEX-V1", the operator's
 * P-256 key) whose payload is a CBOR map with unsigned keys:
 *    1: format version (1)
 *    2: snapshot version, uint >= 1, strictly growing per operator
 *    3: issued, unix seconds
 *    4: expires, unix seconds (> issued)
 *    5: entries, array (at most APPINDEX_ENTRIES_MAX) sorted by ref with
 *       no duplicates, each [ref bstr 16 (apppay_ref of ID1), flag uint
 *       (APPPAY_SAFE 1 / APPPAY_UNSAFE 2), issued uint, expires uint, warning tstr
 *       (0..APPINDEX_WARNING_MAX bytes UTF-8, "" when none)]
 * The file a TV loads is the COSE bytes as they are (binary).
 *
 * appindex_verify refuses, in this order: BAD_REQUEST malformed COSE;
 * UNAUTHENTICATED bad signature or another key's kid (the body is parsed
 * only once signed); BAD_REQUEST a body we cannot read; REPLAY a version
 * older than the last one the caller has seen (rollback; the same version
 * again is accepted); EXPIRED now >= expires.
 */
#ifndef STB_APPINDEX_H
#define STB_APPINDEX_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "apppay.h"
#include "buf.h"
#include "err.h"

#define APPINDEX_AAD         "STB-APPINDEX-V1"
#define APPINDEX_ENTRIES_MAX 200000
#define APPINDEX_WARNING_MAX 1024        /* as APP_WARNING */
#define APPINDEX_MAX         (16u << 20) /* bytes of a snapshot */

typedef struct appindex_entry {
	uint8_t ref[APPPAY_REF_LEN];
	int flag;         /* APPPAY_SAFE / APPPAY_UNSAFE */
	uint64_t issued;  /* the app's publication */
	uint64_t expires; /* and its end */
	char *warning;    /* owned; "" when none, never NULL once added */
} appindex_entry_t;

typedef struct appindex {
	uint64_t version;
	uint64_t issued;
	uint64_t expires;
	appindex_entry_t *entries; /* sorted by ref once encoded or verified */
	size_t n;
	size_t cap;
} appindex_t;

void appindex_init(appindex_t *ix);
/* Appends a copy of the entry (warning NULL means ""); BAD_REQUEST for a
 * bad flag, warning or validity, TOO_LARGE past APPINDEX_ENTRIES_MAX. */
int appindex_add(appindex_t *ix, const uint8_t ref[APPPAY_REF_LEN], int flag, uint64_t issued,
                 uint64_t expires, const char *warning, err_t *err);
/* Sorts the entries, refuses duplicate refs (CONFLICT) and a bad version
 * or validity (BAD_REQUEST), signs with key and appends the COSE bytes to
 * out. */
int appindex_encode(appindex_t *ix, EVP_PKEY *key, buf_t *out, err_t *err);
/* Decodes and verifies in (len bytes) with pub at time now against the
 * last version seen (0: none); fills *out (appindex_init'ed by the call,
 * free with appindex_clear also after a failure). */
int appindex_verify(const uint8_t *in, size_t len, EVP_PKEY *pub, uint64_t now, uint64_t last_seen,
                    appindex_t *out, err_t *err);
/* The entry for ref in a verified (sorted) index, or NULL. */
const appindex_entry_t *appindex_find(const appindex_t *ix, const uint8_t ref[APPPAY_REF_LEN]);
/* NULL-safe; frees the entries. */
void appindex_clear(appindex_t *ix);

#endif
