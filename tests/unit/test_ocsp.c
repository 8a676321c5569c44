/* test_ocsp: OCSP requests, the checks of answers, the blocking query. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ocspc.h"
#include "testutil.h"

static const char *const ca_exts[] = {"basicConstraints=critical,CA:TRUE",
                                      "keyUsage=critical,keyCertSign,cRLSign",
                                      "subjectKeyIdentifier=hash", NULL};
static const char *const leaf_exts[] = {"basicConstraints=critical,CA:FALSE",
                                        "keyUsage=critical,digitalSignature", NULL};
static const char *const resp_exts[] = {"basicConstraints=critical,CA:FALSE",
                                        "keyUsage=critical,digitalSignature",
                                        "extendedKeyUsage=OCSPSigning", NULL};

/* The test PKI: a CA with a leaf and responders, and another CA. */
typedef struct pki {
	EVP_PKEY *ca_key, *leaf_key, *resp_key, *other_key;
	X509 *ca, *leaf, *resp, *resp_noeku, *other_ca, *other_resp;
} pki_t;

static int
pki_setup(void **state)
{
	pki_t *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ca_key = tu_p256();
	p->leaf_key = tu_p256();
	p->resp_key = tu_p256();
	p->other_key = tu_p256();
	p->ca = tu_cert("Test CA", p->ca_key, NULL, NULL, -3600, 86400, ca_exts);
	p->leaf = tu_cert("stb-1", p->leaf_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->resp = tu_cert("OCSP", p->resp_key, p->ca, p->ca_key, -3600, 86400, resp_exts);
	p->resp_noeku =
	    tu_cert("OCSP no EKU", p->resp_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->other_ca = tu_cert("Other CA", p->other_key, NULL, NULL, -3600, 86400, ca_exts);
	p->other_resp =
	    tu_cert("Other OCSP", p->resp_key, p->other_ca, p->other_key, -3600, 86400, resp_exts);
	*state = p;
	return 0;
}

static int
pki_teardown(void **state)
{
	pki_t *p = *state;

	X509_free(p->ca);
	X509_free(p->leaf);
	X509_free(p->resp);
	X509_free(p->resp_noeku);
	X509_free(p->other_ca);
	X509_free(p->other_resp);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->leaf_key);
	EVP_PKEY_free(p->resp_key);
	EVP_PKEY_free(p->other_key);
	free(p);
	return 0;
}

enum { SIGNER_CA, SIGNER_RESP, SIGNER_NOEKU, SIGNER_OTHER };
enum { NONCE_ECHO, NONCE_WRONG, NONCE_NONE };

/* How the test responder answers. */
typedef struct answer {
	int rstatus; /* OCSP_RESPONSE_STATUS_* */
	int cstatus; /* V_OCSP_CERTSTATUS_* */
	int reason;
	long this_off, next_off; /* from now; next_off 0: no nextUpdate */
	int signer;
	int nonce;
	int other_serial; /* a status for another certificate only */
	int flip_sig;
} answer_t;

/* The DER answer a to the request q. */
static unsigned char *
respond(pki_t *p, const ocspc_req_t *q, const answer_t *a, int *len)
{
	const uint8_t *der;
	size_t dl;
	const unsigned char *dp;
	OCSP_REQUEST *req;
	OCSP_BASICRESP *bs;
	OCSP_RESPONSE *r;
	OCSP_CERTID *id;
	ASN1_TIME *tu, *nu = NULL, *rt = NULL;
	STACK_OF(X509) *certs = sk_X509_new_null();
	unsigned char *out = NULL;
	X509 *signer;
	EVP_PKEY *skey;
	time_t now = time(NULL);

	if (a->rstatus != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		r = OCSP_response_create(a->rstatus, NULL);
		*len = i2d_OCSP_RESPONSE(r, &out);
		OCSP_RESPONSE_free(r);
		sk_X509_free(certs);
		return out;
	}
	der = ocspc_req_der(q, &dl);
	dp = der;
	req = d2i_OCSP_REQUEST(NULL, &dp, (long)dl);
	assert_non_null(req);
	assert_int_equal(OCSP_request_onereq_count(req), 1);
	id = OCSP_CERTID_dup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)));
	if (a->other_serial) {
		ASN1_INTEGER *sn = NULL;
		OCSP_id_get0_info(NULL, NULL, NULL, &sn, id);
		assert_int_equal(ASN1_INTEGER_set(sn, 12345), 1);
	}
	bs = OCSP_BASICRESP_new();
	tu = ASN1_TIME_set(NULL, now + a->this_off);
	if (a->next_off != 0)
		nu = ASN1_TIME_set(NULL, now + a->next_off);
	if (a->cstatus == V_OCSP_CERTSTATUS_REVOKED)
		rt = ASN1_TIME_set(NULL, 1700000000);
	assert_non_null(OCSP_basic_add1_status(bs, id, a->cstatus, a->reason, rt, tu, nu));
	if (a->nonce == NONCE_ECHO)
		assert_int_equal(OCSP_copy_nonce(bs, req), 1);
	else if (a->nonce == NONCE_WRONG)
		assert_int_equal(OCSP_basic_add1_nonce(bs, NULL, OCSPC_NONCE_LEN), 1);
	switch (a->signer) {
	case SIGNER_CA:
		signer = p->ca, skey = p->ca_key;
		break;
	case SIGNER_RESP:
		signer = p->resp, skey = p->resp_key;
		break;
	case SIGNER_NOEKU:
		signer = p->resp_noeku, skey = p->resp_key;
		break;
	default:
		signer = p->other_resp, skey = p->resp_key;
		sk_X509_push(certs, p->other_ca);
		break;
	}
	assert_int_equal(OCSP_basic_sign(bs, signer, skey, EVP_sha256(), certs,
	                                 a->signer == SIGNER_CA ? OCSP_NOCERTS : 0),
	                 1);
	if (a->flip_sig) {
		ASN1_OCTET_STRING *sig = (ASN1_OCTET_STRING *)OCSP_resp_get0_signature(bs);
		unsigned char *d = (unsigned char *)ASN1_STRING_get0_data(sig);
		d[ASN1_STRING_length(sig) - 3] ^= 0x01;
	}
	r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	*len = i2d_OCSP_RESPONSE(r, &out);
	assert_true(*len > 0);
	OCSP_RESPONSE_free(r);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_TIME_free(rt);
	sk_X509_free(certs);
	return out;
}

