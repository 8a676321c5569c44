/* htab: SipHash-keyed chained hash table (see htab.h). */
#include "htab.h"

#include <stdlib.h>
#include <string.h>

#define HTAB_MIN_BUCKETS 16
#define HTAB_MAX_BUCKETS ((size_t)1 << 24)

int
htab_init(htab_t *t, size_t buckets, size_t max_buckets, htab_eq_fn eq, err_t *err)
{
	size_t nb = HTAB_MIN_BUCKETS;

	memset(t, 0, sizeof(*t));
	if (max_buckets == 0 || max_buckets > HTAB_MAX_BUCKETS)
		max_buckets = HTAB_MAX_BUCKETS;
	while (nb < buckets && nb < max_buckets)
		nb <<= 1;
	if (siphash_key_new(t->key, err) == -1)
		return -1;
	if ((t->b = calloc(nb, sizeof(*t->b))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	t->mask = nb - 1;
	t->max_buckets = max_buckets;
	t->eq = eq;
	return 0;
}

void
htab_fini(htab_t *t)
{
	if (t == NULL)
		return;
	free(t->b);
	t->b = NULL;
	t->n = 0;
}

uint64_t
htab_hash(const htab_t *t, const void *key, size_t len)
{
	return siphash_24(t->key, key, len);
}

htab_node_t *
htab_find(const htab_t *t, uint64_t h, const void *key, size_t len)
{
	htab_node_t *n;

	for (n = t->b[h & t->mask]; n != NULL; n = n->next)
		if (n->hash == h && t->eq(n, key, len))
			return n;
	return NULL;
}

htab_node_t *
htab_find_next(const htab_t *t, const htab_node_t *prev, const void *key, size_t len)
{
	htab_node_t *n;

	for (n = prev->next; n != NULL; n = n->next)
		if (n->hash == prev->hash && t->eq(n, key, len))
			return n;
	return NULL;
}

/* Doubles the buckets; stays as it is when memory is short. */
static void
htab_grow(htab_t *t)
{
	size_t nb = (t->mask + 1) * 2;
	htab_node_t **b, *n, *next;

	if (nb > t->max_buckets || (b = calloc(nb, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		for (n = t->b[i]; n != NULL; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	free(t->b);
	t->b = b;
	t->mask = nb - 1;
}

void
htab_insert(htab_t *t, htab_node_t *n, uint64_t h)
{
	htab_node_t **pp;

	if (t->n >= t->mask + 1)
		htab_grow(t);
	n->hash = h;
	pp = &t->b[h & t->mask];
	n->next = *pp;
	*pp = n;
	t->n++;
}

int
htab_remove(htab_t *t, htab_node_t *n)
{
	htab_node_t **pp;

	for (pp = &t->b[n->hash & t->mask]; *pp != NULL; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->n--;
			return 0;
		}
	return -1;
}

htab_node_t *
htab_next(const htab_t *t, size_t *bucket, htab_node_t *n)
{
	if (n != NULL && n->next != NULL)
		return n->next;
	if (n != NULL)
		++*bucket;
	for (; *bucket <= t->mask; ++*bucket)
		if (t->b[*bucket] != NULL)
			return t->b[*bucket];
	return NULL;
}

int
htab_eq_str(const char *stored, const void *key, size_t len)
{
	return strncmp(stored, key, len) == 0 && stored[len] == '\0';
}
