/* issue: CA_ISSUE, a certificate for a CSR under a profile, recorded
 * durably (and audited) before it is handed out. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "signer.h"
#include "tlv.h"
#include "x509.h"

/* Subject and SAN of a profile from the request's IDs. */
static int
issue_names(const issue_req_t *q, cert_spec_t *s, char uris[3][CA_ID_CAP + 32], err_t *err)
{
	const char *dev = q->device_id, *cid = q->cert_id;
	int n = 0;

	if (dev == NULL || *dev == '\0')
		return err_set(err, STB_BAD_REQUEST, "profile %s needs DEVICE_ID", q->prof->name);
	s->cn = dev;
	switch (q->prof->kind) {
	case CA_PROF_STB_MEDIA:
		if (cid == NULL || *cid == '\0')
			return err_set(err, STB_BAD_REQUEST, "profile %s needs CERT_ID",
			               q->prof->name);
		snprintf(uris[n++], sizeof(uris[0]), CA_DEVICE_URI "%s", dev);
		snprintf(uris[n++], sizeof(uris[0]), CA_CERT_URI "%s", cid);
		break;
	case CA_PROF_DEVICE:
		snprintf(uris[n++], sizeof(uris[0]), CA_DEVICE_URI "%s", dev);
		snprintf(uris[n++], sizeof(uris[0]), STB_ROLE_URI_PREFIX "device");
		if (cid != NULL && *cid != '\0')
			snprintf(uris[n++], sizeof(uris[0]), CA_CERT_URI "%s", cid);
		break;
	default: /* service: DEVICE_ID names the service, CERT_ID its role */
		if (cid == NULL || proto_role_by_name(cid, strlen(cid)) == 0 ||
		    strcmp(cid, "anonymous") == 0)
			return err_set(
			    err, STB_BAD_REQUEST,
			    "profile service needs CERT_ID naming a role, such as media-gw");
		snprintf(uris[n++], sizeof(uris[0]), STB_ROLE_URI_PREFIX "%s", cid);
		break;
	}
	for (int i = 0; i < n; i++)
		s->uris[i] = uris[i];
	s->uris[n] = NULL;
	return 0;
}

int
issue_build(ca_t *ca, const issue_req_t *q, EVP_PKEY *pub, int64_t now, X509 **x, uint8_t **der,
            size_t *der_len, certdb_row_t *row, err_t *err)
{
	const ca_profile_t *p = q->prof;
	char uris[3][CA_ID_CAP + 32];
	uint8_t serial[CA_SERIAL_LEN];
	int64_t validity = p->max_validity_s;
	cert_spec_t s;

	*x = NULL;
	*der = NULL;
	if (!p->enabled)
		return err_set(err, STB_FORBIDDEN, "profile %s is disabled", p->name);
	if (q->requester_roles != 0 && !(q->requester_roles & p->requesters))
		return err_set(err, STB_FORBIDDEN, "your role may not use profile %s", p->name);
	if (!cert_key_is_p256(pub))
		return err_set(err, STB_BAD_REQUEST, "key is not an EC P-256 key");
	if (q->validity_s > 0 && q->validity_s < validity)
		validity = q->validity_s;
	memset(&s, 0, sizeof(s));
	if (issue_names(q, &s, uris, err) == -1)
		return -1;
	for (int i = 0; q->dns != NULL && q->dns[i] != NULL && i < 7; i++)
		s.dns[i] = q->dns[i];
	for (int i = 0; q->ips != NULL && q->ips[i] != NULL && i < 7; i++)
		s.ips[i] = q->ips[i];
	s.organization = ca->conf->organization;
	s.key_usage = p->key_usage;
	s.ext_key_usage = p->ext_key_usage;
	s.not_before = now - ca->conf->backdate_s;
	s.not_after = now + validity;
	s.ocsp_url = ca->ocsp_url;
	s.crl_url = ca->crl_url;
	if (cert_serial_new(serial, err) == -1 ||
	    (*x = cert_leaf_new(&s, serial, pub, ca->pki.issuing, ca->pki.issuing_key, err)) ==
	        NULL ||
	    cert_der(*x, der, der_len, err) == -1) {
		signer_take_err(err); /* UNAVAILABLE rather than "cannot sign" */
		X509_free(*x);
		*x = NULL;
		return -1;
	}
	memset(row, 0, sizeof(*row));
	memcpy(row->serial, serial, CA_SERIAL_LEN);
	row->serial_len = CA_SERIAL_LEN;
	snprintf(row->device_id, sizeof(row->device_id), "%s",
	         p->kind == CA_PROF_SERVICE ? "" : q->device_id);
	snprintf(row->cert_id, sizeof(row->cert_id), "%s",
	         p->kind != CA_PROF_SERVICE && q->cert_id ? q->cert_id : "");
	snprintf(row->subject, sizeof(row->subject), "%s", s.cn);
	snprintf(row->profile, sizeof(row->profile), "%s", p->name);
	snprintf(row->requester, sizeof(row->requester), "%s", q->requester);
	row->not_before = s.not_before;
	row->not_after = s.not_after;
	row->issued_at = now;
	row->der = *der;
	row->der_len = *der_len;
	return 0;
}

/* ---- CA_ISSUE ---- */

struct iss {
	ca_t *ca;
	srv_req_t *r;
	X509 *x;
	uint8_t *der;
	size_t der_len;
	certdb_row_t row;
	/* what a new serial needs: the request and the key */
	issue_req_t q;
	EVP_PKEY *pub;
	char dev[CA_ID_CAP], cid[CA_ID_CAP], actor[160];
	int redraws;
};

