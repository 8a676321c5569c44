/* peerpool: one peer per event loop (see peerpool.h). */
#include "peerpool.h"
#include "netaddr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define PEERPOOL_WAIT_MS 5000

typedef struct peerpool_slot {
	struct event_base *base; /* identifies the loop */
	mbox_t *mb;              /* NULL: the loop of peerpool_free's thread */
	peer_t *peer;            /* touched on its loop only */
	peerpool_t *pp;
} peerpool_slot_t;

struct peerpool {
	peerpool_conf_t conf;
	char name[64];
	char addr[256];
	struct sockaddr_storage sa; /* addr, resolved once */
	int salen;
	pthread_mutex_t mu; /* appends, and the free handshake */
	pthread_cond_t cv;
	int stopping;  /* atomic */
	int nslots;    /* published with release after a slot is filled */
	int pending;   /* frees posted and not yet run (under mu) */
	int abandoned; /* peerpool_free gave up waiting: the last free frees */
	peerpool_slot_t slot[PEERPOOL_MAX_LOOPS];
};

peerpool_t *
peerpool_new(const peerpool_conf_t *conf, err_t *err)
{
	peerpool_t *pp;

	if (conf->addr == NULL || strlen(conf->addr) >= sizeof(pp->addr) ||
	    (conf->name != NULL && strlen(conf->name) >= sizeof(pp->name))) {
		err_set(err, STB_BAD_REQUEST, "peer pool: address or name too long");
		return NULL;
	}
	if ((pp = calloc(1, sizeof(*pp))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	/* a host name is looked up here, at start-up, not on a loop */
	if (netaddr_resolve(conf->addr, &pp->sa, &pp->salen, err) == -1) {
		free(pp);
		return NULL;
	}
	pp->conf = *conf;
	snprintf(pp->name, sizeof(pp->name), "%s", conf->name != NULL ? conf->name : conf->addr);
	snprintf(pp->addr, sizeof(pp->addr), "%s", conf->addr);
	pp->conf.name = pp->name;
	pp->conf.addr = pp->addr;
	if (pp->conf.shutdown_wait_ms <= 0)
		pp->conf.shutdown_wait_ms = PEERPOOL_WAIT_MS;
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	return pp;
}

static void
peerpool_destroy(peerpool_t *pp)
{
	pthread_cond_destroy(&pp->cv);
	pthread_mutex_destroy(&pp->mu);
	free(pp);
}

peer_t *
peerpool_peer(peerpool_t *pp, struct event_base *base, mbox_t *mb, err_t *err)
{
	int n = __atomic_load_n(&pp->nslots, __ATOMIC_ACQUIRE);
	peer_conf_t pc = {pp->addr,
	                  pp->conf.expect_roles,
	                  pp->conf.max_frame,
	                  pp->conf.backoff_min_ms,
	                  pp->conf.backoff_max_ms,
	                  pp->conf.tls,
	                  &pp->sa,
	                  pp->salen};
	peer_t *p;

	if (__atomic_load_n(&pp->stopping, __ATOMIC_ACQUIRE)) {
		err_set(err, STB_UNAVAILABLE, "%s: shutting down", pp->name);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		if (pp->slot[i].base == base)
			return pp->slot[i].peer;
	/* only this loop adds its own slot, so nobody races us for it */
	if ((p = peer_new(base, NULL, &pc, err)) == NULL)
		return NULL;
	pthread_mutex_lock(&pp->mu);
	n = pp->nslots;
	if (n == PEERPOOL_MAX_LOOPS || pp->stopping) {
		pthread_mutex_unlock(&pp->mu);
		peer_free(p);
		if (n == PEERPOOL_MAX_LOOPS)
			err_set(err, STB_INTERNAL, "%s: more than %d loops", pp->name,
			        PEERPOOL_MAX_LOOPS);
		else
			err_set(err, STB_UNAVAILABLE, "%s: shutting down", pp->name);
		return NULL;
	}
	pp->slot[n] = (peerpool_slot_t){base, mb, p, pp};
	__atomic_store_n(&pp->nslots, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pp->mu);
	return p;
}

int
peerpool_call(peerpool_t *pp, struct event_base *base, mbox_t *mb, uint16_t type, const buf_t *tlvs,
              int timeout_ms, peer_done_fn fn, void *arg, err_t *err)
{
	peer_t *p = peerpool_peer(pp, base, mb, err);

	if (p == NULL)
		return -1;
	return peer_call(p, type, tlvs, timeout_ms > 0 ? timeout_ms : pp->conf.timeout_ms, fn, arg,
	                 err);
}

void
peerpool_stop(peerpool_t *pp)
{
	pthread_mutex_lock(&pp->mu);
	__atomic_store_n(&pp->stopping, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pp->mu);
}

/* On the slot's loop. */
static void
peerpool_free_on_loop(void *arg)
{
	peerpool_slot_t *s = arg;
	peerpool_t *pp = s->pp;
	int last;

	peer_free(s->peer); /* fails what is pending with UNAVAILABLE */
	s->peer = NULL;
	pthread_mutex_lock(&pp->mu);
	last = --pp->pending == 0 && pp->abandoned;
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
	if (last)
		peerpool_destroy(pp);
}

void
peerpool_free(peerpool_t *pp)
{
	struct timespec dl;
	int n, left;

	if (pp == NULL)
		return;
	peerpool_stop(pp);
	n = __atomic_load_n(&pp->nslots, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&pp->mu);
	for (int i = 0; i < n; i++) {
		peerpool_slot_t *s = &pp->slot[i];
		if (s->mb == NULL) {
			peer_free(s->peer); /* this thread's loop */
			s->peer = NULL;
		} else if (mbox_post(s->mb, peerpool_free_on_loop, s) == 0)
			pp->pending++;
		else
			log_warnx("%s: cannot reach a loop to close its connection", pp->name);
	}
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += pp->conf.shutdown_wait_ms / 1000;
	dl.tv_nsec += (long)(pp->conf.shutdown_wait_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	while (pp->pending > 0)
		if (pthread_cond_timedwait(&pp->cv, &pp->mu, &dl) != 0)
			break;
	left = pp->pending;
	pp->abandoned = left > 0;
	pthread_mutex_unlock(&pp->mu);
	if (left > 0) {
		/* a loop is stuck: it frees its peer (and the last one the pool)
		 * when it comes back, rather than we under its feet */
		log_warnx("%s: %d loop(s) did not let go of their connection in %d ms", pp->name,
		          left, pp->conf.shutdown_wait_ms);
		return;
	}
	peerpool_destroy(pp);
}
