/*
 * lifecycle: the shared state of a daemon (or of any object that jobs on
 * other loops and threads outlive) — a reference count, a stopping flag
 * and the teardown the last reference runs.  The owner holds the first
 * reference; each deferred answer, store completion or cross-loop job
 * takes its own.  fini sets stopping (no new work, no new store writes)
 * and drops the owner's reference.
 */
#ifndef STB_LIFECYCLE_H
#define STB_LIFECYCLE_H

typedef struct lifecycle {
	int refs;     /* atomic */
	int stopping; /* atomic */
	void (*teardown)(void *arg);
	void *arg;
} lifecycle_t;

/* One reference (the owner's); teardown(arg) runs when the last goes. */
void lifecycle_init(lifecycle_t *lc, void (*teardown)(void *arg), void *arg);
void lifecycle_ref(lifecycle_t *lc);
/* Drops one reference; the last runs the teardown (on this thread).
 * Dropping more than were taken is a bug and aborts. */
void lifecycle_unref(lifecycle_t *lc);
/* From now on lifecycle_stopping() says 1 (on every thread). */
void lifecycle_stop(lifecycle_t *lc);
int lifecycle_stopping(const lifecycle_t *lc);

#endif
