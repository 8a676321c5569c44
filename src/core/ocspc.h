/*
 * ocspc: the OCSP client side (RFC 6960) for qualifyd and libstbclient:
 * a request for one certificate with a fresh nonce, the check of the
 * answer, and a blocking query over OpenSSL's HTTP client.
 *
 * The answer must be signed by the certificate's issuer itself or by a
 * responder certificate that the issuer issued with id-kp-OCSPSigning
 * (RFC 6960 4.2.2.2): the check anchors the signer's chain at the issuer
 * alone, so a responder of another CA is refused even when it chains to a
 * root the caller trusts.  The caller has checked the certificate's own
 * chain to the issuer before.
 *
 * The daemons' non-blocking query (OCSP_sendreq_nbio on a worker loop)
 * belongs in src/common, on top of ocspc_req_*() and ocspc_check(); it
 * does not exist yet.
 */
#ifndef STB_OCSPC_H
#define STB_OCSPC_H

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define OCSPC_NONCE_LEN   32          /* RFC 8954: 32 octets */
#define OCSPC_RESP_MAX    (64 * 1024) /* one answer, DER */
#define OCSPC_SKEW_S      300         /* default allowed clock difference */
#define OCSPC_TIMEOUT_S   10          /* default for ocspc_query() */
#define OCSPC_TIMEOUT_MAX 300

enum { OCSPC_SHA1, OCSPC_SHA256 }; /* the CertID's hash */

enum { OCSPC_NONE, OCSPC_GOOD, OCSPC_REVOKED, OCSPC_UNKNOWN }; /* ocspc_result_t.status */

/* One request: the CertID of a certificate, a nonce, their DER. */
typedef struct ocspc_req ocspc_req_t;

/* A request for cert issued by issuer, CertID hashed with md (OCSPC_SHA1,
 * which most responders expect, or OCSPC_SHA256), with a random nonce.
 * NULL with BAD_REQUEST or INTERNAL. */
ocspc_req_t *ocspc_req_new(X509 *cert, X509 *issuer, int md, err_t *err);
/* The DER to send; stays valid until ocspc_req_free(). */
const uint8_t *ocspc_req_der(const ocspc_req_t *q, size_t *len);
void ocspc_req_free(ocspc_req_t *q);

typedef struct ocspc_opts {
	long skew_s;        /* thisUpdate may be this far ahead, nextUpdate this far past */
	long max_age_s;     /* refuse a thisUpdate older than this; -1: no limit */
	int nonce_optional; /* accept an answer without a nonce (pre-signed answers) */
} ocspc_opts_t;

/* What a checked answer said about the certificate. */
typedef struct ocspc_result {
	int status;         /* OCSPC_*; OCSPC_NONE when the answer did not check */
	int reason;         /* REVOKED: the CRL reason code, -1 when none given */
	int64_t revoked_at; /* REVOKED: when; else -1 */
	int64_t this_update;
	int64_t next_update; /* -1 when the answer has none */
} ocspc_result_t;

/*
 * Checks the DER answer rsp to q: response status successful, signed by the
 * issuer or its delegated responder, our nonce echoed, thisUpdate/nextUpdate
 * around now within opts->skew_s (opts NULL: OCSPC_SKEW_S, no age limit,
 * nonce required), a status for our CertID.  Fills res and returns 0 only
 * when that status is good.  Otherwise -1, with err->status:
 *   REVOKED (res: reason, revoked_at), NOT_FOUND (unknown to the responder),
 *   UNAUTHENTICATED (signature, responder not authorised, no status for our
 *   certificate), REPLAY (nonce missing or not ours), EXPIRED (outside the
 *   validity window), UNAVAILABLE (the responder refused: tryLater, ...),
 *   BAD_REQUEST / TOO_LARGE (not one DER answer of at most OCSPC_RESP_MAX).
 */
int ocspc_check(const ocspc_req_t *q, const uint8_t *rsp, size_t len, const ocspc_opts_t *opts,
                ocspc_result_t *res, err_t *err);
/* The same for an answer already decoded (ocspq hands one over): a
 * certificate in it is not decoded twice.  r stays the caller's. */
int ocspc_check_parsed(const ocspc_req_t *q, OCSP_RESPONSE *r, const ocspc_opts_t *opts,
                       ocspc_result_t *res, err_t *err);

/*
 * Blocking: POSTs q to the http:// responder url (through the HTTP proxy
 * proxy when not NULL; the environment's proxies are not used), waits at
 * most timeout_s seconds (1 to OCSPC_TIMEOUT_MAX) for the whole exchange and
 * appends the answer, at most max_resp bytes (0: OCSPC_RESP_MAX, never
 * more), to rsp.  For libstbclient; not for a daemon's event loop.  -1 with
 * BAD_REQUEST (url), TIMEOUT (OpenSSL retries a refused connection until
 * the timeout), TOO_LARGE or UNAVAILABLE.
 */
int ocspc_query(const char *url, const char *proxy, int timeout_s, size_t max_resp,
                const ocspc_req_t *q, buf_t *rsp, err_t *err);

#endif
