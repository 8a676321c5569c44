/*
 * workpool: a few threads for blocking CPU work off the event loops
 * (scrypt; later libzip, ClamAV, CMS), so one heavy request does not stall
 * every connection of a loop.  A job's work runs on a pool thread; its done
 * runs afterwards on the submitter's loop, through that loop's mailbox.
 * The queue is bounded and allocated once: a submit never blocks a loop
 * and never allocates; when the queue is full it is refused with
 * RATE_LIMITED (the client may retry), when the pool stops with
 * UNAVAILABLE.  workpool_free drains: every queued job still runs and its
 * done still reaches its loop.
 */
#ifndef STB_WORKPOOL_H
#define STB_WORKPOOL_H

#include <stddef.h>

#include "err.h"
#include "mbox.h"

#define WORKPOOL_MAX_THREADS 64

typedef struct workpool workpool_t;
typedef void (*workpool_fn)(void *arg);

/* name: in logs ("kdf"); nthreads 1..WORKPOOL_MAX_THREADS; max_queue >= 1
 * jobs may wait besides those running. */
workpool_t *workpool_new(const char *name, int nthreads, size_t max_queue, err_t *err);
/* work(arg) on a pool thread, then done(arg) on mb's loop.  -1 with err
 * when refused (neither then runs). */
int workpool_submit(workpool_t *wp, workpool_fn work, mbox_t *mb, mbox_fn done, void *arg,
                    err_t *err);
/* Jobs waiting (not running), for metrics. */
size_t workpool_queued(workpool_t *wp);
/* Refuses new jobs, runs the queued ones, joins the threads, frees.  The
 * loops the completions go to must still run.  NULL-safe. */
void workpool_free(workpool_t *wp);

#endif