#define ISS_REDRAWS 2 /* serials drawn again after one was taken */

static void
iss_free(struct iss *a)
{
	ca_t *ca = a->ca;

	X509_free(a->x);
	OPENSSL_free(a->der);
	EVP_PKEY_free(a->pub);
	free(a);
	ca_unref(ca);
}

static int
iss_write(store_conn_t *c, void *arg, err_t *err)
{
	struct iss *a = arg;
	char hex[CA_SERIAL_HEX];

	crt_serial_hex(a->row.serial, a->row.serial_len, hex);
	if (certdb_insert(c, &a->row, err) == -1)
		return -1;
	return daemon_auditf(a->ca->d, c, err, "issue", a->row.requester,
	                     "serial=%s profile=%s subject=%s device=%s cert=%s not_after=%lld",
	                     hex, a->row.profile, a->row.subject, a->row.device_id, a->row.cert_id,
	                     (long long)a->row.not_after);
}

static void iss_done(void *arg, const err_t *err);

/* The serial was taken (the store's PRIMARY KEY, at this instance or
 * another): the certificate again with a fresh random serial.  0 when its
 * write is queued. */
static int
iss_redraw(struct iss *a, err_t *err)
{
	X509_free(a->x);
	OPENSSL_free(a->der);
	a->x = NULL;
	a->der = NULL;
	if (issue_build(a->ca, &a->q, a->pub, (int64_t)time(NULL), &a->x, &a->der, &a->der_len,
	                &a->row, err) == -1)
		return -1;
	return store_write(a->ca->d->store, srv_req_mbox(a->r), iss_write, iss_done, a, err);
}

static void
iss_done(void *arg, const err_t *err)
{
	struct iss *a = arg;
	char hex[CA_SERIAL_HEX];
	err_t e;
	buf_t *b;

	if (err->status == STB_CONFLICT && a->redraws++ < ISS_REDRAWS) {
		log_warnx("a serial was drawn twice; drawing another");
		if (iss_redraw(a, &e) == 0)
			return;
		srv_reply_errt(a->r, &e);
		iss_free(a);
		return;
	}
	if (err->status != STB_OK) {
		srv_reply_errt(a->r, err);
		iss_free(a);
		return;
	}
	crt_serial_hex(a->row.serial, a->row.serial_len, hex);
	log_info("issued %s serial %s for %s (%s)", a->row.profile, hex, a->row.subject,
	         a->row.requester);
	b = srv_reply_begin(a->r);
	tlv_put(b, STB_TLV_CERT_DER, a->der, a->der_len);
	tlv_put(b, STB_TLV_CERT_SERIAL, a->row.serial, a->row.serial_len);
	tlv_put_u64(b, STB_TLV_NOT_AFTER, (uint64_t)a->row.not_after);
	tlv_put(b, STB_TLV_CHAIN_DER, a->ca->pki.issuing_der, a->ca->pki.issuing_der_len);
	srv_reply_end(a->r);
	iss_free(a);
}

static void
ca_issue(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ca_t *ca = d->priv;
	char profile[65], dev[CA_ID_CAP] = "", cid[CA_ID_CAP] = "";
	const uint8_t *csr;
	size_t csr_len;
	uint32_t validity = 0;
	EVP_PKEY *pub = NULL;
	issue_req_t q;
	struct iss *a;
	err_t err;

	if (!ca->ready) {
		srv_reply_err(r, STB_UNAVAILABLE, "no CA here yet (ca-authd init)");
		return;
	}
	msg_get_str(m, TLV_IX_CERT_PROFILE, profile, sizeof(profile));
	msg_get_str(m, TLV_IX_DEVICE_ID, dev, sizeof(dev));
	msg_get_str(m, TLV_IX_CERT_ID, cid, sizeof(cid));
	msg_get_bytes(m, TLV_IX_CSR_DER, &csr, &csr_len);
	if (msg_get_u32(m, TLV_IX_VALIDITY_S, &validity) == 0 && validity == 0) {
		srv_reply_err(r, STB_BAD_REQUEST, "VALIDITY_S must be at least 1");
		return;
	}
	memset(&q, 0, sizeof(q));
	if ((q.prof = profile_find(ca->prof, profile)) == NULL) {
		srv_reply_err(r, STB_NOT_FOUND, "no profile '%s'", profile);
		return;
	}
	if (cert_csr_check(csr, csr_len, &pub, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		EVP_PKEY_free(pub);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	snprintf(a->actor, sizeof(a->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	memcpy(a->dev, dev, sizeof(a->dev));
	memcpy(a->cid, cid, sizeof(a->cid));
	q.device_id = a->dev;
	q.cert_id = a->cid;
	q.validity_s = validity;
	q.requester = a->actor;
	q.requester_roles = r->roles;
	a->q = q;
	a->pub = pub; /* a's now */
	a->ca = ca;
	ca_ref(ca);
	if (issue_build(ca, &a->q, pub, (int64_t)time(NULL), &a->x, &a->der, &a->der_len, &a->row,
	                &err) == -1) {
		srv_reply_errt(r, &err);
		iss_free(a);
		return;
	}
	if (daemon_write_deferred(d, r, iss_write, iss_done, a, &a->r) == -1)
		iss_free(a);
}

void
issue_register(ca_t *ca)
{
	srv_handle(ca->d->srv, MSG_IX_CA_ISSUE, ca_issue);
}
