/* Unit tests for lru: the shared bounded cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"
#include "testutil.h"

struct item {
	lru_node_t lru;
	char key[16];
	int refs; /* atomic */
	int *released;
};

static void
item_unref(struct item *it)
{
	if (__atomic_sub_fetch(&it->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (it->released != NULL)
		__atomic_fetch_add(it->released, 1, __ATOMIC_RELAXED);
	free(it);
}

static void
item_release(lru_node_t *n)
{
	item_unref(LRU_ENTRY(n, struct item, lru));
}

static int
item_hold(lru_node_t *n, void *arg)
{
	struct item *it = LRU_ENTRY(n, struct item, lru);

	__atomic_fetch_add(&it->refs, 1, __ATOMIC_RELAXED);
	*(struct item **)arg = it;
	return 0;
}

static struct item *
item_new(const char *key, int64_t expires, int *released)
{
	struct item *it = calloc(1, sizeof(*it));

	assert_non_null(it);
	snprintf(it->key, sizeof(it->key), "%s", key);
	it->refs = 1;
	it->released = released;
	lru_node_init(&it->lru, it->key, strlen(it->key), expires);
	return it;
}

static struct item *
get(lru_t *l, const char *key, int64_t now)
{
	struct item *it = NULL;

	return lru_get(l, key, strlen(key), now, item_hold, &it) ? it : NULL;
}

/* Gives the cache the only reference. */
static int
put(lru_t *l, struct item *it, uint64_t gen, int flags)
{
	int rc = lru_put(l, &it->lru, gen, flags);

	if (rc == 1)
		return 1;
	item_unref(it);
	return 0;
}

static void
test_evicts_least_recently_used(void **state)
{
	lru_conf_t c = {.max = 2, .shards = 1, .release = item_release};
	int released = 0;
	lru_t *l = lru_new(&c, NULL);
	struct item *g;

	(void)state;
	assert_non_null(l);
	assert_null(get(l, "a", 0));
	assert_int_equal(put(l, item_new("a", 0, &released), 0, 0), 1);
	assert_int_equal(put(l, item_new("b", 0, &released), 0, 0), 1);
	assert_non_null(g = get(l, "a", 0)); /* a is used: b is the oldest */
	item_unref(g);
	assert_int_equal(put(l, item_new("c", 0, &released), 0, 0), 1);
	assert_int_equal(lru_count(l), 2);
	assert_int_equal(released, 1);
	assert_null(get(l, "b", 0));
	assert_non_null(g = get(l, "c", 0));
	item_unref(g);
	lru_free(l);
	assert_int_equal(released, 3);
}

static void
test_replace_or_keep_first(void **state)
{
	lru_conf_t c = {.max = 8, .shards = 1, .release = item_release};
	int released = 0;
	lru_t *l = lru_new(&c, NULL);
	struct item *first = item_new("k", 0, &released), *g;

	(void)state;
	assert_int_equal(put(l, first, 0, 0), 1);
	/* another loop was first: the newcomer is refused */
	assert_int_equal(put(l, item_new("k", 0, &released), 0, 0), 0);
	assert_non_null(g = get(l, "k", 0));
	assert_ptr_equal(g, first);
	item_unref(g);
	/* with REPLACE the newer one wins and the old one is released */
	assert_int_equal(put(l, item_new("k", 0, &released), 0, LRU_PUT_REPLACE), 1);
	assert_int_equal(released, 2);
	assert_non_null(g = get(l, "k", 0));
	assert_ptr_not_equal(g, first);
	/* an entry already in the cache is not put twice */
	assert_int_equal(lru_put(l, &g->lru, 0, LRU_PUT_REPLACE), 0);
	item_unref(g);
	assert_int_equal(lru_count(l), 1);
	lru_free(l);
}

static void
test_generation_refuses_stale_loads(void **state)
{
	lru_conf_t c = {.max = 8, .shards = 4, .release = item_release};
	lru_t *l = lru_new(&c, NULL);
	uint64_t gen = lru_gen(l);

	(void)state;
	lru_invalidate(l, "other", 5);
	assert_int_equal(put(l, item_new("x", 0, NULL), gen, LRU_PUT_IF_GEN), 0);
	assert_int_equal(put(l, item_new("x", 0, NULL), lru_gen(l), LRU_PUT_IF_GEN), 1);
	lru_invalidate(l, "x", 1);
	assert_null(get(l, "x", 0));
	assert_int_equal(lru_count(l), 0);
	lru_free(l);
}

static void
test_expiry(void **state)
{
	lru_conf_t c = {.max = 8, .shards = 2, .release = item_release};
	int released = 0;
	lru_t *l = lru_new(&c, NULL);
	struct item *g;

	(void)state;
	assert_int_equal(put(l, item_new("t", 100, &released), 0, 0), 1);
	assert_non_null(g = get(l, "t", 99));
	item_unref(g);
	assert_null(get(l, "t", 100)); /* gone at expiry, and dropped */
	assert_int_equal(released, 1);
	assert_int_equal(lru_count(l), 0);
	lru_free(l);
}

static void
test_capacity_and_zero(void **state)
{
	lru_conf_t c = {.max = 64, .shards = 16, .release = item_release};
	lru_conf_t z = {.max = 0, .shards = 1, .release = item_release};
	lru_conf_t bad = {.max = 1, .shards = 0, .release = item_release};
	lru_t *l = lru_new(&c, NULL), *lz = lru_new(&z, NULL);
	char k[16];
	err_t err;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		put(l, item_new(k, 0, NULL), 0, 0);
	}
	assert_true(lru_count(l) <= 64);
	assert_true(lru_count(l) > 16);
	assert_int_equal(put(lz, item_new("a", 0, NULL), 0, 0), 0);
	assert_null(lru_new(&bad, &err));
	assert_int_equal(err.status, STB_INTERNAL);
	lru_free(l);
	lru_free(lz);
	lru_free(NULL);
}

#define THREADS 4
#define ROUNDS  20000

static void *
hammer(void *arg)
{
	lru_t *l = arg;
	char k[16];

	for (int i = 0; i < ROUNDS; i++) {
		struct item *g;
		snprintf(k, sizeof(k), "k%d", i % 97);
		if ((g = get(l, k, 0)) != NULL)
			item_unref(g);
		else
			put(l, item_new(k, 0, NULL), lru_gen(l), LRU_PUT_IF_GEN | LRU_PUT_REPLACE);
		if (i % 101 == 0)
			lru_invalidate(l, k, strlen(k));
	}
	return NULL;
}

static void
test_threads(void **state)
{
	lru_conf_t c = {.max = 32, .shards = 4, .release = item_release};
	lru_t *l = lru_new(&c, NULL);
	pthread_t t[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, l), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(lru_count(l) <= 32);
	lru_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_evicts_least_recently_used),
	    cmocka_unit_test(test_replace_or_keep_first),
	    cmocka_unit_test(test_generation_refuses_stale_loads),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_capacity_and_zero),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