#define OK_ANSWER OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, -60, 3600

static void
test_check(void **state)
{
	static const struct {
		const char *name;
		int md;
		answer_t a;
		ocspc_opts_t opts;
		int status; /* err status; STB_OK: accepted */
		int result; /* OCSPC_* */
	} cases[] = {
	    {"good, by the CA",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_CA, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_OK,
	     OCSPC_GOOD},
	    {"good, delegated, SHA-256 CertID",
	     OCSPC_SHA256,
	     {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_OK,
	     OCSPC_GOOD},
	    {"revoked",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_REVOKED,
	      OCSP_REVOKED_STATUS_KEYCOMPROMISE, -60, 3600, SIGNER_RESP, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_REVOKED,
	     OCSPC_REVOKED},
	    {"unknown",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_UNKNOWN, -1, -60, 3600,
	      SIGNER_RESP, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_NOT_FOUND,
	     OCSPC_UNKNOWN},
	    {"wrong nonce",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_WRONG, 0, 0},
	     {300, -1, 0},
	     STB_REPLAY,
	     OCSPC_NONE},
	    {"no nonce",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_NONE, 0, 0},
	     {300, -1, 0},
	     STB_REPLAY,
	     OCSPC_NONE},
	    {"no nonce, allowed",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_NONE, 0, 0},
	     {300, -1, 1},
	     STB_OK,
	     OCSPC_GOOD},
	    {"wrong nonce, nonce optional",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_WRONG, 0, 0},
	     {300, -1, 1},
	     STB_REPLAY,
	     OCSPC_NONE},
	    {"stale: nextUpdate past",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, -7200, -3600,
	      SIGNER_RESP, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_EXPIRED,
	     OCSPC_NONE},
	    {"nextUpdate just past, within the skew",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, -7200, -60, SIGNER_RESP,
	      NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_OK,
	     OCSPC_GOOD},
	    {"nextUpdate just past, no skew",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, -7200, -60, SIGNER_RESP,
	      NONCE_ECHO, 0, 0},
	     {0, -1, 0},
	     STB_EXPIRED,
	     OCSPC_NONE},
	    {"thisUpdate in the future",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, 3600, 7200, SIGNER_RESP,
	      NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_EXPIRED,
	     OCSPC_NONE},
	    {"too old for max_age",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 0, 0},
	     {0, 30, 0},
	     STB_EXPIRED,
	     OCSPC_NONE},
	    {"no nextUpdate",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1, -60, 0, SIGNER_RESP,
	      NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_OK,
	     OCSPC_GOOD},
	    {"delegated responder without OCSPSigning",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_NOEKU, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_UNAUTHENTICATED,
	     OCSPC_NONE},
	    {"responder of another CA",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_OTHER, NONCE_ECHO, 0, 0},
	     {300, -1, 0},
	     STB_UNAUTHENTICATED,
	     OCSPC_NONE},
	    {"bad signature",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 0, 1},
	     {300, -1, 0},
	     STB_UNAUTHENTICATED,
	     OCSPC_NONE},
	    {"bad signature by the CA",
	     OCSPC_SHA256,
	     {OK_ANSWER, SIGNER_CA, NONCE_ECHO, 0, 1},
	     {300, -1, 0},
	     STB_UNAUTHENTICATED,
	     OCSPC_NONE},
	    {"status for another certificate",
	     OCSPC_SHA1,
	     {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 1, 0},
	     {300, -1, 0},
	     STB_UNAUTHENTICATED,
	     OCSPC_NONE},
	    {"tryLater",
	     OCSPC_SHA1,
	     {OCSP_RESPONSE_STATUS_TRYLATER, 0, 0, 0, 0, 0, 0, 0, 0},
	     {300, -1, 0},
	     STB_UNAVAILABLE,
	     OCSPC_NONE},
	};
	pki_t *p = *state;

	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		ocspc_req_t *q;
		ocspc_result_t res;
		unsigned char *der;
		int len, rc;
		err_t err;

		err_clear(&err);
		q = ocspc_req_new(p->leaf, p->ca, cases[i].md, &err);
		assert_non_null(q);
		der = respond(p, q, &cases[i].a, &len);
		rc = ocspc_check(q, der, (size_t)len, &cases[i].opts, &res, &err);
		if (rc != (cases[i].status == STB_OK ? 0 : -1) ||
		    (rc == -1 && err.status != cases[i].status) || res.status != cases[i].result)
			fail_msg("%s: rc %d status %d result %d (%s)", cases[i].name, rc,
			         err.status, res.status, err.msg);
		if (res.status == OCSPC_REVOKED) {
			assert_int_equal(res.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
			assert_int_equal(res.revoked_at, 1700000000);
		}
		if (res.status != OCSPC_NONE) {
			assert_true(res.this_update > 0);
			assert_true(cases[i].a.next_off == 0 ? res.next_update == -1
			                                     : res.next_update > res.this_update);
		}
		assert_int_equal(ERR_peek_error(), 0);
		OPENSSL_free(der);
		ocspc_req_free(q);
	}
}

