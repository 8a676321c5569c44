/*
 * ocsp: an RFC 6960 responder on the HTTP listener, POST /ocsp and
 * GET /ocsp/<url-encoded base64 request>.  Answers are signed by the
 * delegated responder certificate (id-kp-OCSPSigning, ocsp-nocheck) and
 * carry it and the issuing CA, so a client with only the root can check
 * them.  A nonce in the request comes back in the answer.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "signer.h"
#include "x509.h"

#define OCSP_MAX_IDS 16

static int
ocsp_encode(OCSP_RESPONSE *r, uint8_t **out, size_t *len, err_t *err)
{
	unsigned char *p = NULL;
	int n = r ? i2d_OCSP_RESPONSE(r, &p) : -1;

	if (n <= 0 || (*out = malloc((size_t)n)) == NULL) {
		OPENSSL_free(p);
		return err_set(err, STB_INTERNAL, "cannot encode an OCSP response");
	}
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
	return 0;
}

/* A refusal without a signed body (malformedRequest, tryLater, ...). */
static int
ocsp_refuse(int status, uint8_t **out, size_t *len, err_t *err)
{
	OCSP_RESPONSE *r = OCSP_response_create(status, NULL);
	int rc = ocsp_encode(r, out, len, err);

	OCSP_RESPONSE_free(r);
	return rc;
}

/* One CertID: good, revoked or unknown (as known, when known is not NULL,
 * else as the store has it) into bs and *st; -1 when the store fails. */
static int
ocsp_one(ca_t *ca, store_conn_t *c, OCSP_BASICRESP *bs, OCSP_CERTID *cid, ASN1_TIME *thisupd,
         ASN1_TIME *nextupd, const ocsp_status_t *known, ocsp_status_t *st, err_t *err)
{
	ASN1_OBJECT *md_oid = NULL;
	ASN1_INTEGER *serial = NULL;
	OCSP_CERTID *ours = NULL;
	const EVP_MD *md;
	uint8_t sb[CA_SERIAL_MAX];
	size_t n;
	certdb_row_t row;
	ASN1_TIME *rt = NULL;
	int rc = 0;

	*st = (ocsp_status_t){V_OCSP_CERTSTATUS_UNKNOWN, -1, 0};
	OCSP_id_get0_info(NULL, &md_oid, NULL, &serial, cid);
	if (known != NULL)
		*st = *known;
	/* only this CA's certificates are known here */
	else if ((md = EVP_get_digestbyobj(md_oid)) != NULL &&
	         (ours = OCSP_cert_to_id(md, NULL, ca->pki.issuing)) != NULL &&
	         OCSP_id_issuer_cmp(ours, cid) == 0 && crt_serial_get(serial, sb, &n, NULL) == 0) {
		rc = certdb_get(c, sb, n, &row, NULL, err);
		if (rc == 0 && row.revoked)
			*st = (ocsp_status_t){V_OCSP_CERTSTATUS_REVOKED,
			                      row.reason == 0 ? -1 : row.reason, row.revoked_at};
		else if (rc == 0)
			st->status = V_OCSP_CERTSTATUS_GOOD;
	}
	OCSP_CERTID_free(ours);
	if (rc == -1)
		return -1;
	if (st->status == V_OCSP_CERTSTATUS_REVOKED &&
	    (rt = ASN1_TIME_set(NULL, (time_t)st->revoked_at)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	rc = OCSP_basic_add1_status(bs, cid, st->status, st->reason, rt, thisupd, nextupd) != NULL
	         ? 0
	         : err_set(err, STB_BAD_REQUEST, "a CertID that cannot be answered");
	ASN1_TIME_free(rt);
	return rc;
}

static int
ocsp_sign(ca_t *ca, OCSP_BASICRESP *bs, uint8_t **out, size_t *len, err_t *err)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	OCSP_RESPONSE *r = NULL;
	int rc = -1;

	__atomic_add_fetch(&ca->ocsp_signed, 1, __ATOMIC_RELAXED);
	if (certs == NULL || !sk_X509_push(certs, ca->pki.issuing) ||
	    OCSP_basic_sign(bs, ca->pki.ocsp, ca->pki.ocsp_key, EVP_sha256(), certs, 0) != 1) {
		if (!signer_take_err(err))
			err_set(err, STB_INTERNAL, "cannot sign the OCSP response");
	} else if ((r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) != NULL)
		rc = ocsp_encode(r, out, len, err);
	else
		err_set(err, STB_INTERNAL, "cannot build the OCSP response");
	OCSP_RESPONSE_free(r);
	sk_X509_free(certs); /* the certificates stay the CA's */
	return rc;
}

int
ocsp_sign_one(ca_t *ca, store_conn_t *c, OCSP_CERTID *cid, int64_t now, uint8_t **rsp,
              size_t *rsp_len, ocsp_status_t *st, err_t *err)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)now);
	ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)(now + ca->conf->ocsp_validity_s));
	int rc = -1;

	if (bs == NULL || tu == NULL || nu == NULL)
		err_set(err, STB_INTERNAL, "out of memory");
	else if ((rc = ocsp_one(ca, c, bs, cid, tu, nu, NULL, st, err)) == 0 &&
	         st->status != V_OCSP_CERTSTATUS_UNKNOWN)
		rc = ocsp_sign(ca, bs, rsp, rsp_len, err);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	OCSP_BASICRESP_free(bs);
	return rc;
}

