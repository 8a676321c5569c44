/*
 * ocspq: one OCSP query over HTTP from an event loop, through OpenSSL's own
 * HTTP client (OSSL_HTTP_REQ_CTX with the OCSP request and response types)
 * on a non-blocking socket.  One deadline covers the connect, the request
 * and the whole answer; the answer is capped in size.  The responder is
 * named by a URL with a numeric host ("http://127.0.0.1:8080/ocsp"), or a
 * host name that ocspq_resolve looked up at start-up, so nothing on the
 * loop waits for a resolver.  What the answer says is for the caller to
 * check (src/core/ocsp.h).
 */
#ifndef STB_OCSPQ_H
#define STB_OCSPQ_H

#include <event2/event.h>
#include <openssl/ocsp.h>
#include <stddef.h>
#include <sys/socket.h>

#include "err.h"

typedef struct ocspq ocspq_t;

/* rsp (NULL on failure) becomes the callee's to free; err says OK or why
 * there is no answer: UNAVAILABLE (connect, transport, HTTP status),
 * TIMEOUT, TOO_LARGE, BAD_REQUEST (not an OCSP response). */
typedef void (*ocspq_done_fn)(void *arg, OCSP_RESPONSE *rsp, const err_t *err);

typedef struct ocspq_conf {
	int timeout_ms; /* the whole query */
	size_t max_rsp; /* largest answer accepted, bytes */
	/* the responder's address from ocspq_resolve, or NULL: the URL's host
	 * must then be an IP literal */
	const struct sockaddr_storage *addr;
	int addrlen;
} ocspq_conf_t;

/* Looks up the host of an http:// URL (a host name or an IP literal); it
 * blocks for the lookup, so call it at start-up.  -1 with err naming the
 * URL and why. */
int ocspq_resolve(const char *url, struct sockaddr_storage *ss, int *sl, err_t *err);

/* Starts a query on base; fn runs once, later, on base (never from inside
 * this call).  -1 with err when the URL is not http://HOST:port/path (HOST
 * an IP literal unless conf->addr is set) or the request cannot be
 * started. */
int ocspq_start(struct event_base *base, const char *url, const OCSP_REQUEST *req,
                const ocspq_conf_t *conf, ocspq_done_fn fn, void *arg, ocspq_t **out, err_t *err);
/* Abandons a query that has not finished: fn is not called. */
void ocspq_cancel(ocspq_t *q);

#endif
