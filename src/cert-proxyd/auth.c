/*
 * auth: HMAC challenge-response per connection (DESIGN 5.A step 2).
 * AUTH_BEGIN answers every device ID with a fresh nonce; AUTH_PROVE checks
 * the MAC in constant time, against a sealed dummy secret when the device
 * is unknown or disabled, so neither the answer nor the work done tells
 * those apart from a wrong MAC.  Guessing is throttled by lockout.h:
 * by source address, with a guess budget per device ID (known or not,
 * alike) that never refuses a box proving itself from a source that is not
 * itself guessing, nor one proving itself again from where it did before.
 * The check at AUTH_BEGIN refuses a throttled source before it gets a
 * nonce; AUTH_PROVE reserves the attempt, checks the MAC and settles it.
 * Only the trust a success earns is written, never a failure.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "log.h"
#include "tlv.h"

typedef struct cp_cstate {
	cp_t *cp;
	int challenged;
	int authed;
	char device_id[CP_ID_CAP];
	uint8_t nonce[LOGIN_NONCE_LEN];
	int64_t challenge_until;
	char addr[LOCKOUT_SOURCE_MAX + 1]; /* the source key (srcaddr_key) */
	uint64_t gen;                      /* online registry entry */
} cp_cstate_t;

const char *
cp_auth_device(srv_conn_t *c)
{
	cp_cstate_t *cs = srv_conn_data(c);

	return cs != NULL && cs->authed ? cs->device_id : NULL;
}

static cp_cstate_t *
cstate_get(cp_t *cp, srv_conn_t *c)
{
	cp_cstate_t *cs = srv_conn_data(c);

	if (cs != NULL)
		return cs;
	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	cp_ref(cp);
	cs->cp = cp;
	srcaddr_key(srv_conn_peer(c), cs->addr);
	srv_conn_set_data(c, cs);
	return cs;
}

static void
on_conn(srv_conn_t *c, int open, void *ctx)
{
	cp_cstate_t *cs = srv_conn_data(c);
	cp_t *cp;

	(void)ctx;
	if (open || cs == NULL)
		return;
	srv_conn_set_data(c, NULL);
	cp = cs->cp;
	if (cs->authed)
		cp_online_remove(cp, cs->device_id, cs->gen);
	OPENSSL_cleanse(cs, sizeof(*cs));
	free(cs);
	cp_unref(cp);
}

/* The answer to a throttled source (lockout.h); the same for every ID. */
static void
auth_throttled(srv_req_t *r, const cp_cstate_t *cs, int64_t left)
{
	srv_reply_err(r, STB_RATE_LIMITED, "too many failed attempts from %s; retry in %lld s",
	              cs->addr, (long long)left);
}

static void
cp_auth_begin(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	cp_cstate_t *cs = cstate_get(cp, r->conn);
	char device_id[CP_ID_CAP];
	int64_t left;
	buf_t *b;

	if (cs == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (cs->authed) {
		srv_reply_err(r, STB_CONFLICT, "this connection is already authenticated");
		return;
	}
	msg_get_str(m, TLV_IX_DEVICE_ID, device_id, sizeof(device_id));
	if ((left = lockout_check(cp->lk, device_id, cs->addr, (int64_t)time(NULL))) > 0) {
		auth_throttled(r, cs, left);
		return;
	}
	if (RAND_bytes(cs->nonce, sizeof(cs->nonce)) != 1) {
		cs->challenged = 0;
		srv_reply_err(r, STB_INTERNAL, "no randomness");
		return;
	}
	memcpy(cs->device_id, device_id, sizeof(cs->device_id));
	cs->challenged = 1;
	cs->challenge_until = (int64_t)time(NULL) + cp->conf->auth_challenge_ttl_s;
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_SERVER_NONCE, cs->nonce, sizeof(cs->nonce));
	srv_reply_end(r);
}

/* The device's secret (or the dummy) into secret; *known is 1 when the
 * device exists, *live when it also is enabled. */
