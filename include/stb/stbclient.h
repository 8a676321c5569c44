/*
 * libstbclient: the firmware side of stbcred.
 *
 * Every call is blocking with a deadline (stb_client_set_timeout), returns
 * 0 on success or -1 with *err filled (err may be NULL), keeps no global
 * state and never logs on its own: give it a callback for that.  Handles are
 * opaque; one handle serves one thread at a time.
 *
 *	stb_client_t *c;
 *	stb_error_t err;
 *	uint64_t rtt;
 *	if (stb_client_new(&c, &err) == 0 &&
 *	    stb_client_set_ca_file(c, "/etc/stb/ca.pem", &err) == 0 &&
 *	    stb_connect(c, "gw.example.net", "7103", &err) == 0 &&
 *	    stb_ping(c, NULL, 0, &rtt, &err) == 0)
 *		printf("rtt %llu us\n", (unsigned long long)rtt);
 *	stb_client_free(c);
 */
#ifndef STB_STBCLIENT_H
#define STB_STBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "stbproto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STB_API __attribute__((visibility("default")))

typedef struct stb_client stb_client_t;

/* Why a call failed: a status from stbproto.h (STB_UNAVAILABLE,
 * STB_TIMEOUT, or the server's answer) and a message for people. */
typedef struct stb_error {
	int status;
	char message[256];
} stb_error_t;

enum { STB_LOG_DEBUG = 7, STB_LOG_INFO = 6, STB_LOG_WARNING = 4 };
typedef void (*stb_log_fn)(void *ctx, int level, const char *message);

/* Secret storage supplied by the firmware (device secret, wrap keys): the
 * library keeps no secret on disk itself.  load returns 0 and sets *len, or
 * -1 when the name is unknown; save returns 0 or -1. */
typedef struct stb_secret_store {
	int (*load)(void *ctx, const char *name, unsigned char *buf, size_t cap, size_t *len);
	int (*save)(void *ctx, const char *name, const unsigned char *buf, size_t len);
} stb_secret_store_t;

STB_API const char *stb_version(void);

STB_API int stb_client_new(stb_client_t **out, stb_error_t *err);
/* NULL-safe; wipes what the handle held. */
STB_API void stb_client_free(stb_client_t *c);

/* The only trust anchor(s) for servers (PEM): the CA is pinned, the
 * system store is never used.  Required before stb_connect. */
STB_API int stb_client_set_ca_file(stb_client_t *c, const char *path, stb_error_t *err);
/* A client certificate and key (PEM), for devices and operators that have
 * one. */
STB_API int stb_client_set_identity(stb_client_t *c, const char *cert_path, const char *key_path,
                                    stb_error_t *err);
/* Deadline for connecting and for each request, in milliseconds (default
 * 10000). */
STB_API void stb_client_set_timeout(stb_client_t *c, int timeout_ms);
STB_API void stb_client_set_log(stb_client_t *c, stb_log_fn fn, void *ctx);
STB_API void stb_client_set_secret_store(stb_client_t *c, const stb_secret_store_t *store,
                                         void *ctx);

/* TLS session resumption (on by default): the handle keeps the last TLS
 * 1.3 session ticket a server gave it and offers it on the next connect to
 * the same host (any port: a daemon's listeners share their ticket keys),
 * which spares both sides the certificate signatures and chain checks of a
 * full handshake; the server falls back to a full one when it cannot or
 * will not resume.  Changing the CA or the identity forgets the ticket.
 * With session_name set (NULL: none) and a secret store with save/load,
 * the ticket is also saved under that name as it arrives and loaded before
 * the first connect, so it outlives the handle (standby, reboot): it holds
 * the session's resumption secret. */
STB_API void stb_client_set_resumption(stb_client_t *c, int on, const char *session_name);
/* 1 when the current connection resumed a session, else 0. */
STB_API int stb_client_resumed(const stb_client_t *c);

/* Connects over TLS and checks the server certificate against the CA and
 * host (a DNS name or an IP address). */
STB_API int stb_connect(stb_client_t *c, const char *host, const char *port, stb_error_t *err);
/* The same with "host:port" or "[IPv6]:port". */
STB_API int stb_connect_addr(stb_client_t *c, const char *addr, stb_error_t *err);
STB_API void stb_disconnect(stb_client_t *c);

