/* Unit tests for mbox: function calls handed to an event loop's thread. */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mbox.h"
#include "testutil.h"

#define POSTERS    4
#define PER_POSTER 5000
#define GUARD_SEC  20

struct run {
	struct event_base *base;
	mbox_t *mb;
	pthread_t loop_thread;
	pthread_barrier_t start;
	/* touched only on the loop's thread */
	uint32_t next[POSTERS];
	int order_errors;
	int wrong_thread;
	int ran;
	tu_guard_t guard;
};

struct item {
	struct run *run;
	int poster;
	uint32_t seq;
};

static void
on_item(void *arg)
{
	struct item *it = arg;
	struct run *r = it->run;

	if (!pthread_equal(pthread_self(), r->loop_thread))
		r->wrong_thread++;
	if (it->seq != r->next[it->poster])
		r->order_errors++;
	r->next[it->poster] = it->seq + 1;
	if (++r->ran == POSTERS * PER_POSTER)
		event_base_loopbreak(r->base);
}

struct poster {
	struct run *run;
	struct item *items;
	int failed_posts;
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;

	pthread_barrier_wait(&p->run->start);
	for (int i = 0; i < PER_POSTER; i++)
		if (mbox_post(p->run->mb, on_item, &p->items[i]) == -1)
			p->failed_posts++;
	return NULL;
}

static void
test_posts_from_threads_run_on_loop_in_order(void **state)
{
	pthread_t posters[POSTERS];
	struct poster pc[POSTERS];
	struct item *items;
	struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	items = calloc(POSTERS * PER_POSTER, sizeof(*items));
	assert_non_null(items);
	assert_non_null(r.base = event_base_new());
	assert_non_null(r.mb = mbox_new(r.base));
	tu_guard_start(&r.guard, r.base, GUARD_SEC);
	assert_int_equal(pthread_barrier_init(&r.start, NULL, POSTERS), 0);
	assert_int_equal(pthread_create(&r.loop_thread, NULL, tu_loop_main, r.base), 0);
	for (int p = 0; p < POSTERS; p++) {
		pc[p].run = &r;
		pc[p].items = items + p * PER_POSTER;
		pc[p].failed_posts = 0;
		for (int i = 0; i < PER_POSTER; i++)
			pc[p].items[i] = (struct item){&r, p, (uint32_t)i};
		assert_int_equal(pthread_create(&posters[p], NULL, poster_main, &pc[p]), 0);
	}
	for (int p = 0; p < POSTERS; p++)
		pthread_join(posters[p], NULL);
	pthread_join(r.loop_thread, NULL);

	assert_false(r.guard.fired);
	for (int p = 0; p < POSTERS; p++) {
		assert_int_equal(pc[p].failed_posts, 0);
		assert_int_equal(r.next[p], PER_POSTER);
	}
	assert_int_equal(r.ran, POSTERS * PER_POSTER);
	assert_int_equal(r.order_errors, 0);
	assert_int_equal(r.wrong_thread, 0);

	mbox_free(r.mb);
	tu_guard_free(&r.guard);
	event_base_free(r.base);
	pthread_barrier_destroy(&r.start);
	free(items);
}

struct log {
	int seen[300];
	int n;
	mbox_t *mb;
};

struct entry {
	struct log *log;
	int id;
};

static void
on_entry(void *arg)
{
	struct entry *e = arg;

	if (e->log->n < (int)TU_NELEM(e->log->seen))
		e->log->seen[e->log->n] = e->id;
	e->log->n++;
}

static void
test_free_runs_what_is_queued(void **state)
{
	struct entry e[200];
	struct event_base *base;
	struct log log;

	(void)state;
	memset(&log, 0, sizeof(log));
	assert_non_null(base = event_base_new());
	assert_non_null(log.mb = mbox_new(base));
	/* more than one allocation's worth, never dispatched */
	for (int i = 0; i < 200; i++) {
		e[i] = (struct entry){&log, i};
		assert_int_equal(mbox_post(log.mb, on_entry, &e[i]), 0);
	}
	assert_int_equal(log.n, 0);
	mbox_free(log.mb);
	assert_int_equal(log.n, 200);
	for (int i = 0; i < 200; i++)
		assert_int_equal(log.seen[i], i);
	event_base_free(base);
	mbox_free(NULL);
}

static struct entry second;

static void
on_first(void *arg)
{
	struct entry *e = arg;

	on_entry(e);
	/* a call posted from a running call runs in a later turn */
	assert_int_equal(mbox_post(e->log->mb, on_entry, &second), 0);
	assert_int_equal(e->log->n, 1);
}

static void
test_post_from_a_call(void **state)
{
	struct event_base *base;
	struct entry first;
	struct log log;
	int turns = 0;

	(void)state;
	memset(&log, 0, sizeof(log));
	assert_non_null(base = event_base_new());
	assert_non_null(log.mb = mbox_new(base));
	first = (struct entry){&log, 1};
	second = (struct entry){&log, 2};
	assert_int_equal(mbox_post(log.mb, on_first, &first), 0);
	while (log.n < 2 && turns++ < 10)
		assert_true(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.seen[0], 1);
	assert_int_equal(log.seen[1], 2);
	mbox_free(log.mb);
	assert_int_equal(log.n, 2);
	event_base_free(base);
}

static int
setup(void **state)
{
	(void)state;
	return evthread_use_pthreads();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_posts_from_threads_run_on_loop_in_order),
	    cmocka_unit_test(test_free_runs_what_is_queued),
	    cmocka_unit_test(test_post_from_a_call),
	};

	return cmocka_run_group_tests_name("mbox", tests, setup, NULL);
}