OCSP_REQUEST *
ocsp_request_decode(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_REQUEST *oreq = NULL;
	int n;

	if (len == 0 || len > CA_OCSP_MAX_REQ ||
	    (oreq = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL || p != der + len ||
	    (n = OCSP_request_onereq_count(oreq)) <= 0 || n > OCSP_MAX_IDS) {
		OCSP_REQUEST_free(oreq);
		ERR_clear_error();
		return NULL;
	}
	return oreq;
}

/* A decoded request, signed on arrival; oreq stays the caller's. */
static int
ocsp_respond_req(ca_t *ca, store_conn_t *c, OCSP_REQUEST *oreq, int64_t now, uint8_t **rsp,
                 size_t *rsp_len, err_t *err)
{
	OCSP_BASICRESP *bs = NULL;
	ASN1_TIME *tu = NULL, *nu = NULL;
	int n, rc = -1;

	n = OCSP_request_onereq_count(oreq);
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (tu = ASN1_TIME_set(NULL, (time_t)now)) == NULL ||
	    (nu = ASN1_TIME_set(NULL, (time_t)(now + ca->conf->ocsp_validity_s))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
		ocsp_status_t st, known;
		int cached = ocache_status(ca, cid, now, &known);

		if (ocsp_one(ca, c, bs, cid, tu, nu, cached ? &known : NULL, &st, err) == -1)
			goto out;
	}
	if (OCSP_copy_nonce(bs, oreq) <= 0) {
		err_set(err, STB_BAD_REQUEST, "a nonce that cannot be copied");
		goto out;
	}
	rc = ocsp_sign(ca, bs, rsp, rsp_len, err);
out:
	if (rc == -1 && err->status == STB_UNAVAILABLE) {
		/* the signer is restarting (its supervisor said so): no line per request */
		rc = ocsp_refuse(OCSP_RESPONSE_STATUS_TRYLATER, rsp, rsp_len, err);
	} else if (rc == -1 && err->status == STB_BAD_REQUEST) {
		/* decoded, yet OpenSSL cannot echo a part of it back: the peer's
		 * doing, so no line per (anonymous) request */
		rc = ocsp_refuse(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, rsp, rsp_len, err);
	} else if (rc == -1) {
		log_warnx("OCSP: %s", err->msg);
		rc = ocsp_refuse(OCSP_RESPONSE_STATUS_INTERNALERROR, rsp, rsp_len, err);
	}
	ERR_clear_error();
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	OCSP_BASICRESP_free(bs);
	return rc;
}

int
ocsp_respond(ca_t *ca, store_conn_t *c, const uint8_t *req, size_t len, int64_t now, uint8_t **rsp,
             size_t *rsp_len, err_t *err)
{
	OCSP_REQUEST *oreq;
	int rc;

	if (!ca->ready)
		return ocsp_refuse(OCSP_RESPONSE_STATUS_TRYLATER, rsp, rsp_len, err);
	if ((oreq = ocsp_request_decode(req, len)) == NULL)
		return ocsp_refuse(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, rsp, rsp_len, err);
	rc = ocsp_respond_req(ca, c, oreq, now, rsp, rsp_len, err);
	OCSP_REQUEST_free(oreq);
	return rc;
}

/* GET: the request is the path after "/ocsp/", URL-encoded base64. */
uint8_t *
ocsp_get_decode(const char *path, size_t *len)
{
	char *b64;
	size_t b64len = 0;
	uint8_t *out;
	EVP_ENCODE_CTX *ctx;
	int n1 = 0, n2 = 0, ok;

	if (path == NULL || strncmp(path, "/ocsp/", 6) != 0 || strlen(path) > 2 * CA_OCSP_MAX_REQ)
		return NULL;
	if ((b64 = evhttp_uridecode(path + 6, 0, &b64len)) == NULL)
		return NULL;
	out = malloc(b64len / 4 * 3 + 3);
	ctx = EVP_ENCODE_CTX_new();
	ok = out != NULL && ctx != NULL && b64len > 0 && b64len <= INT32_MAX;
	if (ok) {
		EVP_DecodeInit(ctx);
		ok = EVP_DecodeUpdate(ctx, out, &n1, (unsigned char *)b64, (int)b64len) >= 0 &&
		     EVP_DecodeFinal(ctx, out + n1, &n2) == 1;
	}
	EVP_ENCODE_CTX_free(ctx);
	free(b64);
	if (!ok) {
		free(out);
		return NULL;
	}
	*len = (size_t)(n1 + n2);
	return out;
}

static uint8_t *
ocsp_post_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	uint8_t *out;

	if (n == 0 || n > CA_OCSP_MAX_REQ || (out = malloc(n)) == NULL)
		return NULL;
	if (evbuffer_remove(in, out, n) != (int)n) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}

