/*
 * cp_hostile_client: an authenticated STB that pipelines CERT_FETCHes.
 *
 *   cp_hostile_client ADDR CA DEVICE_ID SECRET_HEX N CERT_ID...
 *
 * Authenticates, then sends N CERT_FETCHes on its one connection before it
 * reads any answer, cycling through the CERT_IDs given (one CERT_ID: N
 * fetches of it; N CERT_IDs: one fetch of each).  Reads the N answers
 * (20 s at most) and prints one line per status, "STATUS COUNT",
 * in status-code order, then "answers N".  Exit 0 when all N were answered.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "login.h"
#include "loginc.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

#define HC_MAX 1024

static int
hc_send(stb_client_t *c, const char *cert, uint32_t id, stb_error_t *err)
{
	uint8_t sid[LOGIN_SESSION_LEN], gw[LOGIN_NONCE_LEN];
	err_t e;
	buf_t b;
	int rc;

	RAND_bytes(sid, sizeof(sid));
	RAND_bytes(gw, sizeof(gw));
	struct msgreq_CP_CERT_FETCH q = {.CERT_ID = MV_STR(cert),
	                                 .GW_NONCE = MV_BYTES(gw, sizeof(gw)),
	                                 .LOGIN_SESSION_ID = MV_BYTES(sid, sizeof(sid))};
	buf_init(&b, 512);
	rc = msgenc_CP_CERT_FETCH(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "%s", e.msg)
	         : stbc_send(c, STB_MSG_CP_CERT_FETCH, 0, id, &b, err);
	buf_free(&b);
	return rc;
}

int
main(int argc, char **argv)
{
	static int counts[STATUS_COUNT];
	uint8_t secret[64];
	size_t slen = 0;
	stb_client_t *c = NULL;
	stb_error_t err;
	long n;
	int got = 0;
	uint32_t first;
	time_t until;

	if (argc < 7 || (n = strtol(argv[5], NULL, 10)) < 1 || n > HC_MAX) {
		fprintf(stderr, "usage: see the comment at the top of cp_hostile_client.c\n");
		return 2;
	}
	if (hex_decode(argv[4], strlen(argv[4]), secret, sizeof(secret), &slen) == -1) {
		fprintf(stderr, "cp_hostile_client: secret is not hex of at most 64 bytes\n");
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[2], &err) == -1 ||
	    stb_connect_addr(c, argv[1], &err) == -1 ||
	    loginc_auth(c, argv[3], secret, slen, &err) == -1) {
		printf("auth %s %s\n", stb_status_name(err.status), err.message);
		OPENSSL_cleanse(secret, sizeof(secret));
		stb_client_free(c);
		return 1;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	first = c->next_id + 1;
	for (long i = 0; i < n; i++)
		if (hc_send(c, argv[6 + i % (argc - 6)], ++c->next_id, &err) == -1) {
			printf("send %s %s\n", stb_status_name(err.status), err.message);
			stb_client_free(c);
			return 1;
		}
	until = time(NULL) + 20;
	while (got < n && time(NULL) <= until) {
		msg_t m;
		int r = stbc_read(c, 500, &m, &err);

		if (r == -1)
			break;
		if (r == 1 || !(m.flags & STB_FRAME_F_RESPONSE) || m.req_id < first ||
		    m.req_id >= first + (uint32_t)n)
			continue;
		counts[msg_status(&m) < STATUS_COUNT ? msg_status(&m) : STB_INTERNAL]++;
		got++;
	}
	for (int s = 0; s < STATUS_COUNT; s++)
		if (counts[s] > 0)
			printf("%s %d\n", stb_status_name(s), counts[s]);
	printf("answers %d\n", got);
	stb_client_free(c);
	return got == n ? 0 : 1;
}
