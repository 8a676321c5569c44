/* ca: media-gw's client side of ca-authd.  A peer_t belongs to one event
 * loop, so each worker loop gets its own, made the first time that loop
 * calls; slots are only appended, and each is touched by its loop only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "log.h"

#define CA_MAX_LOOPS 256

struct ca_slot {
	mbox_t *mb; /* identifies the loop */
	peer_t *peer;
	gw_ca_t *ca;
};

struct gw_ca {
	char addr[128];
	tls_holder_t *tls;  /* the daemon's client identity, reloaded on SIGHUP */
	pthread_mutex_t mu; /* appends, and the free handshake */
	pthread_cond_t cv;
	struct ca_slot slot[CA_MAX_LOOPS];
	int nslots; /* published with release after a slot is filled */
	int freed;  /* slots whose peer was freed (under mu) */
};

gw_ca_t *
gw_ca_new(const char *addr, tls_holder_t *tls, err_t *err)
{
	gw_ca_t *ca = calloc(1, sizeof(*ca));

	if (ca == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	snprintf(ca->addr, sizeof(ca->addr), "%s", addr);
	ca->tls = tls;
	pthread_mutex_init(&ca->mu, NULL);
	pthread_cond_init(&ca->cv, NULL);
	return ca;
}

/* The calling loop's peer, made on first use. */
static peer_t *
ca_peer(gw_ca_t *ca, srv_req_t *r, err_t *err)
{
	mbox_t *mb = srv_req_mbox(r);
	int n = __atomic_load_n(&ca->nslots, __ATOMIC_ACQUIRE);
	peer_conf_t pc = {ca->addr, STB_R_CA_AUTHD, 0, 100, 2000, ca->tls};
	peer_t *p;

	for (int i = 0; i < n; i++)
		if (ca->slot[i].mb == mb)
			return ca->slot[i].peer;
	/* only this loop adds its own slot, so nobody races us for it */
	if ((p = peer_new(srv_conn_base(r->conn), NULL, &pc, err)) == NULL)
		return NULL;
	pthread_mutex_lock(&ca->mu);
	n = ca->nslots;
	if (n == CA_MAX_LOOPS) {
		pthread_mutex_unlock(&ca->mu);
		peer_free(p);
		err_set(err, STB_INTERNAL, "too many worker loops");
		return NULL;
	}
	ca->slot[n] = (struct ca_slot){mb, p, ca};
	__atomic_store_n(&ca->nslots, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ca->mu);
	return p;
}

int
gw_ca_call(gw_ca_t *ca, srv_req_t *r, uint16_t type, const buf_t *tlvs, int timeout_ms,
           peer_done_fn fn, void *arg, err_t *err)
{
	peer_t *p = ca_peer(ca, r, err);

	if (p == NULL)
		return -1;
	return peer_call(p, type, tlvs, timeout_ms, fn, arg, err);
}

/* On the slot's loop. */
static void
ca_free_on_loop(void *arg)
{
	struct ca_slot *s = arg;
	gw_ca_t *ca = s->ca;

	peer_free(s->peer);
	s->peer = NULL;
	pthread_mutex_lock(&ca->mu);
	ca->freed++;
	pthread_cond_signal(&ca->cv);
	pthread_mutex_unlock(&ca->mu);
}

void
gw_ca_free(gw_ca_t *ca)
{
	struct timespec dl;
	int n, posted = 0;

	if (ca == NULL)
		return;
	n = __atomic_load_n(&ca->nslots, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (mbox_post(ca->slot[i].mb, ca_free_on_loop, &ca->slot[i]) == 0)
			posted++;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&ca->mu);
	while (ca->freed < posted)
		if (pthread_cond_timedwait(&ca->cv, &ca->mu, &dl) != 0)
			break;
	n = ca->freed;
	pthread_mutex_unlock(&ca->mu);
	if (n < posted) {
		/* a loop is stuck: leaking beats freeing under its feet */
		log_warnx("ca-authd peers: %d of %d loops did not let go", posted - n, posted);
		return;
	}
	pthread_cond_destroy(&ca->cv);
	pthread_mutex_destroy(&ca->mu);
	free(ca);
}

int
gw_ca_refusal(int ca_status, const char *ca_text, char *msg, size_t cap)
{
	const char *t = ca_text != NULL && *ca_text != '\0' ? ca_text : "no reason given";

	switch (ca_status) {
	case STB_REVOKED:
		snprintf(msg, cap, "certificate revoked: %s", t);
		return STB_REVOKED;
	case STB_EXPIRED:
		snprintf(msg, cap, "certificate or key info expired: %s", t);
		return STB_EXPIRED;
	case STB_UNAUTHENTICATED:
		snprintf(msg, cap, "key info proof rejected: %s", t);
		return STB_UNAUTHENTICATED;
	case STB_NOT_FOUND:
		snprintf(msg, cap, "certificate unknown to the CA: %s", t);
		return STB_UNAUTHENTICATED;
	case STB_BAD_REQUEST:
		snprintf(msg, cap, "key info malformed: %s", t);
		return STB_BAD_REQUEST;
	default:
		/* FORBIDDEN, INTERNAL...: ours or the CA's problem, not the STB's */
		snprintf(msg, cap, "CA unavailable: ca-authd answered %s: %s",
		         stb_status_name(ca_status), t);
		return STB_UNAVAILABLE;
	}
}
