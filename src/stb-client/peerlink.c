/*
 * peer: device-to-device links.  TLS 1.3 with the session's random code as
 * an external PSK (identity = the 16-byte session id, cipher
 * TLS_AES_256_GCM_SHA384), psk_dhe_ke only (SSL_OP_ALLOW_NO_DHE_KEX stays
 * clear), no certificates, no tickets.  The accepting side takes the PSK
 * from the sessions rendezvousd offered it (rdvc_take: each once, before it
 * expires).  Application data travels as PEER_DATA frames (PROTOCOL.md
 * section 7).  SIGPIPE is blocked around every public entry point: OpenSSL
 * writes alerts from reads too (an unexpected EOF), to sockets already gone.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "hex.h"
#include "msgenc.h"
#include "rdvc.h"
#include "tlv.h"

#define PEER_MAX_BODY (STB_TLV_HDR_LEN + STB_PEER_MAX_PAYLOAD)
#define PEER_IN_MAX   (2 * (STB_FRAME_HDR_LEN + PEER_MAX_BODY))
#define OFFER_WAIT_MS 250 /* an offer racing the caller's handshake */

struct stb_peer {
	SSL *ssl;
	int fd;
	int timeout_ms;
	stb_rdv_t *rdv; /* serviced while waiting; may be NULL */
	char device[RDVC_ID_CAP];
	char code_fp[17];
	uint32_t next_id;
	int broken; /* a send or receive failed mid-stream: no more traffic */
	/* during the handshake only */
	uint8_t sid[RDV_SID_LEN];
	uint8_t code[RDV_CODE_LEN];
	int taken;   /* accepting side: sid/code hold the offer taken */
	int refused; /* the accepting side turned the session down: why */
	stb_error_t why;
	/* received bytes, and the payload of the message being read */
	buf_t in;
	buf_t msg;
	size_t msg_off;
};

struct stb_peer_listener {
	stb_rdv_t *rdv;
	SSL_CTX *ctx;
	int fd;
};

/* ---- TLS 1.3 external PSK ---- */

static void
code_fp(const uint8_t code[RDV_CODE_LEN], char out[17])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;

	if (EVP_Digest(code, RDV_CODE_LEN, md, &ml, EVP_sha256(), NULL) != 1 || ml < 8) {
		snprintf(out, 17, "-");
		return;
	}
	hex_encode(md, 8, out);
}

static SSL_SESSION *
psk_session(SSL *ssl, const uint8_t code[RDV_CODE_LEN])
{
	static const unsigned char aes256gcm_sha384[2] = {0x13, 0x02};
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes256gcm_sha384);
	SSL_SESSION *s;

	if (cipher == NULL || (s = SSL_SESSION_new()) == NULL)
		return NULL;
	if (SSL_SESSION_set1_master_key(s, code, RDV_CODE_LEN) != 1 ||
	    SSL_SESSION_set_cipher(s, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* Connecting side: offer the session's PSK. */
static int
psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess)
{
	stb_peer_t *p = SSL_get_app_data(ssl);
	SSL_SESSION *s = psk_session(ssl, p->code);

	if (s == NULL)
		return 0;
	if (md != NULL && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
		SSL_SESSION_free(s); /* cannot happen with one suite; offer nothing */
		*sess = NULL;
		*id = NULL;
		*idlen = 0;
		return 1;
	}
	*sess = s;
	*id = p->sid;
	*idlen = RDV_SID_LEN;
	return 1;
}

/* Accepting side: a session offered to us and not used yet. */
static int
offer_take(stb_peer_t *p, const unsigned char *id, size_t idlen, uint8_t code[RDV_CODE_LEN])
{
	struct timespec dl;
	int64_t left;

	if (rdvc_take(p->rdv, id, idlen, code, p->device, &p->why) == 0)
		return 0;
	if (p->why.status != STB_UNAUTHENTICATED || idlen != RDV_SID_LEN)
		return -1;
	/* the offer may still be on its way on the control channel */
	stbc_deadline_in(&dl, OFFER_WAIT_MS);
	while ((left = stbc_ms_left(&dl)) > 0) {
		if (rdvc_service(p->rdv, (int)left, NULL) == -1)
			return -1;
		if (rdvc_take(p->rdv, id, idlen, code, p->device, &p->why) == 0)
			return 0;
		if (p->why.status != STB_UNAUTHENTICATED)
			return -1;
	}
	return -1;
}

static int
psk_find(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	stb_peer_t *p = SSL_get_app_data(ssl);
	uint8_t code[RDV_CODE_LEN];

	*sess = NULL;
	if (p->taken && idlen == RDV_SID_LEN && CRYPTO_memcmp(id, p->sid, RDV_SID_LEN) == 0)
		memcpy(code, p->code, RDV_CODE_LEN); /* a second ClientHello after HRR */
	else if (offer_take(p, id, idlen, code) == -1) {
		p->refused = 1;
		return 0; /* abort the handshake */
	}
	if (!p->taken) {
		p->taken = 1;
		memcpy(p->sid, id, RDV_SID_LEN);
		memcpy(p->code, code, RDV_CODE_LEN);
		code_fp(code, p->code_fp);
	}
	*sess = psk_session(ssl, code);
	OPENSSL_cleanse(code, sizeof(code));
	if (*sess == NULL) {
		p->refused = 1;
		stbc_fail(&p->why, STB_INTERNAL, "cannot build the PSK session");
		return 0;
	}
	return 1;
}

static SSL_CTX *
psk_ctx(int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384") != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* psk_dhe_ke only: never SSL_OP_ALLOW_NO_DHE_KEX; no resumption */
	SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server) {
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find);
	} else {
		/* the PSK authenticates the target; a certificate handshake
		 * instead fails against the empty trust store */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_psk_use_session_callback(ctx, psk_use);
	}
	return ctx;
}

