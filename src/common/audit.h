/*
 * audit: security events in a hash-chained table.  Each row's mac is
 * HMAC-SHA256 under a key derived from the KEK over the previous row's mac
 * and this row's fields, so an edited, inserted or deleted row breaks the
 * chain, and nobody without the KEK can forge a new one.
 */
#ifndef STB_AUDIT_H
#define STB_AUDIT_H

#include <stdint.h>

#include "err.h"
#include "store.h"

#define AUDIT_KEY_LEN   32
#define AUDIT_MAC_LEN   32
#define AUDIT_FIELD_MAX 1024
/* A record as JSON even when every byte needs a six-byte escape. */
#define AUDIT_JSON_MAX (6 * (AUDIT_FIELD_MAX + 64 + 160) + 256)

/* DDL every daemon's store runs (idempotent). */
extern const char audit_schema[];
extern const char audit_schema_pg[]; /* the same in PostgreSQL DDL */

typedef struct audit_rec {
	uint64_t seq;
	int64_t ts; /* unix seconds */
	char event[64];
	char actor[160];
	char detail[AUDIT_FIELD_MAX + 1];
	uint8_t mac[AUDIT_MAC_LEN];
} audit_rec_t;

/* Appends in the writer's transaction; *seq gets the new row's number. */
int audit_append(store_conn_t *c, const uint8_t key[AUDIT_KEY_LEN], const char *event,
                 const char *actor, const char *detail, uint64_t *seq, err_t *err);
/* Walks the whole chain.  Returns 0 with *bad_seq 0 when intact, else the
 * first seq that fails; head gets the newest mac. */
int audit_verify(store_conn_t *c, const uint8_t key[AUDIT_KEY_LEN], uint64_t *count,
                 uint64_t *bad_seq, uint8_t head[AUDIT_MAC_LEN], err_t *err);
/* Calls fn for up to limit records with seq >= since. */
int audit_export(store_conn_t *c, uint64_t since, uint32_t limit,
                 int (*fn)(const audit_rec_t *r, void *arg), void *arg, err_t *err);
/* A record as one JSON object (for export). */
int audit_rec_json(const audit_rec_t *r, char *out, size_t cap);

#endif