static void
test_request(void **state)
{
	pki_t *p = *state;
	ocspc_req_t *a, *b;
	const uint8_t *da, *db;
	const unsigned char *dp;
	size_t la, lb;
	OCSP_REQUEST *req;
	X509_EXTENSION *ext;
	err_t err;

	a = ocspc_req_new(p->leaf, p->ca, OCSPC_SHA256, &err);
	b = ocspc_req_new(p->leaf, p->ca, OCSPC_SHA256, &err);
	assert_non_null(a);
	assert_non_null(b);
	da = ocspc_req_der(a, &la);
	db = ocspc_req_der(b, &lb);
	/* same CertID, fresh nonce each time */
	assert_int_equal(la, lb);
	assert_memory_not_equal(da, db, la);
	dp = da;
	req = d2i_OCSP_REQUEST(NULL, &dp, (long)la);
	assert_non_null(req);
	assert_int_equal(OCSP_request_onereq_count(req), 1);
	ext =
	    OCSP_REQUEST_get_ext(req, OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1));
	assert_non_null(ext);
	/* an OCTET STRING of 32 bytes inside the extension value */
	assert_int_equal(ASN1_STRING_length(X509_EXTENSION_get_data(ext)), OCSPC_NONCE_LEN + 2);
	OCSP_REQUEST_free(req);
	ocspc_req_free(a);
	ocspc_req_free(b);
	/* refusals */
	assert_null(ocspc_req_new(p->leaf, p->ca, 7, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(ocspc_req_new(p->leaf, p->other_ca, OCSPC_SHA1, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(ocspc_req_new(NULL, p->ca, OCSPC_SHA1, &err));
	assert_int_equal(ERR_peek_error(), 0);
	ocspc_req_free(NULL);
}

static void
test_malformed(void **state)
{
	pki_t *p = *state;
	ocspc_req_t *q = ocspc_req_new(p->leaf, p->ca, OCSPC_SHA1, NULL);
	answer_t a = {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 0, 0};
	unsigned char *der, *big;
	ocspc_result_t res;
	int len;
	err_t err;

	assert_non_null(q);
	der = respond(p, q, &a, &len);
	big = calloc(1, OCSPC_RESP_MAX + 1);
	assert_non_null(big);
	memcpy(big, der, (size_t)len);
	assert_int_equal(ocspc_check(q, big, (size_t)len + 1, NULL, &res, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ocspc_check(q, der, (size_t)len - 1, NULL, &res, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ocspc_check(q, der, 0, NULL, &res, &err), -1);
	assert_int_equal(ocspc_check(q, big, OCSPC_RESP_MAX + 1, NULL, &res, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(res.status, OCSPC_NONE);
	assert_int_equal(ERR_peek_error(), 0);
	assert_int_equal(ocspc_check(q, der, (size_t)len, NULL, &res, &err), 0);
	free(big);
	OPENSSL_free(der);
	ocspc_req_free(q);
}

/* ---- the blocking query, against a one-shot HTTP responder ---- */

enum { SRV_ANSWER, SRV_SILENT, SRV_HUGE };

typedef struct srv {
	int fd, mode;
	unsigned char *body;
	int body_len;
	pthread_t th;
} srv_t;

static void *
srv_main(void *arg)
{
	srv_t *s = arg;
	char req[8192], hdr[256];
	size_t got = 0;
	int c = accept(s->fd, NULL, NULL);
	char *end;

	if (c < 0)
		return NULL;
	/* headers, then Content-Length bytes */
	while (got < sizeof(req) - 1) {
		ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if ((end = strstr(req, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(req, "Content-Length:");
			if (cl != NULL && got >= (size_t)(end + 4 - req) + (size_t)atoi(cl + 15))
				break;
		}
	}
	if (s->mode == SRV_SILENT) {
		sleep(3);
	} else if (s->mode == SRV_HUGE) {
		int n = snprintf(hdr, sizeof(hdr),
		                 "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
		                 "Content-Length: %d\r\n\r\n",
		                 OCSPC_RESP_MAX * 4);
		if (write(c, hdr, (size_t)n) < 0)
			goto out;
	} else {
		int n = snprintf(hdr, sizeof(hdr),
		                 "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
		                 "Content-Length: %d\r\n\r\n",
		                 s->body_len);
		if (write(c, hdr, (size_t)n) < 0 || write(c, s->body, (size_t)s->body_len) < 0)
			goto out;
	}
out:
	close(c);
	return NULL;
}

static int
srv_start(srv_t *s, int mode)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->mode = mode;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return ntohs(sa.sin_port);
}

static void
srv_stop(srv_t *s)
{
	pthread_join(s->th, NULL);
	close(s->fd);
}

static void
test_query(void **state)
{
	pki_t *p = *state;
	ocspc_req_t *q = ocspc_req_new(p->leaf, p->ca, OCSPC_SHA1, NULL);
	answer_t a = {OK_ANSWER, SIGNER_RESP, NONCE_ECHO, 0, 0};
	ocspc_result_t res;
	char url[64];
	srv_t s;
	buf_t b;
	err_t err;
	int port;

	assert_non_null(q);
	/* the answer to this request, served over HTTP */
	s.body = respond(p, q, &a, &s.body_len);
	port = srv_start(&s, SRV_ANSWER);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ocsp", port);
	buf_init(&b, OCSPC_RESP_MAX);
	assert_int_equal(ocspc_query(url, NULL, 5, 0, q, &b, &err), 0);
	srv_stop(&s);
	assert_int_equal(b.len, (size_t)s.body_len);
	assert_int_equal(ocspc_check(q, b.data, b.len, NULL, &res, &err), 0);
	assert_int_equal(res.status, OCSPC_GOOD);
	buf_free(&b);
	/* an answer larger than allowed */
	port = srv_start(&s, SRV_HUGE);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ocsp", port);
	buf_init(&b, OCSPC_RESP_MAX);
	assert_int_equal(ocspc_query(url, NULL, 5, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	srv_stop(&s);
	/* a responder that never answers */
	port = srv_start(&s, SRV_SILENT);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ocsp", port);
	assert_int_equal(ocspc_query(url, NULL, 1, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_TIMEOUT);
	srv_stop(&s);
	/* nobody listening any more: OpenSSL retries the connection until the timeout */
	assert_int_equal(ocspc_query(url, NULL, 1, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_TIMEOUT);
	/* refused before any traffic */
	assert_int_equal(ocspc_query("https://127.0.0.1/ocsp", NULL, 2, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ocspc_query("not a url", NULL, 2, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ocspc_query(url, NULL, 0, 0, q, &b, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(b.len, 0);
	assert_int_equal(ERR_peek_error(), 0);
	buf_free(&b);
	OPENSSL_free(s.body);
	ocspc_req_free(q);
}

/* ---- interop: `openssl ocsp` answers our request from an index file ---- */

static void
test_openssl_responder(void **state)
{
	static const struct {
		const char *flag; /* index.txt state */
		const char *revoked;
		int status;
	} cases[] = {
	    {"V", "", STB_OK},
	    {"R", "230101000000Z,keyCompromise", STB_REVOKED},
	};
	pki_t *p = *state;
	char dir[TU_DIR_MAX], path[5][TU_DIR_MAX + 16], cmd[2048], hex[2 * 20 + 1];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(p->leaf), NULL);
	char *h = BN_bn2hex(bn);
	static const char *const names[] = {"ca.pem", "resp.pem", "resp.key", "index.txt",
	                                    "req.der"};

	assert_int_equal(tu_mkdtemp(dir, sizeof(dir)), 0);
	snprintf(hex, sizeof(hex), "%s", h);
	OPENSSL_free(h);
	BN_free(bn);
	for (int i = 0; i < 5; i++)
		snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
	tu_write_cert(path[0], p->ca);
	tu_write_cert(path[1], p->resp);
	tu_write_key(path[2], p->resp_key);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		ocspc_req_t *q = ocspc_req_new(p->leaf, p->ca, OCSPC_SHA1, NULL);
		ocspc_result_t res;
		const uint8_t *der;
		size_t dl;
		uint8_t rsp[8192];
		size_t rl;
		FILE *f;
		err_t err;
		int rc;

		assert_non_null(q);
		der = ocspc_req_der(q, &dl);
		assert_non_null(f = fopen(path[4], "wb"));
		assert_int_equal(fwrite(der, 1, dl, f), dl);
		fclose(f);
		assert_non_null(f = fopen(path[3], "w"));
		fprintf(f, "%s\t491231235959Z\t%s\t%s\tunknown\t/CN=stb-1\n", cases[i].flag,
		        cases[i].revoked, hex);
		fclose(f);
		snprintf(cmd, sizeof(cmd),
		         "openssl ocsp -index %s -CA %s -rsigner %s -rkey %s -reqin %s "
		         "-respout %s/rsp.der -nmin 5 >/dev/null 2>&1",
		         path[3], path[0], path[1], path[2], path[4], dir);
		assert_int_equal(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "%s/rsp.der", dir);
		assert_non_null(f = fopen(cmd, "rb"));
		rl = fread(rsp, 1, sizeof(rsp), f);
		fclose(f);
		rc = ocspc_check(q, rsp, rl, NULL, &res, &err);
		if (cases[i].status == STB_OK) {
			assert_int_equal(rc, 0);
			assert_int_equal(res.status, OCSPC_GOOD);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(err.status, cases[i].status);
			assert_int_equal(res.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
			assert_int_equal(res.revoked_at, 1672531200);
		}
		ocspc_req_free(q);
	}
	assert_int_equal(tu_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request),           cmocka_unit_test(test_check),
	    cmocka_unit_test(test_malformed),         cmocka_unit_test(test_query),
	    cmocka_unit_test(test_openssl_responder),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
