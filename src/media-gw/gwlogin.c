/* login: GW_LOGIN_START (subscriber check, one-time nonce) and
 * GW_LOGIN_FINISH (consume the nonce, ca-authd checks the key info, token). */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "hex.h"
#include "log.h"
#include "msgenc.h"
#include "tlv.h"

#define SERIAL_MAX 20
#define WHY_MAX    (ERR_MSG_MAX + 64)

/* A LOGIN_FINISH in flight, from the CA call through the token write. */
struct lj {
	gw_t *gw;
	srv_req_t *r;
	char actor[160];
	gw_sess_t s; /* the consumed session (nonce wiped once sent) */
	int status;  /* STB_OK, or the refusal */
	char why[WHY_MAX];
	uint8_t serial[SERIAL_MAX];
	size_t serial_len;
	uint64_t cert_not_after;
	uint8_t token[GW_TOKEN_LEN];
	uint8_t hash[GW_HASH_LEN];
	int64_t issued, expires;
};

static void gw_refused(gw_t *gw, srv_req_t *r, const char *step, int status, const char *device_id);

static void
lj_free(struct lj *j)
{
	gw_t *gw = j->gw;

	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
	gw_unref(gw);
}

static struct lj *
lj_new(gw_t *gw, srv_req_t *r)
{
	struct lj *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	gw_ref(gw);
	j->gw = gw;
	gw_actor(r, j->actor, sizeof(j->actor));
	if ((j->r = srv_req_defer(r)) == NULL) {
		lj_free(j);
		return NULL;
	}
	return j;
}

/* ---- the record, then the answer ---- */

/* In the writer: a subscriber suspended (or moved to another certificate)
 * while the CA was checking gets no token. */
static int
lj_still_subscribed(struct lj *j, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	int ok, rc;

	if ((st = store_stmt(c, "SELECT active, cert_id FROM subscribers WHERE device_id=?1",
	                     err)) == NULL)
		return -1;
	store_bind_str(st, 1, j->s.device_id);
	rc = store_step(st, err);
	ok = rc == STORE_ROW && store_col_int64(st, 0) == 1 &&
	     strcmp(store_col_text(st, 1, NULL), j->s.cert_id) == 0;
	store_reset(st);
	if (rc < 0)
		return -1;
	if (!ok) {
		j->status = STB_FORBIDDEN;
		snprintf(j->why, sizeof(j->why),
		         "subscriber %s was suspended or changed during the login", j->s.device_id);
	}
	return 0;
}

/* The session's single use, across every instance: its row goes in with
 * the token, so a second finish of one session (here or at another
 * instance, before or after a restart) is REPLAY. */
static int
lj_use_once(struct lj *j, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	int rc;

	if ((st = store_stmt(c, "INSERT INTO login_used(sid, expires) VALUES(?1, ?2)", err)) ==
	    NULL)
		return -1;
	store_bind_blob(st, 1, j->s.sid, LOGIN_SESSION_LEN);
	store_bind_int64(st, 2, j->s.expires);
	if ((rc = store_step(st, err)) == STORE_UNIQUE)
		return err_set(err, STB_REPLAY,
		               "login session was already used: its nonce works once");
	return rc == STORE_DONE ? 0 : -1;
}

/* Only a proven login gets here (the CA accepted its key info): the token
 * and its audit row, or the refusal of a subscriber suspended meanwhile. */
static int
lj_write(store_conn_t *c, void *arg, err_t *err)
{
	struct lj *j = arg;
	char sid[2 * 8 + 1];

	hex_encode(j->s.sid, 8, sid);
	if (lj_use_once(j, c, err) == -1 || lj_still_subscribed(j, c, err) == -1)
		return -1;
	if (j->status != STB_OK)
		return daemon_auditf(j->gw->d, c, err, "login_denied", j->actor,
		                     "step=finish device=%s cert=%s session=%s %s: %s",
		                     j->s.device_id, j->s.cert_id, sid, stb_status_name(j->status),
		                     j->why);
	if (gw_token_store(j->gw, c, j->hash, j->s.device_id, j->s.cert_id, j->serial,
	                   j->serial_len, j->issued, j->expires, err) == -1)
		return -1;
	return daemon_auditf(j->gw->d, c, err, "login_granted", j->actor,
	                     "device=%s cert=%s session=%s token_expires=%lld", j->s.device_id,
	                     j->s.cert_id, sid, (long long)j->expires);
}

