/* revset: the revoked serials, so the login path never asks the store.
 * Many readers (every login), rare writers (a revoke): a read-write lock
 * over one htab. */
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "htab.h"

#define REVSET_BUCKETS 4096

struct rev_node {
	htab_node_t h;
	uint8_t serial[CA_SERIAL_MAX];
	uint8_t len;
};

struct revset {
	pthread_rwlock_t lock;
	htab_t t;
};

static int
revset_eq(const htab_node_t *hn, const void *key, size_t len)
{
	const struct rev_node *n = HTAB_ENTRY(hn, struct rev_node, h);

	return n->len == len && memcmp(n->serial, key, len) == 0;
}

revset_t *
revset_new(void)
{
	revset_t *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (htab_init(&s->t, REVSET_BUCKETS, 0, revset_eq, NULL) == -1) {
		free(s);
		return NULL;
	}
	if (pthread_rwlock_init(&s->lock, NULL) != 0) {
		htab_fini(&s->t);
		free(s);
		return NULL;
	}
	return s;
}

void
revset_free(revset_t *s)
{
	htab_node_t *n, *next;
	size_t b = 0;

	if (s == NULL)
		return;
	for (n = htab_next(&s->t, &b, NULL); n != NULL; n = next) {
		next = htab_next(&s->t, &b, n);
		free(HTAB_ENTRY(n, struct rev_node, h));
	}
	htab_fini(&s->t);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

int
revset_add(revset_t *s, const uint8_t *serial, size_t len)
{
	uint64_t h;
	struct rev_node *n;

	if (len == 0 || len > CA_SERIAL_MAX)
		return -1;
	h = htab_hash(&s->t, serial, len);
	pthread_rwlock_wrlock(&s->lock);
	if (htab_find(&s->t, h, serial, len) != NULL) {
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	memcpy(n->serial, serial, len);
	n->len = (uint8_t)len;
	htab_insert(&s->t, &n->h, h);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

int
revset_has(revset_t *s, const uint8_t *serial, size_t len)
{
	uint64_t h = htab_hash(&s->t, serial, len);
	int found;

	pthread_rwlock_rdlock(&s->lock);
	found = htab_find(&s->t, h, serial, len) != NULL;
	pthread_rwlock_unlock(&s->lock);
	return found;
}

size_t
revset_count(revset_t *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lock);
	n = s->t.n;
	pthread_rwlock_unlock(&s->lock);
	return n;
}