static int
auth_secret(cp_t *cp, const char *device_id, uint8_t secret[CP_SECRET_MAX], size_t *len, int *known,
            int *live, err_t *err)
{
	store_conn_t *c = store_reader(cp->d->store, err);
	uint8_t blob[CP_SECRET_MAX + SEALED_OVERHEAD];
	char aad[CP_ID_CAP + 8];
	const void *p;
	size_t blen = 0;
	store_stmt_t *st;
	size_t plen = 0;
	int found = 0, enabled = 0, rc;

	if (c == NULL || (st = store_stmt(c, "SELECT secret, enabled FROM stbs WHERE device_id=?1",
	                                  err)) == NULL)
		return -1;
	store_bind_str(st, 1, device_id);
	rc = store_step(st, err);
	if (rc == STORE_ROW && (p = store_col_blob(st, 0, &plen), plen > 0) &&
	    plen <= sizeof(blob)) {
		blen = plen;
		memcpy(blob, p, blen);
		enabled = (int)store_col_int64(st, 1) != 0;
		found = 1;
	}
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE)
		return -1;
	if (found)
		rc = cp_stb_aad(device_id, aad, sizeof(aad)) == -1
		         ? -1
		         : cp_secret_open(cp, aad, blob, blen, secret, CP_SECRET_MAX, len, err);
	else
		rc = cp_secret_open(cp, CP_DUMMY_LABEL, cp->dummy, cp->dummy_len, secret,
		                    CP_SECRET_MAX, len, err);
	if (rc == -1 && err->status == STB_UNAVAILABLE)
		return -1; /* the signer is restarting: its supervisor said so, once */
	if (rc == -1) {
		log_warnx("the stored secret of %s does not open", device_id);
		return err_set(err, STB_INTERNAL, "stored secret does not open");
	}
	*known = found;
	*live = found & enabled;
	return 0;
}

/* ---- lockout audit, written after the answer ---- */

struct auth_lock {
	cp_t *cp;
	char actor[CP_ACTOR_CAP];
	char key[CP_ID_CAP];
	const char *what;
	int64_t until;
};

static int
auth_lock_write(store_conn_t *c, void *arg, err_t *err)
{
	struct auth_lock *l = arg;

	return daemon_auditf(l->cp->d, c, err, "auth_lockout", l->actor, "%s=%s until=%lld",
	                     l->what, l->key, (long long)l->until);
}

static void
auth_lock_done(void *arg, const err_t *err)
{
	struct auth_lock *l = arg;

	if (err->status != STB_OK)
		log_warnx("audit of a lockout: %s", err->msg);
	cp_unref(l->cp);
	free(l);
}

/* anonymous: the lock of a device ID nobody has (made up by the client):
 * counted in the refusal summaries (refusal.h), no row and no line each. */
static void
auth_lockout(cp_t *cp, srv_req_t *r, const char *what, const char *key, int64_t until,
             int anonymous)
{
	struct auth_lock *l;
	err_t err;

	if (anonymous) {
		daemon_refused(cp->d, r, "auth", "lockout_unknown_device", key);
		return;
	}
	l = calloc(1, sizeof(*l));
	log_info("authentication throttled for %s %s until %lld after repeated failures", what, key,
	         (long long)until);
	if (l == NULL)
		return;
	l->cp = cp;
	l->what = what;
	l->until = until;
	snprintf(l->key, sizeof(l->key), "%s", key);
	cp_actor(r->conn, "-", l->actor);
	cp_ref(cp);
	if (store_write(cp->d->store, srv_req_mbox(r), auth_lock_write, auth_lock_done, l, &err) ==
	    -1) {
		cp_unref(cp);
		free(l);
	}
}

/* ---- AUTH_PROVE ---- */

/* Queues the write of a pair's trust (LOCKOUT_WRITE). */
static void
auth_persist(cp_t *cp, srv_req_t *r, const lockout_try_t *t, int rc)
{
	err_t err;

	if ((rc & LOCKOUT_WRITE) &&
	    lockout_persist_job(cp->lk, cp->d->store, srv_req_mbox(r), t, &err) == -1)
		log_warnx("trust of %s from %s not persisted: %s", t->subject, t->source, err.msg);
}