/* PING; payload (may be NULL) must come back unchanged.  *rtt_us gets the
 * round-trip time. */
STB_API int stb_ping(stb_client_t *c, const void *payload, size_t len, uint64_t *rtt_us,
                     stb_error_t *err);

/*
 * Device-to-device links (rendezvousd, flow B).
 *
 * A device registers over a connected client (stb_connect to rendezvousd
 * first); the connection then stays open as its control channel, which
 * must be serviced: the server heartbeats it and pushes the session offers
 * other devices ask for.  The library services it inside stb_peer_accept,
 * stb_peer_recv (of a link made through this registration) and
 * stb_rdv_poll, so a device that is idle calls stb_rdv_poll now and then
 * (at least once per heartbeat interval).
 *
 * A link is TLS 1.3 between the two devices with the session's random
 * code as an external PSK (identity = the 16-byte session id, psk_dhe_ke
 * only: forward-secret), no certificates.  A listener accepts only session
 * ids the server offered it, each once and before it expires.  On a broken
 * link the caller calls stb_rdv_connect again: a new session, a new code.
 *
 *	stb_rdv_t *r;
 *	stb_peer_t *p;
 *	if (stb_rdv_enrol(c, "stb-42", code, "user", pw, "192.0.2.7:7400", &r, &err) == 0 &&
 *	    stb_rdv_connect(r, "stb-43", &p, &err) == 0 &&
 *	    stb_peer_send(p, "hi", 2, &err) == 0)
 *		...
 *	stb_peer_free(p);
 *	stb_rdv_free(r);
 *
 * The client, the registration and its listener and links are one handle
 * family: use them from one thread, free links and the listener before
 * the registration and the registration before the client.
 */
typedef struct stb_rdv stb_rdv_t;
typedef struct stb_peer stb_peer_t;
typedef struct stb_peer_listener stb_peer_listener_t;

/* Largest payload of one stb_peer_send. */
#define STB_PEER_MAX_PAYLOAD 16384

/* RDV_REGISTER on c: device_id must be provisioned (FORBIDDEN otherwise)
 * and enrolled (stb_rdv_enrol, once); later registrations must give the
 * same username and password (UNAUTHENTICATED).  endpoint is the
 * "host:port" the device listens on for peers (stb_peer_listen).  Derives
 * the device's code-wrap key from the password (scrypt with the salt and
 * parameters the server returns); the password is not kept.  c must
 * outlive *out. */
STB_API int stb_rdv_register(stb_client_t *c, const char *device_id, const char *username,
                             const char *password, const char *endpoint, stb_rdv_t **out,
                             stb_error_t *err);
/* The first registration of a provisioned device: the same as
 * stb_rdv_register, proving the one-time enrolment code the operator got
 * when provisioning it (32 hex digits, from `stbctl rdv provision`); it
 * sets the username and password, and the server then forgets the code.
 * UNAUTHENTICATED: no code, a wrong one, or one already used.  Once the
 * device is enrolled the code is ignored, so firmware may always call
 * this.  The code stays the caller's (wipe it when done). */
STB_API int stb_rdv_enrol(stb_client_t *c, const char *device_id, const char *enrol_code,
                          const char *username, const char *password, const char *endpoint,
                          stb_rdv_t **out, stb_error_t *err);
/* NULL-safe; wipes the key and the offered codes.  The client stays
 * connected (stb_disconnect takes the device offline). */
STB_API void stb_rdv_free(stb_rdv_t *r);
/* The overlay address the server assigned. */
STB_API const char *stb_rdv_overlay_addr(const stb_rdv_t *r);
/* Services the control channel for timeout_ms (answers heartbeats, takes
 * offers).  UNAVAILABLE when the channel is gone. */
STB_API int stb_rdv_poll(stb_rdv_t *r, int timeout_ms, stb_error_t *err);
/* Asks for a session with target_id (NOT_FOUND: no such device;
 * UNAVAILABLE: offline or silent; RATE_LIMITED: this device asked too
 * often, or it or the target holds too many unused offers: wait, then ask
 * again), opens the code, connects to the target's endpoint and runs the
 * PSK handshake. */
STB_API int stb_rdv_connect(stb_rdv_t *r, const char *target_id, stb_peer_t **out,
                            stb_error_t *err);

