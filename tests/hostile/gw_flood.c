/*
 * gw_flood: a bounded hostile client for the refusal and login-session
 * tests.  Plain OpenSSL on a blocking socket, so that it can bind its own
 * source address (127.0.0.2 is another host on loopback) and pipeline
 * requests WINDOW at a time, as an attacker would.
 *
 *   gw_flood CA CERT|- KEY|- SRC|- HOST:PORT MODE N [DEVICE]
 *
 *   start N DEVICE  N GW_LOGIN_STARTs for DEVICE ("@unknown": nobody-<i>;
 *                   "PREFIX*": PREFIX1 .. PREFIXN)
 *   finish N        N GW_LOGIN_FINISHes of made-up sessions
 *   notes N         N ADMIN_AUDIT_NOTEs (admin identity), to fill the audit
 *   verify-ping N   ADMIN_AUDIT_VERIFY, and meanwhile PINGs one after the
 *                   other until it answers (at most N)
 *
 * Prints one line: "sent=N OK=a NOT_FOUND=b ..." (the statuses heard), or
 * for verify-ping "pings=K before_verify=B first=ping|verify ping_max_ms=M
 * ping_median_ms=D verify_ms=V count=C".  Exit 0 when it could run, 2 when
 * it could not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "frame.h"
#include "login.h"
#include "msgenc.h"
#include "proto.h"

#define WINDOW  32
#define RBUF    (1 << 20)
#define TLV_HDR 6

static SSL *ssl;
static uint8_t rbuf[RBUF];
static size_t rlen;
static uint64_t heard[STATUS_COUNT];

static void
die(const char *what)
{
	fprintf(stderr, "gw_flood: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
dial(const char *ca, const char *cert, const char *key, const char *src, const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET}, me = {.sin_family = AF_INET};
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int fd, one = 1;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		die("HOST:PORT");
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("HOST must be an IPv4 address");
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		die("CA");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (strcmp(cert, "-") != 0 &&
	    (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))
		die("client identity");
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (strcmp(src, "-") != 0 && (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
	                              bind(fd, (struct sockaddr *)&me, sizeof(me)) == -1))
		die("bind to the source address");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 || SSL_connect(ssl) != 1)
		die("TLS handshake");
}

/* A frame of type with the TLVs enc appends; sent at once. */
static void
send_frame(uint16_t type, uint32_t id, buf_t *b, size_t start)
{
	if (frame_end(b, start, type, 0, id) == -1)
		die("frame_end");
}

static void
flush_out(buf_t *b)
{
	if (b->len > 0 && SSL_write(ssl, b->data, (int)b->len) != (int)b->len)
		die("write");
	b->len = 0;
}

/* The status of a response body: its STATUS TLV, else OK. */
static int
body_status(const uint8_t *p, size_t len, int error)
{
	size_t off = 0;

	while (off + TLV_HDR <= len) {
		uint16_t t = load_be16(p + off);
		uint32_t l = load_be32(p + off + 2);
		if (off + TLV_HDR + l > len)
			break;
		if (t == STB_TLV_STATUS && l == 2)
			return load_be16(p + off + TLV_HDR);
		off += TLV_HDR + l;
	}
	return error ? STB_INTERNAL : STB_OK;
}

/* Reads one response: its request id and status. */
static void
read_one(uint32_t *id, int *status)
{
	frame_hdr_t h;
	int rc, n;

	for (;;) {
		rc = frame_decode(rbuf, rlen, RBUF - 16, &h);
		if (rc == FRAME_OK) {
			*id = h.req_id;
			*status = body_status(rbuf + 16, h.len, h.flags & 2);
			memmove(rbuf, rbuf + 16 + h.len, rlen - 16 - h.len);
			rlen -= 16 + h.len;
			return;
		}
		if (rc != FRAME_NEED_MORE)
			die("bad frame from the server");
		if ((n = SSL_read(ssl, rbuf + rlen, (int)(RBUF - rlen))) <= 0)
			die("connection closed");
		rlen += (size_t)n;
	}
}

