/*
 * lockout: throttles online guessing of a secret without letting a guesser
 * lock anyone else out.  Shared by every daemon that checks a proof of a
 * claimed identity (a device ID, a user name): the caller asks before it
 * checks a proof and reports the outcome after.
 *
 * The model.  An attempt is an (identity, source) pair: the identity is
 * only claimed, the source is the peer's address (IPv4, or the IPv6 /64,
 * srcaddr_key).  Three things are counted, each in memory:
 *  - Sources.  Failures from one source, whatever identity they claim.
 *    After addr_max_failures the source is penalised for lockout_s,
 *    doubling with each further failure up to lockout_max_s (OpenSSH's
 *    PerSourcePenalties, fail2ban): a penalised source gets RATE_LIMITED
 *    before any proof is checked, so it costs no lookup, no KDF, no write.
 *  - Identities.  Failures against one identity from all sources: its
 *    guess budget.  After max_failures the identity is guarded until its
 *    failures are forgotten: it is never refused, but each source may then
 *    try it only one attempt at a time, and a wrong proof for a guarded
 *    identity penalises its source at once.  A distributed guesser gets one
 *    guess per source per penalty; a real device from any source that is
 *    not itself penalised still gets its correct proof checked.
 *  - Trusted pairs.  A success trusts its (identity, source) pair for
 *    trust_s.  A trusted pair is checked even when its source is penalised
 *    or its identity guarded, so guessing from elsewhere, or guessing other
 *    identities from behind the same NAT, never refuses a device that has
 *    logged in from there before.  It loses that standing after
 *    max_failures wrong proofs in a row (a guesser at the same address
 *    claiming the same identity cannot be told from the device).
 * A success never clears a source's or an identity's failures (a guesser
 * behind a NAT would get fresh tries from every real login); they are
 * forgotten after lockout_max_s of quiet.
 *
 * Atomic: lockout_begin reserves the attempt (counted as in flight against
 * every budget it draws on) and lockout_end settles it, so attempts
 * pipelined or spread over loops never get more checks than the budgets
 * allow, however slow the check (scrypt) is.  A source with no failure is
 * not limited in what it has in flight (many boxes behind one NAT logging
 * in for the first time at once); its first failure starts counting it.
 *
 * Memory: three htabs under SipHash with at most table_max entries each,
 * one mutex never held across I/O, the caller passes the time.  A full
 * table forgets quiet entries first, then the oldest one not penalised;
 * an entry with attempts in flight is never evicted.  When nothing can go
 * the new key goes uncounted (never refused for it).
 *
 * Persistence: only trusted pairs, which come from successes (authenticated
 * requests), so an anonymous request never makes us write.  lockout_end
 * returns LOCKOUT_WRITE when a pair became trusted or its stored trust is
 * half spent; the caller then runs lockout_persist in a store write job
 * (its own, or lockout_persist_job).  The rows live in the table lockouts
 * under the key "identity source" (identifiers have no spaces); rows of
 * the per-identity lockouts of old versions are ignored.  Source penalties
 * and identity budgets start afresh at a restart (a restart is not the
 * guesser's to trigger), and trusted devices keep logging in.
 */
#ifndef STB_LOCKOUT_H
#define STB_LOCKOUT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "mbox.h"
#include "srcaddr.h"
#include "store.h"

/* The longest identity and source key counted (callers bound theirs). */
#define LOCKOUT_SUBJECT_MAX 159
#define LOCKOUT_SOURCE_MAX  SRCADDR_MAX /* a srcaddr_key */
#define LOCKOUT_KEY_MAX     (LOCKOUT_SUBJECT_MAX + 1 + LOCKOUT_SOURCE_MAX)

/* lockout_end flags */
#define LOCKOUT_PENALISED 1 /* this failure started a penalty of the source */
#define LOCKOUT_GUARDED   2 /* this failure guarded the identity */
#define LOCKOUT_WRITE     4 /* a pair's trust changed: persist it */

/* lockout_end outcomes */
enum { LOCKOUT_RIGHT, LOCKOUT_WRONG, LOCKOUT_VOID /* not decided: releases */ };

/* lockout_get tables */
enum { LOCKOUT_SOURCE, LOCKOUT_SUBJECT, LOCKOUT_PAIR };

/* The table every daemon that persists trust appends to its migrations
 * (SQLite DDL, like every migration). */
#define LOCKOUT_SCHEMA                                                                             \
	"CREATE TABLE lockouts("                                                                   \
	" key TEXT PRIMARY KEY,"                                                                   \
	" failures INTEGER NOT NULL,"                                                              \
	" last_fail INTEGER NOT NULL,"                                                             \
	" locked_until INTEGER NOT NULL);"
/* The same in PostgreSQL DDL. */
#define LOCKOUT_SCHEMA_PG                                                                          \
	"CREATE TABLE lockouts("                                                                   \
	" key TEXT PRIMARY KEY,"                                                                   \
	" failures BIGINT NOT NULL,"                                                               \
	" last_fail BIGINT NOT NULL,"                                                              \
	" locked_until BIGINT NOT NULL);"

typedef struct lockout lockout_t;