/* Listens on bind_addr ("host:port"; NULL: the registered endpoint). */
STB_API int stb_peer_listen(stb_rdv_t *r, const char *bind_addr, stb_peer_listener_t **out,
                            stb_error_t *err);
/* Waits up to timeout_ms for a link, servicing the control channel
 * meanwhile.  TIMEOUT when none came; a refused handshake returns -1 with
 * the reason (REPLAY: session already used; EXPIRED; SUPERSEDED: the offer
 * was dropped for newer ones before it was used, the caller should ask for
 * a new session; UNAUTHENTICATED: session never offered, or the peer does
 * not hold the code) and the listener stays usable.  A device keeps 64
 * offers, at most 16 from one caller: a caller's newer offers push out
 * its own older ones first, and a full set drops from the caller holding
 * the most. */
STB_API int stb_peer_accept(stb_peer_listener_t *l, int timeout_ms, stb_peer_t **out,
                            stb_error_t *err);
STB_API void stb_peer_listener_free(stb_peer_listener_t *l);

/* One message of at most STB_PEER_MAX_PAYLOAD bytes (TOO_LARGE).  Any other
 * failure leaves the link broken (later calls: UNAVAILABLE). */
STB_API int stb_peer_send(stb_peer_t *p, const void *data, size_t len, stb_error_t *err);
/* The next message (or its next cap bytes) into buf, *len set; waits up
 * to timeout_ms (TIMEOUT: the link stays usable), servicing the control
 * channel of the registration the link came from.  UNAVAILABLE: the peer
 * closed the link or it broke; a malformed frame breaks it too. */
STB_API int stb_peer_recv(stb_peer_t *p, void *buf, size_t cap, size_t *len, int timeout_ms,
                          stb_error_t *err);
/* The device at the other end. */
STB_API const char *stb_peer_device(const stb_peer_t *p);
/* NULL-safe; closes the link (close_notify) and wipes it. */
STB_API void stb_peer_free(stb_peer_t *p);

/*
 * Certificate-proxied login (flow A).
 *
 * The STB holds no certificate: cert-proxyd keeps it and its key, and
 * hands out key info good for one login after the STB proves its device
 * secret.  stb_login runs the whole exchange on two connected clients:
 *
 *   1. GW_LOGIN_START at media-gw: which certificate, a one-time nonce;
 *   2. CP_AUTH_BEGIN / CP_AUTH_PROVE at cert-proxyd (HMAC of the device
 *      secret), once per cert-proxyd connection and device;
 *   3. CP_KEYINFO_REQ; when cert-proxyd answers NOT_FOUND, EXPIRED or
 *      REVOKED, CP_CERT_FETCH for a fresh certificate;
 *   4. GW_LOGIN_FINISH at media-gw with the key info: the access token.
 *
 * On failure err->status is the refusing side's status (NOT_FOUND: not a
 * subscriber; FORBIDDEN: suspended; UNAUTHENTICATED: wrong secret or bad
 * proof; REVOKED, EXPIRED, REPLAY; UNAVAILABLE: a server or the CA is down)
 * and err->message names the step.  The key info and the HMAC are wiped
 * once sent; the secret stays the caller's (wipe it when done).  Both
 * clients stay connected and can serve many logins (authentication at
 * cert-proxyd is done once per connection and device); a connection that
 * dropped fails with STB_UNAVAILABLE until the caller connects it again.
 *
 *	stb_login_result_t res;
 *	if (stb_login(gw, cp, "stb-42", secret, 32, &res, &err) == 0)
 *		use(res.token, res.token_expires);
 *	stb_login_result_clear(&res);
 */
#define STB_TOKEN_LEN 32

typedef struct stb_login_result {
	unsigned char token[STB_TOKEN_LEN]; /* access token: a secret */
	uint64_t token_expires;             /* unix time */
	char cert_id[STB_ID_MAX + 1];       /* the certificate that logged in */
	int cert_status;                    /* cert-proxyd's first answer: STB_OK (valid), or
	                                       STB_NOT_FOUND / STB_EXPIRED / STB_REVOKED */
	int fetched;                        /* 1 when a fresh certificate was fetched */
} stb_login_result_t;

