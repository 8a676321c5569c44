/*
 * badinput: hostile and broken clients against a running daemon.  Each case
 * asserts what the client sees (an ERROR frame with the right status, echoing
 * type and request id, or a closed connection within the deadline) and that
 * the daemon still serves afterwards.
 *
 * usage: badinput HOST PORT CA ADMIN_CERT ADMIN_KEY SVC_CERT SVC_KEY
 * The daemon must run with handshake/frame timeouts of 1 s, idle 2 s and
 * max_frame 4096.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "check.h"
#include "frame.h"
#include "proto.h"
#include "tlv.h"

static const char *host, *ca, *admin_cert, *admin_key, *svc_cert, *svc_key;
static int port;

typedef struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
} conn_t;

enum { R_FRAME, R_CLOSED, R_TIMEOUT };

typedef struct reply {
	int kind;
	frame_hdr_t h;
	uint8_t body[8192];
	int status; /* from STATUS, or -1 */
	double after_s;
} reply_t;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
tcp_open(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("connect");
		exit(2);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* TLS connection; cert NULL for an anonymous client. */
static conn_t
tls_open(const char *cert, const char *key)
{
	conn_t c;

	c.fd = tcp_open();
	c.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(c.ctx, ca, NULL);
	SSL_CTX_set_verify(c.ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL && (SSL_CTX_use_certificate_chain_file(c.ctx, cert) != 1 ||
	                     SSL_CTX_use_PrivateKey_file(c.ctx, key, SSL_FILETYPE_PEM) != 1)) {
		fprintf(stderr, "cannot load %s\n", cert);
		exit(2);
	}
	c.ssl = SSL_new(c.ctx);
	SSL_set_fd(c.ssl, c.fd);
	if (SSL_connect(c.ssl) != 1) {
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	return c;
}

static void
conn_close(conn_t *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	close(c->fd);
}

static void
send_raw(conn_t *c, const void *p, size_t n)
{
	if (SSL_write(c->ssl, p, (int)n) != (int)n) {
		fprintf(stderr, "SSL_write failed\n");
		exit(2);
	}
}

/* Reads n bytes within timeout_s: 0, R_CLOSED or R_TIMEOUT. */
static int
read_full(conn_t *c, uint8_t *p, size_t n, double deadline)
{
	while (n > 0) {
		struct pollfd pf = {c->fd, POLLIN, 0};
		int rc;

		if (SSL_pending(c->ssl) == 0) {
			double left = deadline - now_s();
			if (left <= 0)
				return R_TIMEOUT;
			if (poll(&pf, 1, (int)(left * 1000) + 1) == 0)
				return R_TIMEOUT;
		}
		rc = SSL_read(c->ssl, p, (int)n);
		if (rc <= 0) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ)
				continue;
			ERR_clear_error();
			return R_CLOSED;
		}
		p += rc;
		n -= (size_t)rc;
	}
	return 0;
}

static reply_t
read_reply(conn_t *c, double timeout_s)
{
	static reply_t r;
	uint8_t hdr[STB_FRAME_HDR_LEN];
	double t0 = now_s(), deadline = t0 + timeout_s;
	int rc;

	memset(&r, 0, sizeof(r));
	r.status = -1;
	rc = read_full(c, hdr, sizeof(hdr), deadline);
	r.after_s = now_s() - t0;
	if (rc != 0) {
		r.kind = rc;
		return r;
	}
	if (frame_decode(hdr, sizeof(hdr), sizeof(r.body), &r.h) != FRAME_NEED_MORE &&
	    r.h.len != 0) {
		fprintf(stderr, "daemon sent a bad frame header\n");
		exit(2);
	}
	if (r.h.len > sizeof(r.body) || read_full(c, r.body, r.h.len, deadline) != 0) {
		r.kind = R_CLOSED;
		return r;
	}
	r.kind = R_FRAME;
	{
		msg_t m;
		err_t err;
		if (msg_parse(&m, &r.h, r.body, &err) == 0)
			r.status = msg_status(&m);
	}
	return r;
}

