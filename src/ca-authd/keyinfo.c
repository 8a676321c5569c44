/*
 * keyinfo: CA_VERIFY_KEYINFO for media-gw.  The first time a certificate
 * is seen it is parsed, its signature checked against the issuing CA, its
 * serial and exact DER found in the store and its names read; the result
 * is cached (kcache).  Every login then costs one ECDSA verification of
 * the proof, plus lookups in memory: dates, revocation, names, freshness.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "login.h"
#include "tlv.h"
#include "x509.h"

/* The slow path: is this one of our certificates, and whose? */
static int
keyinfo_admit(ca_t *ca, const uint8_t *der, size_t len, const uint8_t hash[32], int64_t now,
              kcache_ent_t *e, err_t *err)
{
	uint8_t stored[32];
	char hex[CA_SERIAL_HEX], cn[CA_ID_CAP];
	certdb_row_t row;
	store_conn_t *c;
	X509 *x;
	int rc = -1, found;

	memset(e, 0, sizeof(*e));
	if ((x = crt_from_der(der, len, err)) == NULL)
		return -1;
	if (X509_check_issued(ca->pki.issuing, x) != X509_V_OK ||
	    X509_verify(x, X509_get0_pubkey(ca->pki.issuing)) != 1) {
		err_set(err, STB_UNAUTHENTICATED, "certificate was not issued by this CA");
		goto out;
	}
	if (crt_serial_get(X509_get0_serialNumber(x), e->serial, &e->serial_len, NULL) == -1) {
		err_set(err, STB_UNAUTHENTICATED, "certificate serial is not one of this CA's");
		goto out;
	}
	crt_serial_hex(e->serial, e->serial_len, hex);
	if ((c = store_reader(ca->d->store, err)) == NULL ||
	    (found = certdb_get(c, e->serial, e->serial_len, &row, stored, err)) == -1)
		goto out;
	if (found == 1 || CRYPTO_memcmp(stored, hash, 32) != 0) {
		err_set(err, STB_UNAUTHENTICATED, "certificate serial %s is unknown to this CA",
		        hex);
		goto out;
	}
	if (strcmp(row.profile, profile_names[CA_PROF_STB_MEDIA]) != 0) {
		err_set(err, STB_UNAUTHENTICATED,
		        "certificate %s is not a media-access certificate (profile %s)", hex,
		        row.profile);
		goto out;
	}
	if (crt_time(X509_get0_notBefore(x), &e->not_before, NULL) == -1 ||
	    crt_time(X509_get0_notAfter(x), &e->not_after, NULL) == -1) {
		err_set(err, STB_UNAUTHENTICATED, "certificate %s dates do not parse", hex);
		goto out;
	}
	if (crt_san_uri(x, CA_DEVICE_URI, e->device_id, sizeof(e->device_id)) == -1 ||
	    crt_san_uri(x, CA_CERT_URI, e->cert_id, sizeof(e->cert_id)) == -1 ||
	    cert_cn(x, cn, sizeof(cn)) == -1 || strcmp(cn, e->device_id) != 0) {
		err_set(err, STB_UNAUTHENTICATED,
		        "certificate %s is not a media-access certificate (subject or SAN)", hex);
		goto out;
	}
	if ((e->pub = X509_get_pubkey(x)) == NULL || !cert_key_is_p256(e->pub)) {
		err_set(err, STB_UNAUTHENTICATED, "certificate %s key is not EC P-256", hex);
		goto out;
	}
	if (now < e->not_after)
		kcache_put(ca->kcache, hash, e);
	rc = 0;
out:
	if (rc == -1)
		kcache_ent_clear(e);
	ERR_clear_error();
	X509_free(x);
	return rc;
}