static void
lj_done(void *arg, const err_t *err)
{
	struct lj *j = arg;
	buf_t *b;

	if (err->status == STB_REPLAY) {
		/* a replayed proof has proven nothing: a refusal, no log line */
		gw_refused(j->gw, j->r, "login_finish", err->status, j->s.device_id);
		srv_reply_errt(j->r, err);
	} else if (err->status != STB_OK) {
		log_warnx("login of %s not recorded: %s", j->s.device_id, err->msg);
		srv_reply_errt(j->r, err);
	} else if (j->status != STB_OK)
		srv_reply_err(j->r, j->status, "%s", j->why);
	else {
		b = srv_reply_begin(j->r);
		tlv_put(b, STB_TLV_ACCESS_TOKEN, j->token, GW_TOKEN_LEN);
		tlv_put_u64(b, STB_TLV_TOKEN_EXPIRES, (uint64_t)j->expires);
		srv_reply_end(j->r);
	}
	lj_free(j);
}

/* Records the proven login durably (token, or the late refusal), then
 * answers. */
static void
lj_finish(struct lj *j)
{
	err_t err;

	if (gw_stopping(j->gw)) {
		srv_reply_err(j->r, STB_UNAVAILABLE, "media-gw is shutting down");
		lj_free(j);
		return;
	}
	if (store_write(j->gw->d->store, srv_req_mbox(j->r), lj_write, lj_done, j, &err) == -1) {
		srv_reply_errt(j->r, &err);
		lj_free(j);
	}
}

/* The STB has not proven anything yet: its refusal is counted in the
 * refusal summaries (refusal.h), never logged or written one by one. */
static void
gw_refused(gw_t *gw, srv_req_t *r, const char *step, int status, const char *device_id)
{
	daemon_refused(gw->d, r, step, stb_status_name(status),
	               device_id != NULL && device_id[0] != '\0' ? device_id : NULL);
}

static void
lj_refuse(struct lj *j, int status, const char *why)
{
	gw_refused(j->gw, j->r, "login_finish", status, j->s.device_id);
	srv_reply_err(j->r, status, "%s", why);
	lj_free(j);
}

/* ---- GW_LOGIN_START ---- */

/* Reads the subscriber: 0 with the cert_id, or -1 with NOT_FOUND /
 * FORBIDDEN / a store error. */
static int
sub_lookup(gw_t *gw, const char *device_id, char cert_id[GW_ID_CAP], err_t *err)
{
	store_conn_t *c = store_reader(gw->d->store, err);
	store_stmt_t *st;
	int active, rc;

	if (c == NULL ||
	    (st = store_stmt(c, "SELECT cert_id, active FROM subscribers WHERE device_id=?1",
	                     err)) == NULL)
		return -1;
	store_bind_str(st, 1, device_id);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc < 0 ? -1
		              : err_set(err, STB_NOT_FOUND, "device %s is not a subscriber",
		                        device_id);
	}
	snprintf(cert_id, GW_ID_CAP, "%s", store_col_text(st, 0, NULL));
	active = (int)store_col_int64(st, 1);
	store_reset(st);
	if (active != 1)
		return err_set(err, STB_FORBIDDEN, "subscriber %s is suspended", device_id);
	return 0;
}

static void
gw_login_start(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	gw_t *gw = d->priv;
	char device_id[GW_ID_CAP], cert_id[GW_ID_CAP], source[REFUSAL_SOURCE_MAX + 1];
	gw_sess_t s;
	err_t err;
	buf_t *b;

	msg_get_str(m, TLV_IX_DEVICE_ID, device_id, sizeof(device_id)); /* ID: <= 128 */
	srcaddr_key(srv_conn_peer(r->conn), source);
	if (sub_lookup(gw, device_id, cert_id, &err) == -1 ||
	    gw_sess_open(gw->sess, device_id, cert_id, source, (int64_t)time(NULL), &s, &err) ==
	        -1) {
		if (err.status == STB_NOT_FOUND || err.status == STB_FORBIDDEN ||
		    err.status == STB_RATE_LIMITED)
			gw_refused(gw, r, "login_start", err.status, device_id);
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_CERT_ID, s.cert_id);
	tlv_put(b, STB_TLV_GW_NONCE, s.nonce, LOGIN_NONCE_LEN);
	tlv_put(b, STB_TLV_LOGIN_SESSION_ID, s.sid, LOGIN_SESSION_LEN);
	tlv_put_u64(b, STB_TLV_LOGIN_EXPIRES, (uint64_t)s.expires);
	srv_reply_end(r);
	OPENSSL_cleanse(&s, sizeof(s));
}

/* ---- GW_LOGIN_FINISH ---- */

