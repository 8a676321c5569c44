#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

#define DEFAULT_TIMEOUT_MS 10000
#define CLIENT_MAX_FRAME   (1024 * 1024)

int
stbc_fail(stb_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

void
stbc_log(stb_client_t *c, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->log(c->log_ctx, level, msg);
}

const char *
stbc_ssl_errstr(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, cap, "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* A write to a socket the server closed raises SIGPIPE; a library must not
 * kill its host or change its signal dispositions, so SIGPIPE is blocked in
 * this thread around writes and a pending one we caused is consumed. */
void
stbc_sigpipe_block(stbc_sigpipe_t *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void
stbc_sigpipe_restore(stbc_sigpipe_t *g)
{
	sigset_t set, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- TLS session resumption ---- */

#define STBC_SESSION_MAX 8192 /* a saved session: host length, host, DER */

void
stbc_session_forget(stb_client_t *c)
{
	SSL_SESSION_free(c->session);
	c->session = NULL;
	c->session_host[0] = '\0';
}

/* The session as host length, host and DER into the secret store. */
static void
stbc_session_save(stb_client_t *c)
{
	unsigned char *blob, *p;
	size_t hl = strlen(c->session_host);
	int n;

	if (c->session_name[0] == '\0' || c->secrets == NULL || c->secrets->save == NULL)
		return;
	if ((n = i2d_SSL_SESSION(c->session, NULL)) <= 0 || hl > 255 ||
	    1 + hl + (size_t)n > STBC_SESSION_MAX)
		return;
	if ((blob = OPENSSL_malloc(1 + hl + (size_t)n)) == NULL)
		return;
	blob[0] = (unsigned char)hl;
	memcpy(blob + 1, c->session_host, hl);
	p = blob + 1 + hl;
	if (i2d_SSL_SESSION(c->session, &p) == n &&
	    c->secrets->save(c->secrets_ctx, c->session_name, blob, 1 + hl + (size_t)n) != 0)
		stbc_log(c, STB_LOG_WARNING, "the secret store did not keep the TLS session");
	OPENSSL_clear_free(blob, 1 + hl + (size_t)n);
}

/* Once per handle: the saved session, when there is one. */
static void
stbc_session_load(stb_client_t *c)
{
	unsigned char *blob;
	const unsigned char *p;
	size_t len = 0, hl;
	SSL_SESSION *s;

	if (c->session_loaded || c->session != NULL || c->session_name[0] == '\0' ||
	    c->secrets == NULL || c->secrets->load == NULL)
		return;
	c->session_loaded = 1;
	if ((blob = OPENSSL_malloc(STBC_SESSION_MAX)) == NULL)
		return;
	if (c->secrets->load(c->secrets_ctx, c->session_name, blob, STBC_SESSION_MAX, &len) == 0 &&
	    len > 1 && len <= STBC_SESSION_MAX && (hl = blob[0]) + 1 < len &&
	    hl < sizeof(c->session_host)) {
		p = blob + 1 + hl;
		if ((s = d2i_SSL_SESSION(NULL, &p, (long)(len - 1 - hl))) != NULL &&
		    p == blob + len) {
			memcpy(c->session_host, blob + 1, hl);
			c->session_host[hl] = '\0';
			c->session = s;
		} else
			SSL_SESSION_free(s);
	}
	OPENSSL_clear_free(blob, STBC_SESSION_MAX);
	ERR_clear_error();
}

/* OpenSSL hands over each ticket the server sends: the newest is kept. */
static int
stbc_session_new(SSL *ssl, SSL_SESSION *s)
{
	stb_client_t *c = SSL_get_app_data(ssl);

	if (c == NULL || c->no_resume || !SSL_SESSION_is_resumable(s))
		return 0;
	SSL_SESSION_free(c->session);
	c->session = s;
	snprintf(c->session_host, sizeof(c->session_host), "%s", c->connect_host);
	stbc_session_save(c);
	return 1; /* the reference is ours */
}

void
stb_client_set_resumption(stb_client_t *c, int on, const char *session_name)
{
	c->no_resume = !on;
	snprintf(c->session_name, sizeof(c->session_name), "%s",
	         on && session_name != NULL ? session_name : "");
	c->session_loaded = 0;
	if (!on)
		stbc_session_forget(c);
}

int
stb_client_resumed(const stb_client_t *c)
{
	return c->ssl != NULL && SSL_session_reused(c->ssl) == 1;
}

const char *
stb_version(void)
{
	return "0.1.0";
}

int
stb_client_new(stb_client_t **out, stb_error_t *err)
{
	stb_client_t *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		free(c);
		return stbc_fail(err, STB_INTERNAL, "SSL_CTX_new failed");
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
	/* one read() takes a whole record instead of its header, then its body;
	 * stbc_read asks SSL_has_pending before it waits on the socket */
	SSL_CTX_set_read_ahead(c->ctx, 1);
	/* tickets come to stbc_session_new; OpenSSL keeps no cache of its own */
	SSL_CTX_set_session_cache_mode(c->ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, stbc_session_new);
	if ((c->wmeth = stbc_sockbio_method()) == NULL) {
		SSL_CTX_free(c->ctx);
		free(c);
		return stbc_fail(err, STB_INTERNAL, "BIO_meth_new failed");
	}
	c->fd = -1;
	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	c->max_frame = CLIENT_MAX_FRAME;
	buf_init(&c->rbuf, STB_FRAME_HDR_LEN + CLIENT_MAX_FRAME);
	buf_init(&c->wbuf, STB_FRAME_HDR_LEN + CLIENT_MAX_FRAME);
	buf_init(&c->qbuf, CLIENT_MAX_FRAME);
	*out = c;
	return 0;
}

void
stb_client_free(stb_client_t *c)
{
	if (c == NULL)
		return;
	stb_disconnect(c);
	stbc_session_forget(c);
	SSL_CTX_free(c->ctx);
	BIO_meth_free(c->wmeth);
	buf_wipe(&c->rbuf);
	buf_wipe(&c->wbuf);
	buf_wipe(&c->qbuf);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

int
stb_client_set_ca_file(stb_client_t *c, const char *path, stb_error_t *err)
{
	char e[256];
	X509_STORE *store = X509_STORE_new();

	/* a fresh store: only this CA is trusted, never what was set before */
	if (store == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	stbc_session_forget(c); /* it was checked against the old anchors */
	SSL_CTX_set_cert_store(c->ctx, store);
	if (SSL_CTX_load_verify_locations(c->ctx, path, NULL) != 1)
		return stbc_fail(err, STB_NOT_FOUND, "CA file %s: %s", path,
		                 stbc_ssl_errstr(e, sizeof(e)));
	return 0;
}

int
stb_client_set_identity(stb_client_t *c, const char *cert_path, const char *key_path,
                        stb_error_t *err)
{
	char e[256];

	stbc_session_forget(c); /* it carries the old identity */
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cert_path) != 1)
		return stbc_fail(err, STB_NOT_FOUND, "certificate %s: %s", cert_path,
		                 stbc_ssl_errstr(e, sizeof(e)));
	if (SSL_CTX_use_PrivateKey_file(c->ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		unsigned long le = ERR_peek_last_error();
		/* OpenSSL checks the pair while loading the key */
		if (ERR_GET_REASON(le) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			return stbc_fail(err, STB_BAD_REQUEST,
			                 "private key %s does not match certificate %s", key_path,
			                 cert_path);
		}
		return stbc_fail(err, STB_NOT_FOUND, "private key %s: %s", key_path,
		                 stbc_ssl_errstr(e, sizeof(e)));
	}
	if (SSL_CTX_check_private_key(c->ctx) != 1) {
		ERR_clear_error();
		return stbc_fail(err, STB_BAD_REQUEST,
		                 "private key %s does not match certificate %s", key_path,
		                 cert_path);
	}
	return 0;
}

void
stb_client_set_timeout(stb_client_t *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

void
stb_client_set_log(stb_client_t *c, stb_log_fn fn, void *ctx)
{
	c->log = fn;
	c->log_ctx = ctx;
}

void
stb_client_set_secret_store(stb_client_t *c, const stb_secret_store_t *store, void *ctx)
{
	c->secrets = store;
	c->secrets_ctx = ctx;
}

int64_t
stbc_ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

void
stbc_deadline_in(struct timespec *d, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (long)(ms % 1000) * 1000000;
	if (d->tv_nsec >= 1000000000) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000;
	}
}

/* Waits until fd is ready for what; its revents, or -1 on deadline. */
static int
stbc_poll_fd(int fd, short what, const struct timespec *deadline)
{
	struct pollfd p = {fd, what, 0};
	int64_t left;
	int rc;

	do {
		if ((left = stbc_ms_left(deadline)) <= 0)
			return -1;
		rc = poll(&p, 1, (int)left);
	} while (rc == -1 && errno == EINTR);
	return rc > 0 ? p.revents : -1;
}

/* Waits until fd is ready for what; 0, or -1 on deadline. */
int
stbc_wait_fd(int fd, short what, const struct timespec *deadline)
{
	return stbc_poll_fd(fd, what, deadline) >= 0 ? 0 : -1;
}

/* A non-blocking connect that was in progress is done: 0 connected, -1
 * refused or timed out.  Writable without an error or hang-up is
 * connected (tcp_poll reports a refusal as POLLERR|POLLHUP), so no
 * getsockopt(SO_ERROR) is needed to tell. */
static int
stbc_connect_done(int fd, const struct timespec *dl)
{
	int ev = stbc_poll_fd(fd, POLLOUT, dl);

	return ev >= 0 && (ev & POLLOUT) && !(ev & (POLLERR | POLLHUP | POLLNVAL)) ? 0 : -1;
}

int
stbc_tcp_connect(const char *host, const char *port, const struct timespec *dl, int *out,
                 stb_error_t *err)
{
	struct addrinfo hints, *res, *ai;
	int rc, fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return stbc_fail(err, STB_UNAVAILABLE, "%s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && stbc_connect_done(fd, dl) == 0))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return stbc_fail(err, stbc_ms_left(dl) <= 0 ? STB_TIMEOUT : STB_UNAVAILABLE,
		                 "cannot connect to %s:%s", host, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = fd;
	return 0;
}

/* Drives an SSL call to completion or deadline: >0 done, -1 failed. */
static int
ssl_drive(stb_client_t *c, int rc, const struct timespec *dl)
{
	int e = SSL_get_error(c->ssl, rc);

	if (e == SSL_ERROR_WANT_READ)
		return stbc_wait_fd(c->fd, POLLIN, dl) == 0 ? 0 : -2;
	if (e == SSL_ERROR_WANT_WRITE)
		return stbc_wait_fd(c->fd, POLLOUT, dl) == 0 ? 0 : -2;
	return -1;
}

int
stb_connect(stb_client_t *c, const char *host, const char *port, stb_error_t *err)
{
	struct timespec dl;
	char e[256];
	int rc;

	stb_disconnect(c);
	stbc_deadline_in(&dl, c->timeout_ms);
	if (stbc_tcp_connect(host, port, &dl, &c->fd, err) == -1)
		return -1;
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    stbc_sockbio_attach(c->ssl, c->wmeth, c->fd) == -1) {
		stb_disconnect(c);
		return stbc_fail(err, STB_INTERNAL, "SSL_new failed");
	}
	SSL_set_app_data(c->ssl, c);
	snprintf(c->connect_host, sizeof(c->connect_host), "%s", host);
	/* a session only where it was made: the server's certificate was
	 * checked for this host when it was */
	if (!c->no_resume) {
		stbc_session_load(c);
		if (c->session != NULL && strcmp(c->session_host, host) == 0 &&
		    SSL_SESSION_is_resumable(c->session))
			SSL_set_session(c->ssl, c->session);
	}
	/* check the name or address the caller asked for */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
		SSL_set_tlsext_host_name(c->ssl, host);
		if (SSL_set1_host(c->ssl, host) != 1) {
			stb_disconnect(c);
			return stbc_fail(err, STB_INTERNAL, "bad host name %s", host);
		}
	}
	while ((rc = SSL_connect(c->ssl)) != 1) {
		int d = ssl_drive(c, rc, &dl);
		if (d == 0)
			continue;
		if (d == -2) {
			stb_disconnect(c);
			return stbc_fail(err, STB_TIMEOUT, "TLS handshake with %s timed out", host);
		}
		long v = SSL_get_verify_result(c->ssl);
		stbc_ssl_errstr(e, sizeof(e));
		stb_disconnect(c);
		if (v != X509_V_OK)
			return stbc_fail(err, STB_UNAUTHENTICATED, "server %s not trusted: %s",
			                 host, X509_verify_cert_error_string(v));
		return stbc_fail(err, STB_UNAVAILABLE, "TLS handshake with %s failed: %s", host, e);
	}
	stbc_log(c, STB_LOG_DEBUG, "connected to %s:%s with %s%s", host, port,
	         SSL_get_version(c->ssl), SSL_session_reused(c->ssl) ? " (resumed)" : "");
	c->fresh = 1;
	return 0;
}

int
stbc_split_addr(const char *addr, char *host, size_t cap, const char **port, stb_error_t *err)
{
	const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
	size_t hl;

	if (colon == NULL || colon == addr || colon[1] == '\0')
		return stbc_fail(err, STB_BAD_REQUEST, "'%s' is not host:port", addr ? addr : "");
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && colon[-1] == ']') {
		addr++;
		hl = hl >= 2 ? hl - 2 : 0;
	}
	if (hl == 0 || hl >= cap)
		return stbc_fail(err, STB_BAD_REQUEST, "host name too long");
	memcpy(host, addr, hl);
	host[hl] = '\0';
	*port = colon + 1;
	return 0;
}

int
stb_connect_addr(stb_client_t *c, const char *addr, stb_error_t *err)
{
	char host[256];
	const char *port;

	if (stbc_split_addr(addr, host, sizeof(host), &port, err) == -1)
		return -1;
	return stb_connect(c, host, port, err);
}

void
stb_disconnect(stb_client_t *c)
{
	c->auth_device[0] = '\0';
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl); /* sockbio: no SIGPIPE if the server is gone */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
}

/* Why a connection failed, in the words an operator can act on: a TLS
 * alert from the server names what it refused; a connection that ends
 * before its first answer, after a handshake in which we showed a
 * certificate, is (in TLS 1.3, where the client's certificate is checked
 * after the handshake) the server refusing that certificate. */
static int
ssl_io_failed(stb_client_t *c, int writing, stb_error_t *err)
{
	unsigned long le = ERR_peek_last_error();
	int reason = ERR_GET_REASON(le);
	char e[256];

	if (le != 0 && ERR_GET_LIB(le) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET) {
		int alert = reason - SSL_AD_REASON_OFFSET;
		stbc_ssl_errstr(e, sizeof(e));
		if (alert == SSL_AD_UNKNOWN_CA || alert == SSL_AD_BAD_CERTIFICATE ||
		    alert == SSL_AD_CERTIFICATE_REQUIRED || alert == SSL_AD_CERTIFICATE_EXPIRED ||
		    alert == SSL_AD_CERTIFICATE_REVOKED ||
		    alert == SSL_AD_UNSUPPORTED_CERTIFICATE || alert == SSL_AD_ACCESS_DENIED)
			return stbc_fail(
			    err, STB_UNAUTHENTICATED,
			    "the server refused this client's certificate (TLS alert: %s)",
			    SSL_alert_desc_string_long(alert));
		return stbc_fail(err, STB_UNAVAILABLE, "the server ended the connection: %s", e);
	}
	if (c->fresh && SSL_get_certificate(c->ssl) != NULL) {
		ERR_clear_error();
		return stbc_fail(err, STB_UNAUTHENTICATED,
		                 "the server closed the connection right after the TLS handshake: "
		                 "it most likely refused this client's certificate (not from a CA "
		                 "it trusts, out of date or revoked)");
	}
	return stbc_fail(err, STB_UNAVAILABLE, "%s: %s",
	                 writing ? "send failed" : "connection lost",
	                 stbc_ssl_errstr(e, sizeof(e)));
}

/* Moves all n bytes through SSL_write (writing) or SSL_read before dl. */
static int
ssl_io_all(stb_client_t *c, uint8_t *p, size_t n, int writing, const struct timespec *dl,
           stb_error_t *err)
{
	while (n > 0) {
		int chunk = n > INT32_MAX ? INT32_MAX : (int)n;
		int rc = writing ? SSL_write(c->ssl, p, chunk) : SSL_read(c->ssl, p, chunk);
		if (rc > 0) {
			p += rc;
			n -= (size_t)rc;
			if (!writing)
				c->fresh = 0; /* the server answered: it took our certificate */
			continue;
		}
		rc = ssl_drive(c, rc, dl);
		if (rc == -2)
			return stbc_fail(err, STB_TIMEOUT,
			                 writing ? "send timed out" : "no answer in time");
		if (rc == -1)
			return ssl_io_failed(c, writing, err);
	}
	return 0;
}

static int
ssl_write_all(stb_client_t *c, const uint8_t *p, size_t n, const struct timespec *dl,
              stb_error_t *err)
{
	return ssl_io_all(c, (uint8_t *)(uintptr_t)p, n, 1, dl, err);
}

static int
ssl_read_full(stb_client_t *c, uint8_t *p, size_t n, const struct timespec *dl, stb_error_t *err)
{
	return ssl_io_all(c, p, n, 0, dl, err);
}

int
stbc_call(stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *rsp, stb_error_t *err)
{
	struct timespec dl;
	uint8_t hdr[STB_FRAME_HDR_LEN];
	frame_hdr_t h;
	uint32_t want = ++c->next_id;

	if (stbc_send(c, type, 0, want, tlvs, err) == -1)
		return -1;
	stbc_deadline_in(&dl, c->timeout_ms);
	/* the answer cannot be there yet: wait before reading, not after an
	 * SSL_read that would only say WANT_READ */
	if (!SSL_has_pending(c->ssl) && stbc_wait_fd(c->fd, POLLIN, &dl) == -1) {
		stbc_fail(err, STB_TIMEOUT, "no answer in time");
		goto broken;
	}
	for (;;) {
		err_t perr;
		int rc;

		if (ssl_read_full(c, hdr, sizeof(hdr), &dl, err) == -1)
			goto broken;
		rc = frame_decode(hdr, sizeof(hdr), c->max_frame, &h);
		if (rc != FRAME_OK && rc != FRAME_NEED_MORE) {
			stbc_fail(err, STB_BAD_REQUEST, "server sent a bad frame: %s",
			          frame_strerror(rc));
			goto broken;
		}
		buf_reset(&c->rbuf);
		if (buf_reserve(&c->rbuf, h.len) == -1) {
			stbc_fail(err, STB_TOO_LARGE, "answer too large");
			goto broken;
		}
		if (ssl_read_full(c, c->rbuf.data, h.len, &dl, err) == -1)
			goto broken;
		c->rbuf.len = h.len;
		if (!(h.flags & STB_FRAME_F_RESPONSE) || h.req_id != want) {
			/* a push, or a late answer to an abandoned request */
			stbc_log(c, STB_LOG_DEBUG, "skipped %s frame 0x%04x",
			         h.flags & STB_FRAME_F_PUSH ? "push" : "unexpected", h.type);
			continue;
		}
		if (msg_parse(rsp, &h, c->rbuf.data, &perr) == -1)
			return stbc_fail(err, STB_BAD_REQUEST, "server answer invalid: %s",
			                 perr.msg);
		if (h.flags & STB_FRAME_F_ERROR) {
			char text[256] = "";
			msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
			return stbc_fail(err, msg_status(rsp), "%s", text);
		}
		return 0;
	}
broken:
	/* a half-read stream cannot be resynchronised */
	stb_disconnect(c);
	return -1;
}

int
stbc_call_pushes(stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *m, int timeout_ms,
                 stbc_push_fn fn, void *arg, stb_error_t *err)
{
	uint32_t id = ++c->next_id;
	struct timespec dl;

	stbc_deadline_in(&dl, timeout_ms);
	if (stbc_send(c, type, 0, id, tlvs, err) == -1)
		return -1;
	for (;;) {
		int64_t left = stbc_ms_left(&dl);
		int rc;

		if (left <= 0)
			return stbc_fail(err, STB_TIMEOUT, "no answer in time");
		if ((rc = stbc_read(c, (int)left, m, err)) == -1)
			return -1;
		if (rc == 1)
			continue;
		if (m->flags & STB_FRAME_F_PUSH) {
			if (fn != NULL && fn(arg, m, err) == -1)
				return -1;
			continue;
		}
		if (!(m->flags & STB_FRAME_F_RESPONSE) || m->req_id != id)
			continue; /* e.g. the answer to an earlier heartbeat */
		if (m->flags & STB_FRAME_F_ERROR) {
			char text[256] = "";
			msg_get_str(m, TLV_IX_ERROR_TEXT, text, sizeof(text));
			return stbc_fail(err, msg_status(m), "%s", text);
		}
		return 0;
	}
}

int
stbc_send(stb_client_t *c, uint16_t type, uint8_t flags, uint32_t req_id, const buf_t *tlvs,
          stb_error_t *err)
{
	struct timespec dl;
	uint8_t hdr[STB_FRAME_HDR_LEN];
	frame_hdr_t h = {flags, type, req_id, tlvs ? (uint32_t)tlvs->len : 0};
	int wrc;

	if (c->ssl == NULL)
		return stbc_fail(err, STB_UNAVAILABLE, "not connected");
	stbc_deadline_in(&dl, c->timeout_ms);
	frame_encode_hdr(hdr, &h);
	/* header and body in one SSL_write: one record, one segment, one
	 * wake-up of the server instead of two */
	buf_reset(&c->wbuf);
	if (buf_append(&c->wbuf, hdr, sizeof(hdr)) == -1 ||
	    (h.len > 0 && buf_append(&c->wbuf, tlvs->data, tlvs->len) == -1))
		return stbc_fail(err, STB_TOO_LARGE, "request frame too large");
	wrc = ssl_write_all(c, c->wbuf.data, c->wbuf.len, &dl, err);
	OPENSSL_cleanse(c->wbuf.data, c->wbuf.len); /* may hold a MAC or a secret */
	c->wbuf.len = 0;
	if (wrc == -1)
		stb_disconnect(c);
	return wrc;
}

int
stbc_read(stb_client_t *c, int timeout_ms, msg_t *m, stb_error_t *err)
{
	struct timespec dl;
	uint8_t hdr[STB_FRAME_HDR_LEN];
	frame_hdr_t h;
	err_t perr;
	int rc;

	if (c->ssl == NULL)
		return stbc_fail(err, STB_UNAVAILABLE, "not connected");
	if (!SSL_has_pending(c->ssl)) {
		stbc_deadline_in(&dl, timeout_ms);
		if (stbc_wait_fd(c->fd, POLLIN, &dl) == -1)
			return 1;
	}
	stbc_deadline_in(&dl, c->timeout_ms);
	if (ssl_read_full(c, hdr, sizeof(hdr), &dl, err) == -1)
		goto broken;
	rc = frame_decode(hdr, sizeof(hdr), c->max_frame, &h);
	if (rc != FRAME_OK && rc != FRAME_NEED_MORE) {
		stbc_fail(err, STB_BAD_REQUEST, "server sent a bad frame: %s", frame_strerror(rc));
		goto broken;
	}
	buf_reset(&c->rbuf);
	if (buf_reserve(&c->rbuf, h.len) == -1) {
		stbc_fail(err, STB_TOO_LARGE, "frame too large");
		goto broken;
	}
	if (ssl_read_full(c, c->rbuf.data, h.len, &dl, err) == -1)
		goto broken;
	c->rbuf.len = h.len;
	if (msg_parse(m, &h, c->rbuf.data, &perr) == -1) {
		stbc_fail(err, STB_BAD_REQUEST, "server frame invalid: %s", perr.msg);
		goto broken;
	}
	return 0;
broken:
	stb_disconnect(c);
	return -1;
}

int
stb_ping(stb_client_t *c, const void *payload, size_t len, uint64_t *rtt_us, stb_error_t *err)
{
	struct timespec t0, t1;
	const uint8_t *echo;
	size_t elen = 0;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_PING q = {.PAYLOAD = MV_IF(payload != NULL, MV_BYTES(payload, len))};
	err_t e;

	buf_init(&b, STB_TLV_HDR_LEN + len);
	if (msgenc_PING(&b, &q, &e) == -1) {
		buf_free(&b);
		return stbc_fail(err, e.status, "PING: %s", e.msg);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = stbc_call(c, STB_MSG_PING, &b, &m, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	buf_free(&b);
	if (rc == -1)
		return -1;
	if (payload != NULL && (msg_get_bytes(&m, TLV_IX_PAYLOAD, &echo, &elen) == -1 ||
	                        elen != len || memcmp(echo, payload, len) != 0))
		return stbc_fail(err, STB_BAD_REQUEST, "PING payload did not come back unchanged");
	if (rtt_us != NULL)
		*rtt_us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
		          (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000);
	return 0;
}
