/* Unit tests for lifecycle: references, the stopping flag, the teardown. */
#include <pthread.h>

#include "lifecycle.h"
#include "testutil.h"

struct obj {
	lifecycle_t lc;
	int torn;
};

static void
obj_teardown(void *arg)
{
	((struct obj *)arg)->torn++;
}

static void
test_last_reference_tears_down_once(void **state)
{
	struct obj o = {0};

	(void)state;
	lifecycle_init(&o.lc, obj_teardown, &o);
	lifecycle_ref(&o.lc);
	lifecycle_ref(&o.lc);
	lifecycle_unref(&o.lc);
	lifecycle_unref(&o.lc);
	assert_int_equal(o.torn, 0);
	assert_false(lifecycle_stopping(&o.lc));
	lifecycle_stop(&o.lc);
	assert_true(lifecycle_stopping(&o.lc));
	assert_int_equal(o.torn, 0); /* stopping is not the end */
	lifecycle_unref(&o.lc);
	assert_int_equal(o.torn, 1);
}

#define THREADS 4
#define ROUNDS  100000

static void *
churn(void *arg)
{
	lifecycle_t *lc = arg;

	for (int i = 0; i < ROUNDS; i++) {
		lifecycle_ref(lc);
		lifecycle_unref(lc);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct obj o = {0};
	pthread_t t[THREADS];

	(void)state;
	lifecycle_init(&o.lc, obj_teardown, &o);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, &o.lc), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(o.torn, 0);
	lifecycle_unref(&o.lc);
	assert_int_equal(o.torn, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_last_reference_tears_down_once),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
