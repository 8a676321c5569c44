/*
 * climit: what one caller may ask of rendezvousd with RDV_CONNECT_REQ.
 * Every request takes a token from the caller's bucket (burst, refilled at
 * per_minute); a granted request holds an offer until it expires, and a
 * caller may hold at most per_pair offers at one target and per_caller in
 * all, a target at most per_target from everyone.  An offer counts until
 * it expires: the server does not see it used.
 * A refusal reserves nothing and costs no write; its count is handed out
 * at most once a minute per caller, for one log line.
 *
 * The state is per device ID, not per connection, so registering again
 * does not refill anything.  One mutex, never held across I/O; at most
 * max_entries records (idle ones are dropped when the table is full and by
 * rdv_climit_prune).  Pure: the caller passes the time.
 */
#ifndef RDV_CLIMIT_H
#define RDV_CLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RDV_CLIMIT_REPORT_MS 60000 /* one report per caller per this */

typedef struct rdv_climit_conf {
	int64_t per_minute; /* tokens per minute */
	int64_t burst;      /* bucket size */
	int64_t per_pair;
	int64_t per_caller;
	int64_t per_target;
} rdv_climit_conf_t;

/* rdv_climit_take results */
enum {
	RDV_CLIMIT_OK = 0,
	RDV_CLIMIT_RATE,   /* the caller's bucket is empty */
	RDV_CLIMIT_PAIR,   /* per_pair offers at this target */
	RDV_CLIMIT_CALLER, /* per_caller offers in all */
	RDV_CLIMIT_TARGET, /* the target holds per_target offers */
	RDV_CLIMIT_FULL,   /* no room for another record */
};

typedef struct rdv_climit rdv_climit_t;

rdv_climit_t *rdv_climit_new(const rdv_climit_conf_t *conf, size_t max_entries, err_t *err);
void rdv_climit_free(rdv_climit_t *l); /* NULL-safe */
/* One request of caller for target at now_ms (unix ms): takes a token and,
 * when the offer may be made, reserves it until expires (unix s).
 * RDV_CLIMIT_OK or why not.  On a refusal *report is set to the refusals
 * of caller not yet reported when one line is due now, else 0. */
int rdv_climit_take(rdv_climit_t *l, const char *caller, const char *target, int64_t now_ms,
                    int64_t expires, uint64_t *report);
/* Gives back a reservation whose offer was not made. */
void rdv_climit_release(rdv_climit_t *l, const char *caller, const char *target, int64_t expires);
/* Drops the records that hold nothing any more; how many. */
size_t rdv_climit_prune(rdv_climit_t *l, int64_t now_ms);
/* The refusal text of a rdv_climit_take result. */
const char *rdv_climit_why(int rc);

#endif
