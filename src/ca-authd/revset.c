/* revset: the revoked serials, so the login path never asks the store.
 * Many readers (every login), rare writers (a revoke): a read-write lock. */
#include <stdlib.h>
#include <string.h>

#include "ca.h"

#define REVSET_BUCKETS 4096

struct rev_node {
	uint8_t serial[CA_SERIAL_MAX];
	uint8_t len;
	struct rev_node *next;
};

struct revset {
	pthread_rwlock_t lock;
	struct rev_node *b[REVSET_BUCKETS];
	size_t count;
};

static size_t
revset_hash(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a: serials are random already */

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % REVSET_BUCKETS;
}

revset_t *
revset_new(void)
{
	revset_t *s = calloc(1, sizeof(*s));

	if (s != NULL && pthread_rwlock_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

void
revset_free(revset_t *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < REVSET_BUCKETS; i++)
		while (s->b[i] != NULL) {
			struct rev_node *n = s->b[i];
			s->b[i] = n->next;
			free(n);
		}
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

static struct rev_node *
revset_find(revset_t *s, size_t h, const uint8_t *serial, size_t len)
{
	struct rev_node *n;

	for (n = s->b[h]; n != NULL; n = n->next)
		if (n->len == len && memcmp(n->serial, serial, len) == 0)
			return n;
	return NULL;
}

int
revset_add(revset_t *s, const uint8_t *serial, size_t len)
{
	size_t h = revset_hash(serial, len);
	struct rev_node *n;

	if (len == 0 || len > CA_SERIAL_MAX)
		return -1;
	pthread_rwlock_wrlock(&s->lock);
	if (revset_find(s, h, serial, len) != NULL) {
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	memcpy(n->serial, serial, len);
	n->len = (uint8_t)len;
	n->next = s->b[h];
	s->b[h] = n;
	s->count++;
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

int
revset_has(revset_t *s, const uint8_t *serial, size_t len)
{
	size_t h = revset_hash(serial, len);
	int found;

	pthread_rwlock_rdlock(&s->lock);
	found = revset_find(s, h, serial, len) != NULL;
	pthread_rwlock_unlock(&s->lock);
	return found;
}

size_t
revset_count(revset_t *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lock);
	n = s->count;
	pthread_rwlock_unlock(&s->lock);
	return n;
}
