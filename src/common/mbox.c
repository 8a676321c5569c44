#include "mbox.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>

struct mbox_item {
	mbox_fn fn;
	void *arg;
};

struct mbox {
	pthread_mutex_t mu;
	struct event *ev;
	struct mbox_item *q; /* pending calls */
	size_t n, cap;
	struct mbox_item *run; /* swapped with q while running */
	size_t runcap;
};

static void
mbox_run(evutil_socket_t fd, short what, void *arg)
{
	mbox_t *mb = arg;
	struct mbox_item *items;
	size_t n, cap;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&mb->mu);
	items = mb->q;
	n = mb->n;
	cap = mb->cap;
	mb->q = mb->run;
	mb->cap = mb->runcap;
	mb->n = 0;
	mb->run = items;
	mb->runcap = cap;
	pthread_mutex_unlock(&mb->mu);
	for (size_t i = 0; i < n; i++)
		items[i].fn(items[i].arg);
	ERR_clear_error(); /* see conn_dispatch in server.c */
}

mbox_t *
mbox_new(struct event_base *base)
{
	mbox_t *mb = calloc(1, sizeof(*mb));

	if (mb == NULL)
		return NULL;
	pthread_mutex_init(&mb->mu, NULL);
	if ((mb->ev = event_new(base, -1, 0, mbox_run, mb)) == NULL) {
		pthread_mutex_destroy(&mb->mu);
		free(mb);
		return NULL;
	}
	return mb;
}

int
mbox_post(mbox_t *mb, mbox_fn fn, void *arg)
{
	int wake;

	pthread_mutex_lock(&mb->mu);
	if (mb->n == mb->cap) {
		size_t ncap = mb->cap ? mb->cap * 2 : 64;
		struct mbox_item *q = realloc(mb->q, ncap * sizeof(*q));
		if (q == NULL) {
			pthread_mutex_unlock(&mb->mu);
			return -1;
		}
		mb->q = q;
		mb->cap = ncap;
	}
	mb->q[mb->n].fn = fn;
	mb->q[mb->n].arg = arg;
	wake = mb->n++ == 0;
	pthread_mutex_unlock(&mb->mu);
	if (wake)
		event_active(mb->ev, EV_TIMEOUT, 0);
	return 0;
}

void
mbox_free(mbox_t *mb)
{
	if (mb == NULL)
		return;
	mbox_run(-1, 0, mb);
	event_free(mb->ev);
	free(mb->q);
	free(mb->run);
	pthread_mutex_destroy(&mb->mu);
	free(mb);
}
