/*
 * media-gw internals (flow A, DESIGN 5.A steps 1 and 5).
 *
 * Login sessions (session_id -> gw_nonce, device, certificate, expiry) live
 * in memory, shared by every worker loop behind one mutex (sess.c): a
 * session lasts seconds.  Open sessions are capped per device, per source
 * address and in all, and leave at their expiry.  A session id is also
 * self-describing (sid.c: expiry and an HMAC tag over the certificate's IDs
 * under a KEK-derived key, the nonce an HMAC of the id), so an instance that
 * did not open a session (another instance, or this one before a restart)
 * can check its LOGIN_FINISH.  A session is consumed (marked used) here
 * before ca-authd is asked, so two finishes racing for one nonce get one
 * answer each and only one can win; the used mark stays until one TTL past
 * the session's expiry, to answer REPLAY.  Across instances and restarts
 * the single use is a login_used row written with the token: a second
 * finish anywhere is REPLAY.
 *
 * Every refusal before the STB has proven its key info (LOGIN_START, and
 * LOGIN_FINISH up to ca-authd's verdict) goes to the refusal summaries
 * (refusal.h), never to a log line or an audit row of its own.
 *
 * Access tokens are 32 random bytes; only their SHA-256 is stored, written
 * durably (group commit) before the STB sees the token.
 *
 * ca-authd is reached over mutual TLS 1.3 through one peer_t per worker
 * loop (a peer belongs to one loop), made on first use by that loop.
 */
#ifndef GW_H
#define GW_H

#include <openssl/evp.h>
#include <stdint.h>

#include "daemon.h"
#include "lifecycle.h"
#include "login.h"
#include "peer.h"
#include "peerpool.h"

#define GW_ID_CAP    (STB_ID_MAX + 1)
#define GW_TOKEN_LEN 32
#define GW_HASH_LEN  32

typedef struct gw_conf {
	long long login_ttl_s;
	long long token_ttl_s;
	long long max_sessions;
	long long sessions_per_device;
	long long sessions_per_source;
	char *ca_addr;
	long long ca_timeout_ms;
} gw_conf_t;

/* ---- sess.c: the login sessions ---- */

/* A session as handed out (a copy). */
typedef struct gw_sess {
	uint8_t sid[LOGIN_SESSION_LEN];
	uint8_t nonce[LOGIN_NONCE_LEN];
	char device_id[GW_ID_CAP];
	char cert_id[GW_ID_CAP];
	int64_t expires; /* unix seconds */
} gw_sess_t;

/* Draws a session's id and nonce (sid.c); NULL in the limits: random. */
typedef int (*gw_sess_mint_fn)(void *arg, const char *device_id, const char *cert_id,
                               int64_t expires, uint8_t sid[LOGIN_SESSION_LEN],
                               uint8_t nonce[LOGIN_NONCE_LEN], err_t *err);

typedef struct gw_sess_limits {
	size_t max;        /* open at once, in all */
	size_t per_device; /* open for one device; a new START replaces one */
	size_t per_source; /* open from one source address; past it RATE_LIMITED */
	int64_t ttl_s;     /* a session's life; a spent one is remembered as long again */
	gw_sess_mint_fn mint;
	void *mint_arg;
} gw_sess_limits_t;

typedef struct gw_sessions gw_sessions_t;
typedef struct gw gw_t;

/* Every limit at least 1; NULL with err. */
gw_sessions_t *gw_sess_new(const gw_sess_limits_t *lim, err_t *err);
/* NULL-safe; wipes every nonce. */
void gw_sess_free(gw_sessions_t *t);
/* Draws a fresh session id and nonce for device/cert, opened from source
 * (an address) at now, valid for ttl_s; *out gets a copy.  When the device
 * has per_device sessions open, the oldest of them goes (the oldest from
 * the same source if there is one), so a flood for one device ID cannot
 * keep its real box out, nor a flood from one address evict the box's own
 * session.  RATE_LIMITED when source has per_source open or max are open
 * (consumed ones do not count). */
int gw_sess_open(gw_sessions_t *t, const char *device_id, const char *cert_id, const char *source,
                 int64_t now, gw_sess_t *out, err_t *err);
/* Consumes a session: 0 and a copy in *out, or -1 with NOT_FOUND, REPLAY
 * (used before) or EXPIRED (now is at or past its expiry); on REPLAY and
 * EXPIRED only out's device_id and cert_id are set. */
