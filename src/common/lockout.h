/*
 * lockout: failed-authentication counters with lockout backoff, keyed by a
 * string (a device ID, a source address), shared by every daemon that
 * authenticates.  After max_failures failures in a row a key is locked for
 * lockout_s, doubling with each further failure up to lockout_max_s.  A
 * success clears the key.  Failures are forgotten once a key has been
 * quiet (no failure, no lock) for lockout_max_s.  A locked key is refused
 * from memory: a request during a lock costs no lookup, no work and no
 * write.
 *
 * Memory: an htab under SipHash (the keys are the peer's choice) with at
 * most max_entries entries.  A full table forgets stale keys first, then
 * its oldest unlocked key; a locked key is never evicted by a flood of new
 * ones (the new key then goes uncounted), except that a known key (below)
 * may take the place of the oldest locked unknown one, so that flooding
 * the table with made-up IDs does not switch off the lockout of the real
 * devices.  One mutex, never held across I/O.  Pure: the caller passes
 * the time.
 *
 * Persistence: the lockouts of known identities survive a restart.  The
 * caller says a key is known (a device row exists) when it counts a
 * failure; only known keys are ever written, and only when their state
 * changes: lockout_fail and lockout_success return LOCKOUT_WRITE, and the
 * caller then runs lockout_persist inside a store write job (its own, or
 * lockout_persist_job).  That is at most max_failures writes per lock
 * period per device and none while it is locked, and an anonymous peer
 * (an unknown device ID) never makes us write.  lockout_load reads the
 * rows that still matter at start-up.
 */
#ifndef STB_LOCKOUT_H
#define STB_LOCKOUT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mbox.h"
#include "store.h"

/* The longest key counted (a longer one is never locked: callers bound
 * their keys below this). */
#define LOCKOUT_KEY_MAX 159

/* lockout_fail / lockout_success flags */
#define LOCKOUT_LOCKED 1 /* this failure locked the key */
#define LOCKOUT_WRITE  2 /* a known key changed: persist it */

/* The table every daemon that persists lockouts appends to its migrations
 * (SQLite DDL, like every migration). */
#define LOCKOUT_SCHEMA                                                                             \
	"CREATE TABLE lockouts("                                                                   \
	" key TEXT PRIMARY KEY,"                                                                   \
	" failures INTEGER NOT NULL,"                                                              \
	" last_fail INTEGER NOT NULL,"                                                             \
	" locked_until INTEGER NOT NULL);"

typedef struct lockout lockout_t;

typedef struct lockout_conf {
	int64_t max_failures;
	int64_t lockout_s;
	int64_t lockout_max_s;
} lockout_conf_t;

typedef struct lockout_state {
	int64_t failures;
	int64_t last_fail;
	int64_t locked_until; /* 0: never locked since the last clear */
	int known;
} lockout_state_t;

/* max_entries bounds memory (at least 1); NULL with err. */
lockout_t *lockout_new(const lockout_conf_t *conf, size_t max_entries, err_t *err);
/* Drops the owner's reference; the table goes with the last pending
 * lockout_persist_job.  NULL-safe. */
void lockout_free(lockout_t *l);
/* 0 when key may try now, else the seconds its lock has left. */
int64_t lockout_check(lockout_t *l, const char *key, int64_t now);
/* Counts a failure of key (known: 1 when the daemon knows the identity, so
 * its state is persisted).  LOCKOUT_LOCKED when this failure locked it
 * (*until set, until may be NULL), LOCKOUT_WRITE when the caller should
 * persist; 0 when counted below the threshold of an unknown key, or not
 * counted at all (key locked already: callers refuse those first with
 * lockout_check; or every slot locked). */
int lockout_fail(lockout_t *l, const char *key, int known, int64_t now, int64_t *until);
/* Clears key after a success; LOCKOUT_WRITE when a persisted state went
 * (the row must go), else 0. */
int lockout_success(lockout_t *l, const char *key);
/* key's state into st; 1 when key has one, 0 when it has none. */
int lockout_get(lockout_t *l, const char *key, lockout_state_t *st);
/* The lock a key gets at its n-th failure in a row (0: none). */
int64_t lockout_lock_for(const lockout_conf_t *conf, int64_t failures);
size_t lockout_size(lockout_t *l);

/* Inside a store write job: writes key's state as it is now in memory
 * (upserts the row of a known key, deletes it when the key has no state),
 * so jobs that commit out of order still leave the latest state.  Does
 * nothing for a key that is in memory but not known.  0 or -1 with err. */
int lockout_persist(lockout_t *l, store_conn_t *c, const char *key, err_t *err);
/* lockout_persist as a write job of its own, for a daemon with no write
 * job of its own at that point; nobody waits for it (a failed write is
 * logged as a warning).  The job holds a reference to l.  -1 with err
 * when it cannot be queued. */
int lockout_persist_job(lockout_t *l, store_t *s, mbox_t *mb, const char *key, err_t *err);
/* At start-up: loads the rows still in force at now (locked, or failures
 * not yet forgotten), the locks first when they do not all fit.  0 or -1
 * with err. */
int lockout_load(lockout_t *l, store_conn_t *c, int64_t now, err_t *err);

#endif
