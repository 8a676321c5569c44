/*
 * qdreg: enrolment (admin, on the credentialing side) and the registration
 * role: a device with its certificate gets its own nonce and where the
 * credentialing role is.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msgenc.h"
#include "qd.h"
#include "tlv.h"

/* ---- the registration role's table ---- */

int
qd_reg_put(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *nonce, uint64_t expires,
           const char *cred_addr, const char *routing, err_t *err)
{
	char aad[STB_ID_MAX + 16];
	store_stmt_t *st;
	buf_t sealed;
	int rc = -1;

	qd_aad(aad, sizeof(aad), "reg", device_id);
	buf_init(&sealed, 128);
	if (sealed_seal(qd->d->kek, aad, strlen(aad), nonce, QUALIFY_NONCE_LEN, &sealed, err) == -1)
		goto out;
	st = store_stmt(c,
	                "INSERT INTO qd_reg(device_id, nonce, expires, cred_addr, routing, "
	                "updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (device_id) DO "
	                "UPDATE SET nonce=excluded.nonce, expires=excluded.expires, "
	                "cred_addr=excluded.cred_addr, routing=excluded.routing, "
	                "updated_at=excluded.updated_at",
	                err);
	if (st == NULL)
		goto out;
	store_bind_str(st, 1, device_id);
	store_bind_blob(st, 2, sealed.data, sealed.len);
	store_bind_int64(st, 3, (int64_t)expires);
	store_bind_str(st, 4, cred_addr);
	store_bind_str(st, 5, routing != NULL && routing[0] ? routing : NULL);
	store_bind_int64(st, 6, qd_now());
	if (store_step(st, err) != STORE_DONE)
		goto out;
	rc = 0;
out:
	buf_free(&sealed);
	return rc;
}

/* ---- enrolment ---- */

struct enrol {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1];
	char routing[QD_ROUTING_MAX + 1];
	char actor[160];
	uint8_t nonce[QUALIFY_NONCE_LEN];
	uint64_t expires;
	int replaced;
};

static void
enrol_free(struct enrol *e)
{
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
}

static int
enrol_write(store_conn_t *c, void *arg, err_t *err)
{
	struct enrol *e = arg;
	qd_t *qd = e->qd;
	char aad[STB_ID_MAX + 16];
	int64_t now = qd_now();
	store_stmt_t *st;
	buf_t sealed;
	int rc = -1, s;

	st = store_stmt(
	    c, "SELECT state, COALESCE(pkg_expires, 0) FROM qd_devices WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, e->device_id);
	if ((s = store_step(st, err)) == STORE_ROW) {
		int state = (int)store_col_int64(st, 0);
		int64_t pexp = store_col_int64(st, 1);
		store_reset(st);
		if (state == QD_DEV_CREDENTIALED && pexp > now)
			return err_set(err, STB_CONFLICT,
			               "device %s has a package waiting until it expires",
			               e->device_id);
		e->replaced = 1;
	} else if (s != STORE_DONE)
		return -1;
	qd_aad(aad, sizeof(aad), "nonce", e->device_id);
	buf_init(&sealed, 128);
	if (sealed_seal(qd->d->kek, aad, strlen(aad), e->nonce, sizeof(e->nonce), &sealed, err) ==
	    -1)
		goto out;
	st = store_stmt(c,
	                "INSERT INTO qd_devices(device_id, nonce, routing, enrolled_at, "
	                "nonce_expires, state, changed_at) VALUES(?1, ?2, ?3, ?4, ?5, 0, ?4) "
	                "ON CONFLICT (device_id) DO UPDATE SET nonce=excluded.nonce, "
	                "routing=excluded.routing, enrolled_at=excluded.enrolled_at, "
	                "nonce_expires=excluded.nonce_expires, state=0, imsi=NULL, "
	                "pkg_digest=NULL, pkg_expires=NULL, changed_at=excluded.changed_at",
	                err);
	if (st == NULL)
		goto out;
	store_bind_str(st, 1, e->device_id);
	store_bind_blob(st, 2, sealed.data, sealed.len);
	store_bind_str(st, 3, e->routing[0] ? e->routing : NULL);
	store_bind_int64(st, 4, now);
	store_bind_int64(st, 5, (int64_t)e->expires);
	if (store_step(st, err) != STORE_DONE)
		goto out;
	if ((qd->roles & QD_ROLE_REG) && qd_reg_put(qd, c, e->device_id, e->nonce, e->expires,
	                                            qd->cred_addr, e->routing, err) == -1)
		goto out;
	rc = daemon_auditf(qd->d, c, err, e->replaced ? "enrol_again" : "enrol", e->actor,
	                   "device=%s expires=%llu routing=%s", e->device_id,
	                   (unsigned long long)e->expires, e->routing[0] ? e->routing : "-");
out:
	buf_free(&sealed);
	return rc;
}

static void
enrol_answer(struct enrol *e)
{
	buf_t *b = srv_reply_begin(e->r);

	tlv_put_u64(b, STB_TLV_QD_NONCE_EXPIRES, e->expires);
	srv_reply_end(e->r);
}

static void
enrol_put_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct enrol *e = arg;

	if (err->status != STB_OK)
		srv_reply_err(e->r, err->status, "registration role: %s", err->msg);
	else if (msg_status(rsp) != STB_OK) {
		char text[256] = "";
		msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
		srv_reply_err(e->r, msg_status(rsp), "registration role: %s", text);
	} else
		enrol_answer(e);
	enrol_free(e);
}

