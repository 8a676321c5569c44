/* Unit tests for metrics: counters, latency histograms, Prometheus text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"

/* The buffer's text as a C string (buf_printf keeps a NUL after len). */
static const char *
text(const buf_t *b)
{
	assert_non_null(b->data);
	assert_int_equal(b->data[b->len], '\0');
	return (const char *)b->data;
}

static void
test_observe_bucket_placement(void **state)
{
	static const struct {
		uint64_t us;
		size_t bucket;
	} cases[] = {
	    {0, 0},       {1, 0},        {50, 0},       {51, 1},
	    {100, 1},     {101, 2},      {250, 2},      {251, 3},
	    {999, 4},     {1000, 4},     {1001, 5},     {100000, 9},
	    {100001, 10}, {1000000, 10}, {1000001, 11}, {UINT64_MAX / 2, 11},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		hist_t h;
		memset(&h, 0, sizeof(h));
		hist_observe(&h, cases[i].us);
		for (size_t k = 0; k < HIST_NBUCKETS; k++)
			if (h.bucket[k] != (uint64_t)(k == cases[i].bucket))
				fail_msg("%llu us: bucket %zu holds %llu, want it in bucket %zu",
				         (unsigned long long)cases[i].us, k,
				         (unsigned long long)h.bucket[k], cases[i].bucket);
		assert_int_equal(h.count, 1);
		assert_int_equal(h.sum_us, cases[i].us);
	}
}

static void
test_observe_every_bound_is_inclusive(void **state)
{
	(void)state;
	for (size_t i = 0; i < HIST_NBUCKETS - 1; i++) {
		hist_t h;
		memset(&h, 0, sizeof(h));
		hist_observe(&h, hist_bounds_us[i]);
		hist_observe(&h, hist_bounds_us[i] + 1);
		if (h.bucket[i] != 1 || h.bucket[i + 1] != 1)
			fail_msg("bound %llu: bucket[%zu]=%llu bucket[%zu]=%llu",
			         (unsigned long long)hist_bounds_us[i], i,
			         (unsigned long long)h.bucket[i], i + 1,
			         (unsigned long long)h.bucket[i + 1]);
		if (i > 0)
			assert_true(hist_bounds_us[i] > hist_bounds_us[i - 1]);
	}
}

static void
test_merge_adds(void **state)
{
	hist_t a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	hist_observe(&a, 10);
	hist_observe(&a, 2000);
	hist_observe(&b, 10);
	hist_observe(&b, 5000000);
	hist_merge(&a, &b);
	assert_int_equal(a.bucket[0], 2);
	assert_int_equal(a.bucket[5], 1);
	assert_int_equal(a.bucket[HIST_NBUCKETS - 1], 1);
	assert_int_equal(a.count, 4);
	assert_int_equal(a.sum_us, 10 + 2000 + 10 + 5000000);
	/* src is untouched */
	assert_int_equal(b.count, 2);
}

static void
test_prom_exact_lines(void **state)
{
	static const char want[] = "lat_bucket{op=\"x\",le=\"5e-05\"} 1\n"
	                           "lat_bucket{op=\"x\",le=\"0.0001\"} 1\n"
	                           "lat_bucket{op=\"x\",le=\"0.00025\"} 1\n"
	                           "lat_bucket{op=\"x\",le=\"0.0005\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.001\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.0025\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.005\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.01\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.025\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"0.1\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"1\"} 2\n"
	                           "lat_bucket{op=\"x\",le=\"+Inf\"} 3\n"
	                           "lat_sum{op=\"x\"} 2.000310\n"
	                           "lat_count{op=\"x\"} 3\n";
	hist_t h;
	buf_t b;

	(void)state;
	memset(&h, 0, sizeof(h));
	hist_observe(&h, 10);
	hist_observe(&h, 300);
	hist_observe(&h, 2000000);
	buf_init(&b, 1 << 16);
	assert_int_equal(hist_write_prom(&b, "lat", "op=\"x\"", &h), 0);
	assert_string_equal(text(&b), want);
	buf_free(&b);
}