static int
keyinfo_proof(ca_t *ca, const kcache_ent_t *e, const keyinfo_req_t *q, err_t *err)
{
	EVP_MD_CTX *mctx;
	buf_t tbs;
	int ok;

	buf_init(&tbs, LOGIN_TBS_MAX);
	if (login_keyinfo_tbs(&tbs, q->device_id, q->cert_id, q->session_id, q->gw_nonce, q->time,
	                      err) == -1) {
		buf_free(&tbs);
		return -1;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL) {
		buf_free(&tbs);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	ok = EVP_DigestVerifyInit(mctx, NULL, ca->sha256, NULL, e->pub) == 1 &&
	     EVP_DigestVerify(mctx, q->proof, q->proof_len, tbs.data, tbs.len) == 1;
	EVP_MD_CTX_free(mctx);
	buf_free(&tbs);
	if (!ok) {
		ERR_clear_error();
		return err_set(err, STB_UNAUTHENTICATED,
		               "bad proof: the signature does not cover this login's key info");
	}
	return 0;
}

int
keyinfo_verify(ca_t *ca, const keyinfo_req_t *q, int64_t now, uint8_t serial[CA_SERIAL_MAX],
               size_t *serial_len, int64_t *not_after, err_t *err)
{
	uint8_t hash[32];
	kcache_ent_t e;
	int64_t age;
	int rc = -1;

	if (!ca->ready)
		return err_set(err, STB_UNAVAILABLE, "no CA here yet (ca-authd init)");
	if (EVP_Digest(q->cert_der, q->cert_len, hash, NULL, ca->sha256, NULL) != 1)
		return err_set(err, STB_INTERNAL, "SHA-256 failed");
	if (!kcache_get(ca->kcache, hash, now, &e) &&
	    keyinfo_admit(ca, q->cert_der, q->cert_len, hash, now, &e, err) == -1)
		return -1;
	age = now - (int64_t)q->time;
	if (now < e.not_before)
		err_set(err, STB_EXPIRED, "certificate is not valid before %lld",
		        (long long)e.not_before);
	else if (now >= e.not_after)
		err_set(err, STB_EXPIRED, "certificate expired at %lld", (long long)e.not_after);
	else if (revset_has(ca->revoked, e.serial, e.serial_len))
		err_set(err, STB_REVOKED, "certificate is revoked");
	else if (strcmp(e.device_id, q->device_id) != 0)
		err_set(err, STB_UNAUTHENTICATED, "certificate is for device %s, not %s",
		        e.device_id, q->device_id);
	else if (strcmp(e.cert_id, q->cert_id) != 0)
		err_set(err, STB_UNAUTHENTICATED, "certificate is %s, not %s", e.cert_id,
		        q->cert_id);
	else if (q->time > (uint64_t)INT64_MAX || age > ca->conf->keyinfo_fresh_s ||
	         -age > ca->conf->keyinfo_fresh_s)
		err_set(err, STB_EXPIRED, "stale key info (made %lld s from now, window %lld s)",
		        (long long)-age, ca->conf->keyinfo_fresh_s);
	else if (keyinfo_proof(ca, &e, q, err) == 0) {
		memcpy(serial, e.serial, e.serial_len);
		*serial_len = e.serial_len;
		*not_after = e.not_after;
		rc = 0;
	}
	kcache_ent_clear(&e);
	return rc;
}

static void
ca_verify_keyinfo(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char dev[CA_ID_CAP], cid[CA_ID_CAP];
	uint8_t serial[CA_SERIAL_MAX];
	size_t slen, l1, l2;
	int64_t not_after;
	keyinfo_req_t q;
	err_t err;
	buf_t *b;

	memset(&q, 0, sizeof(q));
	/* the registry made all of them required */
	msg_get_str(m, TLV_IX_DEVICE_ID, dev, sizeof(dev));
	msg_get_str(m, TLV_IX_CERT_ID, cid, sizeof(cid));
	msg_get_bytes(m, TLV_IX_LOGIN_SESSION_ID, &q.session_id, &l1);
	msg_get_bytes(m, TLV_IX_GW_NONCE, &q.gw_nonce, &l2);
	msg_get_bytes(m, TLV_IX_CERT_DER, &q.cert_der, &q.cert_len);
	msg_get_bytes(m, TLV_IX_KEYINFO_PROOF, &q.proof, &q.proof_len);
	msg_get_u64(m, TLV_IX_KEYINFO_TIME, &q.time);
	q.device_id = dev;
	q.cert_id = cid;
	if (keyinfo_verify(d->priv, &q, (int64_t)time(NULL), serial, &slen, &not_after, &err) ==
	    -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_CERT_SERIAL, serial, slen);
	tlv_put_u64(b, STB_TLV_NOT_AFTER, (uint64_t)not_after);
	srv_reply_end(r);
}

void
keyinfo_register(ca_t *ca)
{
	srv_handle(ca->d->srv, MSG_IX_CA_VERIFY_KEYINFO, ca_verify_keyinfo);
}