/* Filled by the option rows LOCKOUT_OPTS (config.h types). */
typedef struct lockout_conf {
	long long max_failures;
	long long addr_max_failures;
	long long lockout_s;
	long long lockout_max_s;
	long long trust_s;
	long long table_max;
} lockout_conf_t;

/* The "auth.*" option rows of a daemon whose config struct holds a
 * lockout_conf_t at offset off: every daemon gets the same keys. */
#define LOCKOUT_OPT_(off, key, def, lo, hi, field, help)                                           \
	{                                                                                          \
		"auth." key, CFG_INT, def, lo, hi, NULL, (off) + offsetof(lockout_conf_t, field),  \
		    help                                                                           \
	}
#define LOCKOUT_OPTS(off)                                                                          \
	LOCKOUT_OPT_(off, "max_failures", "5", 1, 1000, max_failures,                              \
	             "wrong proofs for one identity, from all sources, before it is guarded "      \
	             "(one guess at a time per source; a wrong one penalises the source)"),        \
	    LOCKOUT_OPT_(off, "addr_max_failures", "10", 1, 100000, addr_max_failures,             \
	                 "wrong proofs from one source address (IPv6: its /64) before it is "      \
	                 "penalised: RATE_LIMITED unless it proves a pair it proved before"),      \
	    LOCKOUT_OPT_(off, "lockout_s", "60", 1, 86400, lockout_s,                              \
	                 "first penalty of a source; doubles with each further failure"),          \
	    LOCKOUT_OPT_(off, "lockout_max_s", "3600", 1, 604800, lockout_max_s,                   \
	                 "longest penalty; failures quiet this long are forgotten"),               \
	    LOCKOUT_OPT_(off, "trust_s", "2592000", 1, 31536000, trust_s,                          \
	                 "a device that proved itself from a source is let through from there "    \
	                 "this long after, whatever others guess (persisted)"),                    \
	    LOCKOUT_OPT_(off, "table_max", "100000", 16, 10000000, table_max,                      \
	                 "sources, identities and trusted pairs remembered (each)")

/* What the option bounds cannot say (lockout_s <= lockout_max_s). */
int lockout_conf_check(const lockout_conf_t *conf, err_t *err);

/* NULL with err. */
lockout_t *lockout_new(const lockout_conf_t *conf, err_t *err);
/* Drops the owner's reference; the table goes with the last pending
 * lockout_persist_job.  NULL-safe. */
void lockout_free(lockout_t *l);

/* One attempt, reserved by lockout_begin and settled by lockout_end. */
typedef struct lockout_try {
	char subject[LOCKOUT_SUBJECT_MAX + 1];
	char source[LOCKOUT_SOURCE_MAX + 1];
	int held;    /* reserved and not yet settled */
	int trusted; /* let through as a trusted pair */
	int guarded; /* the identity was guarded when it was let through */
} lockout_try_t;

/* Whether subject may try from source now: 0, or the seconds to wait
 * (RATE_LIMITED) — before any proof is looked at.  Reserves nothing (for
 * a step before the proof, such as handing out a challenge). */
int64_t lockout_check(lockout_t *l, const char *subject, const char *source, int64_t now);
/* lockout_check that, on 0, reserves the attempt in t (t->held); the
 * caller then checks the proof and must call lockout_end once. */
int64_t lockout_begin(lockout_t *l, const char *subject, const char *source, int64_t now,
                      lockout_try_t *t);
/* Settles t (outcome LOCKOUT_RIGHT, LOCKOUT_WRONG, or LOCKOUT_VOID when the
 * proof was not decided: an internal error, a refusal for another reason):
 * LOCKOUT_* flags.  Does nothing when t is not held. */
int lockout_end(lockout_t *l, lockout_try_t *t, int outcome, int64_t now);

typedef struct lockout_state {
	int64_t failures;
	int64_t last_fail; /* pairs: the last success */
	int64_t until;     /* sources: penalised until; pairs: trusted until */
	int64_t inflight;
} lockout_state_t;
/* The state of a source (subject ignored), a subject (source ignored) or
 * a pair into st; 1 when there is one, else 0. */
int lockout_get(lockout_t *l, int table, const char *subject, const char *source,
                lockout_state_t *st);
size_t lockout_size(lockout_t *l, int table);
/* The penalty after failures with a threshold of max: 0 below it, then
 * lockout_s doubling per failure up to lockout_max_s. */
int64_t lockout_lock_for(const lockout_conf_t *conf, int64_t max, int64_t failures);

/* Inside a store write job: writes the trust of t's pair as it is now in
 * memory (upserts it while trusted, else deletes the row), so jobs that
 * commit out of order still leave the latest state.  0 or -1 with err. */
int lockout_persist(lockout_t *l, store_conn_t *c, const lockout_try_t *t, err_t *err);
/* lockout_persist as a write job of its own; nobody waits for it (a failed
 * write is logged as a warning).  The job holds a reference to l.  -1 with
 * err when it cannot be queued. */
int lockout_persist_job(lockout_t *l, store_t *s, mbox_t *mb, const lockout_try_t *t, err_t *err);
/* At start-up: loads the pairs still trusted at now, the latest first when
 * they do not all fit.  0 or -1 with err. */
int lockout_load(lockout_t *l, store_conn_t *c, int64_t now, err_t *err);

#endif
