/*
 * kcache: leaf certificates that already passed the chain, serial and
 * name checks, keyed by the SHA-256 of their DER, so a login costs one
 * ECDSA verification (the proof) instead of two plus a parse.  Bounded:
 * sharded by hash, each shard a small LRU under its own mutex.  An entry
 * serves until its certificate's not_after; revocation is not cached.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"

#define KC_SHARDS  16
#define KC_BUCKETS 256 /* per shard */

struct kc_node {
	uint8_t hash[32];
	kcache_ent_t e;
	struct kc_node *hnext;       /* bucket chain */
	struct kc_node *prev, *next; /* LRU, most recent at head */
};

struct kc_shard {
	pthread_mutex_t mu;
	struct kc_node *b[KC_BUCKETS];
	struct kc_node *head, *tail;
	size_t count;
};

struct kcache {
	size_t max_per_shard;
	struct kc_shard s[KC_SHARDS];
};

kcache_t *
kcache_new(size_t max)
{
	kcache_t *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->max_per_shard = max / KC_SHARDS > 0 ? max / KC_SHARDS : 1;
	for (int i = 0; i < KC_SHARDS; i++)
		pthread_mutex_init(&k->s[i].mu, NULL);
	return k;
}

void
kcache_ent_clear(kcache_ent_t *e)
{
	EVP_PKEY_free(e->pub);
	memset(e, 0, sizeof(*e));
}

static void
kc_node_free(struct kc_node *n)
{
	kcache_ent_clear(&n->e);
	free(n);
}

void
kcache_free(kcache_t *k)
{
	if (k == NULL)
		return;
	for (int i = 0; i < KC_SHARDS; i++) {
		struct kc_node *n = k->s[i].head, *next;
		for (; n != NULL; n = next) {
			next = n->next;
			kc_node_free(n);
		}
		pthread_mutex_destroy(&k->s[i].mu);
	}
	free(k);
}

static struct kc_node **
kc_slot(struct kc_shard *sh, const uint8_t hash[32])
{
	struct kc_node **pp = &sh->b[(hash[1] | (size_t)hash[2] << 8) % KC_BUCKETS];

	while (*pp != NULL && memcmp((*pp)->hash, hash, 32) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
kc_lru_unlink(struct kc_shard *sh, struct kc_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		sh->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		sh->tail = n->prev;
	n->prev = n->next = NULL;
}

static void
kc_lru_front(struct kc_shard *sh, struct kc_node *n)
{
	n->next = sh->head;
	n->prev = NULL;
	if (sh->head)
		sh->head->prev = n;
	sh->head = n;
	if (sh->tail == NULL)
		sh->tail = n;
}

static void
kc_remove(struct kc_shard *sh, struct kc_node *n)
{
	struct kc_node **pp = kc_slot(sh, n->hash);

	if (*pp == n)
		*pp = n->hnext;
	kc_lru_unlink(sh, n);
	sh->count--;
	kc_node_free(n);
}

int
kcache_get(kcache_t *k, const uint8_t hash[32], int64_t now, kcache_ent_t *out)
{
	struct kc_shard *sh = &k->s[hash[0] % KC_SHARDS];
	struct kc_node *n;
	int hit = 0;

	pthread_mutex_lock(&sh->mu);
	if ((n = *kc_slot(sh, hash)) != NULL) {
		if (now >= n->e.not_after)
			kc_remove(sh, n); /* checked again, and refused, the slow way */
		else if (EVP_PKEY_up_ref(n->e.pub) == 1) {
			*out = n->e;
			kc_lru_unlink(sh, n);
			kc_lru_front(sh, n);
			hit = 1;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return hit;
}

void
kcache_put(kcache_t *k, const uint8_t hash[32], const kcache_ent_t *e)
{
	struct kc_shard *sh = &k->s[hash[0] % KC_SHARDS];
	struct kc_node *n, **pp;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return; /* only a cache */
	if (EVP_PKEY_up_ref(e->pub) != 1) {
		free(n);
		return;
	}
	memcpy(n->hash, hash, 32);
	n->e = *e;
	pthread_mutex_lock(&sh->mu);
	if (*(pp = kc_slot(sh, hash)) != NULL) { /* another loop was first */
		pthread_mutex_unlock(&sh->mu);
		kc_node_free(n);
		return;
	}
	*pp = n;
	kc_lru_front(sh, n);
	sh->count++;
	while (sh->count > k->max_per_shard)
		kc_remove(sh, sh->tail);
	pthread_mutex_unlock(&sh->mu);
}

size_t
kcache_count(kcache_t *k)
{
	size_t n = 0;

	for (int i = 0; i < KC_SHARDS; i++) {
		pthread_mutex_lock(&k->s[i].mu);
		n += k->s[i].count;
		pthread_mutex_unlock(&k->s[i].mu);
	}
	return n;
}
