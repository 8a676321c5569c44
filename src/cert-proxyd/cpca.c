/*
 * ca: calls to ca-authd.  A peer_t belongs to one event loop, so each loop
 * that calls (the workers, the main loop's scanner) gets its own, made on
 * first use and kept in a thread-local pointer; fini frees each on its own
 * loop.
 */
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "log.h"

struct cp_loop_peer {
	peer_t *peer;
	struct event_base *base;
	mbox_t *mb; /* the worker's mailbox; NULL for the main loop */
	cp_loop_peer_t *next;
};

static __thread cp_loop_peer_t *tl_peer;

static cp_loop_peer_t *
ca_loop_peer(cp_t *cp, struct event_base *base, mbox_t *mb, err_t *err)
{
	/* the daemon's client identity, reloaded on SIGHUP */
	peer_conf_t pc = {cp->conf->ca_addr, STB_R_CA_AUTHD, 0, 200, 5000, &cp->d->client_tls};
	cp_loop_peer_t *lp;

	if (tl_peer != NULL && tl_peer->base == base)
		return tl_peer;
	if ((lp = calloc(1, sizeof(*lp))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if ((lp->peer = peer_new(base, NULL, &pc, err)) == NULL) {
		free(lp);
		return NULL;
	}
	lp->base = base;
	lp->mb = mb;
	pthread_mutex_lock(&cp->peers_mu);
	lp->next = cp->peers;
	cp->peers = lp;
	pthread_mutex_unlock(&cp->peers_mu);
	tl_peer = lp;
	return lp;
}

int
cp_ca_call(cp_t *cp, struct event_base *base, mbox_t *mb, uint16_t type, const buf_t *tlvs,
           peer_done_fn fn, void *arg, err_t *err)
{
	cp_loop_peer_t *lp;

	if (cp_stopping(cp))
		return err_set(err, STB_UNAVAILABLE, "cert-proxyd is shutting down");
	if ((lp = ca_loop_peer(cp, base, mb, err)) == NULL)
		return -1;
	return peer_call(lp->peer, type, tlvs, (int)cp->conf->ca_timeout_ms, fn, arg, err);
}

void
cp_ca_error(const msg_t *rsp, const err_t *err, err_t *out)
{
	char text[256] = "";
	int st;

	if (rsp == NULL) {
		/* no answer: down, unreachable or silent */
		err_set(out, err->status == STB_TIMEOUT ? STB_TIMEOUT : STB_UNAVAILABLE,
		        "ca-authd: %s", err->msg);
		return;
	}
	st = msg_status(rsp);
	msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
	switch (st) {
	case STB_UNAVAILABLE:
	case STB_RATE_LIMITED:
	case STB_TIMEOUT:
		err_set(out, STB_UNAVAILABLE, "ca-authd: %s: %s", stb_status_name(st), text);
		break;
	default:
		err_set(out, STB_INTERNAL, "ca-authd refused: %s: %s", stb_status_name(st), text);
	}
}

struct ca_free_job {
	cp_loop_peer_t *lp;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void
ca_free_on_loop(void *arg)
{
	struct ca_free_job *j = arg;

	peer_free(j->lp->peer); /* fails what is pending with UNAVAILABLE */
	tl_peer = NULL;
	pthread_mutex_lock(&j->mu);
	j->done = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

void
cp_ca_fini(cp_t *cp)
{
	cp_loop_peer_t *lp, *next;

	pthread_mutex_lock(&cp->peers_mu);
	lp = cp->peers;
	cp->peers = NULL;
	pthread_mutex_unlock(&cp->peers_mu);
	for (; lp != NULL; lp = next) {
		next = lp->next;
		if (lp->mb == NULL) {
			/* the main loop: this thread */
			peer_free(lp->peer);
			tl_peer = NULL;
		} else {
			/* the workers still run (they stop after the store closes) */
			struct ca_free_job j = {.lp = lp};
			pthread_mutex_init(&j.mu, NULL);
			pthread_cond_init(&j.cv, NULL);
			if (mbox_post(lp->mb, ca_free_on_loop, &j) == 0) {
				pthread_mutex_lock(&j.mu);
				while (!j.done)
					pthread_cond_wait(&j.cv, &j.mu);
				pthread_mutex_unlock(&j.mu);
			} else
				log_warnx("cannot reach a loop to close its ca-authd connection");
			pthread_mutex_destroy(&j.mu);
			pthread_cond_destroy(&j.cv);
		}
		free(lp);
	}
}
