/*
 * kdfq: a few threads that run scrypt (and the reads around it) off the
 * event loops, so one REGISTER does not stall every connection of a loop.
 * A job's work runs on a pool thread; its done runs on the poster's loop.
 */
#ifndef RDV_KDFQ_H
#define RDV_KDFQ_H

#include "mbox.h"

typedef struct rdv_kdfq rdv_kdfq_t;

rdv_kdfq_t *rdv_kdfq_new(int nthreads);
/* 0, or -1 when out of memory or stopping (nothing then runs). */
int rdv_kdfq_post(rdv_kdfq_t *q, void (*work)(void *arg), mbox_t *mb, mbox_fn done, void *arg);
/* Runs what is queued, joins the threads, frees.  NULL-safe. */
void rdv_kdfq_free(rdv_kdfq_t *q);

#endif
