/*
 * outbox: a transactional outbox.  A daemon delivers a message to a peer
 * reliably by writing it as a row of table `outbox` inside the same store
 * write job as the state change it belongs to (outbox_enqueue), so the
 * delivery exists if and only if that change committed.  A delivery worker
 * on one event loop then claims due rows, hands each to the daemon's send
 * callback (which does the peer_call / peerpool_call), and records the
 * peer's acknowledgement, a retry, or the row's failure.
 *
 * Delivery semantics:
 *  - State lives only in the store.  A row is claimed by a store write that
 *    sets lease_until = now + lease_ms; a row is due when it is pending,
 *    next_at <= now and lease_until <= now.  A process that crashes or stops
 *    with rows claimed leaves their leases to expire: the next outbox_start
 *    (or the same process, later) claims them again.  The results reported
 *    in one turn of the outbox's loop (e.g. a batch's) are recorded in one
 *    store write job.
 *  - One process never has the same row in flight twice, however long a
 *    send takes (the worker skips rows it has in flight even when their
 *    lease has expired).  Across crashes delivery is at least once: a peer
 *    may see a message again after a restart.  Receivers must therefore be
 *    idempotent, keyed by the row id (outbox_item_t.id), which the send
 *    callback puts in the message (e.g. a TLV).  Ids are never reused
 *    (AUTOINCREMENT), also after rows are deleted.
 *  - At most `window` rows are in flight at once: one claim takes at most
 *    window minus the number in flight.  One worker per store: two outboxes
 *    on one table would not see each other's rows in flight.
 *  - A failure is retried after a delay drawn (RAND_bytes) uniformly from
 *    [backoff_min_ms, min(backoff_max_ms, backoff_min_ms * 2^(tries-1))]
 *    ("full jitter" above the floor; tries counts attempts so far,
 *    including the failed one).  After max_tries attempts the row is
 *    `failed` with the last error text ("UNAVAILABLE: <message>"), which a
 *    row keeps when it is delivered later.
 *  - The rule for permanent refusals: a failure whose status is
 *    BAD_REQUEST, UNSUPPORTED, FORBIDDEN, CONFLICT or TOO_LARGE
 *    (outbox_status_permanent) will not work by repeating it, so the row
 *    fails at once.  Every other status (UNAVAILABLE, TIMEOUT, INTERNAL,
 *    RATE_LIMITED, ...) is retried.  An operator may put a failed row back
 *    with outbox_retry.
 *
 * The body is stored as given: a caller that pushes a secret seals or
 * envelopes it (CMS to the receiver, sealed.h) before outbox_enqueue.  Acks
 * are kept as the peer sent them (up to OUTBOX_ACK_MAX bytes).
 *
 * Time: every time is unix milliseconds, from the caller (outbox_enqueue's
 * now) or from the worker's clock callback (default: the wall clock), so
 * tests control it.
 *
 * Threads: outbox_enqueue and outbox_retry run in the store's writer (in a
 * store write job); outbox_counts and the list queries on any thread's
 * reader; outbox_kick on any thread; everything else, the send callback and
 * its done on the outbox's loop.
 */
#ifndef STB_OUTBOX_H
#define STB_OUTBOX_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "mbox.h"
#include "store.h"

#define OUTBOX_DEST_MAX   128
#define OUTBOX_REF_MAX    128
#define OUTBOX_BODY_MAX   (1024 * 1024)
#define OUTBOX_ACK_MAX    (64 * 1024)
#define OUTBOX_WINDOW_MAX 1024

struct cJSON;
typedef struct outbox outbox_t;

/* The states of a row, as stored (state column) and listed. */
#define OUTBOX_PENDING   0
#define OUTBOX_DELIVERED 1
#define OUTBOX_FAILED    2

/* SQLite DDL of table outbox and its indexes: a daemon appends it to its
 * migration list (one step). */
extern const char outbox_schema[];
extern const char outbox_schema_pg[]; /* the same in PostgreSQL DDL */

/* One claimed row, valid during the send callback only (copy what outlives
 * it). */
typedef struct outbox_item {
	int64_t id; /* the receiver's idempotency key: send it along */
	const char *dest;
	uint16_t msg_type;
	const uint8_t *body;
	size_t body_len;
	const char *ref;
	int64_t tries; /* attempts before this one */
} outbox_item_t;

/* The send's outcome, called exactly once per send, on the outbox's loop
 * (possibly from within the send callback itself).  res->status STB_OK:
 * delivered, ack (ack_len bytes, may be NULL/0) is recorded; anything else:
 * a failure with res->msg as the row's last_error. */
typedef void (*outbox_result_fn)(void *done_arg, const err_t *res, const void *ack, size_t ack_len);
typedef void (*outbox_send_fn)(void *arg, const outbox_item_t *it, outbox_result_fn done,
                               void *done_arg);
/* Unix milliseconds. */
typedef int64_t (*outbox_clock_fn)(void *arg);