int gw_sess_take(gw_sessions_t *t, const uint8_t sid[LOGIN_SESSION_LEN], int64_t now,
                 gw_sess_t *out, err_t *err);
/* Runs the expiry wheel up to now: open sessions leave the open set at
 * their expiry (remembered as expired), remembered ones are forgotten
 * ttl_s later.  How many open sessions expired plus records forgotten;
 * the cost is the number of seconds passed plus the entries due. */
size_t gw_sess_sweep(gw_sessions_t *t, int64_t now);
/* Open sessions. */
size_t gw_sess_count(gw_sessions_t *t);

/* ---- sid.c: session ids any instance can check ---- */

/* A gw_sess_mint_fn (arg: the gw_t). */
int gw_sid_mint(void *arg, const char *device_id, const char *cert_id, int64_t expires,
                uint8_t sid[LOGIN_SESSION_LEN], uint8_t nonce[LOGIN_NONCE_LEN], err_t *err);
/* The session a LOGIN_FINISH names, from its id and the certificate's IDs
 * alone: 0 with *out filled, or -1 with NOT_FOUND (not one we minted for
 * this certificate) or EXPIRED.  Single use is not checked here. */
int gw_sid_check(gw_t *gw, const uint8_t sid[LOGIN_SESSION_LEN], const uint8_t *cert,
                 size_t certlen, int64_t now, gw_sess_t *out, err_t *err);

/* ---- gwca.c: ca-authd, one peer per worker loop ---- */

typedef struct peerpool gw_ca_t;

/* tls: the daemon's client identity (mutual TLS 1.3); each new connection
 * takes its current context. */
gw_ca_t *gw_ca_new(const char *addr, tls_holder_t *tls, err_t *err);
/* A request to ca-authd from a handler (on r's loop); fn runs on that loop
 * once.  -1 (fn not called) when it cannot be sent. */
int gw_ca_call(gw_ca_t *ca, srv_req_t *r, uint16_t type, const buf_t *tlvs, int timeout_ms,
               peer_done_fn fn, void *arg, err_t *err);
/* Frees each loop's peer on its loop (pending calls fail UNAVAILABLE) and
 * waits for them; the loops must still run. */
void gw_ca_free(gw_ca_t *ca);
/* What the STB is told when ca-authd refuses its key info: the status to
 * relay and a clear reason in msg. */
int gw_ca_refusal(int ca_status, const char *ca_text, char *msg, size_t cap);

/* ---- the daemon ---- */

struct gw {
	daemon_t *d;
	const gw_conf_t *conf;
	gw_sessions_t *sess;
	gw_ca_t *ca;
	EVP_MD *sha256;      /* fetched once */
	uint8_t sid_key[32]; /* from the KEK: session ids and nonces (sid.c) */
	struct event *sweep;
	unsigned ticks; /* of the sweeper, main loop only */
	lifecycle_t lc; /* fini and each job in flight; stopping: no new store writes */
};

static inline void
gw_ref(gw_t *gw)
{
	lifecycle_ref(&gw->lc);
}
static inline void
gw_unref(gw_t *gw)
{
	lifecycle_unref(&gw->lc);
}
static inline int
gw_stopping(gw_t *gw)
{
	return lifecycle_stopping(&gw->lc);
}
/* "subject@ip:port" of a request's connection. */
void gw_actor(srv_req_t *r, char *out, size_t cap);

/* sub.c: GW_SUB_IMPORT, GW_SUB_LIST */
void gw_sub_register(daemon_t *d);
/* subadmin.c: GW_SUB_ENABLE, GW_SUB_DELETE, GW_TOKEN_REVOKE */
void gw_subadmin_register(daemon_t *d);
/* gwlogin.c: LOGIN_START, LOGIN_FINISH */
void gw_login_register(daemon_t *d);
/* token.c: issuing (in the store writer) and TOKEN_INTROSPECT */
int gw_token_hash(gw_t *gw, const uint8_t token[GW_TOKEN_LEN], uint8_t hash[GW_HASH_LEN]);
int gw_token_store(gw_t *gw, store_conn_t *c, const uint8_t hash[GW_HASH_LEN],
                   const char *device_id, const char *cert_id, const uint8_t *serial,
                   size_t serial_len, int64_t issued, int64_t expires, err_t *err);
void gw_token_register(daemon_t *d);

#endif
