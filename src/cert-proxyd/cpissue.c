/*
 * issue: a new P-256 key, a CSR, CA_ISSUE to ca-authd over mutual TLS,
 * then the certificate and the sealed key replace the stored row in one
 * write; only after that commit does anyone get an answer.  One issuance
 * per cert_id runs at a time: later callers wait for the leader's result
 * (flight.c), each answered on its own loop.  When ca-authd cannot be
 * reached nothing is stored.  A certificate issued but not stored is
 * revoked again (best effort) so no unknown good certificate stays out.
 *
 * Everything that can refuse is decided before ca-authd is asked, so a
 * refusal costs no certificate and no CRL entry: the cert_id must be one
 * imported for the device; the leader looks at the stored row again (a
 * fetch finished just before made it good); and a certificate new to the
 * device is counted against issue.max_per_device while it is issued
 * (flight.c), so pipelined fetches cannot all pass one stale count.  The
 * store write checks both again, for an import that changed them meanwhile.
 */
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "hex.h"
#include "log.h"
#include "msgenc.h"
#include "sig.h"
#include "signer.h"
#include "tlv.h"
#include "x509.h"

#define CSR_MAX        2048
#define KEY_DER_MAX    512
#define RSN_SUPERSEDED 4 /* RFC 5280 CRLReason */

struct issue_wait {
	cp_waiter_t w; /* first: the flight table links waiters through it */
	mbox_t *mb;
	cp_issue_fn fn;
	void *arg;
	cp_issued_t *res;
};

struct issue_job {
	cp_t *cp;
	struct event_base *base;
	mbox_t *mb;
	char cert_id[CP_ID_CAP];
	char device_id[CP_ID_CAP];
	char actor[CP_ACTOR_CAP];
	EVP_PKEY *key;   /* a signer key when the daemon has a signer */
	buf_t pending;   /* its blob, sealed by the signer until the serial is known */
	cp_kent_t *kent; /* once ca-authd answered */
	buf_t sealed;
	int64_t now;
	enum cp_issue_why why;
};

