/* ocspq: the OCSP query state machine: connect, then OpenSSL's HTTP
 * client driven by the socket's readiness until it has the answer. */
#include "ocspq.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"

struct ocspq {
	struct event_base *base;
	int fd;
	struct event *io, *deadline, *later;
	BIO *bio;
	OSSL_HTTP_REQ_CTX *rctx;
	int connected;
	char host[300]; /* "host:port" for the Host header */
	char *path;
	size_t max_rsp;
	ocspq_done_fn fn;
	void *arg;
	OCSP_RESPONSE *rsp;
	err_t err;
};

static void
ocspq_free(ocspq_t *q)
{
	if (q == NULL)
		return;
	if (q->io != NULL)
		event_free(q->io);
	if (q->deadline != NULL)
		event_free(q->deadline);
	if (q->later != NULL)
		event_free(q->later);
	OSSL_HTTP_REQ_CTX_free(q->rctx);
	BIO_free(q->bio);
	if (q->fd >= 0)
		close(q->fd);
	OCSP_RESPONSE_free(q->rsp);
	OPENSSL_free(q->path);
	free(q);
}

void
ocspq_cancel(ocspq_t *q)
{
	ocspq_free(q);
	ERR_clear_error();
}

/* Ends the query: the answer or the error goes to fn, then q is gone. */
static void
ocspq_finish(ocspq_t *q)
{
	ocspq_done_fn fn = q->fn;
	void *arg = q->arg;
	OCSP_RESPONSE *rsp = q->rsp;
	err_t err = q->err;

	q->rsp = NULL;
	ocspq_free(q);
	ERR_clear_error(); /* a stale entry breaks the loop's SSL bufferevents */
	fn(arg, err.status == STB_OK ? rsp : NULL, &err);
	if (err.status != STB_OK)
		OCSP_RESPONSE_free(rsp);
}

static void
ocspq_fail(ocspq_t *q, int status, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char why[160] = "";

	if (e != 0)
		ERR_error_string_n(e, why, sizeof(why));
	err_set(&q->err, status, "OCSP responder %s: %s%s%s", q->host, what, e != 0 ? ": " : "",
	        why);
	ocspq_finish(q);
}

static void ocspq_on_io(evutil_socket_t fd, short what, void *arg);

static int
ocspq_wait(ocspq_t *q, short what)
{
	if (q->io != NULL)
		event_free(q->io);
	q->io = event_new(q->base, q->fd, what, ocspq_on_io, q);
	return q->io == NULL || event_add(q->io, NULL) == -1 ? -1 : 0;
}

/* OpenSSL's HTTP client on the socket, with the request encoded now. */
static int
ocspq_begin_http(ocspq_t *q, const OCSP_REQUEST *req)
{
	if ((q->bio = BIO_new_socket(q->fd, BIO_NOCLOSE)) == NULL ||
	    (q->rctx = OSSL_HTTP_REQ_CTX_new(q->bio, q->bio, 0)) == NULL ||
	    !OSSL_HTTP_REQ_CTX_set_request_line(q->rctx, 1, NULL, NULL, q->path) ||
	    !OSSL_HTTP_REQ_CTX_add1_header(q->rctx, "Host", q->host) ||
	    !OSSL_HTTP_REQ_CTX_set_expected(q->rctx, "application/ocsp-response", 1, 0, 0) ||
	    !OSSL_HTTP_REQ_CTX_set1_req(q->rctx, "application/ocsp-request",
	                                ASN1_ITEM_rptr(OCSP_REQUEST), (const ASN1_VALUE *)req))
		return -1;
	OSSL_HTTP_REQ_CTX_set_max_response_length(q->rctx, (unsigned long)q->max_rsp);
	return 0;
}

static void
ocspq_step(ocspq_t *q)
{
	ASN1_VALUE *v = NULL;
	int rc = OSSL_HTTP_REQ_CTX_nbio_d2i(q->rctx, &v, ASN1_ITEM_rptr(OCSP_RESPONSE));

	if (rc == 1) {
		q->rsp = (OCSP_RESPONSE *)v;
		err_clear(&q->err);
		ocspq_finish(q);
	} else if (rc == -1) {
		if (ocspq_wait(q, BIO_should_write(q->bio) ? EV_WRITE : EV_READ) == -1)
			ocspq_fail(q, STB_INTERNAL, "cannot wait on the socket");
	} else {
		unsigned long e = ERR_peek_last_error();
		int reason = ERR_GET_REASON(e);

		if (ERR_GET_LIB(e) != ERR_LIB_HTTP)
			ocspq_fail(q, STB_BAD_REQUEST, "not an OCSP response");
		else if (reason == HTTP_R_MAX_RESP_LEN_EXCEEDED ||
		         reason == HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN)
			ocspq_fail(q, STB_TOO_LARGE, "answer too large");
		else if (reason == HTTP_R_MISSING_ASN1_ENCODING ||
		         reason == HTTP_R_ERROR_PARSING_ASN1_LENGTH ||
		         reason == HTTP_R_UNEXPECTED_CONTENT_TYPE ||
		         reason == HTTP_R_MISSING_CONTENT_TYPE)
			ocspq_fail(q, STB_BAD_REQUEST, "not an OCSP response");
		else
			ocspq_fail(q, STB_UNAVAILABLE, "HTTP exchange failed");
	}
}

