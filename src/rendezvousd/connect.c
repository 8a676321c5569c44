/* connect: CONNECT_REQ — heartbeat the target, draw a code, offer it. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "msgenc.h"
#include "rdv.h"
#include "tlv.h"

/* One CONNECT_REQ, travelling from the caller's loop to the target's and
 * back; or one RDV_RELAY_OFFER from another instance (relay), which ends
 * where a CONNECT_REQ would wrap the caller's code. */
struct cj {
	rdv_t *rdv;
	srv_req_t *r; /* the caller's (relay: the other instance's) deferred request */
	int relay;
	char holder[RDV_ENDPOINT_CAP]; /* the instance forwarded to */
	mbox_t *caller_mb;
	char caller[RDV_ID_CAP];
	char target[RDV_ID_CAP];
	char caller_addr[RDV_ADDR_MAX];
	char actor[RDV_ID_CAP + 64];
	uint64_t gen; /* the target's registry entry */
	uint8_t sid[RDV_SID_LEN];
	uint8_t code[RDV_CODE_LEN];
	uint8_t wrapped[RDV_WRAP_LEN]; /* the caller's */
	int64_t issued, expires;
	int reserved; /* holds a climit reservation */
	int granted;  /* the offer was made: the reservation stays until it expires */
	/* filled on the target's loop */
	int status;
	char why[160];
	char t_endpoint[RDV_ENDPOINT_CAP];
	char t_overlay[RDV_ADDR_MAX];
};

static void
cj_free(struct cj *j)
{
	rdv_t *rdv = j->rdv;

	if (j->reserved && !j->granted)
		rdv_climit_release(rdv->cl, j->caller, j->target, j->expires);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
	rdv_unref(rdv);
}

/* ---- the answer, on the caller's loop, after the store ---- */

static int
cj_write(store_conn_t *c, void *arg, err_t *err)
{
	struct cj *j = arg;
	store_stmt_t *st;
	char hex[2 * RDV_SID_LEN + 1];

	hex_encode(j->sid, RDV_SID_LEN, hex);
	if (j->status != STB_OK)
		return daemon_auditf(j->rdv->d, c, err, "session_denied", j->actor,
		                     "caller=%s target=%s %s: %s", j->caller, j->target,
		                     stb_status_name(j->status), j->why);
	st = store_stmt(c,
	                "INSERT INTO sessions(session_id, caller_id, target_id, issued, expires) "
	                "VALUES(?1, ?2, ?3, ?4, ?5)",
	                err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, j->sid, RDV_SID_LEN);
	store_bind_str(st, 2, j->caller);
	store_bind_str(st, 3, j->target);
	store_bind_int64(st, 4, j->issued);
	store_bind_int64(st, 5, j->expires);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(j->rdv->d, c, err, "session_granted", j->actor,
	                     "session=%s caller=%s target=%s", hex, j->caller, j->target);
}

static void
cj_done(void *arg, const err_t *err)
{
	struct cj *j = arg;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(j->r, err);
	else if (j->status != STB_OK)
		srv_reply_err(j->r, j->status, "%s", j->why);
	else {
		b = srv_reply_begin(j->r);
		tlv_put(b, STB_TLV_RDV_SESSION_ID, j->sid, RDV_SID_LEN);
		tlv_put_str(b, STB_TLV_RDV_ENDPOINT, j->t_endpoint);
		tlv_put_str(b, STB_TLV_RDV_OVERLAY_ADDR, j->t_overlay);
		tlv_put(b, STB_TLV_RDV_WRAPPED_CODE, j->wrapped, RDV_WRAP_LEN);
		tlv_put_u64(b, STB_TLV_RDV_EXPIRES, (uint64_t)j->expires);
		srv_reply_end(j->r);
		j->granted = 1;
	}
	cj_free(j);
}

/* Records the outcome (session or denial) durably, then answers. */
static void
cj_finish(struct cj *j)
{
	err_t err;

	if (rdv_stopping(j->rdv)) {
		srv_reply_err(j->r, STB_UNAVAILABLE, "rendezvousd is shutting down");
		cj_free(j);
		return;
	}
	if (store_write(j->rdv->d->store, j->caller_mb, cj_write, cj_done, j, &err) == -1) {
		srv_reply_errt(j->r, &err);
		cj_free(j);
	}
}

/* A relay's answer to the instance that asked: no write here, that
 * instance records the outcome as for one of its own. */
static void
cj_relay_reply(struct cj *j)
{
	buf_t *b;

	if (j->status != STB_OK)
		srv_reply_err(j->r, j->status, "%s", j->why);
	else {
		b = srv_reply_begin(j->r);
		tlv_put_str(b, STB_TLV_RDV_ENDPOINT, j->t_endpoint);
		tlv_put_str(b, STB_TLV_RDV_OVERLAY_ADDR, j->t_overlay);
		srv_reply_end(j->r);
	}
	cj_free(j);
}

