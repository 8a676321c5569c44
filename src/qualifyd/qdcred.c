/*
 * qdcred: the credentialing role.  QD_CRED_REQ is checked in this order,
 * and the first failure is the answer (audited, no HSS row consumed):
 *   the certificate chains to a manufacturer CA and names DEVICE_ID;
 *   the device is enrolled (NOT_FOUND), its nonce unused (REPLAY) and
 *   unexpired (EXPIRED); the session nonce derives from it
 *   (UNAUTHENTICATED); OCSP says good (REVOKED, NOT_FOUND for unknown,
 *   UNAVAILABLE / TIMEOUT unreachable, UNAUTHENTICATED unverifiable,
 *   EXPIRED stale, REPLAY for a nonce not ours).
 * Then one store job spends the nonce and takes an HSS row; the package is
 * made on the loop, activated in the HSS (osmo-hlr: on the hss workpool),
 * handed to the provisioning role with a one-time ticket, and the device
 * gets {address, ticket, expires}.  A failure after the row was taken
 * gives the row back and leaves the nonce unspent.
 */
#include <openssl/crypto.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msgenc.h"
#include "ocspc.h"
#include "ocspq.h"
#include "qd.h"
#include "tlv.h"

#define CRED_URL_MAX 512

struct cred {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1];
	char actor[160];
	char url[CRED_URL_MAX];
	uint8_t client_random[QUALIFY_RANDOM_LEN];
	uint8_t session[QUALIFY_SESSION_LEN];
	int64_t enrolled_at;
	X509 *cert, *issuer;
	ocspc_req_t *oq;
	hss_cred_t hc;
	int allocated;
	uint8_t ticket[QUALIFY_TICKET_LEN];
	uint8_t digest[QUALIFY_DIGEST_LEN];
	uint64_t issued, expires;
	buf_t pkg;
	err_t fail; /* why a later step failed */
};

static void
cred_free(struct cred *c)
{
	X509_free(c->cert);
	X509_free(c->issuer);
	ocspc_req_free(c->oq);
	buf_free(&c->pkg);
	hss_cred_wipe(&c->hc);
	OPENSSL_cleanse(c->ticket, sizeof(c->ticket));
	free(c);
}

static void
cred_refuse(struct cred *c, const err_t *why)
{
	qd_refuse(c->qd, c->r, c->device_id, "credentials_refused", why);
	c->r = NULL;
	cred_free(c);
}

/* ---- undo: the row back to the pool, the nonce unspent ---- */