/* ---- waiting ---- */

/* Waits until fd is ready for what, servicing r's control channel
 * meanwhile: 0, -1 on deadline, -2 when need_ctrl and the channel is gone. */
static int
wait_serviced(stb_rdv_t *r, int need_ctrl, int fd, short what, const struct timespec *dl)
{
	for (;;) {
		struct pollfd pf[2] = {{fd, what, 0}, {-1, POLLIN, 0}};
		int64_t left = stbc_ms_left(dl);
		int n = 1, pending = 0, rc;

		if (left <= 0)
			return -1;
		if (r != NULL) {
			rdvc_service(r, 0, NULL); /* our heartbeat when due */
			if ((pf[1].fd = rdvc_fd(r, &pending)) == -1 && need_ctrl)
				return -2;
			if (pending) {
				rdvc_service(r, 50, NULL);
				continue;
			}
			n = pf[1].fd != -1 ? 2 : 1;
		}
		rc = poll(pf, (nfds_t)n, (int)(left > 1000 ? 1000 : left));
		if (rc == -1 && errno != EINTR)
			return -1;
		if (rc <= 0)
			continue;
		if (n == 2 && pf[1].revents != 0)
			rdvc_service(r, 50, NULL);
		if (pf[0].revents != 0)
			return 0;
	}
}

/* ---- links ---- */