/* A frame: header fields as given, body as given. */
static size_t
mkframe(uint8_t *out, uint8_t version, uint8_t flags, uint16_t type, uint16_t reserved,
        uint32_t req_id, const void *body, uint32_t len)
{
	out[0] = 'S';
	out[1] = 'B';
	out[2] = version;
	out[3] = flags;
	store_be16(out + 4, type);
	store_be16(out + 6, reserved);
	store_be32(out + 8, req_id);
	store_be32(out + 12, len);
	if (len > 0)
		memcpy(out + 16, body, len);
	return 16 + (size_t)len;
}

static int
is_error(const reply_t *r, uint16_t type, uint32_t req_id, int status)
{
	return r->kind == R_FRAME && r->h.flags == (STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR) &&
	       r->h.type == type && r->h.req_id == req_id && r->status == status;
}

static const char *
describe(const reply_t *r)
{
	static char s[160];

	if (r->kind == R_CLOSED)
		snprintf(s, sizeof(s), "connection closed after %.2fs", r->after_s);
	else if (r->kind == R_TIMEOUT)
		snprintf(s, sizeof(s), "no answer (timeout)");
	else
		snprintf(s, sizeof(s), "frame type 0x%04x flags 0x%02x id %u status %s", r->h.type,
		         r->h.flags, r->h.req_id,
		         r->status >= 0 ? stb_status_name(r->status) : "none");
	return s;
}

/* A good PING still works on c. */
static int
ping_ok(conn_t *c, uint32_t id)
{
	uint8_t f[64];
	reply_t r;

	send_raw(c, f, mkframe(f, 1, 0, STB_MSG_PING, 0, id, NULL, 0));
	r = read_reply(c, 3);
	return r.kind == R_FRAME && r.h.flags == STB_FRAME_F_RESPONSE && r.h.req_id == id;
}

/* Header-level errors: answered (when the header can be trusted), then the
 * connection is closed. */
static void
header_cases(void)
{
	static const struct {
		const char *name;
		uint8_t version, flags;
		uint16_t reserved;
		uint32_t len;
		int status; /* -1: closed without an answer */
	} cases[] = {
	    {"bad version", 2, 0, 0, 0, STB_UNSUPPORTED},
	    {"undefined flag bit", 1, 0x80, 0, 0, STB_BAD_REQUEST},
	    {"ERROR flag without RESPONSE", 1, STB_FRAME_F_ERROR, 0, 0, STB_BAD_REQUEST},
	    {"reserved field not zero", 1, 0, 0x0100, 0, STB_BAD_REQUEST},
	    {"length over max_frame", 1, 0, 0, 100000, STB_TOO_LARGE},
	    {"length over the 16 MiB cap", 1, 0, 0, 0xffffffffu, STB_TOO_LARGE},
	};
	uint8_t f[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conn_t c = tls_open(NULL, NULL);
		reply_t r;
		uint8_t h[16];

		mkframe(h, cases[i].version, cases[i].flags, STB_MSG_PING, cases[i].reserved,
		        77 + (uint32_t)i, NULL, 0);
		store_be32(h + 12, cases[i].len);
		send_raw(&c, h, sizeof(h));
		r = read_reply(&c, 3);
		CHECK(cases[i].name, is_error(&r, STB_MSG_PING, 77 + (uint32_t)i, cases[i].status),
		      "want ERROR %s, got %s", stb_status_name(cases[i].status), describe(&r));
		r = read_reply(&c, 3);
		CHECK(cases[i].name, r.kind == R_CLOSED, "then close, got %s", describe(&r));
		conn_close(&c);
	}
	{
		conn_t c = tls_open(NULL, NULL);
		reply_t r;
		memcpy(f, "XB\x01\0\0\x01\0\0\0\0\0\x01\0\0\0\0", 16);
		send_raw(&c, f, 16);
		r = read_reply(&c, 3);
		CHECK("bad magic closes without an answer", r.kind == R_CLOSED, "got %s",
		      describe(&r));
		conn_close(&c);
	}
}