static void
auth_failed(cp_t *cp, srv_req_t *r, const char *device_id, int known, lockout_try_t *t)
{
	int64_t now = (int64_t)time(NULL);
	int rc = lockout_end(cp->lk, t, LOCKOUT_WRONG, now);
	lockout_state_t st = {0};

	/* every failure is logged and audited, as a summary per source and
	 * interval naming the last device ID tried (never the secret or MAC) */
	daemon_refused(cp->d, r, "auth", known ? "wrong_secret" : "unknown_device", device_id);

	/* a guarded device's failures are forgotten after lockout_max_s of quiet;
	 * an ID nobody has goes to the refusal summaries */
	if (rc & LOCKOUT_GUARDED)
		auth_lockout(cp, r, "device", device_id, now + cp->conf->auth.lockout_max_s,
		             !known);
	if ((rc & LOCKOUT_PENALISED) && lockout_get(cp->lk, LOCKOUT_SOURCE, NULL, t->source, &st))
		auth_lockout(cp, r, "address", t->source, st.until, 0);
	/* the same for an ID nobody has */
	srv_reply_err(r, STB_UNAUTHENTICATED, "authentication of %s failed%s", device_id,
	              (rc & LOCKOUT_PENALISED) ? "; source throttled after repeated failures"
	              : (rc & LOCKOUT_GUARDED) ? "; guesses limited after repeated failures"
	                                       : "");
}

static void
auth_granted(cp_t *cp, srv_req_t *r, cp_cstate_t *cs, const char *device_id, lockout_try_t *t)
{
	srv_conn_t *conn = r->conn;

	auth_persist(cp, r, t, lockout_end(cp->lk, t, LOCKOUT_RIGHT, (int64_t)time(NULL)));
	memcpy(cs->device_id, device_id, sizeof(cs->device_id));
	if ((cs->gen = cp_online_add(cp, device_id, conn)) == 0) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	cs->authed = 1;
	log_debug("device %s authenticated from %s", device_id, srv_conn_peer(conn));
	srv_reply_ok(r);
	/* after the answer: updates the scanner queued while it was away */
	cp_certs_push_pending(cp, conn, device_id);
}

static void
cp_auth_prove(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	cp_cstate_t *cs = srv_conn_data(r->conn);
	uint8_t nonce[LOGIN_NONCE_LEN], secret[CP_SECRET_MAX], mac[LOGIN_MAC_LEN];
	char device_id[CP_ID_CAP];
	const uint8_t *cnonce, *proof;
	size_t cl, pl, slen = 0;
	int64_t left, until;
	int known = 0, live = 0, ok;
	lockout_try_t t;
	err_t err;

	if (cs == NULL || !cs->challenged) {
		srv_reply_err(r, cs != NULL && cs->authed ? STB_CONFLICT : STB_UNAUTHENTICATED,
		              cs != NULL && cs->authed ? "this connection is already authenticated"
		                                       : "no AUTH_BEGIN on this connection");
		return;
	}
	/* a challenge answers once, right or wrong */
	cs->challenged = 0;
	memcpy(nonce, cs->nonce, sizeof(nonce));
	memcpy(device_id, cs->device_id, sizeof(device_id));
	OPENSSL_cleanse(cs->nonce, sizeof(cs->nonce));
	until = cs->challenge_until;
	msg_get_bytes(m, TLV_IX_CLIENT_NONCE, &cnonce, &cl);
	msg_get_bytes(m, TLV_IX_AUTH_MAC, &proof, &pl);
	/* reserved before the lookup: attempts on other loops see it at once */
	if ((left = lockout_begin(cp->lk, device_id, cs->addr, (int64_t)time(NULL), &t)) > 0)
		auth_throttled(r, cs, left);
	else if ((int64_t)time(NULL) > until)
		srv_reply_err(r, STB_UNAUTHENTICATED, "the challenge expired; start again");
	else if (auth_secret(cp, device_id, secret, &slen, &known, &live, &err) == -1 ||
	         login_auth_mac(secret, slen, nonce, cnonce, device_id, mac, &err) == -1)
		srv_reply_errt(r, &err);
	else {
		/* an unknown or disabled device fails like a wrong MAC */
		ok = (CRYPTO_memcmp(mac, proof, LOGIN_MAC_LEN) == 0) & live;
		if (ok)
			auth_granted(cp, r, cs, device_id, &t);
		else
			auth_failed(cp, r, device_id, known, &t);
	}
	lockout_end(cp->lk, &t, LOCKOUT_VOID, (int64_t)time(NULL)); /* when still held */
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(nonce, sizeof(nonce));
}

void
cp_auth_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_CP_AUTH_BEGIN, cp_auth_begin);
	srv_handle(d->srv, MSG_IX_CP_AUTH_PROVE, cp_auth_prove);
	srv_on_conn(d->srv, on_conn);
}