STB_API int stb_login(stb_client_t *gw, stb_client_t *cp, const char *device_id,
                      const unsigned char *secret, size_t secret_len, stb_login_result_t *out,
                      stb_error_t *err);
/* Wipes a result (the token). NULL-safe. */
STB_API void stb_login_result_clear(stb_login_result_t *r);

/*
 * Watching for certificate updates: cert-proxyd pushes CP_CERT_UPDATE_NEEDED
 * to an authenticated STB when one of its certificates must be renewed;
 * stb_watch answers with CP_CERT_UPDATE_ACK (cert-proxyd then renews) and
 * reports CP_CERT_UPDATED when the new certificate is in place.  It
 * authenticates cp first (unless already done for device_id), keeps the
 * connection alive with PINGs, and runs until the callback returns
 * non-zero (0 returned), timeout_ms passes (0: no limit; -1 with
 * STB_TIMEOUT) or the connection fails (-1).
 */
enum {
	STB_WATCH_UPDATE_NEEDED = 1, /* acknowledged; renewal under way */
	STB_WATCH_UPDATED = 2,       /* the certificate was renewed */
	STB_WATCH_UPDATE_FAILED = 3, /* cert-proxyd refused the acknowledgement */
	STB_WATCH_READY = 4,         /* authenticated; updates are listened for */
};

typedef struct stb_watch_event {
	int type;            /* STB_WATCH_* */
	const char *cert_id; /* valid during the callback */
	int reason;          /* UPDATE_NEEDED: 1 expiring, 2 expired, 3 revoked, 4 missing */
	uint64_t not_after;  /* UPDATED: the new certificate's notAfter */
	int status;          /* UPDATE_FAILED: cert-proxyd's status */
	const char *message; /* UPDATE_FAILED: its reason; "" otherwise */
} stb_watch_event_t;

typedef int (*stb_watch_fn)(void *ctx, const stb_watch_event_t *ev);

STB_API int stb_watch(stb_client_t *cp, const char *device_id, const unsigned char *secret,
                      size_t secret_len, int timeout_ms, stb_watch_fn fn, void *ctx,
                      stb_error_t *err);

/*
 * Key synchronisation (flow C): a terminal whose key was burnt in at the
 * factory (and imported into keymgmtd by the manufacturer) asks keymgmtd
 * to bind that key to its MDN and an app, and to deliver it to the app's
 * platform.  The proof is HMAC-SHA256 under the key over
 * "STB-KEYSYNC-V1", key_id, mdn, app_id and a timestamp (PROTOCOL.md); the
 * key itself never leaves the terminal.  app_id NULL (or "") lets keymgmtd
 * pick the MDN's only app.  timestamp 0 means now; a proof is good once.
 *
 * stb_keysync sends KM_KEY_SYNC on a client connected to keymgmtd and
 * fills *out once the binding and its push are durable.  On a refusal
 * err->status is keymgmtd's: UNAUTHENTICATED (unknown key or wrong key),
 * EXPIRED (the clock is off), REPLAY (a proof used before), BAD_REQUEST
 * (malformed MDN; or several apps and none named: the text lists them),
 * NOT_FOUND (no such service), CONFLICT (the key is bound to another MDN),
 * RATE_LIMITED.  The same sync again is answered OK with the first push.
 *
 * Without a data connection the sync goes by SMS: stb_keysync_sms writes
 * the text to send to keymgmtd's SMS number (the network supplies the
 * sender's MDN, which the text does not carry; the MAC covers it), and
 * stb_keysync_sms_reply reads the reply SMS: 0 with the app bound, or -1
 * with the refusal's status in err.
 *
 *	stb_keysync_result_t res;
 *	if (stb_keysync(km, "KEY-0001", "8613800138000", NULL, key, 32, 0, &res, &err) == 0)
 *		printf("bound to %s\n", res.app_id);
 */
#define STB_KEYSYNC_SMS_MAX 160

typedef struct stb_keysync_result {
	char app_id[STB_ID_MAX + 1]; /* the app the key was bound for */
	uint64_t push_id;            /* keymgmtd's delivery to that app's platform */
} stb_keysync_result_t;

STB_API int stb_keysync(stb_client_t *km, const char *key_id, const char *mdn, const char *app_id,
                        const unsigned char *key, size_t key_len, uint64_t timestamp,
                        stb_keysync_result_t *out, stb_error_t *err);