struct body_case {
	const char *name;
	uint16_t type;
	const uint8_t *body;
	uint32_t len;
	int want;  /* STB_OK: an OK answer */
	int admin; /* 0 anonymous, 1 admin, 2 a service role */
};

/* Body-level errors: an ERROR answer, and the connection stays usable. */
static void
body_cases(void)
{
	uint8_t ping_payload_dup[32], crit[16], ign[16], trunc[3] = {0, 3, 0};
	uint8_t past[10] = {0, 3, 0, 0, 0, 200, 1, 2, 3, 4};
	uint8_t bad_utf8[16], nul_str[16];
	size_t n;
	struct body_case cases[12];
	size_t nc = 0;
	buf_t b;

	buf_init(&b, 64);
	tlv_put(&b, STB_TLV_PAYLOAD, "a", 1);
	tlv_put(&b, STB_TLV_PAYLOAD, "b", 1);
	memcpy(ping_payload_dup, b.data, b.len);
	n = b.len;
	buf_free(&b);
	store_be16(crit, 0x0777); /* unknown, critical */
	store_be32(crit + 2, 2);
	crit[6] = crit[7] = 0;
	memcpy(ign, crit, 8);
	store_be16(ign, 0x8777); /* unknown, ignorable */
	store_be16(bad_utf8, STB_TLV_NOTE_TEXT);
	store_be32(bad_utf8 + 2, 2);
	bad_utf8[6] = 0xc0; /* overlong */
	bad_utf8[7] = 0x80;
	store_be16(nul_str, STB_TLV_NOTE_TEXT);
	store_be32(nul_str + 2, 3);
	memcpy(nul_str + 6, "a\0b", 3);

#define CASE(nm, t, bd, l, w, a) cases[nc++] = (struct body_case){nm, t, bd, l, w, a}
	CASE("truncated TLV header", STB_MSG_PING, trunc, sizeof(trunc), STB_BAD_REQUEST, 0);
	CASE("TLV length past the body", STB_MSG_PING, past, sizeof(past), STB_BAD_REQUEST, 0);
	CASE("unknown critical TLV", STB_MSG_PING, crit, 8, STB_BAD_REQUEST, 0);
	CASE("unknown ignorable TLV is skipped", STB_MSG_PING, ign, 8, STB_OK, 0);
	CASE("duplicate TLV", STB_MSG_PING, ping_payload_dup, (uint32_t)n, STB_BAD_REQUEST, 0);
	CASE("missing required TLV", STB_MSG_ADMIN_AUDIT_NOTE, NULL, 0, STB_BAD_REQUEST, 1);
	CASE("string not UTF-8", STB_MSG_ADMIN_AUDIT_NOTE, bad_utf8, 8, STB_BAD_REQUEST, 1);
	CASE("string with NUL", STB_MSG_ADMIN_AUDIT_NOTE, nul_str, 9, STB_BAD_REQUEST, 1);
	CASE("unknown message type", 0x7777, NULL, 0, STB_UNSUPPORTED, 0);
	CASE("admin message from anonymous", STB_MSG_ADMIN_STATS, NULL, 0, STB_FORBIDDEN, 0);
	CASE("admin message from a service role", STB_MSG_ADMIN_STATS, NULL, 0, STB_FORBIDDEN, 2);
#undef CASE
	for (size_t i = 0; i < nc; i++) {
		conn_t c = cases[i].admin == 1   ? tls_open(admin_cert, admin_key)
		           : cases[i].admin == 2 ? tls_open(svc_cert, svc_key)
		                                 : tls_open(NULL, NULL);
		uint8_t f[64];
		uint32_t id = 1000 + (uint32_t)i;
		reply_t r;

		send_raw(&c, f,
		         mkframe(f, 1, 0, cases[i].type, 0, id, cases[i].body, cases[i].len));
		r = read_reply(&c, 3);
		if (cases[i].want == STB_OK)
			CHECK(cases[i].name,
			      r.kind == R_FRAME && r.h.flags == STB_FRAME_F_RESPONSE &&
			          r.h.req_id == id,
			      "want OK, got %s", describe(&r));
		else
			CHECK(cases[i].name, is_error(&r, cases[i].type, id, cases[i].want),
			      "want ERROR %s, got %s", stb_status_name(cases[i].want),
			      describe(&r));
		CHECK(cases[i].name, ping_ok(&c, id + 500),
		      "the connection must stay usable after the answer");
		conn_close(&c);
	}
	{
		conn_t c = tls_open(NULL, NULL);
		uint8_t f[64];
		reply_t r;
		send_raw(&c, f, mkframe(f, 1, STB_FRAME_F_PUSH, STB_MSG_PING, 0, 9, NULL, 0));
		r = read_reply(&c, 3);
		CHECK("client push refused", is_error(&r, STB_MSG_PING, 9, STB_BAD_REQUEST),
		      "got %s", describe(&r));
		conn_close(&c);
	}
}