static void
enrol_done(void *arg, const err_t *err)
{
	struct enrol *e = arg;
	struct msgreq_QD_NONCE_PUT q = {
	    .DEVICE_ID = MV_STR(e->device_id),
	    .QD_REG_NONCE = MV_BYTES(e->nonce, sizeof(e->nonce)),
	    .QD_NONCE_EXPIRES = MV_U(e->expires),
	    .QD_CRED_ADDR = MV_STR(e->qd->cred_addr),
	    .QD_ROUTING = MV_IF(e->routing[0], MV_STR(e->routing)),
	};
	err_t perr;
	buf_t b;

	if (err->status != STB_OK) {
		srv_reply_errt(e->r, err);
		enrol_free(e);
		return;
	}
	if (e->qd->reg_peer == NULL) {
		enrol_answer(e);
		enrol_free(e);
		return;
	}
	/* the remote registration role learns the nonce before the operator
	 * hears the device is enrolled; enrolling again repeats it */
	buf_init(&b, 4096);
	if (msgenc_QD_NONCE_PUT(&b, &q, &perr) == -1 ||
	    peerpool_call(e->qd->reg_peer, srv_conn_base(e->r->conn), srv_req_mbox(e->r),
	                  STB_MSG_QD_NONCE_PUT, &b, 0, enrol_put_done, e, &perr) == -1) {
		srv_reply_err(e->r, perr.status, "registration role: %s", perr.msg);
		enrol_free(e);
	}
	buf_wipe(&b);
}

static void
qd_enrol(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	uint32_t ttl = (uint32_t)qd->conf->nonce_ttl_s;
	struct enrol *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	e->qd = qd;
	msg_get_str(m, TLV_IX_DEVICE_ID, e->device_id, sizeof(e->device_id));
	msg_get_str(m, TLV_IX_QD_ROUTING, e->routing, sizeof(e->routing));
	msg_get_u32(m, TLV_IX_QD_NONCE_TTL_S, &ttl);
	if (ttl < 1 || ttl > 31536000) {
		srv_reply_err(r, STB_BAD_REQUEST, "a nonce lives 1 s to a year");
		enrol_free(e);
		return;
	}
	e->expires = (uint64_t)qd_now() + ttl;
	qd_actor(r, e->actor, sizeof(e->actor));
	if (RAND_bytes(e->nonce, sizeof(e->nonce)) != 1) {
		srv_reply_err(r, STB_INTERNAL, "cannot draw a nonce");
		enrol_free(e);
		return;
	}
	if (daemon_write_deferred(d, r, enrol_write, enrol_done, e, &e->r) == -1)
		enrol_free(e);
}

/* ---- the registration role ---- */

struct nput {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1];
	char cred_addr[QD_ADDR_MAX];
	char routing[QD_ROUTING_MAX + 1];
	uint8_t nonce[QUALIFY_NONCE_LEN];
	uint64_t expires;
};

static int
nput_write(store_conn_t *c, void *arg, err_t *err)
{
	struct nput *p = arg;

	return qd_reg_put(p->qd, c, p->device_id, p->nonce, p->expires, p->cred_addr, p->routing,
	                  err);
}

static void
nput_done(void *arg, const err_t *err)
{
	struct nput *p = arg;

	srv_reply_result(p->r, err);
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}

