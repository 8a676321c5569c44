/*
 * flight: certificate issuances in progress, by cert_id, so that concurrent
 * fetches and renewals of one certificate cause one issuance.  The first
 * caller leads (it runs the issuance); later callers wait on its result.
 * Waiters are the caller's structs, linked through an embedded
 * cp_waiter_t; the table only keeps them in order.  Shared by every loop.
 *
 * An issuance of a certificate its device does not hold yet is counted
 * against that device's limit while it runs (cp_flight_count_new), so
 * pipelined fetches cannot all pass a check of the store before any of
 * them is stored.
 */
#ifndef CP_FLIGHT_H
#define CP_FLIGHT_H

#include <stddef.h>

typedef struct cp_waiter {
	struct cp_waiter *next;
} cp_waiter_t;

typedef struct cp_flight cp_flight_t;

enum {
	CP_FLIGHT_LEADER = 0, /* nobody was issuing: the caller issues */
	CP_FLIGHT_JOINED = 1, /* an issuance runs: the caller waits for it */
	CP_FLIGHT_OTHER = -1, /* another device's issuance of this cert_id runs */
	CP_FLIGHT_FULL = -2,  /* max issuances in progress */
};

cp_flight_t *cp_flight_new(size_t max);
void cp_flight_free(cp_flight_t *f);
/* Adds w to cert_id's waiters (w is not added on OTHER or FULL). */
int cp_flight_join(cp_flight_t *f, const char *cert_id, const char *device_id, cp_waiter_t *w);
/* Marks cert_id's issuance (the caller leads it) as one of a new
 * certificate of its device; the number of that device's other new
 * certificates marked before and still being issued.  A leader that reads
 * its device's stored count after this and adds the result counts every
 * certificate the device can end up with: one marked before and finished
 * was stored before its mark went (or failed), one marked after counts
 * this one. */
size_t cp_flight_count_new(cp_flight_t *f, const char *cert_id);
/* Ends cert_id's issuance: its waiters in join order, leader first. */
cp_waiter_t *cp_flight_finish(cp_flight_t *f, const char *cert_id);
size_t cp_flight_count(cp_flight_t *f);

#endif