static void
test_prom_without_labels(void **state)
{
	hist_t h;
	buf_t b;

	(void)state;
	memset(&h, 0, sizeof(h));
	hist_observe(&h, 75);
	buf_init(&b, 1 << 16);
	assert_int_equal(hist_write_prom(&b, "q", "", &h), 0);
	assert_non_null(strstr(text(&b), "q_bucket{le=\"5e-05\"} 0\n"));
	assert_non_null(strstr(text(&b), "q_bucket{le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(text(&b), "q_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(text(&b), " 0.000075\n"));
	assert_non_null(strstr(text(&b), "q_count"));
	/* no dangling separator when there are no labels */
	assert_null(strstr(text(&b), "{,"));
	buf_free(&b);
}

/* Parses the _bucket lines back: cumulative, and +Inf equals _count. */
static void
test_prom_buckets_are_cumulative(void **state)
{
	hist_t h;
	buf_t b;
	unsigned long long prev = 0, v, count = 0;
	int nbuckets = 0, inf = 0;
	char *save = NULL, *copy;

	(void)state;
	memset(&h, 0, sizeof(h));
	for (uint64_t us = 1; us < 3000000; us = us * 3 + 7)
		hist_observe(&h, us);
	buf_init(&b, 1 << 16);
	assert_int_equal(hist_write_prom(&b, "m", "a=\"1\"", &h), 0);
	copy = strdup(text(&b));
	assert_non_null(copy);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		if (strncmp(line, "m_bucket{", 9) == 0) {
			v = strtoull(sp + 1, NULL, 10);
			if (v < prev)
				fail_msg("bucket line not cumulative: %s", line);
			prev = v;
			nbuckets++;
			if (strstr(line, "le=\"+Inf\"") != NULL) {
				inf = 1;
				assert_int_equal(v, h.count);
			}
		} else if (strncmp(line, "m_count{a=\"1\"} ", 15) == 0) {
			count = strtoull(sp + 1, NULL, 10);
		} else {
			assert_int_equal(strncmp(line, "m_sum{a=\"1\"} ", 13), 0);
		}
	}
	assert_int_equal(nbuckets, HIST_NBUCKETS);
	assert_true(inf);
	assert_int_equal(count, h.count);
	free(copy);
	buf_free(&b);
}

static void
test_prom_refused_by_full_buffer(void **state)
{
	hist_t h;
	buf_t b;

	(void)state;
	memset(&h, 0, sizeof(h));
	buf_init(&b, 64);
	assert_int_equal(hist_write_prom(&b, "lat", "", &h), -1);
	assert_int_equal(b.failed, 1);
	assert_true(b.len <= 64);
	buf_free(&b);
}

static void
test_buf_printf(void **state)
{
	buf_t b;

	(void)state;
	buf_init(&b, 16);
	assert_int_equal(buf_printf(&b, "%s=%d", "a", 42), 0);
	assert_int_equal(b.len, 4);
	assert_string_equal(text(&b), "a=42");
	assert_int_equal(buf_printf(&b, ";%03u", 7u), 0);
	assert_string_equal(text(&b), "a=42;007");
	assert_int_equal(b.len, 8);
	/* 8 more characters plus the NUL do not fit under max 16 */
	assert_int_equal(buf_printf(&b, "%s", "12345678"), -1);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.len, 8);
	assert_string_equal(text(&b), "a=42;007");
	buf_free(&b);
}

#define CTR_THREADS 4
#define CTR_ADDS    100000

static void *
ctr_worker(void *arg)
{
	for (int i = 0; i < CTR_ADDS; i++)
		ctr_add(arg, 1);
	return NULL;
}

static void
test_counters_from_threads(void **state)
{
	pthread_t t[CTR_THREADS];
	uint64_t c = 0;

	(void)state;
	for (int i = 0; i < CTR_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ctr_worker, &c), 0);
	for (int i = 0; i < CTR_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(ctr_get(&c), (uint64_t)CTR_THREADS * CTR_ADDS);
}

static void
test_now_ns_is_monotonic(void **state)
{
	uint64_t a, b;

	(void)state;
	a = now_ns();
	assert_true(a > 0);
	for (int i = 0; i < 1000; i++) {
		b = now_ns();
		assert_true(b >= a);
		a = b;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_observe_bucket_placement),
	    cmocka_unit_test(test_observe_every_bound_is_inclusive),
	    cmocka_unit_test(test_merge_adds),
	    cmocka_unit_test(test_prom_exact_lines),
	    cmocka_unit_test(test_prom_without_labels),
	    cmocka_unit_test(test_prom_buckets_are_cumulative),
	    cmocka_unit_test(test_prom_refused_by_full_buffer),
	    cmocka_unit_test(test_buf_printf),
	    cmocka_unit_test(test_counters_from_threads),
	    cmocka_unit_test(test_now_ns_is_monotonic),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
