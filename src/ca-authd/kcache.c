/*
 * kcache: leaf certificates that already passed the chain, serial and
 * name checks, keyed by the SHA-256 of their DER, so a login costs one
 * ECDSA verification (the proof) instead of two plus a parse.  Bounded:
 * the common lru, sharded so the loops rarely share a lock.  An entry
 * serves until its certificate's not_after; revocation is not cached.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "lru.h"

#define KC_SHARDS 16

struct kc_node {
	lru_node_t lru;
	uint8_t hash[32];
	kcache_ent_t e;
};

struct kcache {
	lru_t *lru;
};

void
kcache_ent_clear(kcache_ent_t *e)
{
	EVP_PKEY_free(e->pub);
	memset(e, 0, sizeof(*e));
}

static void
kc_release(lru_node_t *n)
{
	struct kc_node *k = LRU_ENTRY(n, struct kc_node, lru);

	kcache_ent_clear(&k->e);
	free(k);
}

/* A copy with its own key reference. */
static int
kc_hold(lru_node_t *n, void *arg)
{
	struct kc_node *k = LRU_ENTRY(n, struct kc_node, lru);

	if (EVP_PKEY_up_ref(k->e.pub) != 1)
		return -1;
	*(kcache_ent_t *)arg = k->e;
	return 0;
}

kcache_t *
kcache_new(size_t max)
{
	kcache_t *k = calloc(1, sizeof(*k));
	lru_conf_t lc = {.max = max > 0 ? max : 1, .shards = KC_SHARDS, .release = kc_release};

	if (k == NULL)
		return NULL;
	if ((k->lru = lru_new(&lc, NULL)) == NULL) {
		free(k);
		return NULL;
	}
	return k;
}

void
kcache_free(kcache_t *k)
{
	if (k == NULL)
		return;
	lru_free(k->lru);
	free(k);
}

int
kcache_get(kcache_t *k, const uint8_t hash[32], int64_t now, kcache_ent_t *out)
{
	/* past not_after it is dropped: checked again, and refused, the slow way */
	return lru_get(k->lru, hash, 32, now, kc_hold, out);
}

void
kcache_put(kcache_t *k, const uint8_t hash[32], const kcache_ent_t *e)
{
	struct kc_node *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return; /* only a cache */
	if (EVP_PKEY_up_ref(e->pub) != 1) {
		free(n);
		return;
	}
	memcpy(n->hash, hash, 32);
	n->e = *e;
	/* not_after is never 0 for a real certificate; 0 would mean "never" */
	lru_node_init(&n->lru, n->hash, sizeof(n->hash), e->not_after != 0 ? e->not_after : 1);
	if (lru_put(k->lru, &n->lru, 0, 0) == 0) /* another loop was first */
		kc_release(&n->lru);
}

size_t
kcache_count(kcache_t *k)
{
	return lru_count(k->lru);
}