/* RFC 5019 section 6.2: what lets HTTP caches keep a GET answer. */
static void
ocsp_cache_headers(struct evhttp_request *req, const ocache_ent_t *e, int64_t now)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	long long age = e->next_update > now ? (long long)(e->next_update - now) : 0;
	char v[96];
	struct tm tm;
	time_t t;

	snprintf(v, sizeof(v), "max-age=%lld, public, no-transform, must-revalidate", age);
	evhttp_add_header(h, "Cache-Control", v);
	evhttp_add_header(h, "ETag", e->etag);
	t = (time_t)e->this_update;
	if (gmtime_r(&t, &tm) != NULL && strftime(v, sizeof(v), "%a, %d %b %Y %H:%M:%S GMT", &tm))
		evhttp_add_header(h, "Last-Modified", v);
	t = (time_t)e->next_update;
	if (gmtime_r(&t, &tm) != NULL && strftime(v, sizeof(v), "%a, %d %b %Y %H:%M:%S GMT", &tm))
		evhttp_add_header(h, "Expires", v);
}

/* 1 when the client's If-None-Match names e. */
static int
ocsp_not_modified(struct evhttp_request *req, const ocache_ent_t *e)
{
	const char *inm =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");

	return inm != NULL && (strcmp(inm, "*") == 0 || strstr(inm, e->etag) != NULL);
}

/* One CertID without a nonce: the cache may answer it (*e). */
static int
ocsp_cacheable(OCSP_REQUEST *oreq)
{
	return OCSP_request_onereq_count(oreq) == 1 &&
	       OCSP_REQUEST_get_ext_by_NID(oreq, NID_id_pkix_OCSP_Nonce, -1) < 0;
}

static int
ocsp_answer(ca_t *ca, const uint8_t *body, size_t len, int64_t now, ocache_ent_t **e, uint8_t **rsp,
            size_t *rsp_len, err_t *err)
{
	OCSP_REQUEST *oreq;
	store_conn_t *c;
	err_t cerr;
	int rc;

	if (!ca->ready)
		return ocsp_refuse(OCSP_RESPONSE_STATUS_TRYLATER, rsp, rsp_len, err);
	if ((oreq = ocsp_request_decode(body, len)) == NULL)
		return ocsp_refuse(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, rsp, rsp_len, err);
	/* a cache that fails (the signer restarting) leaves it to the fresh path */
	if (ocsp_cacheable(oreq) &&
	    ocache_lookup(ca, OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, 0)), now, e,
	                  &cerr) == 1)
		rc = 0;
	else if ((c = store_reader(ca->d->store, err)) == NULL)
		rc = ocsp_refuse(OCSP_RESPONSE_STATUS_INTERNALERROR, rsp, rsp_len, err);
	else
		rc = ocsp_respond_req(ca, c, oreq, now, rsp, rsp_len, err);
	OCSP_REQUEST_free(oreq);
	ERR_clear_error();
	return rc;
}

static void
ocsp_http(struct evhttp_request *req, void *arg)
{
	ca_t *ca = arg;
	int get = evhttp_request_get_command(req) != EVHTTP_REQ_POST;
	int64_t now = (int64_t)time(NULL);
	uint8_t *body, *rsp = NULL;
	size_t len = 0, rsp_len = 0;
	ocache_ent_t *e = NULL;
	err_t err;
	int rc;

	if (!get)
		body = ocsp_post_body(req, &len);
	else
		body =
		    ocsp_get_decode(evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), &len);
	if (body == NULL)
		rc = ocsp_refuse(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, &rsp, &rsp_len, &err);
	else
		rc = ocsp_answer(ca, body, len, now, &e, &rsp, &rsp_len, &err);
	free(body);
	if (rc == -1) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (e != NULL) {
		if (get)
			ocsp_cache_headers(req, e, now);
		if (get && ocsp_not_modified(req, e))
			evhttp_send_reply(req, 304, "Not Modified", NULL);
		else
			httpd_reply(req, 200, "OK", "application/ocsp-response", e->der, e->len);
		ocache_ent_unref(e);
		return;
	}
	httpd_reply(req, 200, "OK", "application/ocsp-response", rsp, rsp_len);
	free(rsp);
}

int
ocsp_start(ca_t *ca, err_t *err)
{
	return httpd_route(ca->d, "/ocsp", EVHTTP_REQ_GET | EVHTTP_REQ_POST, CA_OCSP_MAX_REQ,
	                   ocsp_http, ca, err);
}
