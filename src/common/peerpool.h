/*
 * peerpool: one peer_t (peer.h) per event loop towards one service (a
 * daemon's ca-authd, an app platform, an HSS, an OCSP responder ...).  A
 * peer_t belongs to the loop it was made on, so each loop that calls gets
 * its own, made on first use; finding it takes no lock (a loop adds only
 * its own slot).  Each call has its own deadline; a lost connection is
 * made again on the next call, with peer.c's backoff; each new connection
 * takes the holder's current identity (SIGHUP reloads it).
 *
 * peerpool_free frees each loop's peer on its own loop (which fails what
 * is pending there with UNAVAILABLE) and waits a bounded time for them; a
 * loop that does not answer in time is left to free its peer when it
 * does, and the pool goes with the last of them.
 */
#ifndef STB_PEERPOOL_H
#define STB_PEERPOOL_H

#include <event2/event.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "mbox.h"
#include "peer.h"
#include "tls.h"

#define PEERPOOL_MAX_LOOPS 256

typedef struct peerpool peerpool_t;

typedef struct peerpool_conf {
	const char *name; /* "ca-authd": in error texts and logs */
	const char *addr; /* "host:port" */
	uint32_t expect_roles;
	uint32_t max_frame; /* 0: peer.c's default */
	int backoff_min_ms;
	int backoff_max_ms;
	int timeout_ms;       /* a call's deadline when it names none */
	int shutdown_wait_ms; /* peerpool_free's bound (0: 5000) */
	tls_holder_t *tls;    /* the daemon's client identity */
} peerpool_conf_t;

peerpool_t *peerpool_new(const peerpool_conf_t *conf, err_t *err);
/* The peer of the loop base runs (mb: that loop's mailbox, or NULL for the
 * loop of the thread that will call peerpool_free), made on first use.
 * Must run on that loop.  NULL with err when it cannot be made or the pool
 * is stopping. */
peer_t *peerpool_peer(peerpool_t *pp, struct event_base *base, mbox_t *mb, err_t *err);
/* peer_call on this loop's peer; timeout_ms 0: the pool's.  -1 with err
 * (fn not called) when it cannot be sent. */
int peerpool_call(peerpool_t *pp, struct event_base *base, mbox_t *mb, uint16_t type,
                  const buf_t *tlvs, int timeout_ms, peer_done_fn fn, void *arg, err_t *err);
/* Refuses new calls from now on (UNAVAILABLE). */
void peerpool_stop(peerpool_t *pp);
/* Stops, frees every loop's peer on its loop (bounded wait), frees the
 * pool.  The loops must still run; NULL-safe. */
void peerpool_free(peerpool_t *pp);

#endif