static void
cj_on_caller(void *arg)
{
	struct cj *j = arg;
	rdv_cstate_t *cs;

	if (j->relay) {
		cj_relay_reply(j);
		return;
	}
	cs = rdv_cstate(j->r->conn);
	if (j->status == STB_OK) {
		if (cs == NULL) {
			j->status = STB_UNAVAILABLE;
			snprintf(j->why, sizeof(j->why), "caller %s went offline", j->caller);
		} else if (rdv_wrap(cs->key, j->sid, j->caller, j->target, j->code, j->wrapped) ==
		           -1) {
			j->status = STB_INTERNAL;
			snprintf(j->why, sizeof(j->why), "cannot wrap the session code");
		}
	}
	OPENSSL_cleanse(j->code, sizeof(j->code));
	cj_finish(j);
}

static void
cj_back(struct cj *j, int status, const char *why)
{
	j->status = status;
	if (why != NULL)
		snprintf(j->why, sizeof(j->why), "target %s %s", j->target, why);
	if (mbox_post(j->caller_mb, cj_on_caller, j) == -1) {
		log_warnx("CONNECT_REQ %s -> %s: cannot return to the caller's loop", j->caller,
		          j->target);
		cj_free(j); /* the caller's connection is cut at drain */
	}
}

/* ---- on the target's loop ---- */

/* The RDV_SESSION_OFFER body for j's target. */
static int
cj_offer_enc(const struct cj *j, const uint8_t wrapped[RDV_WRAP_LEN], buf_t *b, err_t *err)
{
	struct msgreq_RDV_SESSION_OFFER q = {.RDV_SESSION_ID = MV_BYTES(j->sid, RDV_SID_LEN),
	                                     .RDV_CALLER_ID = MV_STR(j->caller),
	                                     .RDV_CALLER_ADDR = MV_STR(j->caller_addr),
	                                     .RDV_WRAPPED_CODE = MV_BYTES(wrapped, RDV_WRAP_LEN),
	                                     .RDV_EXPIRES = MV_U(j->expires)};

	return msgenc_RDV_SESSION_OFFER(b, &q, err);
}

static void
cj_heartbeat_done(rdv_cstate_t *ts, int ok, const char *why, void *arg)
{
	struct cj *j = arg;
	uint8_t wrapped[RDV_WRAP_LEN];
	err_t err;
	buf_t b;
	int rc;

	if (!ok) {
		cj_back(j, STB_UNAVAILABLE, why);
		return;
	}
	if (rdv_wrap(ts->key, j->sid, j->caller, j->target, j->code, wrapped) == -1) {
		cj_back(j, STB_INTERNAL, "cannot wrap the session code");
		return;
	}
	buf_init(&b, 512);
	if (cj_offer_enc(j, wrapped, &b, &err) == -1) {
		buf_free(&b);
		log_warnx("session offer to %s not encoded (%s): %s", j->target,
		          stb_status_name(err.status), err.msg);
		cj_back(j, STB_INTERNAL, err.msg);
		return;
	}
	rc = srv_conn_push(ts->conn, STB_MSG_RDV_SESSION_OFFER, &b, NULL);
	buf_free(&b);
	if (rc == -1) {
		cj_back(j, STB_UNAVAILABLE, "went offline before the offer");
		return;
	}
	memcpy(j->t_endpoint, ts->endpoint, sizeof(j->t_endpoint));
	memcpy(j->t_overlay, ts->overlay, sizeof(j->t_overlay));
	cj_back(j, STB_OK, NULL);
}

static void
cj_on_target(void *arg)
{
	struct cj *j = arg;
	srv_conn_t *c = rdv_registry_conn(j->rdv, j->target, j->gen);
	rdv_cstate_t *ts = c != NULL ? rdv_cstate(c) : NULL;

	if (ts == NULL) {
		cj_back(j, STB_UNAVAILABLE, "is offline");
		return;
	}
	if (rdv_wait_heartbeat(ts, (int)j->rdv->conf->connect_timeout_ms, cj_heartbeat_done, j) ==
	    -1)
		cj_back(j, STB_UNAVAILABLE, "cannot be reached on its control channel");
}

/* ---- CONNECT_REQ, on the caller's loop ---- */

/* The caller's limits (climit.h): 0, or refused (answered, no write, at
 * most one log line per caller per minute). */
static int
cj_limit(struct cj *j, srv_req_t *r)
{
	uint64_t report = 0;
	int rc =
	    rdv_climit_take(j->rdv->cl, j->caller, j->target, rdv_now_ms(), j->expires, &report);

	if (rc == RDV_CLIMIT_OK) {
		j->reserved = 1;
		return 0;
	}
	if (report > 0)
		log_info("RDV_CONNECT_REQ from %s: %llu refused in the last minute or so (now: %s)",
		         j->actor, (unsigned long long)report, rdv_climit_why(rc));
	srv_reply_err(r, STB_RATE_LIMITED, "%s", rdv_climit_why(rc));
	return -1;
}

