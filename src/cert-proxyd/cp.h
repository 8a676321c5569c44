/*
 * cert-proxyd internals.  STBs authenticate per connection by HMAC
 * challenge-response (auth.c); the connection is then bound to the device
 * and listed in the online registry (online.c) so the scanner and renewals
 * can push to it from any loop.  Certificates and sealed keys live in the
 * store (certs.c) with parsed keys cached (keycache.c); KEYINFO_REQ signs
 * the login transcript (cpkeyinfo.c).  Issuance from ca-authd (cpissue.c) runs
 * once per cert_id at a time (flight.c) over a per-loop mutual-TLS peer
 * (cpca.c).  The validity scanner (scanner.c) and the admin messages
 * (admin.c) complete the daemon.
 *
 * Shared between loops: the online registry, the key cache, the flight
 * table and the rate limiters, each behind its own mutex, none held across
 * I/O.  A connection's state is touched only on its loop.
 */
#ifndef CP_H
#define CP_H

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>

#include "connreg.h"
#include "daemon.h"
#include "due.h"
#include "flight.h"
#include "keycache.h"
#include "lifecycle.h"
#include "lockout.h"
#include "login.h"
#include "peer.h"
#include "peerpool.h"

#define CP_ID_CAP      (STB_ID_MAX + 1)
#define CP_SERIAL_MAX  20
#define CP_SECRET_MAX  64
#define CP_LIST_BYTES  60000 /* stays under a client's default max_frame */
#define CP_LIST_MAX    10000
#define CP_ACTOR_CAP   (CP_ID_CAP + 80)
#define CP_DUMMY_LABEL "cert-proxyd unknown device"

typedef struct cp_conf {
	char *ca_addr;
	long long ca_timeout_ms;
	char *profile;
	long long validity_s;
	long long issue_max_inflight;
	long long issue_max_per_device;
	lockout_conf_t auth; /* auth.* (lockout.h) */
	long long auth_challenge_ttl_s;
	long long scan_interval_s;
	long long scan_renew_before_s;
	int scan_check_revocation;
	long long scan_ca_window;
	long long key_cache_max;
} cp_conf_t;

typedef struct cp {
	daemon_t *d;
	const cp_conf_t *conf;
	EVP_MD *sha256; /* fetched once */
	lockout_t *lk;  /* AUTH_PROVE guessing (lockout.h); trusted pairs persisted */
	cp_flight_t *flight;
	cp_kc_t *kc;
	/* a sealed random secret: unknown and disabled devices cost what
	 * known ones do */
	uint8_t dummy[CP_SECRET_MAX + SEALED_OVERHEAD];
	size_t dummy_len;
	connreg_t *online; /* authenticated connections by device (online.c) */
	peerpool_t *ca;    /* ca-authd, one peer per loop (cpca.c) */
	/* scanner (scanner.c) */
	struct event *scan_timer;
	int scanning;         /* atomic: the timer's scan runs */
	char scan_holder[17]; /* this instance in scan_lease (random hex) */
	lifecycle_t lc;       /* fini and each asynchronous job */
} cp_t;

/* cert-proxyd.c */
static inline void
cp_ref(cp_t *cp)
{
	lifecycle_ref(&cp->lc);
}
static inline void
cp_unref(cp_t *cp)
{
	lifecycle_unref(&cp->lc);
}
static inline int
cp_stopping(cp_t *cp)
{
	return lifecycle_stopping(&cp->lc);
}
/* "subject@ip:port" of an admin, "device@ip:port" of an STB. */
void cp_actor(srv_conn_t *c, const char *who, char out[CP_ACTOR_CAP]);

/* auth.c: AUTH_BEGIN, AUTH_PROVE and the connection's state. */
void cp_auth_register(daemon_t *d);
/* The device the connection authenticated as, or NULL. */
const char *cp_auth_device(srv_conn_t *c);

/* online.c: authenticated connections by device. */
uint64_t cp_online_add(cp_t *cp, const char *device_id, srv_conn_t *conn);
void cp_online_remove(cp_t *cp, const char *device_id, uint64_t gen);
/* Pushes (type, tlvs) to every authenticated connection of device_id, each
 * on its own loop; the number of connections. */
int cp_online_push(cp_t *cp, const char *device_id, uint16_t type, const buf_t *tlvs);
/* Closes every connection of device_id (it was disabled). */
int cp_online_kick(cp_t *cp, const char *device_id);
int cp_online_count(cp_t *cp, const char *device_id);
/* CP_CERT_UPDATE_NEEDED for one certificate to its owner's connections;
 * how many got it (an encoding failure is logged). */
