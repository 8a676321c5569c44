#include "kdfq.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"

#define KDFQ_MAX_THREADS 64

struct kjob {
	void (*work)(void *arg);
	mbox_t *mb;
	mbox_fn done;
	void *arg;
	struct kjob *next;
};

struct rdv_kdfq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kjob *head, *tail;
	int stopping;
	int nthreads;
	pthread_t threads[KDFQ_MAX_THREADS];
};

static void *
kdfq_main(void *arg)
{
	rdv_kdfq_t *q = arg;

	for (;;) {
		struct kjob *j;

		pthread_mutex_lock(&q->mu);
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if ((j = q->head) == NULL) {
			pthread_mutex_unlock(&q->mu);
			return NULL;
		}
		if ((q->head = j->next) == NULL)
			q->tail = NULL;
		pthread_mutex_unlock(&q->mu);
		j->work(j->arg);
		if (mbox_post(j->mb, j->done, j->arg) == -1)
			log_warnx("kdf: cannot hand a result back; request dropped");
		free(j);
	}
}

rdv_kdfq_t *
rdv_kdfq_new(int nthreads)
{
	rdv_kdfq_t *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (nthreads > KDFQ_MAX_THREADS)
		nthreads = KDFQ_MAX_THREADS;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&q->threads[i], NULL, kdfq_main, q) != 0)
			break;
		q->nthreads++;
	}
	if (q->nthreads == 0) {
		rdv_kdfq_free(q);
		return NULL;
	}
	return q;
}

int
rdv_kdfq_post(rdv_kdfq_t *q, void (*work)(void *arg), mbox_t *mb, mbox_fn done, void *arg)
{
	struct kjob *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -1;
	*j = (struct kjob){work, mb, done, arg, NULL};
	pthread_mutex_lock(&q->mu);
	if (q->stopping) {
		pthread_mutex_unlock(&q->mu);
		free(j);
		return -1;
	}
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void
rdv_kdfq_free(rdv_kdfq_t *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