/* ---- a target held by another instance (cluster.c) ---- */

/* The other instance's answer, on the caller's loop; a dead or
 * unreachable instance is an offline target. */
static void
cj_relayed(void *arg, const msg_t *rsp, const err_t *err)
{
	struct cj *j = arg;

	if (rsp == NULL) {
		log_info("CONNECT_REQ %s -> %s: its instance %s: %s", j->caller, j->target,
		         j->holder, err->msg);
		j->status = STB_UNAVAILABLE;
		snprintf(j->why, sizeof(j->why), "target %s is offline", j->target);
	} else if ((j->status = msg_status(rsp)) != STB_OK) {
		if (msg_get_str(rsp, TLV_IX_ERROR_TEXT, j->why, sizeof(j->why)) == -1)
			snprintf(j->why, sizeof(j->why), "target %s cannot be reached", j->target);
	} else if (msg_get_str(rsp, TLV_IX_RDV_ENDPOINT, j->t_endpoint, sizeof(j->t_endpoint)) ==
	               -1 ||
	           msg_get_str(rsp, TLV_IX_RDV_OVERLAY_ADDR, j->t_overlay, sizeof(j->t_overlay)) ==
	               -1) {
		j->status = STB_INTERNAL;
		snprintf(j->why, sizeof(j->why), "instance %.64s answered a bad relay", j->holder);
	}
	cj_on_caller(j);
}

/* Sends the offer to the instance at holder; 0, or -1 (nothing sent). */
static int
cj_forward(struct cj *j, const char *holder)
{
	struct msgreq_RDV_RELAY_OFFER q = {.RDV_TARGET_ID = MV_STR(j->target),
	                                   .RDV_SESSION_ID = MV_BYTES(j->sid, RDV_SID_LEN),
	                                   .RDV_CALLER_ID = MV_STR(j->caller),
	                                   .RDV_CALLER_ADDR = MV_STR(j->caller_addr),
	                                   .RDV_SESSION_CODE = MV_BYTES(j->code, RDV_CODE_LEN),
	                                   .RDV_EXPIRES = MV_U(j->expires)};
	peerpool_t *pp;
	err_t err;
	buf_t b;
	int rc;

	if ((pp = rdv_cluster_peer(j->rdv, holder, &err)) == NULL) {
		log_warnx("CONNECT_REQ %s -> %s: instance %.64s: %s", j->caller, j->target, holder,
		          err.msg);
		return -1;
	}
	snprintf(j->holder, sizeof(j->holder), "%s", holder);
	buf_init(&b, 512);
	rc = msgenc_RDV_RELAY_OFFER(&b, &q, &err);
	if (rc == 0)
		rc = peerpool_call(pp, srv_conn_base(j->r->conn), j->caller_mb,
		                   STB_MSG_RDV_RELAY_OFFER, &b, 0, cj_relayed, j, &err);
	buf_wipe(&b);
	if (rc == -1)
		log_info("CONNECT_REQ %s -> %s: instance %s: %s", j->caller, j->target, holder,
		         err.msg);
	return rc;
}

/* A target that is not online here: held by another live instance
 * (forwarded), known (UNAVAILABLE) or not (NOT_FOUND). */
static void
cj_offline(struct cj *j)
{
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	int known = 0, live = 0, rc;
	char holder[RDV_ENDPOINT_CAP] = "";
	const char *self = rdv_cluster_self(j->rdv);

	if ((c = store_reader(j->rdv->d->store, &err)) == NULL ||
	    (st = store_stmt(c,
	                     "SELECT CASE WHEN d.cred IS NULL THEN 0 ELSE 1 END, "
	                     "COALESCE(d.holder, ''), "
	                     "CASE WHEN i.lease_until >= ?2 THEN 1 ELSE 0 END "
	                     "FROM devices d LEFT JOIN rdv_instances i ON i.addr = d.holder "
	                     "WHERE d.device_id=?1",
	                     &err)) == NULL) {
		srv_reply_errt(j->r, &err);
		cj_free(j);
		return;
	}
	store_bind_str(st, 1, j->target);
	store_bind_int64(st, 2, (int64_t)time(NULL));
	if ((rc = store_step(st, &err)) == STORE_ROW) {
		known = (int)store_col_int64(st, 0);
		snprintf(holder, sizeof(holder), "%s", store_col_text(st, 1, NULL));
		live = (int)store_col_int64(st, 2);
	}
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE) {
		srv_reply_errt(j->r, &err);
		cj_free(j);
		return;
	}
	if (known && live && self != NULL && strcmp(holder, self) != 0 &&
	    cj_forward(j, holder) == 0)
		return;
	j->status = known ? STB_UNAVAILABLE : STB_NOT_FOUND;
	snprintf(j->why, sizeof(j->why), known ? "target %s is offline" : "no registered device %s",
	         j->target);
	cj_finish(j);
}