int cp_online_update_needed(cp_t *cp, const char *device_id, const char *cert_id, int reason);
/* Appends the CP_CERT_UPDATE_NEEDED body to b; -1 with err (msgenc.h). */
int cp_online_needed_enc(buf_t *b, const char *cert_id, int64_t reason, err_t *err);

/* cpca.c: calls to ca-authd over this loop's peer (made by cp_ca_init).  mb: the worker loop's
 * mailbox (srv_req_mbox), NULL on the main loop. */
int cp_ca_call(cp_t *cp, struct event_base *base, mbox_t *mb, uint16_t type, const buf_t *tlvs,
               peer_done_fn fn, void *arg, err_t *err);
/* The status and text an STB or admin sees when ca-authd failed. */
void cp_ca_error(const msg_t *rsp, const err_t *err, err_t *out);
int cp_ca_init(cp_t *cp, err_t *err);
/* Frees every loop's peer on its loop (fini). */
void cp_ca_fini(cp_t *cp);

/* certs.c: the stored certificates. */
/* *out: the entry with a reference (from the cache or the store), or NULL
 * when cert_id is not stored. */
int cp_certs_get(cp_t *cp, const char *cert_id, cp_kent_t **out, err_t *err);
/* 1 with owner when cert_id is assigned to a box (stb_certs), 0 when to
 * none. */
int cp_certs_owner(cp_t *cp, const char *cert_id, char owner[CP_ID_CAP], err_t *err);
/* *n: the certificates device_id holds (stored rows, whatever their state). */
int cp_certs_held(cp_t *cp, const char *device_id, int64_t *n, err_t *err);
/* 1 when an update of cert_id waits for its STB, 0 when none. */
int cp_certs_pending(cp_t *cp, const char *cert_id, err_t *err);
/* Pushes every pending update of device_id to conn (on conn's loop). */
void cp_certs_push_pending(cp_t *cp, srv_conn_t *conn, const char *device_id);
/* Associated data of a sealed key ("key:" cert_id ":" serial hex) and of a
 * sealed device secret ("stb:" device_id); its length, or -1. */
int cp_certs_key_aad(const char *cert_id, const uint8_t *serial, size_t slen, char *out,
                     size_t cap);
int cp_stb_aad(const char *device_id, char *out, size_t cap);
/* Parses a certificate's notAfter; -1 when it has none. */
int cp_certs_not_after(const uint8_t *der, size_t len, int64_t *out);

/* cpkeyinfo.c: KEYINFO_REQ, CERT_FETCH, CERT_UPDATE_ACK. */
void cp_keyinfo_register(daemon_t *d);

/* cpissue.c: a new key and certificate from ca-authd, once per cert_id. */
typedef struct cp_issued {
	int refs; /* atomic */
	err_t err;
	cp_kent_t *kent; /* the new certificate (when err is OK) */
} cp_issued_t;
typedef void (*cp_issue_fn)(void *arg, const cp_issued_t *res);
/* Why an issuance runs: decides, once the issuance leads, whether the
 * stored certificate still needs one (a fetch or renewal that finished
 * meanwhile made it good: the stored one is the result). */
enum cp_issue_why { CP_ISSUE_FETCH, CP_ISSUE_RENEW };
/* fn runs once, on the loop of mb, with the result (shared by every
 * waiter).  -1 with err (fn not called) when the issuance cannot start:
 * FORBIDDEN when cert_id is not one of device_id's (imported with it) or
 * another device's issuance of it runs, UNAVAILABLE when too many run.
 * A certificate new to the device is counted against issue.max_per_device
 * before ca-authd is asked (CONFLICT past it). */
int cp_issue(cp_t *cp, struct event_base *base, mbox_t *mb, const char *cert_id,
             const char *device_id, const char *actor, enum cp_issue_why why, cp_issue_fn fn,
             void *arg, err_t *err);

/* scanner.c */
int cp_scanner_start(cp_t *cp, err_t *err);
void cp_scanner_stop(cp_t *cp);
/* A scan on r's loop, answered when done. */
void cp_scanner_scan_now(cp_t *cp, srv_req_t *r);

/* cpadmin.c */
void cp_admin_register(daemon_t *d);
/* cpstb.c: CP_STB_ENABLE, CP_STB_DELETE */
void cp_stb_register(daemon_t *d);

/* cpsecret.c: device secrets sealed under the KEK, by the signer when
 * there is one (aad: cp_stb_aad() or CP_DUMMY_LABEL). */
int cp_secret_seal(cp_t *cp, const char *aad, const void *pt, size_t ptlen, buf_t *out, err_t *err);
int cp_secret_open(cp_t *cp, const char *aad, const void *blob, size_t blen, uint8_t *pt,
                   size_t cap, size_t *ptlen, err_t *err);

#endif
