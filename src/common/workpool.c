/* workpool: blocking work off the loops, bounded queue (see workpool.h). */
#include "workpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

typedef struct workpool_job {
	workpool_fn work;
	mbox_t *mb;
	mbox_fn done;
	void *arg;
} workpool_job_t;

struct workpool {
	char name[32];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	workpool_job_t *ring; /* max_queue slots */
	size_t cap, head, n;
	int stopping;
	int nthreads;
	pthread_t threads[WORKPOOL_MAX_THREADS];
};

static void *
workpool_main(void *arg)
{
	workpool_t *wp = arg;
	workpool_job_t j;

	for (;;) {
		pthread_mutex_lock(&wp->mu);
		while (wp->n == 0 && !wp->stopping)
			pthread_cond_wait(&wp->cv, &wp->mu);
		if (wp->n == 0) { /* stopping and drained */
			pthread_mutex_unlock(&wp->mu);
			return NULL;
		}
		j = wp->ring[wp->head];
		wp->head = (wp->head + 1) % wp->cap;
		wp->n--;
		pthread_mutex_unlock(&wp->mu);
		j.work(j.arg);
		if (mbox_post(j.mb, j.done, j.arg) == -1)
			log_warnx("%s: cannot hand a result back to its loop; request dropped",
			          wp->name);
	}
}

workpool_t *
workpool_new(const char *name, int nthreads, size_t max_queue, err_t *err)
{
	workpool_t *wp;

	if (nthreads < 1 || nthreads > WORKPOOL_MAX_THREADS || max_queue < 1 ||
	    max_queue > ((size_t)1 << 24)) {
		err_set(err, STB_INTERNAL, "%s: %d threads, queue of %zu", name, nthreads,
		        max_queue);
		return NULL;
	}
	if ((wp = calloc(1, sizeof(*wp))) == NULL ||
	    (wp->ring = calloc(max_queue, sizeof(*wp->ring))) == NULL) {
		free(wp);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	snprintf(wp->name, sizeof(wp->name), "%s", name);
	wp->cap = max_queue;
	pthread_mutex_init(&wp->mu, NULL);
	pthread_cond_init(&wp->cv, NULL);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&wp->threads[i], NULL, workpool_main, wp) != 0)
			break;
		wp->nthreads++;
	}
	if (wp->nthreads < nthreads) {
		workpool_free(wp);
		err_set(err, STB_INTERNAL, "%s: cannot start %d threads", name, nthreads);
		return NULL;
	}
	return wp;
}

int
workpool_submit(workpool_t *wp, workpool_fn work, mbox_t *mb, mbox_fn done, void *arg, err_t *err)
{
	pthread_mutex_lock(&wp->mu);
	if (wp->stopping) {
		pthread_mutex_unlock(&wp->mu);
		return err_set(err, STB_UNAVAILABLE, "%s: shutting down", wp->name);
	}
	if (wp->n == wp->cap) {
		pthread_mutex_unlock(&wp->mu);
		return err_set(err, STB_RATE_LIMITED, "%s: %zu jobs waiting already; try again",
		               wp->name, wp->cap);
	}
	wp->ring[(wp->head + wp->n) % wp->cap] = (workpool_job_t){work, mb, done, arg};
	wp->n++;
	pthread_cond_signal(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	return 0;
}

size_t
workpool_queued(workpool_t *wp)
{
	size_t n;

	pthread_mutex_lock(&wp->mu);
	n = wp->n;
	pthread_mutex_unlock(&wp->mu);
	return n;
}

void
workpool_free(workpool_t *wp)
{
	if (wp == NULL)
		return;
	pthread_mutex_lock(&wp->mu);
	wp->stopping = 1;
	pthread_cond_broadcast(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	for (int i = 0; i < wp->nthreads; i++)
		pthread_join(wp->threads[i], NULL);
	pthread_cond_destroy(&wp->cv);
	pthread_mutex_destroy(&wp->mu);
	free(wp->ring);
	free(wp);
}
