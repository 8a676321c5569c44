/*
 * refusal: what the daemons refuse to clients that have not authenticated,
 * counted in memory and reported as summaries, so that a flood of refused
 * requests costs us a counter increment each and never a log line or a
 * durable write.  Every interval (and at shutdown) each source address that
 * was refused gets one log line and one audit row per action:
 *
 *   refused 4123 login_start from 127.0.0.1 in the last 60 s:
 *   4100 NOT_FOUND, 23 FORBIDDEN (last: stb-x)
 *
 * Memory: an htab under SipHash (sources are the peer's choice) with at
 * most max_sources entries; past that, new sources are counted together
 * under the source "*" for their action, so nothing goes uncounted.  Per
 * entry, the first REFUSAL_REASONS - 1 reasons are counted apart and the
 * rest as "other".  Totals by action and reason since start go to
 * /metrics.  One mutex, held for a lookup and an increment.
 *
 * action and reason must be strings that live as long as the table (a
 * literal, stb_status_name()): they are kept by pointer.
 */
#ifndef STB_REFUSAL_H
#define STB_REFUSAL_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"
#include "err.h"
#include "srcaddr.h"
#include "store.h"

#define REFUSAL_SOURCE_MAX SRCADDR_MAX /* a srcaddr_key */
#define REFUSAL_SAMPLE_MAX 63
#define REFUSAL_REASONS    8
#define REFUSAL_TOTALS_MAX 64 /* (action, reason) pairs in /metrics */

typedef struct refusal refusal_t;

typedef struct refusal_reason {
	const char *reason;
	uint64_t n;
} refusal_reason_t;

/* What one source was refused for one action since the last take. */
typedef struct refusal_sum {
	char source[REFUSAL_SOURCE_MAX + 1]; /* "*": the sources past max_sources */
	const char *action;
	uint64_t total;
	int nreasons;
	refusal_reason_t reasons[REFUSAL_REASONS];
	char sample[REFUSAL_SAMPLE_MAX + 1]; /* the last identity named, or "" */
	int64_t since;                       /* when the interval began */
} refusal_sum_t;

/* max_sources >= 1; NULL with err. */
refusal_t *refusal_new(size_t max_sources, err_t *err);
/* Stops the timer (refusal_arm) and frees; unflushed counts are lost
 * (call refusal_flush first).  NULL-safe. */
void refusal_free(refusal_t *r);
/* Counts one refusal of action for the client at peer ("ip:port", as
 * srv_conn_peer says; counted by its srcaddr_key), for reason; sample is an
 * identity the client named (a device ID) or NULL. */
void refusal_count(refusal_t *r, const char *peer, const char *action, const char *reason,
                   const char *sample);
/* Takes what was counted since the last take: *out (free() it) holds *n
 * summaries, NULL when *n is 0.  -1 with err when out of memory (the counts
 * stay). */
int refusal_take(refusal_t *r, refusal_sum_t **out, size_t *n, err_t *err);
/* One summary as a line (without newline), cut to cap. */
void refusal_format(const refusal_sum_t *s, int64_t now, char *out, size_t cap);
/* Sources counted now (gauge), for tests and metrics. */
size_t refusal_sources(refusal_t *r);
/* Totals since start by action and reason, and how often the source table
 * was full, as Prometheus text. */
int refusal_write_metrics(refusal_t *r, buf_t *out);

/* The daemon's side.  Takes the summaries, logs one line each and appends
 * one audit row each ("refusals", actor = the source) in one store write,
 * waiting for it (the main loop, or shutdown before store_close). */
int refusal_flush(refusal_t *r, store_t *s, const uint8_t key[AUDIT_KEY_LEN], err_t *err);
/* Flushes every interval_s on base (the main loop).  -1 with err. */
int refusal_arm(refusal_t *r, struct event_base *base, int64_t interval_s, store_t *s,
                const uint8_t key[AUDIT_KEY_LEN], err_t *err);

#endif
