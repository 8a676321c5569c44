/* lru: the sharded LRU cache (see lru.h). */
#include "lru.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct lru_shard {
	pthread_mutex_t mu;
	htab_t t;
	lru_node_t *head, *tail; /* head: most recently used */
} lru_shard_t;

struct lru {
	lru_conf_t conf;
	size_t per_shard;
	uint64_t gen;       /* atomic; moved under the key's shard lock */
	uint64_t evictions; /* atomic */
	int nshards;
	lru_shard_t s[LRU_SHARDS_MAX];
};

static int
lru_eq(const htab_node_t *hn, const void *key, size_t len)
{
	const lru_node_t *n = HTAB_ENTRY(hn, lru_node_t, h);

	return n->klen == len && memcmp(n->key, key, len) == 0;
}

void
lru_node_init(lru_node_t *n, const void *key, size_t klen, int64_t expires)
{
	memset(n, 0, sizeof(*n));
	n->key = key;
	n->klen = klen;
	n->expires = expires;
}

lru_t *
lru_new(const lru_conf_t *conf, err_t *err)
{
	lru_t *l;
	int ns = conf->shards;

	if (ns < 1 || ns > LRU_SHARDS_MAX || conf->release == NULL) {
		err_set(err, STB_INTERNAL, "lru: %d shards (1 to %d) or no release", ns,
		        LRU_SHARDS_MAX);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	l->conf = *conf;
	l->per_shard = conf->max / (size_t)ns > 0 ? conf->max / (size_t)ns : 1;
	for (int i = 0; i < ns; i++) {
		/* one key for every shard: the hash picks the shard too */
		if (htab_init(&l->s[i].t, l->per_shard, l->per_shard, lru_eq, err) == -1) {
			lru_free(l);
			return NULL;
		}
		if (i > 0)
			memcpy(l->s[i].t.key, l->s[0].t.key, sizeof(l->s[0].t.key));
		pthread_mutex_init(&l->s[i].mu, NULL);
		l->nshards = i + 1;
	}
	return l;
}

static void
lru_unlink(lru_shard_t *sh, lru_node_t *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		sh->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		sh->tail = n->prev;
	n->prev = n->next = NULL;
}

static void
lru_front(lru_shard_t *sh, lru_node_t *n)
{
	n->prev = NULL;
	n->next = sh->head;
	if (sh->head != NULL)
		sh->head->prev = n;
	sh->head = n;
	if (sh->tail == NULL)
		sh->tail = n;
}

/* Unlinks n (under the lock); the caller releases it after unlocking. */
static void
lru_drop(lru_shard_t *sh, lru_node_t *n)
{
	htab_remove(&sh->t, &n->h);
	lru_unlink(sh, n);
	n->linked = 0;
}

void
lru_free(lru_t *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < l->nshards; i++) {
		lru_node_t *n, *next;
		for (n = l->s[i].head; n != NULL; n = next) {
			next = n->next;
			n->linked = 0;
			l->conf.release(n);
		}
		htab_fini(&l->s[i].t);
		pthread_mutex_destroy(&l->s[i].mu);
	}
	free(l);
}

static lru_shard_t *
lru_shard(lru_t *l, uint64_t h)
{
	return &l->s[(h >> 40) % (uint64_t)l->nshards];
}

int
lru_get(lru_t *l, const void *key, size_t klen, int64_t now, lru_hold_fn hold, void *arg)
{
	uint64_t h = htab_hash(&l->s[0].t, key, klen);
	lru_shard_t *sh = lru_shard(l, h);
	lru_node_t *n = NULL, *expired = NULL;
	htab_node_t *hn;
	int hit = 0;

	pthread_mutex_lock(&sh->mu);
	if ((hn = htab_find(&sh->t, h, key, klen)) != NULL) {
		n = HTAB_ENTRY(hn, lru_node_t, h);
		if (n->expires != 0 && now >= n->expires) {
			lru_drop(sh, n);
			expired = n;
		} else if (hold(n, arg) == 0) {
			if (sh->head != n) {
				lru_unlink(sh, n);
				lru_front(sh, n);
			}
			hit = 1;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	if (expired != NULL)
		l->conf.release(expired);
	return hit;
}

uint64_t
lru_gen(lru_t *l)
{
	return __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE);
}

int
lru_put(lru_t *l, lru_node_t *n, uint64_t gen, int flags)
{
	uint64_t h;
	lru_shard_t *sh;
	lru_node_t *old = NULL, *out[4];
	htab_node_t *hn;
	int nout = 0, rc = 0;

	if (l->conf.max == 0)
		return 0;
	h = htab_hash(&l->s[0].t, n->key, n->klen);
	sh = lru_shard(l, h);
	pthread_mutex_lock(&sh->mu);
	if (n->linked || ((flags & LRU_PUT_IF_GEN) && lru_gen(l) != gen))
		goto done;
	if ((hn = htab_find(&sh->t, h, n->key, n->klen)) != NULL) {
		old = HTAB_ENTRY(hn, lru_node_t, h);
		if (!(flags & LRU_PUT_REPLACE))
			goto done;
		lru_drop(sh, old);
		out[nout++] = old;
	}
	/* full: the least recently used go (a few at most: one per put) */
	while (sh->t.n >= l->per_shard && sh->tail != NULL &&
	       nout < (int)(sizeof(out) / sizeof(out[0]))) {
		old = sh->tail;
		lru_drop(sh, old);
		out[nout++] = old;
		__atomic_add_fetch(&l->evictions, 1, __ATOMIC_RELAXED);
	}
	if (sh->t.n < l->per_shard) {
		n->linked = 1;
		htab_insert(&sh->t, &n->h, h);
		lru_front(sh, n);
		rc = 1;
	}
done:
	pthread_mutex_unlock(&sh->mu);
	for (int i = 0; i < nout; i++)
		l->conf.release(out[i]);
	return rc;
}

void
lru_invalidate(lru_t *l, const void *key, size_t klen)
{
	uint64_t h = htab_hash(&l->s[0].t, key, klen);
	lru_shard_t *sh = lru_shard(l, h);
	lru_node_t *n = NULL;
	htab_node_t *hn;

	pthread_mutex_lock(&sh->mu);
	__atomic_add_fetch(&l->gen, 1, __ATOMIC_ACQ_REL);
	if ((hn = htab_find(&sh->t, h, key, klen)) != NULL) {
		n = HTAB_ENTRY(hn, lru_node_t, h);
		lru_drop(sh, n);
	}
	pthread_mutex_unlock(&sh->mu);
	if (n != NULL)
		l->conf.release(n);
}

size_t
lru_count(lru_t *l)
{
	size_t n = 0;

	for (int i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->s[i].mu);
		n += l->s[i].t.n;
		pthread_mutex_unlock(&l->s[i].mu);
	}
	return n;
}

uint64_t
lru_evictions(lru_t *l)
{
	return __atomic_load_n(&l->evictions, __ATOMIC_RELAXED);
}
