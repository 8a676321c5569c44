/*
 * qdprov: the provisioning role.  Packages arrive from the credentialing
 * role (QD_PKG_PUT, or in its own store job when both run here) keyed by
 * SHA-256 of their ticket.  A device fetches its package with the ticket
 * (as often as it needs until it confirms) and confirms with the package
 * digest; the ticket is then spent.  Refusals: NOT_FOUND (no such ticket),
 * FORBIDDEN (another device's), REPLAY (confirmed already), EXPIRED,
 * UNAUTHENTICATED (a digest that is not the package's).  The confirmation
 * reaches the credentialing role (QD_PKG_DONE, or the same job here),
 * which marks the HSS row delivered.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msgenc.h"
#include "qd.h"
#include "tlv.h"

enum { PKG_READY = 0, PKG_CONFIRMED = 2 };

static int
prov_ticket_hash(const uint8_t *ticket, uint8_t out[QUALIFY_DIGEST_LEN], err_t *err)
{
	return qualify_pkg_digest(ticket, QUALIFY_TICKET_LEN, out, err);
}

int
qd_prov_put(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *ticket,
            uint64_t expires, const uint8_t *pkg, size_t pkg_len, err_t *err)
{
	uint8_t th[QUALIFY_DIGEST_LEN], dg[QUALIFY_DIGEST_LEN];
	store_stmt_t *st;

	(void)qd;
	if (prov_ticket_hash(ticket, th, err) == -1 ||
	    qualify_pkg_digest(pkg, pkg_len, dg, err) == -1)
		return -1;
	st = store_stmt(c,
	                "INSERT INTO qd_packages(ticket_hash, device_id, package, digest, issued, "
	                "expires, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0) "
	                "ON CONFLICT (ticket_hash) DO NOTHING",
	                err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, th, sizeof(th));
	store_bind_str(st, 2, device_id);
	store_bind_blob(st, 3, pkg, pkg_len);
	store_bind_blob(st, 4, dg, sizeof(dg));
	store_bind_int64(st, 5, qd_now());
	store_bind_int64(st, 6, (int64_t)expires);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

/* ---- the credentialing side of a confirmation ---- */

