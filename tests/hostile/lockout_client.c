/*
 * lockout_client: a bounded guesser (or the real box) against cert-proxyd's
 * AUTH_PROVE and rendezvousd's REGISTER, from a chosen loopback source
 * address, counting the answers.
 *
 *   lockout_client cp  ADDR CA SRC ID SECRET_HEX COUNT PAUSE_MS
 *   lockout_client rdv ADDR CA SRC ID USER PASS COUNT PAUSE_MS
 *   lockout_client rdv-pipe ADDR CA SRC ID USER PASS N
 *
 * cp and rdv make COUNT attempts, each on a new connection bound to SRC,
 * PAUSE_MS apart; SECRET_HEX "wrong" sends a wrong MAC.  An ID holding %d
 * is formatted with the attempt's number ("many boxes behind one
 * address").  rdv-pipe writes N REGISTERs on one connection before it
 * reads any answer.  One line on stdout:
 *   ok=N unauth=N limited=N other=N seconds=S
 * Exit status 0, or 2 when a connection could not be made.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "enrolcode.h"
#include "frame.h"
#include "hex.h"
#include "login.h"
#include "msgenc.h"
#include "proto.h"
#include "tlv.h"

#define BODY_MAX 65536
#define TIMEOUT  20.0

typedef struct conn {
	int fd;
	SSL *ssl;
} conn_t;

static SSL_CTX *ctx;
static const char *host, *src;
static int port;
static struct {
	int ok, unauth, limited, other;
} n;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
conn_open(conn_t *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET}, me = {.sin_family = AF_INET};
	int one = 1;

	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    inet_pton(AF_INET, src, &me.sin_addr) != 1)
		return -1;
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (bind(c->fd, (struct sockaddr *)&me, sizeof(me)) == -1 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("connect");
		close(c->fd);
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_free(c->ssl);
		close(c->fd);
		return -1;
	}
	return 0;
}

static void
conn_close(conn_t *c)
{
	SSL_free(c->ssl);
	close(c->fd);
}

static int
read_full(conn_t *c, uint8_t *p, size_t len, double deadline)
{
	while (len > 0) {
		struct pollfd pf = {c->fd, POLLIN, 0};
		int rc;

		if (SSL_pending(c->ssl) == 0) {
			double left = deadline - now_s();
			if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) == 0)
				return -1;
		}
		if ((rc = SSL_read(c->ssl, p, (int)len)) <= 0) {
			if (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ)
				continue;
			ERR_clear_error();
			return -1;
		}
		p += rc;
		len -= (size_t)rc;
	}
	return 0;
}

/* The next answer (pushes are skipped) into m, body in body; -1 closed. */
static int
read_msg(conn_t *c, msg_t *m, uint8_t *body)
{
	uint8_t hdr[STB_FRAME_HDR_LEN];
	double deadline = now_s() + TIMEOUT;
	frame_hdr_t h;
	err_t err;

	for (;;) {
		if (read_full(c, hdr, sizeof(hdr), deadline) == -1)
			return -1;
		if (frame_decode(hdr, sizeof(hdr), BODY_MAX, &h) != FRAME_NEED_MORE && h.len != 0)
			return -1;
		if (read_full(c, body, h.len, deadline) == -1 || msg_parse(m, &h, body, &err) == -1)
			return -1;
		if (!(h.flags & STB_FRAME_F_PUSH))
			return 0;
	}
}

static int
send_frame(conn_t *c, buf_t *b)
{
	return SSL_write(c->ssl, b->data, (int)b->len) == (int)b->len ? 0 : -1;
}

static void
count(int status)
{
	if (status == STB_OK)
		n.ok++;
	else if (status == STB_UNAUTHENTICATED)
		n.unauth++;
	else if (status == STB_RATE_LIMITED)
		n.limited++;
	else
		n.other++;
}

/* AUTH_BEGIN + AUTH_PROVE: the status of the last answer. */
static int
cp_once(const char *id, const uint8_t *secret, size_t slen)
{
	uint8_t sn[LOGIN_NONCE_LEN], cn[LOGIN_NONCE_LEN], mac[LOGIN_MAC_LEN];
	static uint8_t body[BODY_MAX];
	const uint8_t *p;
	size_t plen, start;
	conn_t c;
	err_t e;
	buf_t b;
	msg_t m;
	int st = -1;

	if (conn_open(&c) == -1)
		exit(2);
	buf_init(&b, 4096);
	struct msgreq_CP_AUTH_BEGIN q1 = {.DEVICE_ID = MV_STR(id)};
	if (frame_begin(&b, &start) == -1 || msgenc_CP_AUTH_BEGIN(&b, &q1, &e) == -1 ||
	    frame_end(&b, start, STB_MSG_CP_AUTH_BEGIN, 0, 1) == -1 || send_frame(&c, &b) == -1 ||
	    read_msg(&c, &m, body) == -1)
		goto out;
	if ((st = msg_status(&m)) != STB_OK)
		goto out;
	if (msg_get_bytes(&m, TLV_IX_SERVER_NONCE, &p, &plen) == -1 || plen != sizeof(sn)) {
		st = -1;
		goto out;
	}
	memcpy(sn, p, sizeof(sn));
	RAND_bytes(cn, sizeof(cn));
	if (secret != NULL)
		login_auth_mac(secret, slen, sn, cn, id, mac, &e);
	else
		RAND_bytes(mac, sizeof(mac));
	struct msgreq_CP_AUTH_PROVE q2 = {.CLIENT_NONCE = MV_BYTES(cn, sizeof(cn)),
	                                  .AUTH_MAC = MV_BYTES(mac, sizeof(mac))};
	buf_reset(&b);
	st = -1;
	if (frame_begin(&b, &start) == -1 || msgenc_CP_AUTH_PROVE(&b, &q2, &e) == -1 ||
	    frame_end(&b, start, STB_MSG_CP_AUTH_PROVE, 0, 2) == -1 || send_frame(&c, &b) == -1 ||
	    read_msg(&c, &m, body) == -1)
		goto out;
	st = msg_status(&m);
out:
	buf_free(&b);
	conn_close(&c);
	return st;
}