/* Silent and slow clients are cut. */
static void
timeout_cases(void)
{
	{
		conn_t c = tls_open(NULL, NULL);
		reply_t r = read_reply(&c, 6);
		CHECK("idle client is closed", r.kind == R_CLOSED && r.after_s < 4, "got %s",
		      describe(&r));
		conn_close(&c);
	}
	{
		conn_t c = tls_open(NULL, NULL);
		uint8_t f[16];
		reply_t r;
		send_raw(&c, f, mkframe(f, 1, 0, STB_MSG_PING, 0, 5, NULL, 0) - 6);
		r = read_reply(&c, 5);
		CHECK("truncated header is closed at the frame deadline",
		      r.kind == R_CLOSED && r.after_s < 3, "got %s", describe(&r));
		conn_close(&c);
	}
	{
		conn_t c = tls_open(NULL, NULL);
		uint8_t f[64];
		size_t n = mkframe(f, 1, 0, STB_MSG_PING, 0, 6, "\0\x03\0\0\0\x08xxxxxxxx", 14);
		double t0 = now_s();
		int closed = 0;
		/* one byte every 250 ms: 30 bytes would take 7.5 s */
		for (size_t i = 0; i < n && !closed; i++) {
			if (SSL_write(c.ssl, f + i, 1) != 1)
				closed = 1;
			else {
				reply_t r = read_reply(&c, 0.25);
				closed = r.kind == R_CLOSED;
			}
		}
		CHECK("slow-drip client is closed", closed && now_s() - t0 < 4,
		      "closed %d after %.2fs", closed, now_s() - t0);
		conn_close(&c);
	}
	{
		int fd = tcp_open();
		struct pollfd pf = {fd, POLLIN, 0};
		char buf[64];
		double t0 = now_s();
		int rc = poll(&pf, 1, 5000);
		ssize_t got = rc > 0 ? read(fd, buf, sizeof(buf)) : -1;
		CHECK("client that never handshakes is closed",
		      rc == 1 && got <= 0 && now_s() - t0 < 3, "poll %d read %zd after %.2fs", rc,
		      got, now_s() - t0);
		close(fd);
	}
	{
		int fd = tcp_open();
		struct pollfd pf = {fd, POLLIN, 0};
		char buf[256];
		ssize_t got;
		if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18)
			exit(2);
		poll(&pf, 1, 5000);
		/* a TLS alert at most, then EOF */
		while ((got = read(fd, buf, sizeof(buf))) > 0)
			;
		CHECK("plain-text client is refused", got == 0 || errno == ECONNRESET, "read %zd",
		      got);
		close(fd);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr,
		        "usage: badinput HOST PORT CA ADMIN_CERT ADMIN_KEY SVC_CERT SVC_KEY\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	ca = argv[3];
	admin_cert = argv[4];
	admin_key = argv[5];
	svc_cert = argv[6];
	svc_key = argv[7];
	header_cases();
	body_cases();
	timeout_cases();
	{
		conn_t c = tls_open(NULL, NULL);
		CHECK("daemon still answers after all of it", ping_ok(&c, 4242), "no PING answer");
		conn_close(&c);
	}
	return check_report();
}
