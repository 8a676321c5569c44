/* Unit tests for workpool: completions on the submitter's loop, refusal
 * when the queue is full, draining on shutdown. */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "workpool.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

struct job {
	tu_loop_t *l;
	workpool_t *wp;
	int worked;
	pthread_t worker;
	int done;
	int on_loop;
	int gate; /* work waits until this is 0 */
	int resubmit_status;
};

static int gate_closed;

static void
job_work(void *arg)
{
	struct job *j = arg;
	err_t err;

	pthread_mutex_lock(&mu);
	while (j->gate && gate_closed)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	j->worked = 1;
	j->worker = pthread_self();
	if (j->wp != NULL && workpool_submit(j->wp, job_work, j->l->mb, NULL, NULL, &err) == -1)
		j->resubmit_status = err.status;
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(&mu);
	j->done = 1;
	j->on_loop =
	    pthread_equal(pthread_self(), j->l->th) && !pthread_equal(pthread_self(), j->worker);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
wait_done(struct job *j)
{
	pthread_mutex_lock(&mu);
	while (!j->done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

#define JOBS 64

static void
test_completions_on_their_loops(void **state)
{
	tu_loop_t l[2];
	struct job j[JOBS];
	workpool_t *wp;

	(void)state;
	tu_loop_start(&l[0]);
	tu_loop_start(&l[1]);
	assert_non_null(wp = workpool_new("test", 3, JOBS, NULL));
	memset(j, 0, sizeof(j));
	for (int i = 0; i < JOBS; i++) {
		j[i].l = &l[i % 2];
		assert_int_equal(workpool_submit(wp, job_work, j[i].l->mb, job_done, &j[i], NULL),
		                 0);
	}
	for (int i = 0; i < JOBS; i++) {
		wait_done(&j[i]);
		assert_true(j[i].worked);
		assert_true(j[i].on_loop);
	}
	workpool_free(wp);
	tu_loop_stop(&l[0]);
	tu_loop_stop(&l[1]);
}

static void
test_full_queue_refused(void **state)
{
	tu_loop_t l;
	struct job busy = {0}, q[2], extra = {0};
	workpool_t *wp;
	err_t err;

	(void)state;
	tu_loop_start(&l);
	assert_non_null(wp = workpool_new("test", 1, 2, NULL));
	gate_closed = 1;
	busy.l = &l;
	busy.gate = 1;
	assert_int_equal(workpool_submit(wp, job_work, l.mb, job_done, &busy, NULL), 0);
	/* the only thread takes busy off the queue and waits at the gate */
	while (workpool_queued(wp) != 0)
		sched_yield();
	memset(q, 0, sizeof(q));
	for (int i = 0; i < 2; i++) {
		q[i].l = &l;
		assert_int_equal(workpool_submit(wp, job_work, l.mb, job_done, &q[i], NULL), 0);
	}
	extra.l = &l;
	assert_int_equal(workpool_submit(wp, job_work, l.mb, job_done, &extra, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	assert_int_equal(workpool_queued(wp), 2);
	pthread_mutex_lock(&mu);
	gate_closed = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	wait_done(&busy);
	wait_done(&q[0]);
	wait_done(&q[1]);
	assert_false(extra.worked);
	workpool_free(wp);
	tu_loop_stop(&l);
}

static void *
free_main(void *wp)
{
	workpool_free(wp);
	return NULL;
}

/* workpool_free while jobs wait: each still runs, its done still reaches
 * its loop, and what they submit meanwhile is refused as UNAVAILABLE. */
static void
test_shutdown_drains(void **state)
{
	tu_loop_t l;
	struct job busy = {0}, q[8];
	workpool_t *wp;
	pthread_t fr;
	struct timespec pause = {0, 100 * 1000000L};

	(void)state;
	tu_loop_start(&l);
	assert_non_null(wp = workpool_new("test", 1, 8, NULL));
	gate_closed = 1;
	busy.l = &l;
	busy.gate = 1;
	assert_int_equal(workpool_submit(wp, job_work, l.mb, job_done, &busy, NULL), 0);
	while (workpool_queued(wp) != 0)
		sched_yield();
	memset(q, 0, sizeof(q));
	for (int i = 0; i < 8; i++) {
		q[i].l = &l;
		q[i].wp = wp;
		assert_int_equal(workpool_submit(wp, job_work, l.mb, job_done, &q[i], NULL), 0);
	}
	/* the free stops the pool, then waits for the drain */
	assert_int_equal(pthread_create(&fr, NULL, free_main, wp), 0);
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&mu);
	gate_closed = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(fr, NULL);
	for (int i = 0; i < 8; i++) {
		assert_true(q[i].worked);
		assert_int_equal(q[i].resubmit_status, STB_UNAVAILABLE);
		wait_done(&q[i]);
		assert_true(q[i].on_loop);
	}
	wait_done(&busy);
	tu_loop_stop(&l);
}

static void
test_refuses_bad_sizes(void **state)
{
	err_t err;

	(void)state;
	assert_null(workpool_new("test", 0, 1, &err));
	assert_int_equal(err.status, STB_INTERNAL);
	assert_null(workpool_new("test", 1, 0, &err));
	assert_null(workpool_new("test", WORKPOOL_MAX_THREADS + 1, 1, &err));
	workpool_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_completions_on_their_loops),
	    cmocka_unit_test(test_full_queue_refused),
	    cmocka_unit_test(test_shutdown_drains),
	    cmocka_unit_test(test_refuses_bad_sizes),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
