/*
 * lru: one bounded least-recently-used cache for every daemon, safe to
 * share between loops.  Intrusive: an entry embeds an lru_node_t (key,
 * optional expiry) and the cache holds one reference on it, given back
 * through the release callback when the entry is evicted, replaced,
 * invalidated or the cache freed.  Sharded by the key's SipHash (htab.h),
 * each shard its own mutex, list and table, so loops rarely meet on a
 * lock; capacity is per shard (max / shards, at least 1).  A hit is handed
 * to the caller's hold callback under the shard's lock (take a reference,
 * or copy out).  No allocation on a hit.
 *
 * Loads that race with a change: take lru_gen() before reading the source
 * and put with LRU_PUT_IF_GEN; any invalidation since refuses the put.
 */
#ifndef STB_LRU_H
#define STB_LRU_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "htab.h"

#define LRU_SHARDS_MAX 64

#define LRU_ENTRY(node, type, member) HTAB_ENTRY(node, type, member)

typedef struct lru_node {
	htab_node_t h;
	struct lru_node *prev, *next;
	const void *key; /* points into the entry; set by lru_node_init */
	size_t klen;
	int64_t expires; /* lru_get misses (and drops it) at now >= expires; 0: never */
	int linked;      /* in a cache (under its lock) */
} lru_node_t;

typedef struct lru_conf {
	size_t max; /* entries in all; 0: the cache keeps nothing */
	int shards; /* 1 .. LRU_SHARDS_MAX */
	/* The cache's reference on n goes (free or unref it). */
	void (*release)(lru_node_t *n);
} lru_conf_t;

typedef struct lru lru_t;

/* Under the shard's lock, on a hit: 0 to count it as one, -1 as a miss. */
typedef int (*lru_hold_fn)(lru_node_t *n, void *arg);

#define LRU_PUT_REPLACE 1 /* a newer entry replaces the key's (else the first stays) */
#define LRU_PUT_IF_GEN  2 /* refused when lru_gen moved past gen */

void lru_node_init(lru_node_t *n, const void *key, size_t klen, int64_t expires);
lru_t *lru_new(const lru_conf_t *conf, err_t *err);
/* Releases every entry; NULL-safe. */
void lru_free(lru_t *l);
/* 1 when key is cached, unexpired at now and hold took it; else 0. */
int lru_get(lru_t *l, const void *key, size_t klen, int64_t now, lru_hold_fn hold, void *arg);
uint64_t lru_gen(lru_t *l);
/* 1 when n went in (the cache took the caller's reference on it, and the
 * least recently used entry of its shard went when full), 0 when refused
 * (n stays the caller's): max 0, already cached, the key's entry stays, or
 * the generation moved. */
int lru_put(lru_t *l, lru_node_t *n, uint64_t gen, int flags);
/* Drops key's entry and makes every load under way stale. */
void lru_invalidate(lru_t *l, const void *key, size_t klen);
size_t lru_count(lru_t *l);
/* Entries that went because their shard was full, since lru_new. */
uint64_t lru_evictions(lru_t *l);

#endif