typedef struct outbox_conf {
	const char *name;   /* in logs and metric labels ("key_push") */
	int window;         /* rows in flight at most (1..OUTBOX_WINDOW_MAX; 0: 16) */
	int max_tries;      /* attempts before failed (0: 10) */
	int backoff_min_ms; /* 0: 1000 */
	int backoff_max_ms; /* 0: 300000; >= backoff_min_ms */
	int lease_ms;       /* a claim's lease (0: 60000) */
	int poll_ms;        /* how often due rows are looked for (0: 1000) */
	outbox_send_fn send;
	void *send_arg;
	outbox_clock_fn clock; /* NULL: the wall clock */
	void *clock_arg;
	/* Runs in the write that records a send's result, once per row, with
	 * the row's new state (OUTBOX_DELIVERED, OUTBOX_FAILED, or
	 * OUTBOX_PENDING when it is retried) and the error text (NULL when
	 * delivered): what the daemon writes with it (an audit row) commits
	 * with the mark.  -1 fails that write (the rows are left to their
	 * leases).  May be NULL. */
	int (*recorded)(void *arg, store_conn_t *c, const outbox_item_t *it, int state,
	                const char *error, err_t *err);
	void *recorded_arg;
} outbox_conf_t;

typedef struct outbox_stats {
	uint64_t delivered; /* acknowledged */
	uint64_t retried;   /* failures scheduled again */
	uint64_t failed;    /* rows marked failed */
	uint64_t claimed;   /* rows handed to send */
	uint32_t in_flight; /* sends not yet recorded */
} outbox_stats_t;

/* The worker for store s on the loop of base (mb: that loop's mailbox, for
 * store completions).  Claims nothing before outbox_start. */
outbox_t *outbox_new(store_t *s, struct event_base *base, mbox_t *mb, const outbox_conf_t *conf,
                     err_t *err);
/* Starts claiming (at once, then every poll_ms), picking up whatever is
 * pending or has an expired lease.  On the outbox's loop. */
int outbox_start(outbox_t *ob, err_t *err);
/* Looks for due rows now rather than at the next poll (e.g. after the
 * commit of an enqueue).  Any thread. */
void outbox_kick(outbox_t *ob);
/* Stops claiming, then runs the loop (which must not be running: a
 * daemon's fini for the main loop, or a test) until the sends in flight
 * and the store writes that record them are done, or wait_ms has passed.
 * Whatever is unfinished then is left to its lease (retried after a
 * restart); results that arrive later are dropped, the store is not
 * touched again, so it may be closed once this returns. */
void outbox_stop(outbox_t *ob, int wait_ms);
/* Stops (if not yet, with no wait) and frees; a send still out keeps the
 * memory until its done.  NULL-safe. */
void outbox_free(outbox_t *ob);

/* Queues a message: inserts a pending row due at now, inside the caller's
 * store write job on connection c (the writer's).  ob may be NULL (only the
 * row is written).  dest and ref (may be NULL) are bounded by
 * OUTBOX_DEST_MAX / OUTBOX_REF_MAX, body by OUTBOX_BODY_MAX.  *id (may be
 * NULL) gets the row id. */
int outbox_enqueue(outbox_t *ob, store_conn_t *c, const char *dest, uint16_t msg_type,
                   const buf_t *body, const char *ref, int64_t now, int64_t *id, err_t *err);
/* Puts failed row id back to pending, due at now, with its tries reset,
 * inside the caller's store write job (then outbox_kick after commit).
 * NOT_FOUND when there is no such row, CONFLICT when it is not failed. */
int outbox_retry(outbox_t *ob, store_conn_t *c, int64_t id, int64_t now, err_t *err);

/* Rows by state, for dest or (dest NULL) all, on a reader. */
int outbox_counts(outbox_t *ob, store_conn_t *reader, const char *dest, int64_t *pending,
                  int64_t *delivered, int64_t *failed, err_t *err);

/* An admin list, as daemon_list_reply takes it: outbox_list_sql with ?1 the
 * limit and ?2 a state name ("pending", "delivered", "failed"), newest
 * first; outbox_list_row turns a row into {id, dest, ref, state, tries,
 * next_at, last_error, created_at, delivered_at} (a daemon_row_fn; arg
 * unused). */
extern const char outbox_list_sql[];
struct cJSON *outbox_list_row(store_stmt_t *st, void *arg);

/* "pending", "delivered", "failed"; "unknown" for others.  parse: the state
 * or -1. */
const char *outbox_state_name(int state);
int outbox_state_parse(const char *name);
/* 1 when a failure with this status fails the row at once (see above). */
int outbox_status_permanent(int status);

void outbox_get_stats(outbox_t *ob, outbox_stats_t *st);
/* Appends Prometheus counters stbcred_outbox_{delivered,retried,failed}_total
 * and the gauge stbcred_outbox_in_flight, labelled outbox="<name>". */
int outbox_metrics(outbox_t *ob, buf_t *out);

#endif