static int
rdv_frame(buf_t *b, const char *id, const char *user, const char *pass, uint32_t req_id)
{
	struct msgreq_RDV_REGISTER q = {.RDV_DEVICE_ID = MV_STR(id),
	                                .RDV_USERNAME = MV_STR(user),
	                                .RDV_PASSWORD = MV_STR(pass),
	                                .RDV_ENDPOINT = MV_STR("127.0.0.1:9")};
	char code[80];
	size_t start;
	err_t e;
	int rc;

	if (test_enrol_code(id, code, sizeof(code)) == 0) /* a first registration's */
		q.RDV_ENROL_CODE = MV_STR(code);
	rc = frame_begin(b, &start) == -1 || msgenc_RDV_REGISTER(b, &q, &e) == -1 ||
	             frame_end(b, start, STB_MSG_RDV_REGISTER, 0, req_id) == -1
	         ? -1
	         : 0;
	OPENSSL_cleanse(code, sizeof(code));
	return rc;
}

/* REGISTERs on one connection, all written before any answer is read. */
static void
rdv_batch(const char *id, const char *user, const char *pass, int count_)
{
	static uint8_t body[BODY_MAX];
	conn_t c;
	buf_t b;
	msg_t m;

	if (conn_open(&c) == -1)
		exit(2);
	buf_init(&b, (size_t)count_ * 1024 + 1024);
	for (int i = 0; i < count_; i++)
		if (rdv_frame(&b, id, user, pass, (uint32_t)i + 1) == -1) {
			fprintf(stderr, "cannot encode REGISTER\n");
			exit(2);
		}
	if (send_frame(&c, &b) == -1)
		exit(2);
	for (int i = 0; i < count_; i++)
		count(read_msg(&c, &m, body) == 0 ? msg_status(&m) : -1);
	buf_free(&b);
	conn_close(&c);
}

/* pattern with its %d (if any) replaced by i */
static void
fmt_id(char *out, size_t cap, const char *pattern, int i)
{
	const char *d = strstr(pattern, "%d");

	if (d == NULL)
		snprintf(out, cap, "%s", pattern);
	else
		snprintf(out, cap, "%.*s%d%s", (int)(d - pattern), pattern, i, d + 2);
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	uint8_t secret[64];
	size_t slen = 0;
	char id[256], hp[128], *colon;
	double t0 = now_s();
	int cnt, pause_ms;

	if (argc != (strcmp(mode, "rdv") == 0 ? 10 : 9)) {
		fprintf(stderr, "usage: see the comment at the top of lockout_client.c\n");
		return 2;
	}
	snprintf(hp, sizeof(hp), "%s", argv[2]);
	if ((colon = strrchr(hp, ':')) == NULL)
		return 2;
	*colon = '\0';
	host = hp;
	port = atoi(colon + 1);
	src = argv[4];
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(ctx, argv[3], NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (strcmp(mode, "cp") == 0) {
		int wrong = strcmp(argv[6], "wrong") == 0;
		if (!wrong &&
		    hex_decode(argv[6], strlen(argv[6]), secret, sizeof(secret), &slen) == -1)
			return 2;
		cnt = atoi(argv[7]);
		pause_ms = atoi(argv[8]);
		for (int i = 0; i < cnt; i++) {
			fmt_id(id, sizeof(id), argv[5], i);
			count(cp_once(id, wrong ? NULL : secret, slen));
			if (pause_ms > 0 && i + 1 < cnt)
				usleep((useconds_t)pause_ms * 1000);
		}
	} else if (strcmp(mode, "rdv") == 0) {
		cnt = atoi(argv[8]);
		pause_ms = atoi(argv[9]);
		for (int i = 0; i < cnt; i++) {
			fmt_id(id, sizeof(id), argv[5], i);
			rdv_batch(id, argv[6], argv[7], 1);
			if (pause_ms > 0 && i + 1 < cnt)
				usleep((useconds_t)pause_ms * 1000);
		}
	} else if (strcmp(mode, "rdv-pipe") == 0)
		rdv_batch(argv[5], argv[6], argv[7], atoi(argv[8]));
	else
		return 2;
	printf("ok=%d unauth=%d limited=%d other=%d seconds=%.2f\n", n.ok, n.unauth, n.limited,
	       n.other, now_s() - t0);
	SSL_CTX_free(ctx);
	return 0;
}
