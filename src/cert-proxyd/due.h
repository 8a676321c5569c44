/*
 * due: the decisions about one stored certificate, as pure functions so
 * they are tested alone: what a KEYINFO_REQ answers, whether a CERT_FETCH
 * must issue, and whether the validity scanner asks for a renewal.
 */
#ifndef CP_DUE_H
#define CP_DUE_H

#include <stdint.h>

/* certs.state */
enum { CP_CERT_VALID = 0, CP_CERT_REVOKED = 1, CP_CERT_RENEWING = 2 };

/* UPDATE_REASON values (registry) */
enum {
	CP_REASON_NONE = 0,
	CP_REASON_EXPIRING = 1,
	CP_REASON_EXPIRED = 2,
	CP_REASON_REVOKED = 3,
	CP_REASON_MISSING = 4,
};

/* CERT_STATE values of CA_STATUS (registry) */
enum { CP_CA_GOOD = 0, CP_CA_REVOKED = 1, CP_CA_UNKNOWN = 2, CP_CA_EXPIRED = 3 };

/* STB_OK, STB_FORBIDDEN, STB_REVOKED or STB_EXPIRED for a stored
 * certificate asked for by device_id (owned: it is the owner). */
int cp_due_keyinfo(int owned, int state, int64_t not_after, int64_t now);
/* 1 when a CERT_FETCH of a certificate the device owns must issue a new
 * one (revoked, expired or an update pending); 0 when the stored one
 * serves. */
int cp_due_fetch_issues(int state, int64_t not_after, int64_t now);
/* The scanner's verdict from the stored row alone (CP_REASON_*). */
int cp_due_scan(int state, int64_t not_after, int64_t now, int64_t renew_before);
/* The verdict from ca-authd's CERT_STATE (CP_REASON_NONE when good). */
int cp_due_from_ca(int ca_state);
const char *cp_due_reason_name(int reason);
const char *cp_due_state_name(int state);

#endif
