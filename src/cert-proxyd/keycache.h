/*
 * keycache: a bounded LRU of certificate keys by cert_id, so a KEYINFO_REQ
 * signs without reading the row again.  In the running daemon a key is a
 * signer key (signer.h): its public half and its sealed blob, the private
 * key being the signer process's, which keeps its own bounded cache of
 * unsealed keys.  Entries are reference counted: a loop signs with its reference
 * while another loop replaces the entry.  A load that raced with a change
 * (renewal, revocation) is not inserted: callers take cp_kc_gen() before
 * reading the store and cp_kc_put() refuses when it moved since.
 */
#ifndef CP_KEYCACHE_H
#define CP_KEYCACHE_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "lru.h"
#include "stb/stbproto.h"

typedef struct cp_kent {
	char cert_id[STB_ID_MAX + 1];
	char device_id[STB_ID_MAX + 1];
	EVP_PKEY *pkey; /* signs through the signer (or holds the key: unit tests) */
	uint8_t *der;   /* the certificate */
	size_t derlen;
	uint8_t serial[20];
	size_t serial_len;
	int64_t not_after;
	int state;      /* CP_CERT_* */
	int refs;       /* atomic */
	lru_node_t lru; /* the cache's links, keyed by cert_id */
} cp_kent_t;

typedef struct cp_kc cp_kc_t;

/* An entry with one reference; takes its own reference on pkey. */
cp_kent_t *cp_kent_new(const char *cert_id, const char *device_id, EVP_PKEY *pkey,
                       const uint8_t *der, size_t derlen, const uint8_t *serial, size_t serial_len,
                       int64_t not_after, int state);
void cp_kent_ref(cp_kent_t *e);
void cp_kent_unref(cp_kent_t *e);

cp_kc_t *cp_kc_new(size_t max);
void cp_kc_free(cp_kc_t *kc);
/* The entry with a reference for the caller, or NULL. */
cp_kent_t *cp_kc_get(cp_kc_t *kc, const char *cert_id);
uint64_t cp_kc_gen(cp_kc_t *kc);
/* Inserts (replacing cert_id's entry) unless the cache changed since gen;
 * 1 inserted, 0 not.  The oldest entry goes when the cache is full. */
int cp_kc_put(cp_kc_t *kc, cp_kent_t *e, uint64_t gen);
/* Drops cert_id's entry and makes loads already under way stale. */
void cp_kc_invalidate(cp_kc_t *kc, const char *cert_id);
size_t cp_kc_size(cp_kc_t *kc);

#endif