static void
put_request(buf_t *b, const char *mode, long i, const char *device)
{
	char dev[64], note[64];
	uint8_t sid[LOGIN_SESSION_LEN], junk[64] = {0x30};
	size_t start;
	err_t e;
	int rc;

	if (frame_begin(b, &start) == -1)
		die("frame_begin");
	if (strcmp(mode, "start") == 0) {
		size_t dl = strlen(device);
		if (strcmp(device, "@unknown") == 0)
			snprintf(dev, sizeof(dev), "nobody-%ld", i);
		else if (dl > 1 && device[dl - 1] == '*')
			snprintf(dev, sizeof(dev), "%.*s%ld", (int)(dl - 1), device, i + 1);
		else
			snprintf(dev, sizeof(dev), "%s", device);
		struct msgreq_GW_LOGIN_START q = {.DEVICE_ID = MV_STR(dev)};
		rc = msgenc_GW_LOGIN_START(b, &q, &e);
		send_frame(STB_MSG_GW_LOGIN_START, (uint32_t)i + 1, b, start);
	} else if (strcmp(mode, "finish") == 0) {
		RAND_bytes(sid, sizeof(sid));
		struct msgreq_GW_LOGIN_FINISH q = {.LOGIN_SESSION_ID = MV_BYTES(sid, sizeof(sid)),
		                                   .CERT_DER = MV_BYTES(junk, sizeof(junk)),
		                                   .KEYINFO_PROOF = MV_BYTES(junk, sizeof(junk)),
		                                   .KEYINFO_TIME = MV_U((uint64_t)time(NULL))};
		rc = msgenc_GW_LOGIN_FINISH(b, &q, &e);
		send_frame(STB_MSG_GW_LOGIN_FINISH, (uint32_t)i + 1, b, start);
	} else {
		snprintf(note, sizeof(note), "flood-%ld", i);
		struct msgreq_ADMIN_AUDIT_NOTE q = {.NOTE_TEXT = MV_STR(note)};
		rc = msgenc_ADMIN_AUDIT_NOTE(b, &q, &e);
		send_frame(STB_MSG_ADMIN_AUDIT_NOTE, (uint32_t)i + 1, b, start);
	}
	if (rc == -1)
		die(e.msg);
}

/* N requests, WINDOW in flight. */
static void
flood(const char *mode, long n, const char *device)
{
	long sent = 0, got = 0;
	uint32_t id;
	int status;
	buf_t b;

	buf_init(&b, (size_t)WINDOW * 512);
	while (got < n) {
		while (sent < n && sent - got < WINDOW)
			put_request(&b, mode, sent++, device);
		flush_out(&b);
		read_one(&id, &status);
		heard[status]++;
		got++;
	}
	buf_free(&b);
	printf("sent=%ld", n);
	for (int s = 0; s < STATUS_COUNT; s++)
		if (heard[s] > 0)
			printf(" %s=%llu", stb_status_name(s), (unsigned long long)heard[s]);
	printf("\n");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
verify_ping(long max)
{
	static double lat[100000];
	struct msgreq_ADMIN_AUDIT_VERIFY vq = {0};
	struct msgreq_PING pq = {0};
	double t0 = now_ms(), tp, verify_ms = -1;
	long pings = 0, before = 0;
	const char *first = NULL;
	uint32_t id;
	int status;
	size_t start;
	err_t e;
	buf_t b;

	if (max > (long)(sizeof(lat) / sizeof(lat[0])))
		max = (long)(sizeof(lat) / sizeof(lat[0]));
	buf_init(&b, 4096);
	frame_begin(&b, &start);
	if (msgenc_ADMIN_AUDIT_VERIFY(&b, &vq, &e) == -1)
		die(e.msg);
	send_frame(STB_MSG_ADMIN_AUDIT_VERIFY, 1, &b, start);
	flush_out(&b);
	while (pings < max && verify_ms < 0) {
		frame_begin(&b, &start);
		if (msgenc_PING(&b, &pq, &e) == -1)
			die(e.msg);
		send_frame(STB_MSG_PING, 2 + (uint32_t)pings, &b, start);
		tp = now_ms();
		flush_out(&b);
		for (;;) {
			read_one(&id, &status);
			if (id == 1) {
				verify_ms = now_ms() - t0;
				if (first == NULL)
					first = "verify";
				if (status != STB_OK)
					die("ADMIN_AUDIT_VERIFY refused");
				continue; /* this PING's answer still comes */
			}
			lat[pings++] = now_ms() - tp;
			if (first == NULL)
				first = "ping";
			if (verify_ms < 0)
				before++;
			break;
		}
		if (verify_ms < 0)
			usleep(2000);
	}
	while (verify_ms < 0) {
		read_one(&id, &status);
		if (id == 1)
			verify_ms = now_ms() - t0;
	}
	qsort(lat, (size_t)pings, sizeof(lat[0]), cmp_double);
	printf("pings=%ld before_verify=%ld first=%s ping_max_ms=%.1f ping_median_ms=%.1f "
	       "verify_ms=%.1f\n",
	       pings, before, first, pings > 0 ? lat[pings - 1] : 0.0,
	       pings > 0 ? lat[pings / 2] : 0.0, verify_ms);
	buf_free(&b);
}

int
main(int argc, char **argv)
{
	long n;

	if (argc < 8) {
		fprintf(stderr,
		        "usage: gw_flood CA CERT|- KEY|- SRC|- HOST:PORT MODE N [DEVICE]\n");
		return 2;
	}
	n = atol(argv[7]);
	if (n < 1 || n > 10000000)
		die("N must be 1..10000000");
	dial(argv[1], argv[2], argv[3], argv[4], argv[5]);
	if (strcmp(argv[6], "verify-ping") == 0)
		verify_ping(n);
	else if (strcmp(argv[6], "start") == 0 || strcmp(argv[6], "finish") == 0 ||
	         strcmp(argv[6], "notes") == 0) {
		if (strcmp(argv[6], "start") == 0 && argc < 9)
			die("start needs a DEVICE");
		flood(argv[6], n, argc > 8 ? argv[8] : "");
	} else
		die("unknown MODE");
	fflush(stdout);
	SSL_shutdown(ssl);
	return 0;
}