static void
issued_unref(cp_issued_t *res)
{
	if (__atomic_sub_fetch(&res->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	cp_kent_unref(res->kent);
	free(res);
}

static void
wait_run(void *arg)
{
	struct issue_wait *w = arg;

	w->fn(w->arg, w->res);
	issued_unref(w->res);
	free(w);
}

static void
job_free(struct issue_job *j)
{
	cp_t *cp = j->cp;

	EVP_PKEY_free(j->key);
	cp_kent_unref(j->kent);
	buf_wipe(&j->sealed);
	buf_free(&j->pending);
	free(j);
	cp_unref(cp);
}

/* Hands the result (j->kent when err is NULL) to every waiter. */
static void
job_finish(struct issue_job *j, const err_t *err)
{
	cp_issued_t *res = calloc(1, sizeof(*res));
	cp_waiter_t *w, *next;

	w = cp_flight_finish(j->cp->flight, j->cert_id);
	if (res == NULL) {
		log_warnx("issuance of %s: out of memory; %s waiters dropped", j->cert_id,
		          w != NULL ? "its" : "no");
		job_free(j);
		return;
	}
	res->refs = 1;
	if (err != NULL)
		res->err = *err;
	else {
		err_clear(&res->err);
		res->kent = j->kent;
		j->kent = NULL;
	}
	for (; w != NULL; w = next) {
		struct issue_wait *iw = (struct issue_wait *)w;
		next = w->next;
		__atomic_fetch_add(&res->refs, 1, __ATOMIC_RELAXED);
		iw->res = res;
		if (mbox_post(iw->mb, wait_run, iw) == -1) {
			log_warnx("issuance of %s: a waiter's loop is unreachable", j->cert_id);
			issued_unref(res);
		}
	}
	issued_unref(res);
	job_free(j);
}

static void job_fail(struct issue_job *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
job_fail(struct issue_job *j, int status, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;
	err_t err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_set(&err, status, "%s", msg);
	job_finish(j, &err);
}

/* ---- a certificate ca-authd issued that we could not keep ---- */

struct orphan {
	char cert_id[CP_ID_CAP];
	char serial[2 * CP_SERIAL_MAX + 1];
};

static void
orphan_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct orphan *o = arg;

	if (rsp != NULL && msg_status(rsp) == STB_OK)
		log_info("certificate %s serial %s was not stored and is revoked again", o->cert_id,
		         o->serial);
	else
		log_warnx("certificate %s serial %s was not stored and could not be revoked: %s",
		          o->cert_id, o->serial,
		          rsp != NULL ? stb_status_name(msg_status(rsp)) : err->msg);
	free(o);
}

static void
job_orphan(struct issue_job *j)
{
	struct orphan *o;
	buf_t b;
	err_t err;

	if (j->kent == NULL || (o = calloc(1, sizeof(*o))) == NULL)
		return;
	snprintf(o->cert_id, sizeof(o->cert_id), "%s", j->cert_id);
	hex_encode(j->kent->serial, j->kent->serial_len, o->serial);
	buf_init(&b, 64);
	struct msgreq_CA_REVOKE q = {.CERT_SERIAL = MV_BYTES(j->kent->serial, j->kent->serial_len),
	                             .REVOKE_REASON = MV_U(RSN_SUPERSEDED)};
	if (msgenc_CA_REVOKE(&b, &q, &err) == -1 ||
	    cp_ca_call(j->cp, j->base, j->mb, STB_MSG_CA_REVOKE, &b, orphan_done, o, &err) == -1) {
		log_warnx("certificate %s serial %s was not stored and could not be revoked: %s",
		          o->cert_id, o->serial, err.msg);
		free(o);
	}
	buf_free(&b);
}

/* ---- the store write ---- */

static int
issue_write(store_conn_t *c, void *arg, err_t *err)
{
	struct issue_job *j = arg;
	const cp_kent_t *e = j->kent;
	char serial[2 * CP_SERIAL_MAX + 1];
	store_stmt_t *st;
	int exists = 0, rc;

	/* an import may have taken the cert_id from the device meanwhile */
	st = store_stmt(c, "SELECT 1 FROM stb_certs WHERE cert_id=?1 AND device_id=?2", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->cert_id);
	store_bind_str(st, 2, j->device_id);
	if ((rc = store_step(st, err)) < 0)
		return -1;
	store_reset(st);
	if (rc != STORE_ROW)
		return err_set(err, STB_FORBIDDEN, "certificate %s is not one of %s's", j->cert_id,
		               j->device_id);
	st = store_stmt(c, "SELECT device_id FROM certs WHERE cert_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->cert_id);
	if ((rc = store_step(st, err)) < 0)
		return -1;
	if (rc == STORE_ROW) {
		exists = 1;
		if (strcmp(store_col_text(st, 0, NULL), j->device_id) != 0) {
			store_reset(st);
			return err_set(err, STB_FORBIDDEN,
			               "certificate %s belongs to another device", j->cert_id);
		}
	}
	store_reset(st);
	if (!exists) {
		st = store_stmt(c, "SELECT count(*) FROM certs WHERE device_id=?1", err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, j->device_id);
		if ((rc = store_step(st, err)) < 0)
			return -1;
		if (rc == STORE_ROW &&
		    store_col_int64(st, 0) >= j->cp->conf->issue_max_per_device) {
			store_reset(st);
			return err_set(err, STB_CONFLICT,
			               "device %s already holds %lld certificates", j->device_id,
			               j->cp->conf->issue_max_per_device);
		}
		store_reset(st);
	}
	st = store_stmt(c,
	                "INSERT INTO certs(cert_id, device_id, cert_der, key_sealed, serial, "
	                "not_after, state, issued_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, ?7) "
	                "ON CONFLICT(cert_id) DO UPDATE SET cert_der=excluded.cert_der, "
	                "key_sealed=excluded.key_sealed, serial=excluded.serial, "
	                "not_after=excluded.not_after, state=0, issued_at=excluded.issued_at, "
	                "revoked_at=NULL, revoke_reason=NULL",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->cert_id);
	store_bind_str(st, 2, j->device_id);
	store_bind_blob(st, 3, e->der, e->derlen);
	store_bind_blob(st, 4, j->sealed.data, j->sealed.len);
	store_bind_blob(st, 5, e->serial, e->serial_len);
	store_bind_int64(st, 6, e->not_after);
	store_bind_int64(st, 7, j->now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	st = store_stmt(c, "DELETE FROM pending WHERE cert_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->cert_id);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	hex_encode(e->serial, e->serial_len, serial);
	return daemon_auditf(j->cp->d, c, err, exists ? "cert_renew" : "cert_issue", j->actor,
	                     "cert=%s device=%s serial=%s not_after=%lld", j->cert_id, j->device_id,
	                     serial, (long long)e->not_after);
}

static void
issue_done(void *arg, const err_t *err)
{
	struct issue_job *j = arg;

	if (err->status != STB_OK) {
		log_warnx("certificate %s for %s not stored: %s", j->cert_id, j->device_id,
		          err->msg);
		job_orphan(j);
		job_finish(j, err);
		return;
	}
	/* loads that read the old row before this commit stay out */
	cp_kc_invalidate(j->cp->kc, j->cert_id);
	cp_kc_put(j->cp->kc, j->kent, cp_kc_gen(j->cp->kc));
	log_info("certificate %s issued for %s", j->cert_id, j->device_id);
	job_finish(j, NULL);
}

/* ---- ca-authd's answer ---- */

/* The new entry from CA_ISSUE's answer, its key sealed into j->sealed. */
/* The new key sealed for its row (aad names cert_id and serial). */
static int
issue_key_seal(struct issue_job *j, const char *aad, err_t *err)
{
	uint8_t *kder = NULL;
	int klen, ok;

	if (j->cp->d->signer != NULL)
		return signer_reseal(j->cp->d->signer, j->pending.data, j->pending.len, aad,
		                     strlen(aad), &j->sealed, err);
	if ((klen = i2d_PrivateKey(j->key, &kder)) <= 0 || klen > KEY_DER_MAX)
		return err_set(err, STB_INTERNAL, "cannot encode the new key");
	ok = sealed_seal(j->cp->d->kek, aad, strlen(aad), kder, (size_t)klen, &j->sealed, err) == 0;
	OPENSSL_clear_free(kder, (size_t)klen);
	return ok ? 0 : err_set(err, STB_INTERNAL, "cannot seal the new key");
}

static int
issue_accept(struct issue_job *j, const msg_t *rsp, err_t *err)
{
	const uint8_t *der = NULL, *serial;
	size_t dl, sl;
	uint64_t not_after = 0;
	int64_t na;
	char aad[CP_ID_CAP + 2 * CP_SERIAL_MAX + 8];
	X509 *x;
	int ok;

	msg_get_bytes(rsp, TLV_IX_CERT_DER, &der, &dl);
	msg_get_bytes(rsp, TLV_IX_CERT_SERIAL, &serial, &sl);
	msg_get_u64(rsp, TLV_IX_NOT_AFTER, &not_after);
	x = crt_from_der(der, dl, NULL);
	/* our key, encoded by its curve name (sig.h) */
	ok = x != NULL && X509_get0_pubkey(x) != NULL &&
	     EVP_PKEY_eq(X509_get0_pubkey(x), j->key) == 1 && sig_key_is_p256(X509_get0_pubkey(x));
	X509_free(x);
	if (!ok)
		return err_set(err, STB_INTERNAL,
		               "ca-authd answered with a certificate that is not for our key");
	/* the certificate's own notAfter decides EXPIRED; the TLV is the fallback */
	if (cp_certs_not_after(der, dl, &na) == -1) {
		if (not_after > INT64_MAX)
			return err_set(err, STB_INTERNAL,
			               "ca-authd answered an impossible notAfter");
		na = (int64_t)not_after;
	}
	if ((j->kent = cp_kent_new(j->cert_id, j->device_id, j->key, der, dl, serial, sl, na,
	                           CP_CERT_VALID)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (cp_certs_key_aad(j->cert_id, serial, sl, aad, sizeof(aad)) == -1)
		return err_set(err, STB_INTERNAL, "cannot seal the new key");
	return issue_key_seal(j, aad, err);
}

static void
issue_on_ca(void *arg, const msg_t *rsp, const err_t *perr)
{
	struct issue_job *j = arg;
	err_t err;

	if (rsp == NULL || msg_status(rsp) != STB_OK) {
		cp_ca_error(rsp, perr, &err);
		log_warnx("certificate %s for %s: %s", j->cert_id, j->device_id, err.msg);
		job_finish(j, &err);
		return;
	}
	if (issue_accept(j, rsp, &err) == -1 || cp_stopping(j->cp)) {
		if (err.status == STB_OK || cp_stopping(j->cp))
			err_set(&err, STB_UNAVAILABLE, "cert-proxyd is shutting down");
		log_warnx("certificate %s for %s: %s", j->cert_id, j->device_id, err.msg);
		job_orphan(j);
		job_finish(j, &err);
		return;
	}
	if (store_write(j->cp->d->store, j->mb, issue_write, issue_done, j, &err) == -1) {
		job_orphan(j);
		job_finish(j, &err);
	}
}

/* ---- the request ---- */

/* A new P-256 key: made, sealed and held by the signer when there is one
 * (this process then holds only its public half and its pending blob). */
static EVP_PKEY *
issue_key_new(struct issue_job *j, err_t *err)
{
	signer_t *sg = j->cp->d->signer;
	EVP_PKEY *pub = NULL, *k;

	if (sg == NULL) {
		if ((k = EVP_EC_gen("P-256")) == NULL)
			err_set(err, STB_INTERNAL, "cannot make a key");
		return k;
	}
	if (signer_genkey(sg, &j->pending, &pub, err) == -1)
		return NULL;
	k = signer_pkey(sg, pub, SIGNER_PENDING_AAD, strlen(SIGNER_PENDING_AAD), j->pending.data,
	                j->pending.len, err);
	EVP_PKEY_free(pub);
	return k;
}

static int
issue_csr(struct issue_job *j, buf_t *out, err_t *err)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int len = -1;

	if ((j->key = issue_key_new(j, err)) == NULL) {
		X509_REQ_free(req);
		X509_NAME_free(name);
		return -1;
	}
	if (req == NULL || name == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)j->cert_id,
	                               -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, j->key) != 1 ||
	    X509_REQ_sign(req, j->key, j->cp->sha256) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0) {
		if (signer_take_err(err))
			goto fail_err;
		goto fail;
	}
	if (buf_append(out, der, (size_t)len) == -1)
		goto fail;
	OPENSSL_free(der);
	X509_REQ_free(req);
	X509_NAME_free(name);
	return 0;
fail:
	err_set(err, STB_INTERNAL, "cannot make a key and CSR");
fail_err:
	OPENSSL_free(der);
	X509_REQ_free(req);
	X509_NAME_free(name);
	return -1;
}

static void
job_start(struct issue_job *j)
{
	buf_t csr, b;
	err_t err;

	buf_init(&csr, CSR_MAX);
	buf_init(&b, CSR_MAX + 1024);
	if (cp_stopping(j->cp))
		job_fail(j, STB_UNAVAILABLE, "cert-proxyd is shutting down");
	else if (issue_csr(j, &csr, &err) == -1)
		job_finish(j, &err);
	else {
		const cp_conf_t *cf = j->cp->conf;
		struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(csr.data, csr.len),
		                            .CERT_PROFILE = MV_STR(cf->profile),
		                            .DEVICE_ID = MV_STR(j->device_id),
		                            .CERT_ID = MV_STR(j->cert_id),
		                            .VALIDITY_S =
		                                MV_IF(cf->validity_s > 0, MV_U(cf->validity_s))};

		if (msgenc_CA_ISSUE(&b, &q, &err) == -1)
			job_fail(j, STB_INTERNAL, "%s", err.msg);
		else if (cp_ca_call(j->cp, j->base, j->mb, STB_MSG_CA_ISSUE, &b, issue_on_ca, j,
		                    &err) == -1) {
			err_t out;
			cp_ca_error(NULL, &err, &out);
			job_finish(j, &out);
		}
	}
	buf_free(&csr);
	buf_free(&b);
}

/* The leader's look at the stored row and the device's count, before
 * ca-authd is asked: 1 when the issuance must run, 0 when it finished
 * (job_finish called: the stored certificate serves, or a refusal). */
static int
job_admit(struct issue_job *j)
{
	cp_t *cp = j->cp;
	cp_kent_t *e = NULL;
	int64_t held;
	size_t inflight;
	int pending = 0;
	err_t err;

	if (cp_certs_get(cp, j->cert_id, &e, &err) == -1 ||
	    (e != NULL && j->why == CP_ISSUE_RENEW &&
	     (pending = cp_certs_pending(cp, j->cert_id, &err)) == -1)) {
		cp_kent_unref(e);
		job_finish(j, &err);
		return 0;
	}
	if (e != NULL) {
		if (strcmp(e->device_id, j->device_id) != 0) {
			cp_kent_unref(e);
			job_fail(j, STB_FORBIDDEN, "certificate %s belongs to another device",
			         j->cert_id);
			return 0;
		}
		if (j->why == CP_ISSUE_RENEW
		        ? !pending
		        : !cp_due_fetch_issues(e->state, e->not_after, j->now)) {
			j->kent = e; /* issued meanwhile: the stored one is the answer */
			job_finish(j, NULL);
			return 0;
		}
		cp_kent_unref(e);
		return 1; /* a renewal: the device's count stays */
	}
	inflight = cp_flight_count_new(cp->flight, j->cert_id);
	if (cp_certs_held(cp, j->device_id, &held, &err) == -1) {
		job_finish(j, &err);
		return 0;
	}
	if (held + (int64_t)inflight >= cp->conf->issue_max_per_device) {
		job_fail(j, STB_CONFLICT, "device %s already holds %lld certificates%s",
		         j->device_id, (long long)held,
		         inflight > 0 ? " with more being issued" : "");
		return 0;
	}
	return 1;
}

int
cp_issue(cp_t *cp, struct event_base *base, mbox_t *mb, const char *cert_id, const char *device_id,
         const char *actor, enum cp_issue_why why, cp_issue_fn fn, void *arg, err_t *err)
{
	char owner[CP_ID_CAP];
	struct issue_wait *w;
	struct issue_job *j;
	int rc;

	/* before the flight table: another box must not even lead it */
	if ((rc = cp_certs_owner(cp, cert_id, owner, err)) == -1)
		return -1;
	if (rc == 0 || strcmp(owner, device_id) != 0)
		return err_set(err, STB_FORBIDDEN, "certificate %s is not one of this device's",
		               cert_id);
	w = calloc(1, sizeof(*w));
	j = calloc(1, sizeof(*j));
	if (w == NULL || j == NULL) {
		free(w);
		free(j);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	w->mb = mb;
	w->fn = fn;
	w->arg = arg;
	rc = cp_flight_join(cp->flight, cert_id, device_id, &w->w);
	if (rc != CP_FLIGHT_LEADER) {
		free(j);
		if (rc == CP_FLIGHT_JOINED)
			return 0;
		free(w);
		return rc == CP_FLIGHT_OTHER
		           ? err_set(err, STB_FORBIDDEN, "certificate %s belongs to another device",
		                     cert_id)
		           : err_set(err, STB_UNAVAILABLE,
		                     "too many certificates are being issued; retry shortly");
	}
	cp_ref(cp);
	j->cp = cp;
	j->base = base;
	j->mb = mb;
	j->why = why;
	j->now = (int64_t)time(NULL);
	snprintf(j->cert_id, sizeof(j->cert_id), "%s", cert_id);
	snprintf(j->device_id, sizeof(j->device_id), "%s", device_id);
	snprintf(j->actor, sizeof(j->actor), "%s", actor);
	buf_init(&j->sealed, KEY_DER_MAX + SEALED_OVERHEAD);
	buf_init(&j->pending, SIGNER_BLOB_MAX);
	/* every outcome reaches the waiters through their loops */
	if (job_admit(j))
		job_start(j);
	return 0;
}
