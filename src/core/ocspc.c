/* ocspc: OCSP requests, answers and a blocking query (see ocspc.h). */
#include "ocspc.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "x509.h"

struct ocspc_req {
	OCSP_REQUEST *req;
	OCSP_CERTID *id; /* ours; the request holds a copy */
	X509 *issuer;
	uint8_t *der;
	size_t der_len;
};

/* The CertID hashes, fetched once. */
static CRYPTO_ONCE ocspc_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *ocspc_md[2];

static void
ocspc_fetch(void)
{
	ocspc_md[OCSPC_SHA1] = EVP_MD_fetch(NULL, "SHA1", NULL);
	ocspc_md[OCSPC_SHA256] = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static const EVP_MD *
ocspc_digest(int md)
{
	if (md != OCSPC_SHA1 && md != OCSPC_SHA256)
		return NULL;
	if (!CRYPTO_THREAD_run_once(&ocspc_once, ocspc_fetch))
		return NULL;
	return ocspc_md[md];
}

void
ocspc_req_free(ocspc_req_t *q)
{
	if (q == NULL)
		return;
	OCSP_REQUEST_free(q->req);
	OCSP_CERTID_free(q->id);
	X509_free(q->issuer);
	OPENSSL_free(q->der);
	free(q);
}

ocspc_req_t *
ocspc_req_new(X509 *cert, X509 *issuer, int md, err_t *err)
{
	const EVP_MD *dg = ocspc_digest(md);
	uint8_t nonce[OCSPC_NONCE_LEN];
	OCSP_CERTID *copy = NULL;
	ocspc_req_t *q;
	int n;

	if (cert == NULL || issuer == NULL) {
		err_set(err, STB_BAD_REQUEST, "OCSP request: no certificate or issuer");
		return NULL;
	}
	if (dg == NULL) {
		err_set_ossl(
		    err, md == OCSPC_SHA1 || md == OCSPC_SHA256 ? STB_INTERNAL : STB_BAD_REQUEST,
		    "OCSP request: CertID hash");
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (X509_check_issued(issuer, cert) != X509_V_OK) {
		err_set(err, STB_BAD_REQUEST,
		        "OCSP request: the issuer did not issue the certificate");
		goto fail;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		err_set_ossl(err, STB_INTERNAL, "OCSP request: RAND_bytes");
		goto fail;
	}
	if ((q->req = OCSP_REQUEST_new()) == NULL ||
	    (q->id = OCSP_cert_to_id(dg, cert, issuer)) == NULL ||
	    (copy = OCSP_CERTID_dup(q->id)) == NULL || OCSP_request_add0_id(q->req, copy) == NULL) {
		OCSP_CERTID_free(copy);
		err_set_ossl(err, STB_INTERNAL, "OCSP request");
		goto fail;
	}
	if (OCSP_request_add1_nonce(q->req, nonce, sizeof(nonce)) != 1 ||
	    (n = i2d_OCSP_REQUEST(q->req, &q->der)) <= 0) {
		err_set_ossl(err, STB_INTERNAL, "OCSP request: nonce or encoding");
		goto fail;
	}
	q->der_len = (size_t)n;
	X509_up_ref(issuer);
	q->issuer = issuer;
	return q;
fail:
	ocspc_req_free(q);
	return NULL;
}

const uint8_t *
ocspc_req_der(const ocspc_req_t *q, size_t *len)
{
	*len = q->der_len;
	return q->der;
}

/* The signer: the issuer, or a responder it issued for OCSP signing. */
static int
ocspc_verify_signer(const ocspc_req_t *q, OCSP_BASICRESP *bs, err_t *err)
{
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *certs = sk_X509_new_null();
	int rc = -1;

	if (store == NULL || certs == NULL || X509_STORE_add_cert(store, q->issuer) != 1 ||
	    sk_X509_push(certs, q->issuer) == 0) {
		err_set_ossl(err, STB_INTERNAL, "OCSP: trust store");
		goto out;
	}
	/* the issuer is the only anchor: a chain ends there, not at a root */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (OCSP_basic_verify(bs, certs, store, 0) != 1) {
		err_set_ossl(err, STB_UNAUTHENTICATED,
		             "OCSP answer not signed by the issuer or its authorised responder");
		goto out;
	}
	rc = 0;
out:
	sk_X509_free(certs); /* the issuer is q's */
	X509_STORE_free(store);
	return rc;
}

static int
ocspc_nonce(const ocspc_req_t *q, OCSP_BASICRESP *bs, const ocspc_opts_t *o, err_t *err)
{
	switch (OCSP_check_nonce(q->req, bs)) {
	case 1:
		return 0;
	case -1: /* we sent one, the answer has none */
		if (o->nonce_optional)
			return 0;
		ERR_clear_error();
		return err_set(err, STB_REPLAY, "OCSP answer carries no nonce");
	default:
		ERR_clear_error();
		return err_set(err, STB_REPLAY, "OCSP answer is for another request (nonce)");
	}
}

static int
ocspc_outcome(const ocspc_req_t *q, ocspc_result_t *res, err_t *err)
{
	char hex[CRT_SERIAL_HEX] = "?";
	ASN1_INTEGER *ai = NULL;
	uint8_t serial[CRT_SERIAL_MAX];
	size_t slen;

	OCSP_id_get0_info(NULL, NULL, NULL, &ai, q->id);
	if (crt_serial_get(ai, serial, &slen, NULL) == 0)
		crt_serial_hex(serial, slen, hex);
	switch (res->status) {
	case OCSPC_GOOD:
		return 0;
	case OCSPC_REVOKED:
		return err_set(err, STB_REVOKED, "certificate %s revoked at %lld (%s)", hex,
		               (long long)res->revoked_at,
		               res->reason >= 0 ? OCSP_crl_reason_str(res->reason) : "no reason");
	default:
		return err_set(err, STB_NOT_FOUND,
		               "the OCSP responder does not know certificate %s", hex);
	}
}

static int
ocspc_basic(const ocspc_req_t *q, OCSP_BASICRESP *bs, const ocspc_opts_t *o, ocspc_result_t *res,
            err_t *err)
{
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	int status, reason = -1;

	if (ocspc_verify_signer(q, bs, err) == -1 || ocspc_nonce(q, bs, o, err) == -1)
		return -1;
	if (OCSP_resp_find_status(bs, q->id, &status, &reason, &rev, &thisupd, &nextupd) != 1) {
		ERR_clear_error();
		return err_set(err, STB_UNAUTHENTICATED,
		               "OCSP answer has no status for our certificate");
	}
	if (OCSP_check_validity(thisupd, nextupd, o->skew_s, o->max_age_s) != 1)
		return err_set_ossl(err, STB_EXPIRED, "OCSP answer outside its validity window");
	if (crt_time(thisupd, &res->this_update, err) == -1 ||
	    (nextupd != NULL && crt_time(nextupd, &res->next_update, err) == -1))
		return -1;
	if (status == V_OCSP_CERTSTATUS_REVOKED) {
		res->reason = reason;
		if (rev == NULL || crt_time(rev, &res->revoked_at, err) == -1)
			return err_set(err, STB_BAD_REQUEST, "OCSP revocation time malformed");
	}
	res->status = status == V_OCSP_CERTSTATUS_GOOD      ? OCSPC_GOOD
	              : status == V_OCSP_CERTSTATUS_REVOKED ? OCSPC_REVOKED
	                                                    : OCSPC_UNKNOWN;
	return ocspc_outcome(q, res, err);
}

/* ---- the basic response, its certificates from the memo ----
 * An answer carries the delegated responder's certificate each time, and
 * parsing it is most of what reading an answer costs.  So the basic
 * response is parsed without its certs field (the signature covers only
 * tbsResponseData) and the certificates, matched on their DER, come from
 * crt_from_der_memo().  Anything unexpected takes OpenSSL's own path. */

static OCSP_BASICRESP *
ocspc_basic_memo(const uint8_t *der, size_t len)
{
	static const uint8_t basic_oid[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
	const uint8_t *p = der, *end = der + len, *c, *oid, *b, *bend, *seq, *tbs_end, *certs;
	size_t n, on, bn;
	X509 *x[8];
	int nx = 0, hlen;
	OCSP_BASICRESP *bs = NULL;
	unsigned char *tmp = NULL, *w;
	const unsigned char *rp;

	/* OCSPResponse { status, [0] { SEQUENCE { OID, OCTET STRING } } } */
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	if (crt_der_tlv(&p, end, V_ASN1_ENUMERATED, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
	    crt_der_tlv(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	if (crt_der_tlv(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, &oid, &on) == -1 ||
	    on != sizeof(basic_oid) || memcmp(oid, basic_oid, on) != 0 ||
	    crt_der_tlv(&p, end, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, &b, &bn) == -1 || p != end)
		return NULL;
	/* BasicOCSPResponse { tbs, algorithm, signature, [0] { SEQUENCE OF Certificate } } */
	p = b;
	bend = b + bn;
	if (crt_der_tlv(&p, bend, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &seq, &n) == -1 || p != bend)
		return NULL;
	p = seq;
	end = seq + n;
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
	    crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
	    crt_der_tlv(&p, end, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, &c, &n) == -1)
		return NULL;
	tbs_end = p;
	if (p == end) /* no certificates: nothing to save */
		return NULL;
	if (crt_der_tlv(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &certs, &n) == -1 || p != end)
		return NULL;
	if ((nx = crt_der_certs_memo(certs, n, x, (int)(sizeof(x) / sizeof(x[0])))) < 0) {
		nx = 0;
		goto out;
	}
	/* the response again without its certs field */
	n = (size_t)(tbs_end - seq);
	if (n > INT_MAX / 2 || (hlen = ASN1_object_size(1, (int)n, V_ASN1_SEQUENCE)) <= 0 ||
	    (tmp = OPENSSL_malloc((size_t)hlen)) == NULL)
		goto out;
	w = tmp;
	ASN1_put_object(&w, 1, (int)n, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(w, seq, n);
	rp = tmp;
	if ((bs = d2i_OCSP_BASICRESP(NULL, &rp, hlen)) == NULL || rp != tmp + hlen)
		goto fail;
	for (int i = 0; i < nx; i++)
		if (OCSP_basic_add1_cert(bs, x[i]) != 1)
			goto fail;
	goto out;
fail:
	OCSP_BASICRESP_free(bs);
	bs = NULL;
out:
	for (int i = 0; i < nx; i++)
		X509_free(x[i]);
	OPENSSL_free(tmp);
	ERR_clear_error();
	return bs;
}

/* r's basic response (a new one, NULL when it has none). */
static OCSP_BASICRESP *
ocspc_basic_of(OCSP_RESPONSE *r)
{
	unsigned char *der = NULL;
	OCSP_BASICRESP *bs = NULL;
	int n = i2d_OCSP_RESPONSE(r, &der);

	if (n > 0)
		bs = ocspc_basic_memo(der, (size_t)n);
	OPENSSL_free(der);
	ERR_clear_error();
	return bs != NULL ? bs : OCSP_response_get1_basic(r);
}

int
ocspc_check(const ocspc_req_t *q, const uint8_t *rsp, size_t len, const ocspc_opts_t *opts,
            ocspc_result_t *res, err_t *err)
{
	const unsigned char *p = rsp;
	OCSP_RESPONSE *r = NULL;
	int rc;

	res->status = OCSPC_NONE;
	res->reason = -1;
	res->revoked_at = res->this_update = res->next_update = -1;
	if (len > OCSPC_RESP_MAX)
		return err_set(err, STB_TOO_LARGE, "OCSP answer larger than %d bytes",
		               OCSPC_RESP_MAX);
	if (rsp == NULL || len == 0 || (r = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    p != rsp + len) {
		OCSP_RESPONSE_free(r);
		return err_set_ossl(err, STB_BAD_REQUEST, "not one DER OCSP answer");
	}
	rc = ocspc_check_parsed(q, r, opts, res, err);
	OCSP_RESPONSE_free(r);
	return rc;
}

int
ocspc_check_parsed(const ocspc_req_t *q, OCSP_RESPONSE *r, const ocspc_opts_t *opts,
                   ocspc_result_t *res, err_t *err)
{
	static const ocspc_opts_t defaults = {OCSPC_SKEW_S, -1, 0};
	const ocspc_opts_t *o = opts != NULL ? opts : &defaults;
	OCSP_BASICRESP *bs = NULL;
	int st, rc = -1;

	res->status = OCSPC_NONE;
	res->reason = -1;
	res->revoked_at = res->this_update = res->next_update = -1;
	if ((st = OCSP_response_status(r)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		err_set(err, STB_UNAVAILABLE, "OCSP responder answered %s",
		        OCSP_response_status_str(st));
		goto out;
	}
	if ((bs = ocspc_basic_of(r)) == NULL) {
		err_set_ossl(err, STB_BAD_REQUEST, "OCSP answer is not a basic response");
		goto out;
	}
	rc = ocspc_basic(q, bs, o, res, err);
out:
	OCSP_BASICRESP_free(bs);
	ERR_clear_error();
	return rc;
}

/* err for a failed OSSL_HTTP_transfer(): the queue's deepest timeout or
 * size error decides the status (the last entry is a generic one). */
static int
ocspc_http_err(const char *url, err_t *err)
{
	int status = STB_UNAVAILABLE;
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0) {
		int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
		if (status == STB_UNAVAILABLE &&
		    ((lib == ERR_LIB_HTTP && reason == HTTP_R_RETRY_TIMEOUT) ||
		     (lib == ERR_LIB_BIO &&
		      (reason == BIO_R_CONNECT_TIMEOUT || reason == BIO_R_TRANSFER_TIMEOUT)))) {
			status = STB_TIMEOUT;
			last = e;
		} else if (status == STB_UNAVAILABLE && lib == ERR_LIB_HTTP &&
		           (reason == HTTP_R_MAX_RESP_LEN_EXCEEDED ||
		            reason == HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN)) {
			status = STB_TOO_LARGE;
			last = e;
		} else if (status == STB_UNAVAILABLE) {
			last = e;
		}
	}
	return err_set(err, status, "OCSP query to %s: %s", url,
	               last != 0 && ERR_reason_error_string(last) != NULL
	                   ? ERR_reason_error_string(last)
	                   : "failed");
}

static int
ocspc_read_all(BIO *b, buf_t *out, size_t max, err_t *err)
{
	uint8_t chunk[4096];
	size_t total = 0;
	int n;

	while ((n = BIO_read(b, chunk, sizeof(chunk))) > 0) {
		total += (size_t)n;
		if (total > max)
			return err_set(err, STB_TOO_LARGE, "OCSP answer larger than %zu bytes",
			               max);
		if (buf_append(out, chunk, (size_t)n) == -1)
			return err_set(err, STB_TOO_LARGE, "OCSP answer does not fit the buffer");
	}
	return 0;
}

int
ocspc_query(const char *url, const char *proxy, int timeout_s, size_t max_resp,
            const ocspc_req_t *q, buf_t *rsp, err_t *err)
{
	char *host = NULL, *port = NULL, *path = NULL;
	BIO *req = NULL, *in = NULL;
	int ssl = 0, rc = -1;

	if (max_resp == 0 || max_resp > OCSPC_RESP_MAX)
		max_resp = OCSPC_RESP_MAX;
	if (timeout_s < 1 || timeout_s > OCSPC_TIMEOUT_MAX)
		return err_set(err, STB_BAD_REQUEST, "OCSP timeout: 1 to %d seconds",
		               OCSPC_TIMEOUT_MAX);
	if (url != NULL && strncasecmp(url, "https://", 8) == 0)
		/* answers are signed; TLS would need a context of its own here */
		return err_set(err, STB_BAD_REQUEST,
		               "OCSP responder URL %s: only http:// is supported", url);
	if (url == NULL || strncasecmp(url, "http://", 7) != 0 ||
	    OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1 ||
	    ssl) {
		err_set_ossl(err, STB_BAD_REQUEST,
		             "OCSP responder URL %s is not http://host[:port]/path",
		             url ? url : "(none)");
		goto out;
	}
	if ((req = BIO_new_mem_buf(q->der, (int)q->der_len)) == NULL) {
		err_set_ossl(err, STB_INTERNAL, "OCSP request BIO");
		goto out;
	}
	in = OSSL_HTTP_transfer(NULL, host, port, path, 0, proxy != NULL ? proxy : "", NULL, NULL,
	                        NULL, NULL, NULL, 0, NULL, "application/ocsp-request", req,
	                        "application/ocsp-response", 1, max_resp, timeout_s, 0);
	if (in == NULL) {
		ocspc_http_err(url, err);
		goto out;
	}
	rc = ocspc_read_all(in, rsp, max_resp, err);
out:
	BIO_free(in);
	BIO_free(req);
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(path);
	ERR_clear_error();
	return rc;
}