static void
lj_issue(struct lj *j)
{
	int64_t ttl = j->gw->conf->token_ttl_s;

	j->issued = (int64_t)time(NULL);
	j->expires = j->issued + ttl;
	/* a token never outlives the certificate that earned it */
	if (j->cert_not_after > 0 && j->cert_not_after < (uint64_t)j->expires)
		j->expires = (int64_t)j->cert_not_after;
	if (RAND_bytes(j->token, GW_TOKEN_LEN) != 1 ||
	    gw_token_hash(j->gw, j->token, j->hash) == -1) {
		srv_reply_err(j->r, STB_INTERNAL, "cannot draw a token");
		lj_free(j);
		return;
	}
	lj_finish(j);
}

static void
lj_verified(void *arg, const msg_t *rsp, const err_t *err)
{
	struct lj *j = arg;
	const uint8_t *serial;
	char text[512] = "", why[WHY_MAX];
	int status;

	if (rsp == NULL) {
		snprintf(why, sizeof(why), "CA unavailable: %s", err->msg);
		lj_refuse(j, STB_UNAVAILABLE, why);
		return;
	}
	if ((status = msg_status(rsp)) != STB_OK) {
		msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
		status = gw_ca_refusal(status, text, why, sizeof(why));
		lj_refuse(j, status, why);
		return;
	}
	if (msg_get_bytes(rsp, TLV_IX_CERT_SERIAL, &serial, &j->serial_len) == 0 &&
	    j->serial_len <= SERIAL_MAX)
		memcpy(j->serial, serial, j->serial_len);
	else
		j->serial_len = 0;
	msg_get_u64(rsp, TLV_IX_NOT_AFTER, &j->cert_not_after);
	lj_issue(j);
}

static void
gw_login_finish(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	gw_t *gw = d->priv;
	const uint8_t *sid, *cert, *proof;
	size_t sidlen, certlen, prooflen;
	uint64_t ts = 0;
	struct lj *j;
	err_t err;
	buf_t b;
	int rc;

	/* lengths are the registry's (msg_parse checked them) */
	msg_get_bytes(m, TLV_IX_LOGIN_SESSION_ID, &sid, &sidlen);
	msg_get_bytes(m, TLV_IX_CERT_DER, &cert, &certlen);
	msg_get_bytes(m, TLV_IX_KEYINFO_PROOF, &proof, &prooflen);
	msg_get_u64(m, TLV_IX_KEYINFO_TIME, &ts);
	if ((j = lj_new(gw, r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	/* a session this instance did not open (another instance's, or one from
	 * before a restart) is checked from its id and the certificate */
	if (gw_sess_take(gw->sess, sid, (int64_t)time(NULL), &j->s, &err) == -1 &&
	    (err.status != STB_NOT_FOUND ||
	     gw_sid_check(gw, sid, cert, certlen, (int64_t)time(NULL), &j->s, &err) == -1)) {
		memcpy(j->s.sid, sid, LOGIN_SESSION_LEN);
		OPENSSL_cleanse(j->s.nonce, sizeof(j->s.nonce));
		lj_refuse(j, err.status, err.msg);
		return;
	}
	struct msgreq_CA_VERIFY_KEYINFO q = {.DEVICE_ID = MV_STR(j->s.device_id),
	                                     .CERT_ID = MV_STR(j->s.cert_id),
	                                     .LOGIN_SESSION_ID =
	                                         MV_BYTES(j->s.sid, LOGIN_SESSION_LEN),
	                                     .GW_NONCE = MV_BYTES(j->s.nonce, LOGIN_NONCE_LEN),
	                                     .CERT_DER = MV_BYTES(cert, certlen),
	                                     .KEYINFO_PROOF = MV_BYTES(proof, prooflen),
	                                     .KEYINFO_TIME = MV_U(ts)};
	buf_init(&b, 2 * GW_ID_CAP + certlen + prooflen + 256);
	rc = msgenc_CA_VERIFY_KEYINFO(&b, &q, &err);
	OPENSSL_cleanse(j->s.nonce, sizeof(j->s.nonce));
	if (rc == -1) {
		buf_wipe(&b);
		log_warnx("login of %s: CA_VERIFY_KEYINFO not encoded (%s): %s", j->s.device_id,
		          stb_status_name(err.status), err.msg);
		lj_refuse(j, STB_INTERNAL, err.msg);
		return;
	}
	rc = gw_ca_call(gw->ca, j->r, STB_MSG_CA_VERIFY_KEYINFO, &b, (int)gw->conf->ca_timeout_ms,
	                lj_verified, j, &err);
	buf_wipe(&b);
	if (rc == -1) {
		char why[WHY_MAX];
		snprintf(why, sizeof(why), "CA unavailable: %s", err.msg);
		lj_refuse(j, STB_UNAVAILABLE, why);
	}
}

void
gw_login_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_GW_LOGIN_START, gw_login_start);
	srv_handle(d->srv, MSG_IX_GW_LOGIN_FINISH, gw_login_finish);
}
