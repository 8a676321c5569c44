/*
 * keyinfo: what an authenticated STB asks for (DESIGN 5.A steps 3-4, 6).
 * KEYINFO_REQ signs the login transcript with the stored key; CERT_FETCH
 * obtains a new certificate first when the stored one is missing, expired,
 * revoked or due for renewal (a valid one is served as is, so a box cannot
 * make cert-proxyd issue at will); CERT_UPDATE_ACK renews a certificate
 * the scanner asked about and pushes CERT_UPDATED.
 *
 * A certificate another device owns is FORBIDDEN, for KEYINFO_REQ as for
 * CERT_FETCH: NOT_FOUND would only send the box to CERT_FETCH, which must
 * refuse anyway, and the owner's identity is never told.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "log.h"
#include "msgenc.h"
#include "signer.h"
#include "tlv.h"

#define SIG_MAX 80 /* KEYINFO_PROOF's limit; P-256 DER is at most 72 */

/* A login request's fields. */
typedef struct ki_req {
	char cert_id[CP_ID_CAP];
	uint8_t gw_nonce[LOGIN_NONCE_LEN];
	uint8_t session[LOGIN_SESSION_LEN];
} ki_req_t;

static void
ki_parse(const msg_t *m, ki_req_t *q)
{
	const uint8_t *p;
	size_t n;

	msg_get_str(m, TLV_IX_CERT_ID, q->cert_id, sizeof(q->cert_id));
	if (msg_get_bytes(m, TLV_IX_GW_NONCE, &p, &n) == 0 && n == LOGIN_NONCE_LEN)
		memcpy(q->gw_nonce, p, n);
	if (msg_get_bytes(m, TLV_IX_LOGIN_SESSION_ID, &p, &n) == 0 && n == LOGIN_SESSION_LEN)
		memcpy(q->session, p, n);
}

static int
ki_sign(cp_t *cp, const cp_kent_t *e, const char *device_id, const ki_req_t *q, uint64_t ts,
        uint8_t sig[SIG_MAX], size_t *siglen, err_t *err)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	buf_t tbs;
	int rc = -1;

	buf_init(&tbs, LOGIN_TBS_MAX);
	*siglen = SIG_MAX;
	if (mctx == NULL)
		err_set(err, STB_INTERNAL, "out of memory");
	else if (login_keyinfo_tbs(&tbs, device_id, e->cert_id, q->session, q->gw_nonce, ts, err) ==
	         -1)
		;
	else if (EVP_DigestSignInit(mctx, NULL, cp->sha256, NULL, e->pkey) != 1 ||
	         EVP_DigestSign(mctx, sig, siglen, tbs.data, tbs.len) != 1) {
		/* the signer's own answer (UNAVAILABLE while it restarts) */
		if (!signer_take_err(err))
			err_set(err, STB_INTERNAL, "cannot sign the key info");
	} else
		rc = 0;
	EVP_MD_CTX_free(mctx);
	buf_free(&tbs);
	return rc;
}