/* out: at least STB_KEYSYNC_SMS_MAX + 1 bytes. */
STB_API int stb_keysync_sms(const char *key_id, const char *mdn, const char *app_id,
                            const unsigned char *key, size_t key_len, uint64_t timestamp, char *out,
                            size_t cap, stb_error_t *err);
STB_API int stb_keysync_sms_reply(const char *text, char *app_id, size_t cap, stb_error_t *err);

/*
 * Credentialing bootstrap (flow D, qualifyd).
 *
 * A device with only its manufacturer certificate obtains its operator
 * subscription {IMSI, K, OPc}: stb_bootstrap runs, over mutual TLS with
 * the device certificate,
 *   1. QD_REGISTER at the registration role: the device's registration
 *      nonce and where the credentialing role is;
 *   2. QD_CRED_REQ there with session_nonce = HMAC-SHA256(nonce,
 *      "STB-QUALIFY-V1" | device_id | client_random): a one-time ticket
 *      and where the provisioning role is;
 *   3. QD_PKG_FETCH with the ticket: the package (CMS SignedData by the
 *      operator certificate over EnvelopedData to the device key).  The
 *      library checks the signature and the operator certificate's chain
 *      to operator_ca_file, the operator certificate's OCSP status (with a
 *      nonce, at ocsp_url or the certificate's own OCSP address), opens
 *      the envelope, checks that the package is bound to this device and
 *      this session nonce, hands the credentials to store (they are wiped
 *      when it returns) and then confirms with QD_PKG_CONFIRM (the package
 *      digest).  A package that fails a check, or that store refuses (a
 *      non-zero return), is never confirmed.
 * The device's key: the name of a PEM key in the client's secret store
 * (stb_client_set_secret_store: the firmware keeps it), with cert_file its
 * certificate; or, key_name NULL, the identity set with
 * stb_client_set_identity.  c must have its server CA set; it connects to
 * each role in turn (once when two roles share an address) and is left
 * disconnected.
 *
 * On failure err->status is the refusing side's (FORBIDDEN: not enrolled,
 * or another device's ticket; UNAUTHENTICATED: a wrong derivation, or a
 * package that does not check; EXPIRED; REPLAY; REVOKED: the device or the
 * operator certificate; UNAVAILABLE: a role, the HSS or a responder is
 * down) and err->message names the step.
 */
#define STB_QD_KEY_LEN  16
#define STB_QD_IMSI_MAX 15

typedef struct stb_credentials {
	char device_id[STB_ID_MAX + 1];
	char imsi[STB_QD_IMSI_MAX + 1];
	unsigned char k[STB_QD_KEY_LEN];   /* subscriber key: a secret */
	unsigned char opc[STB_QD_KEY_LEN]; /* Milenage OPc: a secret */
	uint64_t issued, expires;          /* unix time */
} stb_credentials_t;

/* Stores the credentials (copy them: they are wiped when it returns);
 * 0, or non-zero to refuse them (the package is then not confirmed). */
typedef int (*stb_credentials_fn)(void *ctx, const stb_credentials_t *creds);

typedef struct stb_bootstrap_conf {
	const char *reg_addr;         /* registration role, "host:port" */
	const char *device_id;        /* NULL: the one the certificate names */
	const char *cert_file;        /* with key_name: the device certificate (PEM) */
	const char *key_name;         /* the device key in the secret store; NULL: identity */
	const char *operator_ca_file; /* trust anchor(s) for the package signer (PEM) */
	const char *ocsp_url;         /* NULL: the operator certificate's AIA OCSP URL */
} stb_bootstrap_conf_t;

typedef struct stb_bootstrap_result {
	char device_id[STB_ID_MAX + 1];
	char imsi[STB_QD_IMSI_MAX + 1];
	uint64_t expires;             /* the credentials' expiry */
	unsigned char pkg_digest[32]; /* SHA-256 of the confirmed package */
	int connections;              /* TLS connections made (1 to 3: roles sharing an address
	                                 share one) */
	int resumed;                  /* of them, TLS sessions resumed (no certificates) */
} stb_bootstrap_result_t;