static void
ocspq_on_io(evutil_socket_t fd, short what, void *arg)
{
	ocspq_t *q = arg;

	if (!q->connected) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 || soerr != 0) {
			err_set(&q->err, STB_UNAVAILABLE, "OCSP responder %s: connect: %s", q->host,
			        strerror(soerr != 0 ? soerr : errno));
			ocspq_finish(q);
			return;
		}
		q->connected = 1;
	}
	ocspq_step(q);
}

static void
ocspq_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	ocspq_t *q = arg;

	err_set(&q->err, STB_TIMEOUT, "OCSP responder %s: no answer in time", q->host);
	ocspq_finish(q);
}

/* A failure found while starting is reported from the loop, as promised. */
static void
ocspq_on_later(evutil_socket_t fd, short what, void *arg)
{
	ocspq_finish(arg);
}

static int
ocspq_parse_url(ocspq_t *q, const char *url, int numeric, struct addrinfo **ai, err_t *err)
{
	char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	int ssl = 0, portnum = 0, rc = -1;

	if (!OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, &portnum, &path, &query, NULL)) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "'%s' is not a URL", url);
	}
	if (ssl)
		err_set(err, STB_BAD_REQUEST, "%s: OCSP over https is not supported", url);
	else if (query != NULL && *query != '\0')
		err_set(err, STB_BAD_REQUEST, "%s: a query string is not allowed", url);
	else if (numeric && getaddrinfo(host, port, &hints, ai) != 0)
		err_set(err, STB_BAD_REQUEST, "%s: the host must be an IP address", url);
	else if (snprintf(q->host, sizeof(q->host), "%s:%s", host, port) >= (int)sizeof(q->host))
		err_set(err, STB_BAD_REQUEST, "%s: host too long", url);
	else {
		q->path = path;
		path = NULL;
		rc = 0;
	}
	if (rc == -1 && *ai != NULL) {
		freeaddrinfo(*ai);
		*ai = NULL;
	}
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(path);
	OPENSSL_free(query);
	return rc;
}

int
ocspq_resolve(const char *url, struct sockaddr_storage *ss, int *sl, err_t *err)
{
	char *host = NULL, *port = NULL, spec[300];
	int ssl = 0, rc = -1;

	if (!OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, NULL, NULL, NULL)) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "'%s' is not a URL", url);
	}
	/* netaddr takes IPv6 literals in brackets */
	if (snprintf(spec, sizeof(spec), strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host,
	             port) >= (int)sizeof(spec))
		err_set(err, STB_BAD_REQUEST, "%s: host too long", url);
	else if (netaddr_resolve(spec, ss, sl, err) == 0)
		rc = 0;
	OPENSSL_free(host);
	OPENSSL_free(port);
	return rc;
}

int
ocspq_start(struct event_base *base, const char *url, const OCSP_REQUEST *req,
            const ocspq_conf_t *conf, ocspq_done_fn fn, void *arg, ocspq_t **out, err_t *err)
{
	struct addrinfo *ai = NULL;
	struct timeval tv = {conf->timeout_ms / 1000, (conf->timeout_ms % 1000) * 1000};
	const struct sockaddr *sa;
	socklen_t salen;
	ocspq_t *q;

	*out = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	q->fd = -1;
	q->base = base;
	q->fn = fn;
	q->arg = arg;
	q->max_rsp = conf->max_rsp;
	if (ocspq_parse_url(q, url, conf->addr == NULL, &ai, err) == -1) {
		ocspq_free(q);
		return -1;
	}
	if (conf->addr != NULL) {
		sa = (const struct sockaddr *)conf->addr;
		salen = (socklen_t)conf->addrlen;
	} else {
		sa = ai->ai_addr;
		salen = ai->ai_addrlen;
	}
	q->deadline = evtimer_new(base, ocspq_on_deadline, q);
	q->later = evtimer_new(base, ocspq_on_later, q);
	q->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->deadline == NULL || q->later == NULL || q->fd == -1 ||
	    ocspq_begin_http(q, req) == -1 || evtimer_add(q->deadline, &tv) == -1) {
		if (ai != NULL)
			freeaddrinfo(ai);
		ocspq_free(q);
		ERR_clear_error();
		return err_set(err, STB_INTERNAL, "cannot start an OCSP query");
	}
	if (connect(q->fd, sa, salen) == 0 || errno == EINPROGRESS) {
		if (ocspq_wait(q, EV_WRITE) == -1) {
			if (ai != NULL)
				freeaddrinfo(ai);
			ocspq_free(q);
			return err_set(err, STB_INTERNAL, "cannot wait on the socket");
		}
	} else {
		static const struct timeval now = {0, 0};

		err_set(&q->err, STB_UNAVAILABLE, "OCSP responder %s: connect: %s", q->host,
		        strerror(errno));
		evtimer_add(q->later, &now);
	}
	if (ai != NULL)
		freeaddrinfo(ai);
	*out = q;
	return 0;
}