static stb_peer_t *
peer_new(SSL_CTX *ctx, int fd, stb_rdv_t *r, int timeout_ms, stb_error_t *err)
{
	stb_peer_t *p = calloc(1, sizeof(*p));
	int one = 1;

	if (p == NULL) {
		close(fd);
		stbc_fail(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	p->fd = fd;
	p->rdv = r;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	snprintf(p->code_fp, sizeof(p->code_fp), "-");
	buf_init(&p->in, PEER_IN_MAX);
	buf_init(&p->msg, STB_PEER_MAX_PAYLOAD);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((p->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(p->ssl, fd) != 1) {
		stb_peer_free(p);
		stbc_fail(err, STB_INTERNAL, "SSL_new failed");
		return NULL;
	}
	SSL_set_app_data(p->ssl, p);
	return p;
}

static int
handshake(stb_peer_t *p, int server, const struct timespec *dl, stb_error_t *err)
{
	char e[256];
	int rc;

	while ((rc = server ? SSL_accept(p->ssl) : SSL_connect(p->ssl)) != 1) {
		int se = SSL_get_error(p->ssl, rc);
		if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
			if (stbc_wait_fd(p->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, dl) ==
			    -1)
				return stbc_fail(err, STB_TIMEOUT, "PSK handshake timed out");
			continue;
		}
		stbc_ssl_errstr(e, sizeof(e));
		if (p->refused) {
			if (err != NULL)
				*err = p->why;
			return -1;
		}
		return stbc_fail(err, STB_UNAUTHENTICATED,
		                 server ? "PSK handshake failed (the caller does not hold the "
		                          "session code?): %s"
		                        : "PSK handshake refused by the target: %s",
		                 e);
	}
	OPENSSL_cleanse(p->code, sizeof(p->code));
	/* a handshake without our PSK, or without (EC)DHE, is not ours */
	if (!SSL_session_reused(p->ssl))
		return stbc_fail(err, STB_UNAUTHENTICATED, "the peer did not use the session PSK");
	if (SSL_get_negotiated_group(p->ssl) == 0)
		return stbc_fail(err, STB_UNAUTHENTICATED,
		                 "no (EC)DHE key exchange: not psk_dhe_ke");
	return 0;
}

static int
peer_connect(stb_rdv_t *r, int timeout_ms, const char *endpoint, const char *peer_id,
             const uint8_t sid[RDV_SID_LEN], const uint8_t code[RDV_CODE_LEN], stb_peer_t **out,
             stb_error_t *err)
{
	char host[256];
	const char *port;
	struct timespec dl;
	SSL_CTX *ctx;
	stb_peer_t *p;
	int fd = -1;

	if (stbc_split_addr(endpoint, host, sizeof(host), &port, err) == -1)
		return -1;
	if ((ctx = psk_ctx(0)) == NULL)
		return stbc_fail(err, STB_INTERNAL, "cannot set up TLS 1.3 PSK");
	stbc_deadline_in(&dl, timeout_ms > 0 ? timeout_ms : 10000);
	if (stbc_tcp_connect(host, port, &dl, &fd, err) == -1) {
		SSL_CTX_free(ctx);
		return -1;
	}
	p = peer_new(ctx, fd, r, timeout_ms, err);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (p == NULL)
		return -1;
	snprintf(p->device, sizeof(p->device), "%s", peer_id);
	memcpy(p->sid, sid, RDV_SID_LEN);
	memcpy(p->code, code, RDV_CODE_LEN);
	code_fp(code, p->code_fp);
	if (handshake(p, 0, &dl, err) == -1) {
		stb_peer_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
rdvc_peer_connect(stb_rdv_t *r, int timeout_ms, const char *endpoint, const char *peer_id,
                  const uint8_t sid[RDV_SID_LEN], const uint8_t code[RDV_CODE_LEN],
                  stb_peer_t **out, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = peer_connect(r, timeout_ms, endpoint, peer_id, sid, code, out, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

const char *
rdvc_peer_code_fp(const stb_peer_t *p)
{
	return p->code_fp;
}

const char *
rdvc_peer_group(const stb_peer_t *p)
{
	const char *name = SSL_group_to_name(p->ssl, SSL_get_negotiated_group(p->ssl));

	return name != NULL ? name : "-";
}

const char *
stb_peer_device(const stb_peer_t *p)
{
	return p->device;
}

void
stb_peer_free(stb_peer_t *p)
{
	if (p == NULL)
		return;
	if (p->ssl != NULL) {
		stbc_sigpipe_t g;
		stbc_sigpipe_block(&g);
		if (SSL_is_init_finished(p->ssl))
			SSL_shutdown(p->ssl); /* one try: close_notify */
		stbc_sigpipe_restore(&g);
		SSL_free(p->ssl);
	}
	if (p->fd != -1)
		close(p->fd);
	buf_wipe(&p->in);
	buf_wipe(&p->msg);
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}

/* ---- data ---- */

static int
write_all(stb_peer_t *p, const uint8_t *d, size_t n, const struct timespec *dl, stb_error_t *err)
{
	char e[256];

	while (n > 0) {
		int rc = SSL_write(p->ssl, d, (int)n), se;
		if (rc > 0) {
			d += rc;
			n -= (size_t)rc;
			continue;
		}
		se = SSL_get_error(p->ssl, rc);
		if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
			return stbc_fail(err, STB_UNAVAILABLE, "link broken: %s",
			                 stbc_ssl_errstr(e, sizeof(e)));
		if (stbc_wait_fd(p->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, dl) == -1)
			return stbc_fail(err, STB_TIMEOUT, "send timed out");
	}
	return 0;
}

int
stb_peer_send(stb_peer_t *p, const void *data, size_t len, stb_error_t *err)
{
	struct timespec dl;
	stbc_sigpipe_t g;
	size_t start;
	buf_t b;
	int rc;

	if (len > STB_PEER_MAX_PAYLOAD)
		return stbc_fail(err, STB_TOO_LARGE, "%zu bytes: at most %d per message", len,
		                 STB_PEER_MAX_PAYLOAD);
	if (p->broken)
		return stbc_fail(err, STB_UNAVAILABLE, "link broken");
	struct msgreq_PEER_DATA q = {.PAYLOAD = MV_BYTES(data, len)};
	err_t e;

	buf_init(&b, STB_FRAME_HDR_LEN + PEER_MAX_BODY);
	if (frame_begin(&b, &start) == -1 || msgenc_PEER_DATA(&b, &q, &e) == -1 ||
	    frame_end(&b, start, STB_MSG_PEER_DATA, STB_FRAME_F_PUSH, ++p->next_id) == -1) {
		buf_wipe(&b);
		return stbc_fail(err, STB_INTERNAL, "PEER_DATA not built");
	}
	stbc_deadline_in(&dl, p->timeout_ms);
	stbc_sigpipe_block(&g);
	rc = write_all(p, b.data, b.len, &dl, err);
	stbc_sigpipe_restore(&g);
	buf_wipe(&b);
	if (rc == -1)
		p->broken = 1; /* a partial frame may be out */
	return rc;
}

/* A whole frame at the front of p->in: its payload into p->msg. */
static int
take_frame(stb_peer_t *p, const frame_hdr_t *h, stb_error_t *err)
{
	const uint8_t *pay = NULL;
	size_t pl = 0, flen = STB_FRAME_HDR_LEN + (size_t)h->len;
	err_t perr;
	msg_t m;

	if (msg_parse(&m, h, p->in.data + STB_FRAME_HDR_LEN, &perr) == -1)
		return stbc_fail(err, STB_BAD_REQUEST, "peer sent an invalid frame: %s", perr.msg);
	if (m.type != STB_MSG_PEER_DATA || !(m.flags & STB_FRAME_F_PUSH))
		return stbc_fail(err, STB_UNSUPPORTED, "peer sent message 0x%04x", m.type);
	msg_get_bytes(&m, TLV_IX_PAYLOAD, &pay, &pl);
	buf_reset(&p->msg);
	p->msg_off = 0;
	if (buf_append(&p->msg, pay, pl) == -1)
		return stbc_fail(err, STB_TOO_LARGE, "peer message too large");
	OPENSSL_cleanse(p->in.data, flen);
	memmove(p->in.data, p->in.data + flen, p->in.len - flen);
	p->in.len -= flen;
	return 0;
}

/* Reads until a whole PEER_DATA frame is in: 0, or -1 (broken: UNAVAILABLE
 * or a bad frame; TIMEOUT leaves the link usable). */
static int
read_frame(stb_peer_t *p, const struct timespec *dl, stb_error_t *err)
{
	char e[256];

	for (;;) {
		frame_hdr_t h;
		int rc = p->in.len >= STB_FRAME_HDR_LEN
		             ? frame_decode(p->in.data, p->in.len, PEER_MAX_BODY, &h)
		             : FRAME_NEED_MORE;
		size_t room;

		if (rc == FRAME_OK)
			return take_frame(p, &h, err);
		if (rc != FRAME_NEED_MORE)
			return stbc_fail(err, STB_BAD_REQUEST, "peer sent a bad frame: %s",
			                 frame_strerror(rc));
		room = p->in.max - p->in.len;
		if (buf_reserve(&p->in, room) == -1)
			return stbc_fail(err, STB_INTERNAL, "out of memory");
		rc = SSL_read(p->ssl, p->in.data + p->in.len, (int)room);
		if (rc > 0) {
			p->in.len += (size_t)rc;
			continue;
		}
		switch (SSL_get_error(p->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			rc = wait_serviced(p->rdv, 0, p->fd, POLLIN, dl);
			break;
		case SSL_ERROR_WANT_WRITE:
			rc = stbc_wait_fd(p->fd, POLLOUT, dl);
			break;
		case SSL_ERROR_ZERO_RETURN:
			return stbc_fail(err, STB_UNAVAILABLE, "the peer closed the link");
		default:
			return stbc_fail(err, STB_UNAVAILABLE, "link broken: %s",
			                 stbc_ssl_errstr(e, sizeof(e)));
		}
		if (rc != 0)
			return stbc_fail(err, STB_TIMEOUT, "nothing received in time");
	}
}

static int
peer_recv(stb_peer_t *p, void *buf, size_t cap, size_t *len, int timeout_ms, stb_error_t *err)
{
	struct timespec dl;
	size_t n;

	if (p->msg_off >= p->msg.len) {
		stb_error_t e;
		if (p->broken)
			return stbc_fail(err, STB_UNAVAILABLE, "link broken");
		stbc_deadline_in(&dl, timeout_ms > 0 ? timeout_ms : 0);
		if (read_frame(p, &dl, &e) == -1) {
			p->broken = e.status != STB_TIMEOUT;
			if (err != NULL)
				*err = e;
			return -1;
		}
	}
	n = p->msg.len - p->msg_off;
	n = n < cap ? n : cap;
	if (n > 0)
		memcpy(buf, p->msg.data + p->msg_off, n);
	p->msg_off += n;
	*len = n;
	return 0;
}

int
stb_peer_recv(stb_peer_t *p, void *buf, size_t cap, size_t *len, int timeout_ms, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = peer_recv(p, buf, cap, len, timeout_ms, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

/* ---- listening ---- */

static int
listen_on(const char *addr, int *out, stb_error_t *err)
{
	struct addrinfo hints, *res, *ai;
	char host[256];
	const char *port;
	int rc, fd = -1, one = 1, saved = 0;

	if (stbc_split_addr(addr, host, sizeof(host), &port, err) == -1)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return stbc_fail(err, STB_BAD_REQUEST, "%s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return stbc_fail(err, STB_UNAVAILABLE, "cannot listen on %s: %s", addr,
		                 strerror(saved ? saved : EADDRNOTAVAIL));
	*out = fd;
	return 0;
}

int
stb_peer_listen(stb_rdv_t *r, const char *bind_addr, stb_peer_listener_t **out, stb_error_t *err)
{
	stb_peer_listener_t *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	l->rdv = r;
	l->fd = -1;
	if ((l->ctx = psk_ctx(1)) == NULL) {
		free(l);
		return stbc_fail(err, STB_INTERNAL, "cannot set up TLS 1.3 PSK");
	}
	if (listen_on(bind_addr != NULL ? bind_addr : r->endpoint, &l->fd, err) == -1) {
		stb_peer_listener_free(l);
		return -1;
	}
	*out = l;
	return 0;
}

void
stb_peer_listener_free(stb_peer_listener_t *l)
{
	if (l == NULL)
		return;
	if (l->fd != -1)
		close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l);
}

static int
accept_fd(stb_peer_listener_t *l, int timeout_ms, int *fd, stb_error_t *err)
{
	struct timespec dl;

	stbc_deadline_in(&dl, timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		int rc = wait_serviced(l->rdv, 1, l->fd, POLLIN, &dl);
		if (rc == -2)
			return stbc_fail(err, STB_UNAVAILABLE,
			                 "the control channel to rendezvousd is gone");
		if (rc == -1)
			return stbc_fail(err, STB_TIMEOUT, "no peer connected in time");
		*fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (*fd != -1)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			return stbc_fail(err, STB_UNAVAILABLE, "accept: %s", strerror(errno));
	}
}

static int
peer_accept(stb_peer_listener_t *l, int timeout_ms, stb_peer_t **out, stb_error_t *err)
{
	struct timespec dl;
	stb_peer_t *p;
	int fd;

	if (accept_fd(l, timeout_ms, &fd, err) == -1)
		return -1;
	if ((p = peer_new(l->ctx, fd, l->rdv, l->rdv->c->timeout_ms, err)) == NULL)
		return -1;
	stbc_deadline_in(&dl, p->timeout_ms);
	if (handshake(p, 1, &dl, err) == -1) {
		stb_peer_free(p);
		return -1;
	}
	stbc_log(l->rdv->c, STB_LOG_DEBUG, "link from %s, code %s", p->device, p->code_fp);
	*out = p;
	return 0;
}

int
stb_peer_accept(stb_peer_listener_t *l, int timeout_ms, stb_peer_t **out, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = peer_accept(l, timeout_ms, out, err);
	stbc_sigpipe_restore(&g);
	return rc;
}