static void
qd_nonce_put(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct nput *p = calloc(1, sizeof(*p));
	const uint8_t *v;
	size_t n;

	if (p == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	p->qd = d->priv;
	msg_get_str(m, TLV_IX_DEVICE_ID, p->device_id, sizeof(p->device_id));
	msg_get_str(m, TLV_IX_QD_CRED_ADDR, p->cred_addr, sizeof(p->cred_addr));
	msg_get_str(m, TLV_IX_QD_ROUTING, p->routing, sizeof(p->routing));
	msg_get_u64(m, TLV_IX_QD_NONCE_EXPIRES, &p->expires);
	msg_get_bytes(m, TLV_IX_QD_REG_NONCE, &v, &n); /* 32 bytes: the registry says so */
	memcpy(p->nonce, v, sizeof(p->nonce));
	if (daemon_write_deferred(d, r, nput_write, nput_done, p, &p->r) == -1) {
		OPENSSL_cleanse(p, sizeof(*p));
		free(p);
	}
}

static void
qd_register(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	char id[STB_ID_MAX + 1], asked[STB_ID_MAX + 1] = "", aad[STB_ID_MAX + 16];
	char addr[QD_ADDR_MAX] = "", routing[QD_ROUTING_MAX + 1] = "";
	uint8_t nonce[QUALIFY_NONCE_LEN];
	int64_t expires = 0;
	store_conn_t *c;
	store_stmt_t *st;
	const void *blob;
	size_t blen, n = 0;
	buf_t *b;
	err_t err;
	int s;

	if (qd_device_of(qd, r, id, NULL, &err) == -1) {
		qd_refuse(qd, r, NULL, "register_refused", &err);
		return;
	}
	msg_get_str(m, TLV_IX_DEVICE_ID, asked, sizeof(asked));
	if (asked[0] && strcmp(asked, id) != 0) {
		err_set(&err, STB_FORBIDDEN, "the certificate is %s's, not %s's", id, asked);
		qd_refuse(qd, r, id, "register_refused", &err);
		return;
	}
	if ((c = store_reader(d->store, &err)) == NULL ||
	    (st = store_stmt(c,
	                     "SELECT nonce, expires, cred_addr, COALESCE(routing, '') FROM qd_reg "
	                     "WHERE device_id=?1",
	                     &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_str(st, 1, id);
	if ((s = store_step(st, &err)) != STORE_ROW) {
		if (s == STORE_DONE) {
			err_set(&err, STB_NOT_FOUND, "device %s is not enrolled", id);
			qd_refuse(qd, r, id, "register_refused", &err);
		} else
			srv_reply_errt(r, &err);
		return;
	}
	blob = store_col_blob(st, 0, &blen);
	expires = store_col_int64(st, 1);
	snprintf(addr, sizeof(addr), "%s", store_col_text(st, 2, NULL));
	snprintf(routing, sizeof(routing), "%s", store_col_text(st, 3, NULL));
	qd_aad(aad, sizeof(aad), "reg", id);
	s = sealed_open(d->kek, aad, strlen(aad), blob, blen, nonce, sizeof(nonce), &n, &err);
	store_reset(st);
	if (s == -1 || n != sizeof(nonce)) {
		OPENSSL_cleanse(nonce, sizeof(nonce));
		srv_reply_err(r, STB_INTERNAL, "the stored nonce does not open");
		return;
	}
	if (expires <= qd_now()) {
		OPENSSL_cleanse(nonce, sizeof(nonce));
		err_set(&err, STB_EXPIRED, "the registration nonce of %s expired; enrol it again",
		        id);
		qd_refuse(qd, r, id, "register_refused", &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_DEVICE_ID, id);
	tlv_put(b, STB_TLV_QD_REG_NONCE, nonce, sizeof(nonce));
	tlv_put_u64(b, STB_TLV_QD_NONCE_EXPIRES, (uint64_t)expires);
	tlv_put_str(b, STB_TLV_QD_CRED_ADDR, addr);
	if (routing[0])
		tlv_put_str(b, STB_TLV_QD_ROUTING, routing);
	srv_reply_end(r);
	OPENSSL_cleanse(nonce, sizeof(nonce));
}

void
qd_reg_register(qd_t *qd)
{
	srv_handle(qd->d->srv, MSG_IX_QD_REGISTER, qd_register);
	srv_handle(qd->d->srv, MSG_IX_QD_NONCE_PUT, qd_nonce_put);
}

void
qd_enrol_register(qd_t *qd)
{
	srv_handle(qd->d->srv, MSG_IX_QD_ENROL, qd_enrol);
}