static int
cred_undo_write(store_conn_t *sc, void *arg, err_t *err)
{
	struct cred *c = arg;
	int64_t now = qd_now();
	store_stmt_t *st;

	if (hss_release(c->qd->hss, sc, c->hc.imsi, now, err) == -1)
		return -1;
	st = store_stmt(sc,
	                "UPDATE qd_devices SET state=0, imsi=NULL, pkg_expires=NULL, changed_at=?2 "
	                "WHERE device_id=?1 AND state=1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, c->device_id);
	store_bind_int64(st, 2, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(c->qd->d, sc, err, "credentials_failed", c->actor,
	                     "device=%s imsi=%s released status=%s reason=%s", c->device_id,
	                     c->hc.imsi, stb_status_name(c->fail.status), c->fail.msg);
}

static void
cred_undo_done(void *arg, const err_t *err)
{
	struct cred *c = arg;

	if (err->status != STB_OK)
		log_warnx("device %s: IMSI %s stays held after a failure: %s", c->device_id,
		          c->hc.imsi, err->msg);
	srv_reply_errt(c->r, &c->fail);
	cred_free(c);
}

static void
cred_fail(struct cred *c, const err_t *why)
{
	err_t err;

	c->fail = *why;
	if (store_write(c->qd->d->store, srv_req_mbox(c->r), cred_undo_write, cred_undo_done, c,
	                &err) == -1) {
		log_warnx("device %s: IMSI %s stays held: %s", c->device_id, c->hc.imsi, err.msg);
		srv_reply_errt(c->r, why);
		cred_free(c);
	}
}

/* ---- the package is durable: record it, answer ---- */

static int
cred_issued_write(store_conn_t *sc, void *arg, err_t *err)
{
	struct cred *c = arg;
	store_stmt_t *st;

	if ((c->qd->roles & QD_ROLE_PROV) &&
	    qd_prov_put(c->qd, sc, c->device_id, c->ticket, c->expires, c->pkg.data, c->pkg.len,
	                err) == -1)
		return -1;
	st = store_stmt(sc,
	                "UPDATE qd_devices SET pkg_digest=?2, pkg_expires=?3, changed_at=?4 "
	                "WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, c->device_id);
	store_bind_blob(st, 2, c->digest, sizeof(c->digest));
	store_bind_int64(st, 3, (int64_t)c->expires);
	store_bind_int64(st, 4, (int64_t)c->issued);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(c->qd->d, sc, err, "package_issued", c->actor,
	                     "device=%s imsi=%s hss=%s expires=%llu", c->device_id, c->hc.imsi,
	                     hss_backend(c->qd->hss), (unsigned long long)c->expires);
}

static void
cred_issued_done(void *arg, const err_t *err)
{
	struct cred *c = arg;
	buf_t *b;

	if (err->status != STB_OK) {
		cred_fail(c, err);
		return;
	}
	b = srv_reply_begin(c->r);
	tlv_put_str(b, STB_TLV_QD_PROV_ADDR, c->qd->prov_addr);
	tlv_put(b, STB_TLV_QD_TICKET, c->ticket, sizeof(c->ticket));
	tlv_put_u64(b, STB_TLV_QD_TICKET_EXPIRES, c->expires);
	srv_reply_end(c->r);
	cred_free(c);
}

static void
cred_record(struct cred *c)
{
	err_t err;

	if (store_write(c->qd->d->store, srv_req_mbox(c->r), cred_issued_write, cred_issued_done, c,
	                &err) == -1)
		cred_fail(c, &err);
}

static void
cred_put_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct cred *c = arg;
	err_t e;

	if (err->status != STB_OK) {
		err_set(&e, err->status, "provisioning role: %s", err->msg);
		cred_fail(c, &e);
	} else if (msg_status(rsp) != STB_OK) {
		char text[256] = "";
		msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
		err_set(&e, STB_UNAVAILABLE, "provisioning role refused the package: %s", text);
		cred_fail(c, &e);
	} else
		cred_record(c);
}

/* The package goes to the provisioning role (here: in the record job). */
static void
cred_hand_over(struct cred *c)
{
	struct msgreq_QD_PKG_PUT q = {
	    .DEVICE_ID = MV_STR(c->device_id),
	    .QD_TICKET = MV_BYTES(c->ticket, sizeof(c->ticket)),
	    .QD_TICKET_EXPIRES = MV_U(c->expires),
	    .QD_PACKAGE = MV_BYTES(c->pkg.data, c->pkg.len),
	};
	err_t err;
	buf_t b;

	if (c->qd->prov_peer == NULL) {
		cred_record(c);
		return;
	}
	buf_init(&b, QUALIFY_PKG_MAX + 1024);
	if (msgenc_QD_PKG_PUT(&b, &q, &err) == -1 ||
	    peerpool_call(c->qd->prov_peer, srv_conn_base(c->r->conn), srv_req_mbox(c->r),
	                  STB_MSG_QD_PKG_PUT, &b, 0, cred_put_done, c, &err) == -1) {
		err_t e;
		err_set(&e, err.status, "provisioning role: %s", err.msg);
		cred_fail(c, &e);
	}
	buf_wipe(&b);
}

/* osmo-hlr: the subscriber is made off the loop */
static void
cred_activate_work(void *arg)
{
	struct cred *c = arg;

	err_clear(&c->fail);
	if (hss_activate(c->qd->hss, &c->hc, &c->fail) == 0)
		err_clear(&c->fail);
}

static void
cred_activate_done(void *arg)
{
	struct cred *c = arg;

	if (c->fail.status != STB_OK) {
		err_t e = c->fail;
		err_set(&c->fail, e.status, "HSS (%s): %s", hss_backend(c->qd->hss), e.msg);
		cred_fail(c, &c->fail);
		return;
	}
	cred_hand_over(c);
}

static int
cred_make_package(struct cred *c, err_t *err)
{
	qualify_creds_t q;
	int rc;

	memset(&q, 0, sizeof(q));
	snprintf(q.device_id, sizeof(q.device_id), "%s", c->device_id);
	memcpy(q.session_nonce, c->session, sizeof(q.session_nonce));
	memcpy(q.imsi, c->hc.imsi, sizeof(q.imsi));
	memcpy(q.k, c->hc.k, sizeof(q.k));
	memcpy(q.opc, c->hc.opc, sizeof(q.opc));
	c->issued = (uint64_t)qd_now();
	c->expires = c->issued + (uint64_t)c->qd->conf->ticket_ttl_s;
	q.issued = c->issued;
	q.expires = c->expires;
	buf_init(&c->pkg, QUALIFY_PKG_MAX);
	rc = qualify_pkg_make(&q, c->cert, c->qd->op_cert, c->qd->op_key, c->qd->op_chain, &c->pkg,
	                      err);
	qualify_creds_wipe(&q);
	if (rc == -1)
		return -1;
	if (qualify_pkg_digest(c->pkg.data, c->pkg.len, c->digest, err) == -1)
		return -1;
	if (RAND_bytes(c->ticket, sizeof(c->ticket)) != 1)
		return err_set(err, STB_INTERNAL, "cannot draw a ticket");
	return 0;
}

/* ---- the nonce spent and a row taken, in one job ---- */

static int
cred_alloc_write(store_conn_t *sc, void *arg, err_t *err)
{
	struct cred *c = arg;
	int64_t now = qd_now();
	store_stmt_t *st;
	int s, state;
	int64_t exp, at;

	st = store_stmt(sc,
	                "SELECT state, nonce_expires, enrolled_at FROM qd_devices "
	                "WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, c->device_id);
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "device %s is not enrolled", c->device_id);
	if (s != STORE_ROW)
		return -1;
	state = (int)store_col_int64(st, 0);
	exp = store_col_int64(st, 1);
	at = store_col_int64(st, 2);
	store_reset(st);
	/* another request of the same device won the race, or it was enrolled again */
	if (state != QD_DEV_ENROLLED || at != c->enrolled_at)
		return err_set(err, STB_REPLAY, "the registration nonce was used already");
	if (exp <= now)
		return err_set(err, STB_EXPIRED, "the registration nonce expired");
	if (hss_allocate(c->qd->hss, sc, c->device_id, now, &c->hc, err) == -1)
		return -1;
	st = store_stmt(sc,
	                "UPDATE qd_devices SET state=1, imsi=?2, pkg_expires=?4, changed_at=?3 "
	                "WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, c->device_id);
	store_bind_str(st, 2, c->hc.imsi);
	store_bind_int64(st, 3, now);
	/* no enrolling again while the package is being made */
	store_bind_int64(st, 4, now + c->qd->conf->ticket_ttl_s);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void
cred_alloc_done(void *arg, const err_t *err)
{
	struct cred *c = arg;
	err_t e;

	if (err->status != STB_OK) { /* nothing was written: no row taken */
		cred_refuse(c, err);
		return;
	}
	c->allocated = 1;
	if (cred_make_package(c, &e) == -1) {
		cred_fail(c, &e);
		return;
	}
	if (strcmp(hss_backend(c->qd->hss), "embedded") == 0) {
		cred_hand_over(c);
		return;
	}
	if (workpool_submit(c->qd->hss_jobs, cred_activate_work, srv_req_mbox(c->r),
	                    cred_activate_done, c, &e) == -1)
		cred_fail(c, &e);
}

/* ---- OCSP ---- */

static void
cred_ocsp_done(void *arg, OCSP_RESPONSE *rsp, const err_t *qerr)
{
	struct cred *c = arg;
	ocspc_opts_t opts = {.skew_s = (long)c->qd->conf->ocsp_skew_s,
	                     .max_age_s = (long)c->qd->conf->ocsp_max_age_s};
	ocspc_result_t res;
	err_t err;
	int rc;

	if (rsp == NULL) {
		err_set(&err, qerr->status, "OCSP responder: %s", qerr->msg);
		cred_refuse(c, &err);
		return;
	}
	rc = ocspc_check_parsed(c->oq, rsp, &opts, &res, &err);
	OCSP_RESPONSE_free(rsp);
	if (rc == -1) {
		err_t e = err;
		if (e.status == STB_NOT_FOUND)
			err_set(&err, STB_NOT_FOUND,
			        "OCSP: the certificate is unknown to the responder");
		else
			err_set(&err, e.status, "OCSP: %s", e.msg);
		cred_refuse(c, &err);
		return;
	}
	if (store_write(c->qd->d->store, srv_req_mbox(c->r), cred_alloc_write, cred_alloc_done, c,
	                &err) == -1) {
		srv_reply_errt(c->r, &err);
		cred_free(c);
	}
}

static int
cred_ocsp_url(struct cred *c, err_t *err)
{
	STACK_OF(OPENSSL_STRING) * aia;
	const char *u;

	if (c->qd->conf->ocsp_url[0] != '\0') {
		snprintf(c->url, sizeof(c->url), "%s", c->qd->conf->ocsp_url);
		return 0;
	}
	aia = X509_get1_ocsp(c->cert);
	u = aia != NULL && sk_OPENSSL_STRING_num(aia) > 0 ? sk_OPENSSL_STRING_value(aia, 0) : NULL;
	if (u != NULL)
		snprintf(c->url, sizeof(c->url), "%s", u);
	X509_email_free(aia);
	if (u == NULL)
		return err_set(
		    err, STB_UNAVAILABLE,
		    "no OCSP responder: ocsp.url is unset and the certificate names none");
	return 0;
}

static int
cred_ocsp_start(struct cred *c, err_t *err)
{
	ocspq_conf_t oc = {.timeout_ms = (int)c->qd->conf->ocsp_timeout_ms,
	                   .max_rsp = OCSPC_RESP_MAX};
	const uint8_t *der;
	OCSP_REQUEST *req;
	ocspq_t *q;
	size_t len;
	int rc;

	if (cred_ocsp_url(c, err) == -1)
		return -1;
	if (c->qd->conf->ocsp_url[0] != '\0') {
		oc.addr = &c->qd->ocsp_ss;
		oc.addrlen = c->qd->ocsp_sl;
	}
	c->oq = ocspc_req_new(
	    c->cert, c->issuer,
	    strcmp(c->qd->conf->ocsp_hash, "sha256") == 0 ? OCSPC_SHA256 : OCSPC_SHA1, err);
	if (c->oq == NULL)
		return -1;
	der = ocspc_req_der(c->oq, &len);
	if ((req = d2i_OCSP_REQUEST(NULL, &der, (long)len)) == NULL)
		return err_set_ossl(err, STB_INTERNAL, "OCSP request");
	rc = ocspq_start(srv_conn_base(c->r->conn), c->url, req, &oc, cred_ocsp_done, c, &q, err);
	OCSP_REQUEST_free(req);
	return rc;
}

/* ---- the request ---- */

static int
cred_check_nonce(struct cred *c, err_t *err)
{
	char aad[STB_ID_MAX + 16];
	uint8_t nonce[QUALIFY_NONCE_LEN];
	store_conn_t *sc;
	store_stmt_t *st;
	const void *blob;
	size_t blen, n = 0;
	int s, state, rc;
	int64_t exp;

	if ((sc = store_reader(c->qd->d->store, err)) == NULL ||
	    (st = store_stmt(sc,
	                     "SELECT nonce, state, nonce_expires, enrolled_at FROM qd_devices "
	                     "WHERE device_id=?1",
	                     err)) == NULL)
		return -1;
	store_bind_str(st, 1, c->device_id);
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "device %s is not enrolled", c->device_id);
	if (s != STORE_ROW)
		return -1;
	blob = store_col_blob(st, 0, &blen);
	state = (int)store_col_int64(st, 1);
	exp = store_col_int64(st, 2);
	c->enrolled_at = store_col_int64(st, 3);
	qd_aad(aad, sizeof(aad), "nonce", c->device_id);
	s = sealed_open(c->qd->d->kek, aad, strlen(aad), blob, blen, nonce, sizeof(nonce), &n, err);
	store_reset(st);
	if (s == -1 || n != sizeof(nonce)) {
		OPENSSL_cleanse(nonce, sizeof(nonce));
		return err_set(err, STB_INTERNAL, "the stored nonce of %s does not open",
		               c->device_id);
	}
	if (state != QD_DEV_ENROLLED)
		rc = err_set(err, STB_REPLAY, "the registration nonce was used already");
	else if (exp <= qd_now())
		rc = err_set(err, STB_EXPIRED,
		             "the registration nonce expired; enrol the device again");
	else
		rc = qualify_session_check(nonce, c->device_id, c->client_random, c->session, err);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return rc;
}

static void
qd_cred_req(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	char id[STB_ID_MAX + 1];
	X509 *issuer = NULL;
	struct cred *c;
	const uint8_t *v;
	size_t n;
	err_t err;

	if (qd_device_of(qd, r, id, &issuer, &err) == -1) {
		qd_refuse(qd, r, NULL, "credentials_refused", &err);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		X509_free(issuer);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	/* the issuer of the chain just built: a resumed session has none */
	c->issuer = issuer;
	c->qd = qd;
	c->r = r;
	qd_actor(r, c->actor, sizeof(c->actor));
	msg_get_str(m, TLV_IX_DEVICE_ID, c->device_id, sizeof(c->device_id));
	msg_get_bytes(m, TLV_IX_QD_CLIENT_RANDOM, &v, &n);
	memcpy(c->client_random, v, sizeof(c->client_random));
	msg_get_bytes(m, TLV_IX_QD_SESSION_NONCE, &v, &n);
	memcpy(c->session, v, sizeof(c->session));
	if (strcmp(c->device_id, id) != 0) {
		err_set(&err, STB_FORBIDDEN, "the certificate is %s's, not %s's", id, c->device_id);
		snprintf(c->device_id, sizeof(c->device_id), "%s", id);
		cred_refuse(c, &err);
		return;
	}
	if (c->issuer == NULL) {
		err_set(&err, STB_UNAUTHENTICATED, "the certificate's issuer is not known");
		cred_refuse(c, &err);
		return;
	}
	c->cert = srv_conn_peer_cert(r->conn);
	X509_up_ref(c->cert);
	if (cred_check_nonce(c, &err) == -1) {
		if (err.status == STB_INTERNAL) {
			srv_reply_errt(r, &err);
			cred_free(c);
		} else
			cred_refuse(c, &err);
		return;
	}
	if ((c->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		cred_free(c);
		return;
	}
	if (cred_ocsp_start(c, &err) == -1)
		cred_refuse(c, &err);
}

void
qd_cred_register(qd_t *qd)
{
	srv_handle(qd->d->srv, MSG_IX_QD_CRED_REQ, qd_cred_req);
	qd_enrol_register(qd);
	qd_done_register(qd);
}
