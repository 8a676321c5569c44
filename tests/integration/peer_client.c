/*
 * peer_client: a test device for the PSK peer channel, over libstbclient's
 * internals (rdvc.h).
 *
 *   peer_client ADDR CA session ID USER PASS ENDPOINT TARGET
 *       registers, asks for a session with TARGET and prints
 *       "session sid=HEX code=HEX endpoint=EP" without connecting
 *   peer_client psk ENDPOINT SID CODE LINE
 *       a third party holding (or guessing) SID and CODE: the PSK
 *       handshake, LINE sent, "echo LINE" and the key exchange printed, or
 *       "STATUS message"
 *   peer_client ADDR CA relink ID USER PASS ENDPOINT TARGET LINKS
 *       links to TARGET through stb_rdv_connect and keeps sending; on a
 *       broken link asks again, until LINKS links have echoed.  Prints
 *       "link n=N fp=CODE_FINGERPRINT", "echo n=N", "broken ...".
 *
 * The enrolment code, when there is one, comes from enrolcode.h.  Exit
 * status 0 when everything asked for worked.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enrolcode.h"
#include "hex.h"
#include "rdvc.h"

static int
print_err(const stb_error_t *err)
{
	printf("%s %s\n", stb_status_name(err->status), err->message);
	fflush(stdout);
	return 1;
}

/* Sends line on p and checks the echo. */
static int
echo_once(stb_peer_t *p, const char *line, stb_error_t *err)
{
	char buf[512];
	size_t n;

	if (stb_peer_send(p, line, strlen(line), err) == -1 ||
	    stb_peer_recv(p, buf, sizeof(buf), &n, 3000, err) == -1)
		return -1;
	if (n != strlen(line) || memcmp(buf, line, n) != 0)
		return stbc_fail(err, STB_BAD_REQUEST, "echo differs");
	return 0;
}

static int
cmd_psk(char **a)
{
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	size_t sl = 0, cl = 0;
	stb_peer_t *p;
	stb_error_t err;
	int rc;

	if (hex_decode(a[1], strlen(a[1]), sid, sizeof(sid), &sl) == -1 || sl != sizeof(sid) ||
	    hex_decode(a[2], strlen(a[2]), code, sizeof(code), &cl) == -1 || cl != sizeof(code)) {
		printf("BAD_REQUEST bad hex\n");
		return 2;
	}
	rc = rdvc_peer_connect(NULL, 5000, a[0], "target", sid, code, &p, &err);
	OPENSSL_cleanse(code, sizeof(code));
	if (rc == -1)
		return print_err(&err);
	if (echo_once(p, a[3], &err) == -1) {
		stb_peer_free(p);
		return print_err(&err);
	}
	printf("echo %s\nkex psk_dhe_ke group=%s\n", a[3], rdvc_peer_group(p));
	stb_peer_free(p);
	return 0;
}

static int
cmd_session(stb_rdv_t *r, const char *target)
{
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char ep[RDVC_EP_CAP], sh[2 * RDV_SID_LEN + 1], ch[2 * RDV_CODE_LEN + 1];
	stb_error_t err;

	if (rdvc_session(r, target, sid, code, ep, &err) == -1)
		return print_err(&err);
	hex_encode(sid, sizeof(sid), sh);
	hex_encode(code, sizeof(code), ch);
	OPENSSL_cleanse(code, sizeof(code));
	printf("session sid=%s code=%s endpoint=%s\n", sh, ch, ep);
	return 0;
}

static int
cmd_relink(stb_rdv_t *r, const char *target, int links)
{
	time_t until = time(NULL) + 30;
	stb_error_t err;
	int n = 0;

	while (n < links && time(NULL) < until) {
		stb_peer_t *p;
		int echoed = 0;

		if (stb_rdv_connect(r, target, &p, &err) == -1) {
			printf("connect %s %s\n", stb_status_name(err.status), err.message);
			fflush(stdout);
			if (stb_rdv_poll(r, 200, &err) == -1)
				return print_err(&err);
			continue;
		}
		printf("link n=%d fp=%s\n", ++n, rdvc_peer_code_fp(p));
		fflush(stdout);
		while (time(NULL) < until) {
			if (echo_once(p, "ping", &err) == -1) {
				printf("broken %s %s\n", stb_status_name(err.status), err.message);
				break;
			}
			if (!echoed++) {
				printf("echo n=%d\n", n);
				fflush(stdout);
				if (n == links)
					break;
			}
			if (stb_rdv_poll(r, 100, &err) == -1)
				break;
		}
		fflush(stdout);
		stb_peer_free(p);
	}
	return n == links ? 0 : 1;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_rdv_t *r = NULL;
	stb_error_t err;
	char code[80];
	int rc;

	if (argc == 6 && strcmp(argv[1], "psk") == 0)
		return cmd_psk(argv + 2);
	if (argc < 9 || (strcmp(argv[3], "session") != 0 && strcmp(argv[3], "relink") != 0) ||
	    (strcmp(argv[3], "relink") == 0 && argc != 10)) {
		fprintf(stderr, "usage: see the comment at the top of peer_client.c\n");
		return 2;
	}
	rc = test_enrol_code(argv[4], code, sizeof(code));
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[2], &err) == -1 ||
	    stb_connect_addr(c, argv[1], &err) == -1 ||
	    (rc == 0 ? stb_rdv_enrol(c, argv[4], code, argv[5], argv[6], argv[7], &r, &err)
	             : stb_rdv_register(c, argv[4], argv[5], argv[6], argv[7], &r, &err)) == -1) {
		OPENSSL_cleanse(code, sizeof(code));
		print_err(&err);
		stb_client_free(c);
		return 1;
	}
	OPENSSL_cleanse(code, sizeof(code));
	if (strcmp(argv[3], "session") == 0)
		rc = cmd_session(r, argv[8]);
	else
		rc = cmd_relink(r, argv[8], atoi(argv[9]));
	stb_rdv_free(r);
	stb_client_free(c);
	return rc;
}