STB_API int stb_bootstrap(stb_client_t *c, const stb_bootstrap_conf_t *conf,
                          stb_credentials_fn store, void *ctx, stb_bootstrap_result_t *out,
                          stb_error_t *err);
/* Wipes credentials. NULL-safe. */
STB_API void stb_credentials_clear(stb_credentials_t *creds);

/*
 * App checks (flow E): the TV scans an app's published QR code (text
 * "STB1:..."), and installs the app only when the check ALLOWs it.
 *
 * Online: stb_app_check on a client connected to appvetd's check listener
 * (server-authenticated TLS, no client certificate).  Offline: the
 * operator's signed index snapshot (a file from `stbctl app index
 * export`), loaded and verified once with the operator's public key the
 * TV trusts, then any number of stb_app_check_offline calls.  The QR
 * payload itself is verified offline with the same key.
 *
 * The verdict: allow 1 for a SAFE app, 0 (DENY) for an UNSAFE one with the
 * vetter's warning.  Refusals are -1 with err->status: UNAUTHENTICATED a
 * forged or altered payload or index; EXPIRED; BAD_REQUEST malformed;
 * NOT_FOUND an app unknown to appvetd or not in the index; REVOKED
 * (online) an app appvetd withdrew; REPLAY an index older than one seen.
 *
 *	stb_app_verdict_t v;
 *	if (stb_app_check(c, qr_text, &v, &err) == 0 && v.allow)
 *		install();
 *
 * The index's own version store is the firmware's: a callback pair, as
 * for secrets (stb_secret_store_t).
 */
enum { STB_APP_SAFE = 1, STB_APP_UNSAFE = 2 }; /* the values of APP_FLAG */

#define STB_APP_PAYLOAD_MAX 1024 /* characters of a QR payload */
#define STB_APP_WARNING_MAX 1024

typedef struct stb_app_verdict {
	int allow;                             /* 1 ALLOW, 0 DENY */
	int flag;                              /* STB_APP_SAFE / STB_APP_UNSAFE */
	char warning[STB_APP_WARNING_MAX + 1]; /* DENY: why; "" otherwise */
	uint64_t expires;                      /* the payload's (or entry's) end, unix time */
	uint64_t index_version;                /* offline: the snapshot's version; 0 online */
	char name[129];                        /* online: the app as submitted; "" offline */
	char version[65];
} stb_app_verdict_t;

STB_API int stb_app_check(stb_client_t *c, const char *payload, stb_app_verdict_t *out,
                          stb_error_t *err);

typedef struct stb_app_index stb_app_index_t;

/* The rollback counter: the highest index version the TV has accepted,
 * kept by the firmware (tamper-resistant storage if it has it).  load sets
 * *version (0 when none is stored yet) and returns 0, or -1 on a storage
 * error; save returns 0 or -1.  The library saves only growing values. */
typedef struct stb_app_version_store {
	int (*load)(void *ctx, uint64_t *version);
	int (*save)(void *ctx, uint64_t version);
} stb_app_version_store_t;

/* Reads the snapshot at index_path (at most 16 MiB) and verifies it with
 * the operator's public key (PEM at key_path): signature, expiry, and no
 * rollback against store (may be NULL: no rollback check, for tools that
 * only inspect), which then gets the new version.  now is unix time (0:
 * the system clock). */
STB_API int stb_app_index_load(const char *index_path, const char *key_path,
                               const stb_app_version_store_t *store, void *store_ctx, uint64_t now,
                               stb_app_index_t **out, stb_error_t *err);
/* The loaded snapshot's version and expiry. */
STB_API uint64_t stb_app_index_version(const stb_app_index_t *ix);
STB_API uint64_t stb_app_index_expires(const stb_app_index_t *ix);
/* Verifies payload with the index's key at time now (0: the system
 * clock; EXPIRED once the index itself expired) and looks the app up:
 * the index's flag and warning decide (a re-vetted app turns UNSAFE there
 * before its QR code changes). */
STB_API int stb_app_check_offline(const stb_app_index_t *ix, const char *payload, uint64_t now,
                                  stb_app_verdict_t *out, stb_error_t *err);
/* NULL-safe. */
STB_API void stb_app_index_free(stb_app_index_t *ix);

#ifdef __cplusplus
}
#endif
#endif
