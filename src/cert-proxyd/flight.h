/*
 * flight: certificate issuances in progress, by cert_id, so that concurrent
 * fetches and renewals of one certificate cause one issuance.  The first
 * caller leads (it runs the issuance); later callers wait on its result.
 * Waiters are the caller's structs, linked through an embedded
 * cp_waiter_t; the table only keeps them in order.  Shared by every loop.
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
/* Ends cert_id's issuance: its waiters in join order, leader first. */
cp_waiter_t *cp_flight_finish(cp_flight_t *f, const char *cert_id);
size_t cp_flight_count(cp_flight_t *f);

#endif