/* OK with {CERT_DER, KEYINFO_PROOF, KEYINFO_TIME}. */
static void
ki_reply(cp_t *cp, srv_req_t *r, const cp_kent_t *e, const char *device_id, const ki_req_t *q)
{
	uint8_t sig[SIG_MAX];
	size_t siglen;
	uint64_t now = (uint64_t)time(NULL);
	err_t err;
	buf_t *b;

	if (ki_sign(cp, e, device_id, q, now, sig, &siglen, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_CERT_DER, e->der, e->derlen);
	tlv_put(b, STB_TLV_KEYINFO_PROOF, sig, siglen);
	tlv_put_u64(b, STB_TLV_KEYINFO_TIME, now);
	srv_reply_end(r);
}

static const char *
ki_device(srv_req_t *r)
{
	const char *dev = cp_auth_device(r->conn);

	if (dev == NULL)
		srv_reply_err(r, STB_UNAUTHENTICATED,
		              "authenticate first (AUTH_BEGIN, AUTH_PROVE)");
	return dev;
}

/* Replies with the verdict unless it is OK; 1 when it was OK. */
static int
ki_verdict(srv_req_t *r, const cp_kent_t *e, const char *device_id)
{
	int st = cp_due_keyinfo(strcmp(e->device_id, device_id) == 0, e->state, e->not_after,
	                        (int64_t)time(NULL));

	switch (st) {
	case STB_OK:
		return 1;
	case STB_FORBIDDEN:
		srv_reply_err(r, st, "certificate %s belongs to another device", e->cert_id);
		break;
	case STB_REVOKED:
		srv_reply_err(r, st, "certificate %s is revoked", e->cert_id);
		break;
	default:
		srv_reply_err(r, st, "certificate %s expired at %lld", e->cert_id,
		              (long long)e->not_after);
	}
	return 0;
}

static void
cp_keyinfo_req(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	const char *dev;
	cp_kent_t *e;
	ki_req_t q;
	err_t err;

	if ((dev = ki_device(r)) == NULL)
		return;
	ki_parse(m, &q);
	if (cp_certs_get(cp, q.cert_id, &e, &err) == -1)
		srv_reply_errt(r, &err);
	else if (e == NULL)
		srv_reply_err(r, STB_NOT_FOUND, "no certificate %s", q.cert_id);
	else if (ki_verdict(r, e, dev))
		ki_reply(cp, r, e, dev, &q);
	cp_kent_unref(e);
}

/* ---- CERT_FETCH ---- */

struct fetch {
	cp_t *cp;
	srv_req_t *r;
	char device_id[CP_ID_CAP];
	ki_req_t q;
};

static void
fetch_done(void *arg, const cp_issued_t *res)
{
	struct fetch *f = arg;

	if (res->err.status != STB_OK)
		srv_reply_errt(f->r, &res->err);
	else
		ki_reply(f->cp, f->r, res->kent, f->device_id, &f->q);
	cp_unref(f->cp);
	free(f);
}

static void
cp_cert_fetch(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	char actor[CP_ACTOR_CAP];
	struct fetch *f;
	const char *dev;
	cp_kent_t *e;
	err_t err;

	if ((dev = ki_device(r)) == NULL)
		return;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	ki_parse(m, &f->q);
	snprintf(f->device_id, sizeof(f->device_id), "%s", dev);
	if (cp_certs_get(cp, f->q.cert_id, &e, &err) == -1) {
		srv_reply_errt(r, &err);
		free(f);
		return;
	}
	if (e != NULL && strcmp(e->device_id, dev) != 0) {
		srv_reply_err(r, STB_FORBIDDEN, "certificate %s belongs to another device",
		              f->q.cert_id);
		goto out;
	}
	if (e != NULL && !cp_due_fetch_issues(e->state, e->not_after, (int64_t)time(NULL))) {
		ki_reply(cp, r, e, dev, &f->q); /* still good: nothing to issue */
		goto out;
	}
	cp_actor(r->conn, dev, actor);
	if ((f->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		goto out;
	}
	cp_ref(cp);
	f->cp = cp;
	if (cp_issue(cp, srv_conn_base(r->conn), srv_req_mbox(r), f->q.cert_id, dev, actor,
	             CP_ISSUE_FETCH, fetch_done, f, &err) == -1) {
		srv_reply_errt(f->r, &err);
		cp_unref(cp);
		goto out;
	}
	cp_kent_unref(e);
	return;
out:
	cp_kent_unref(e);
	free(f);
}

/* ---- CERT_UPDATE_ACK ---- */

struct renew {
	cp_t *cp;
	char device_id[CP_ID_CAP];
	char cert_id[CP_ID_CAP];
};

static void
renew_done(void *arg, const cp_issued_t *res)
{
	struct renew *w = arg;
	buf_t b;

	if (res->err.status != STB_OK)
		log_warnx("renewal of %s for %s failed (the update stays pending): %s", w->cert_id,
		          w->device_id, res->err.msg);
	else {
		struct msgreq_CP_CERT_UPDATED q = {.CERT_ID = MV_STR(w->cert_id),
		                                   .NOT_AFTER = MV_U(res->kent->not_after)};
		err_t err;

		buf_init(&b, 512);
		if (msgenc_CP_CERT_UPDATED(&b, &q, &err) == -1)
			log_warnx("renewal of %s for %s not pushed (%s): %s", w->cert_id,
			          w->device_id, stb_status_name(err.status), err.msg);
		else
			cp_online_push(w->cp, w->device_id, STB_MSG_CP_CERT_UPDATED, &b);
		buf_free(&b);
	}
	cp_unref(w->cp);
	free(w);
}

static void
cp_update_ack(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	char actor[CP_ACTOR_CAP];
	struct renew *w;
	const char *dev;
	cp_kent_t *e = NULL;
	int pending = 0;
	err_t err;

	if ((dev = ki_device(r)) == NULL)
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	msg_get_str(m, TLV_IX_CERT_ID, w->cert_id, sizeof(w->cert_id));
	snprintf(w->device_id, sizeof(w->device_id), "%s", dev);
	if (cp_certs_get(cp, w->cert_id, &e, &err) == -1 ||
	    (e != NULL && (pending = cp_certs_pending(cp, w->cert_id, &err)) == -1))
		srv_reply_errt(r, &err);
	else if (e == NULL)
		srv_reply_err(r, STB_NOT_FOUND, "no certificate %s", w->cert_id);
	else if (strcmp(e->device_id, dev) != 0)
		srv_reply_err(r, STB_FORBIDDEN, "certificate %s belongs to another device",
		              w->cert_id);
	else if (!pending)
		srv_reply_err(r, STB_CONFLICT, "no update of %s is pending", w->cert_id);
	else {
		/* the answer says "agreed"; CERT_UPDATED follows the renewal */
		mbox_t *mb = srv_req_mbox(r);
		struct event_base *base = srv_conn_base(r->conn);
		cp_actor(r->conn, dev, actor);
		srv_reply_ok(r);
		cp_ref(cp);
		w->cp = cp;
		if (cp_issue(cp, base, mb, w->cert_id, dev, actor, CP_ISSUE_RENEW, renew_done, w,
		             &err) == 0) {
			cp_kent_unref(e);
			return;
		}
		log_warnx("renewal of %s for %s not started: %s", w->cert_id, dev, err.msg);
		cp_unref(cp);
	}
	cp_kent_unref(e);
	free(w);
}

void
cp_keyinfo_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_CP_KEYINFO_REQ, cp_keyinfo_req);
	srv_handle(d->srv, MSG_IX_CP_CERT_FETCH, cp_cert_fetch);
	srv_handle(d->srv, MSG_IX_CP_CERT_UPDATE_ACK, cp_update_ack);
}
