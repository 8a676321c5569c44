/* Unit tests for hist: quantiles from the split buckets (the Prometheus
 * buckets themselves are covered by test_metrics). */
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "testutil.h"

static hist_t *
hist_new(void)
{
	hist_t *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	return h;
}

/* Within 1/HIST_SUB of its bucket's width above the true value. */
static void
check_near(const char *what, uint64_t got, uint64_t want)
{
	uint64_t slack = want / 16 + 2;

	if (got < want || got > want + slack)
		fail_msg("%s: %llu, want %llu..%llu", what, (unsigned long long)got,
		         (unsigned long long)want, (unsigned long long)(want + slack));
}

static void
test_uniform_quantiles(void **state)
{
	hist_t *h = hist_new();

	(void)state;
	for (uint64_t us = 1; us <= 20000; us++)
		hist_observe(h, us);
	check_near("p50", hist_quantile(h, 0.50), 10000);
	check_near("p90", hist_quantile(h, 0.90), 18000);
	check_near("p99", hist_quantile(h, 0.99), 19800);
	assert_int_equal(hist_quantile(h, 1.0), 20000);
	assert_int_equal(h->max_us, 20000);
	assert_int_equal(h->count, 20000);
	free(h);
}

static void
test_edges(void **state)
{
	static const uint64_t values[] = {0,    1,    49,    50,     51,     999,
	                                  1000, 1001, 99999, 100000, 1000000};
	hist_t *h;

	(void)state;
	h = hist_new();
	assert_int_equal(hist_quantile(h, 0.5), 0); /* empty */
	free(h);
	/* one value: every quantile is that value, never above it */
	for (size_t i = 0; i < TU_NELEM(values); i++) {
		h = hist_new();
		hist_observe(h, values[i]);
		assert_int_equal(hist_quantile(h, 0.0), values[i]);
		assert_int_equal(hist_quantile(h, 0.5), values[i]);
		assert_int_equal(hist_quantile(h, 1.0), values[i]);
		free(h);
	}
}

static void
test_beyond_last_bound(void **state)
{
	hist_t *h = hist_new();

	(void)state;
	for (int i = 0; i < 99; i++)
		hist_observe(h, 100);
	hist_observe(h, 3000000); /* 3 s: the (2 s, 4 s] part of +Inf */
	hist_observe(h, 9000000);
	assert_int_equal(h->bucket[HIST_NBUCKETS - 1], 2);
	check_near("p50", hist_quantile(h, 0.5), 100);
	assert_int_equal(hist_quantile(h, 0.99), 4000000);
	assert_int_equal(hist_quantile(h, 1.0), 9000000);
	free(h);
}

static void
test_merge(void **state)
{
	hist_t *a = hist_new(), *b = hist_new();

	(void)state;
	for (uint64_t us = 1; us <= 100; us++)
		hist_observe(a, us);
	for (uint64_t us = 101; us <= 200; us++)
		hist_observe(b, us);
	hist_merge(a, b);
	assert_int_equal(a->count, 200);
	assert_int_equal(a->max_us, 200);
	assert_int_equal(a->sum_us, 200 * 201 / 2);
	check_near("p50 of the merge", hist_quantile(a, 0.5), 100);
	check_near("p75 of the merge", hist_quantile(a, 0.75), 150);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uniform_quantiles),
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_beyond_last_bound),
	    cmocka_unit_test(test_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
