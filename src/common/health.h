/*
 * health: liveness and readiness from probes (health.c).  /healthz is
 * liveness: the loops run and the store writer answers.  /readyz is
 * readiness: that, and every peer the daemon needs answered its last PING;
 * its JSON body names what is wrong.
 */
#ifndef STB_HEALTH_H
#define STB_HEALTH_H

#include <event2/event.h>

#include "buf.h"
#include "err.h"
#include "peerpool.h"
#include "store.h"

#define HEALTH_CHECKS_MAX 16
enum { HEALTH_UNKNOWN = 0, HEALTH_UP = 1, HEALTH_DOWN = 2 };

typedef struct health health_t;

/* Probes every interval_ms on base (the main loop); the store is the first
 * check when not NULL. */
health_t *health_new(struct event_base *base, store_t *store, int interval_ms, err_t *err);
/* A peer to PING through its pool (on base; the pool must outlive
 * health_stop). */
int health_watch_peer(health_t *h, const char *name, peerpool_t *pp, err_t *err);
int health_start(health_t *h, err_t *err);
/* No more probes (before the pools go); NULL-safe. */
void health_stop(health_t *h);
/* After the store is closed: runs what is still queued, frees. NULL-safe. */
void health_free(health_t *h);
/* 1 when live; 0 with *why when the store writer is down. */
int health_live(const health_t *h, const char **why);
/* The /readyz body (malloc'd JSON) and *ready. */
char *health_ready_json(const health_t *h, const char *daemon, int draining, int *ready);
/* stbcred_dependency_up{dependency=...} and its failure counter. */
int health_write_metrics(const health_t *h, buf_t *out);

#endif
