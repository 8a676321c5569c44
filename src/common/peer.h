/*
 * peer: a daemon's client connection to another daemon (mutual TLS 1.3),
 * bound to one event loop.  Requests are matched to answers by request id;
 * each has a deadline.  A lost connection fails what was pending with
 * UNAVAILABLE and is re-established on the next call, with backoff.
 */
#ifndef STB_PEER_H
#define STB_PEER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "err.h"
#include "proto.h"
#include "tls.h"

typedef struct peer peer_t;

typedef struct peer_conf {
	const char *addr;      /* "host:port" */
	uint32_t expect_roles; /* the server must hold one of these roles */
	uint32_t max_frame;    /* largest answer accepted */
	int backoff_min_ms;    /* first wait after a failure */
	int backoff_max_ms;
	/* When set, each new connection takes the holder's current context
	 * (so a SIGHUP-reloaded identity is used from the next connection on)
	 * and peer_new's ctx may be NULL. */
	tls_holder_t *tls;
	/* addr already resolved (peerpool does it once, at start-up); NULL:
	 * peer_new resolves addr itself, which may block for a host name */
	const struct sockaddr_storage *sa;
	int salen;
} peer_conf_t;

/* rsp is the validated answer (NULL on failure) and lives only during the
 * call; err says OK or why there is no answer (UNAVAILABLE, TIMEOUT). A
 * response with the ERROR flag arrives as rsp with its STATUS. */
typedef void (*peer_done_fn)(void *arg, const msg_t *rsp, const err_t *err);

peer_t *peer_new(struct event_base *base, SSL_CTX *ctx, const peer_conf_t *conf, err_t *err);
/* Sends a request.  -1 (fn not called) when the peer is in backoff or the
 * request cannot be queued. */
int peer_call(peer_t *p, uint16_t type, const buf_t *tlvs, int timeout_ms, peer_done_fn fn,
              void *arg, err_t *err);
int peer_connected(const peer_t *p);
/* Fails everything pending with UNAVAILABLE, then frees. */
void peer_free(peer_t *p);

#endif