/* A request's job holding a reference on rdv, with its target; NULL when
 * out of memory (answered). */
static struct cj *
cj_new(rdv_t *rdv, srv_req_t *r, const msg_t *m)
{
	struct cj *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return NULL;
	}
	rdv_ref(rdv);
	j->rdv = rdv;
	msg_get_str(m, TLV_IX_RDV_TARGET_ID, j->target, sizeof(j->target));
	return j;
}

static void
rdv_connect(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	rdv_t *rdv = d->priv;
	rdv_cstate_t *cs = rdv_cstate(r->conn);
	struct cj *j;
	mbox_t *tmb;

	if (cs == NULL) {
		srv_reply_err(r, STB_UNAUTHENTICATED,
		              "RDV_CONNECT_REQ needs a control channel: send RDV_REGISTER first");
		return;
	}
	if ((j = cj_new(rdv, r, m)) == NULL)
		return;
	memcpy(j->caller, cs->device_id, sizeof(j->caller));
	memcpy(j->caller_addr, cs->overlay, sizeof(j->caller_addr));
	snprintf(j->actor, sizeof(j->actor), "%s@%s", cs->device_id, srv_conn_peer(r->conn));
	if (strcmp(j->target, j->caller) == 0) {
		srv_reply_err(r, STB_BAD_REQUEST, "a device cannot connect to itself");
		cj_free(j);
		return;
	}
	j->issued = (int64_t)time(NULL);
	j->expires = j->issued + rdv->conf->session_ttl_s;
	if (cj_limit(j, r) == -1) {
		cj_free(j);
		return;
	}
	if (RAND_bytes(j->sid, sizeof(j->sid)) != 1 || RAND_bytes(j->code, sizeof(j->code)) != 1) {
		srv_reply_err(r, STB_INTERNAL, "no randomness");
		cj_free(j);
		return;
	}
	j->caller_mb = srv_req_mbox(r);
	if ((j->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		cj_free(j);
		return;
	}
	if (rdv_registry_find(rdv, j->target, &j->gen, &tmb) == -1) {
		cj_offline(j);
		return;
	}
	if (mbox_post(tmb, cj_on_target, j) == -1) {
		srv_reply_err(j->r, STB_INTERNAL, "out of memory");
		cj_free(j);
	}
}

/* ---- RDV_RELAY_OFFER, from another instance ---- */

static void
rdv_relay(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	rdv_t *rdv = d->priv;
	struct cj *j;
	const uint8_t *p;
	size_t len;
	mbox_t *tmb;
	uint64_t exp = 0;

	if (rdv->cluster == NULL) {
		srv_reply_err(r, STB_UNAVAILABLE, "this rendezvousd is not in a cluster");
		return;
	}
	if ((j = cj_new(rdv, r, m)) == NULL)
		return;
	j->relay = 1;
	msg_get_str(m, TLV_IX_RDV_CALLER_ID, j->caller, sizeof(j->caller));
	msg_get_str(m, TLV_IX_RDV_CALLER_ADDR, j->caller_addr, sizeof(j->caller_addr));
	msg_get_u64(m, TLV_IX_RDV_EXPIRES, &exp);
	j->expires = (int64_t)exp;
	/* lengths: fixed by the registry, checked by the decoder */
	if (msg_get_bytes(m, TLV_IX_RDV_SESSION_ID, &p, &len) == 0 && len == RDV_SID_LEN)
		memcpy(j->sid, p, len);
	if (msg_get_bytes(m, TLV_IX_RDV_SESSION_CODE, &p, &len) == 0 && len == RDV_CODE_LEN)
		memcpy(j->code, p, len);
	snprintf(j->actor, sizeof(j->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	j->caller_mb = srv_req_mbox(r);
	if ((j->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		cj_free(j);
		return;
	}
	if (rdv_registry_find(rdv, j->target, &j->gen, &tmb) == -1) {
		j->status = STB_UNAVAILABLE; /* moved, or gone since its REGISTER here */
		snprintf(j->why, sizeof(j->why), "target %s is offline", j->target);
		cj_relay_reply(j);
		return;
	}
	if (mbox_post(tmb, cj_on_target, j) == -1) {
		srv_reply_err(j->r, STB_INTERNAL, "out of memory");
		cj_free(j);
	}
}

void
rdv_connect_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_RDV_CONNECT_REQ, rdv_connect);
	srv_handle(d->srv, MSG_IX_RDV_RELAY_OFFER, rdv_relay);
}