int
qd_cred_done(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *digest, int64_t now,
             err_t *err)
{
	char imsi[QUALIFY_IMSI_MAX + 1] = "";
	store_stmt_t *st;
	const void *dg;
	size_t dlen;
	int s, state, same;

	st = store_stmt(c,
	                "SELECT state, COALESCE(imsi, ''), pkg_digest FROM qd_devices "
	                "WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, device_id);
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "device %s is not enrolled", device_id);
	if (s != STORE_ROW)
		return -1;
	state = (int)store_col_int64(st, 0);
	snprintf(imsi, sizeof(imsi), "%s", store_col_text(st, 1, NULL));
	dg = store_col_blob(st, 2, &dlen);
	same = dlen == QUALIFY_DIGEST_LEN && CRYPTO_memcmp(dg, digest, dlen) == 0;
	store_reset(st);
	if (!same)
		return err_set(err, STB_CONFLICT, "device %s has no such package", device_id);
	if (state == QD_DEV_DELIVERED)
		return 0; /* told twice (a peer's retry) */
	if (state != QD_DEV_CREDENTIALED)
		return err_set(err, STB_CONFLICT, "device %s is not waiting for a package",
		               device_id);
	if (hss_deliver(qd->hss, c, imsi, device_id, now, err) == -1)
		return -1;
	st = store_stmt(c, "UPDATE qd_devices SET state=2, changed_at=?2 WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, device_id);
	store_bind_int64(st, 2, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(qd->d, c, err, "credentials_delivered", "provisioning",
	                     "device=%s imsi=%s", device_id, imsi);
}

/* ---- lookups by ticket ---- */

struct prov {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1]; /* the certificate's */
	char actor[160];
	uint8_t th[QUALIFY_DIGEST_LEN];
	uint8_t digest[QUALIFY_DIGEST_LEN];
	int remote_done; /* the credentialing role is a peer: QD_PKG_DONE queued */
};

/* The row's checks, shared by fetch and confirm.  st is at the row. */
static int
prov_row_check(struct prov *p, store_stmt_t *st, err_t *err)
{
	const char *dev = store_col_text(st, 0, NULL);
	int state = (int)store_col_int64(st, 1);
	int64_t exp = store_col_int64(st, 2);

	if (strcmp(dev, p->device_id) != 0)
		return err_set(err, STB_FORBIDDEN, "the ticket is not for %s", p->device_id);
	if (state == PKG_CONFIRMED)
		return err_set(err, STB_REPLAY, "the ticket was used already");
	if (exp <= qd_now())
		return err_set(err, STB_EXPIRED, "the ticket expired");
	return 0;
}

static const char prov_row_sql[] = "SELECT device_id, state, expires, package, digest "
                                   "FROM qd_packages WHERE ticket_hash=?1";

static int
prov_start(qd_t *qd, srv_req_t *r, const msg_t *m, struct prov *p, err_t *err)
{
	const uint8_t *t;
	size_t n;

	p->qd = qd;
	qd_actor(r, p->actor, sizeof(p->actor));
	if (qd_device_of(qd, r, p->device_id, NULL, err) == -1)
		return -1;
	msg_get_bytes(m, TLV_IX_QD_TICKET, &t, &n);
	return prov_ticket_hash(t, p->th, err);
}

static void
qd_pkg_fetch(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	struct prov p;
	store_conn_t *c;
	store_stmt_t *st;
	const void *pkg;
	size_t plen;
	int64_t exp;
	buf_t *b;
	err_t err;
	int s;

	memset(&p, 0, sizeof(p));
	if (prov_start(qd, r, m, &p, &err) == -1) {
		qd_refuse(qd, r, p.device_id, "package_refused", &err);
		return;
	}
	if ((c = store_reader(d->store, &err)) == NULL ||
	    (st = store_stmt(c, prov_row_sql, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_blob(st, 1, p.th, sizeof(p.th));
	if ((s = store_step(st, &err)) != STORE_ROW) {
		if (s == STORE_DONE) {
			err_set(&err, STB_NOT_FOUND, "no package for this ticket");
			qd_refuse(qd, r, p.device_id, "package_refused", &err);
		} else
			srv_reply_errt(r, &err);
		return;
	}
	if (prov_row_check(&p, st, &err) == -1) {
		store_reset(st);
		qd_refuse(qd, r, p.device_id, "package_refused", &err);
		return;
	}
	exp = store_col_int64(st, 2);
	pkg = store_col_blob(st, 3, &plen);
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_QD_PACKAGE, pkg, plen);
	tlv_put_u64(b, STB_TLV_QD_TICKET_EXPIRES, (uint64_t)exp);
	srv_reply_end(r);
	store_reset(st);
}

/* ---- confirmation ---- */

static int
confirm_write(store_conn_t *c, void *arg, err_t *err)
{
	struct prov *p = arg;
	int64_t now = qd_now();
	store_stmt_t *st;
	const void *dg;
	size_t dlen;
	int s, same;

	if ((st = store_stmt(c, prov_row_sql, err)) == NULL)
		return -1;
	store_bind_blob(st, 1, p->th, sizeof(p->th));
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "no package for this ticket");
	if (s != STORE_ROW)
		return -1;
	if (prov_row_check(p, st, err) == -1) {
		store_reset(st);
		return -1;
	}
	dg = store_col_blob(st, 4, &dlen);
	same = dlen == sizeof(p->digest) && CRYPTO_memcmp(dg, p->digest, dlen) == 0;
	store_reset(st);
	if (!same)
		return err_set(err, STB_UNAUTHENTICATED, "the digest is not the package's");
	st = store_stmt(c,
	                "UPDATE qd_packages SET state=2, confirmed_at=?2 WHERE ticket_hash=?1 "
	                "AND state=0",
	                err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, p->th, sizeof(p->th));
	store_bind_int64(st, 2, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (p->qd->roles & QD_ROLE_CRED)
		return qd_cred_done(p->qd, c, p->device_id, p->digest, now, err);
	/* the credentialing role hears of it for sure: through the outbox */
	struct msgreq_QD_PKG_DONE q = {.DEVICE_ID = MV_STR(p->device_id),
	                               .QD_PKG_DIGEST = MV_BYTES(p->digest, sizeof(p->digest))};
	buf_t b;
	int rc;

	buf_init(&b, 1024);
	rc = msgenc_QD_PKG_DONE(&b, &q, err) == -1 ||
	             outbox_enqueue(p->qd->done_ob, c, "credentialing", STB_MSG_QD_PKG_DONE, &b,
	                            p->device_id, now * 1000, NULL, err) == -1
	         ? -1
	         : 0;
	buf_free(&b);
	if (rc == -1)
		return -1;
	p->remote_done = 1;
	return daemon_auditf(p->qd->d, c, err, "package_confirmed", p->actor, "device=%s",
	                     p->device_id);
}

static void
confirm_done(void *arg, const err_t *err)
{
	struct prov *p = arg;

	if (err->status != STB_OK) {
		qd_refuse(p->qd, p->r, p->device_id, "package_refused", err);
		free(p);
		return;
	}
	if (p->remote_done)
		outbox_kick(p->qd->done_ob);
	srv_reply_ok(p->r);
	free(p);
}

static void
qd_pkg_confirm(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	struct prov *p = calloc(1, sizeof(*p));
	const uint8_t *v;
	size_t n;
	err_t err;

	if (p == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (prov_start(qd, r, m, p, &err) == -1) {
		qd_refuse(qd, r, p->device_id, "package_refused", &err);
		free(p);
		return;
	}
	msg_get_bytes(m, TLV_IX_QD_PKG_DIGEST, &v, &n);
	memcpy(p->digest, v, sizeof(p->digest));
	if (daemon_write_deferred(d, r, confirm_write, confirm_done, p, &p->r) == -1)
		free(p);
}

/* ---- from the credentialing role ---- */

struct put {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1];
	uint8_t ticket[QUALIFY_TICKET_LEN];
	uint64_t expires;
	uint8_t *pkg;
	size_t pkg_len;
};

static void
put_free(struct put *p)
{
	free(p->pkg);
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}

static int
put_write(store_conn_t *c, void *arg, err_t *err)
{
	struct put *p = arg;

	return qd_prov_put(p->qd, c, p->device_id, p->ticket, p->expires, p->pkg, p->pkg_len, err);
}

static void
put_done(void *arg, const err_t *err)
{
	struct put *p = arg;

	srv_reply_result(p->r, err);
	put_free(p);
}

static void
qd_pkg_put(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct put *p = calloc(1, sizeof(*p));
	const uint8_t *v;
	size_t n;

	if (p == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	p->qd = d->priv;
	msg_get_str(m, TLV_IX_DEVICE_ID, p->device_id, sizeof(p->device_id));
	msg_get_u64(m, TLV_IX_QD_TICKET_EXPIRES, &p->expires);
	msg_get_bytes(m, TLV_IX_QD_TICKET, &v, &n);
	memcpy(p->ticket, v, sizeof(p->ticket));
	msg_get_bytes(m, TLV_IX_QD_PACKAGE, &v, &n);
	if ((p->pkg = malloc(n)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		put_free(p);
		return;
	}
	memcpy(p->pkg, v, n);
	p->pkg_len = n;
	if (daemon_write_deferred(d, r, put_write, put_done, p, &p->r) == -1)
		put_free(p);
}

struct pdone {
	qd_t *qd;
	srv_req_t *r;
	char device_id[STB_ID_MAX + 1];
	uint8_t digest[QUALIFY_DIGEST_LEN];
};

static int
pdone_write(store_conn_t *c, void *arg, err_t *err)
{
	struct pdone *p = arg;

	return qd_cred_done(p->qd, c, p->device_id, p->digest, qd_now(), err);
}

static void
pdone_done(void *arg, const err_t *err)
{
	struct pdone *p = arg;

	srv_reply_result(p->r, err);
	free(p);
}

static void
qd_pkg_done(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct pdone *p = calloc(1, sizeof(*p));
	const uint8_t *v;
	size_t n;

	if (p == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	p->qd = d->priv;
	msg_get_str(m, TLV_IX_DEVICE_ID, p->device_id, sizeof(p->device_id));
	msg_get_bytes(m, TLV_IX_QD_PKG_DIGEST, &v, &n);
	memcpy(p->digest, v, sizeof(p->digest));
	if (daemon_write_deferred(d, r, pdone_write, pdone_done, p, &p->r) == -1)
		free(p);
}

void
qd_prov_register(qd_t *qd)
{
	srv_handle(qd->d->srv, MSG_IX_QD_PKG_FETCH, qd_pkg_fetch);
	srv_handle(qd->d->srv, MSG_IX_QD_PKG_CONFIRM, qd_pkg_confirm);
	srv_handle(qd->d->srv, MSG_IX_QD_PKG_PUT, qd_pkg_put);
}

void
qd_done_register(qd_t *qd)
{
	srv_handle(qd->d->srv, MSG_IX_QD_PKG_DONE, qd_pkg_done);
}
