/*
 * htab: one chained hash table for every in-memory index, keyed with
 * SipHash-2-4 under a per-table key (siphash.h), so attacker-chosen keys
 * (device IDs, source addresses) spread like random ones.  Intrusive: a
 * user embeds an htab_node_t in its entry and says how to compare a key;
 * the table allocates only its bucket array (doubling when the load passes
 * one entry per bucket, up to max_buckets).  No lock: the owner holds its
 * own.  A key may appear more than once (htab_find, then htab_find_next).
 */
#ifndef STB_HTAB_H
#define STB_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "siphash.h"

typedef struct htab_node {
	struct htab_node *next;
	uint64_t hash;
} htab_node_t;

/* 1 when n holds key. */
typedef int (*htab_eq_fn)(const htab_node_t *n, const void *key, size_t len);

typedef struct htab {
	htab_node_t **b;
	size_t mask; /* buckets - 1 */
	size_t n;
	size_t max_buckets;
	htab_eq_fn eq;
	uint8_t key[SIPHASH_KEY_LEN];
} htab_t;

#define HTAB_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* buckets: the initial count (rounded up to a power of two, at least 16);
 * max_buckets: the most it grows to (0: 1 << 24). */
int htab_init(htab_t *t, size_t buckets, size_t max_buckets, htab_eq_fn eq, err_t *err);
/* Frees the buckets (not the nodes). */
void htab_fini(htab_t *t);
uint64_t htab_hash(const htab_t *t, const void *key, size_t len);
/* The first node holding key (h = htab_hash of it), or NULL. */
htab_node_t *htab_find(const htab_t *t, uint64_t h, const void *key, size_t len);
/* The next node after n holding the same key, or NULL. */
htab_node_t *htab_find_next(const htab_t *t, const htab_node_t *n, const void *key, size_t len);
/* Links n with hash h (in front of any node with the same key). */
void htab_insert(htab_t *t, htab_node_t *n, uint64_t h);
/* Unlinks n; 0, or -1 when it is not in t. */
int htab_remove(htab_t *t, htab_node_t *n);
/* Walk: start with *bucket = 0 and n = NULL; NULL at the end.  Nothing may
 * be inserted during a walk; take the next node before removing this one. */
htab_node_t *htab_next(const htab_t *t, size_t *bucket, htab_node_t *n);
/* NUL-terminated string keys (len = strlen), for entries whose key is a
 * char array at offset off from their node. */
int htab_eq_str(const char *stored, const void *key, size_t len);

#endif
