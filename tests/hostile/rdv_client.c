/*
 * rdv_client (hostile): a registered device that floods rendezvousd with
 * RDV_CONNECT_REQs for one target.
 *
 *   rdv_hostile ADDR CA flood ID USER PASS ENDPOINT TARGET COUNT RATE
 *
 * registers (enrolling with the code enrolcode.h finds), then sends COUNT
 * requests, pipelined WINDOW at a time and at most RATE per second,
 * answering the server's heartbeats meanwhile.  Prints "started" once the
 * first window is out, then "flood sent=N answered=N OK=N RATE_LIMITED=N
 * other=N" and the first other refusal.  Exit status 0 when every request
 * was answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enrolcode.h"
#include "msgenc.h"
#include "rdvc.h"
#include "tlv.h"

#define WINDOW     32
#define DEADLINE_S 40

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
send_req(stb_client_t *c, const char *target, stb_error_t *err)
{
	struct msgreq_RDV_CONNECT_REQ q = {.RDV_TARGET_ID = MV_STR(target)};
	err_t e;
	buf_t b;
	int rc;

	buf_init(&b, 256);
	rc = msgenc_RDV_CONNECT_REQ(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "%s", e.msg)
	         : stbc_send(c, STB_MSG_RDV_CONNECT_REQ, 0, ++c->next_id, &b, err);
	buf_free(&b);
	return rc;
}

static int
flood(stb_rdv_t *r, const char *target, long count, long rate)
{
	stb_client_t *c = r->c;
	long sent = 0, answered = 0, ok = 0, limited = 0, other = 0;
	char first[300] = "";
	double t0 = now_s();
	stb_error_t err;
	msg_t m;

	while (answered < count && now_s() - t0 < DEADLINE_S) {
		while (sent < count && sent - answered < WINDOW &&
		       (double)sent < (now_s() - t0) * (double)rate + WINDOW) {
			if (send_req(c, target, &err) == -1) {
				printf("closed %s\n", err.message);
				return 1;
			}
			if (++sent == WINDOW) {
				printf("started\n");
				fflush(stdout);
			}
		}
		int rc = stbc_read(c, 20, &m, &err);
		if (rc == -1) {
			printf("closed %s\n", err.message);
			break;
		}
		if (rc != 0)
			continue;
		if (m.flags & STB_FRAME_F_PUSH) {
			stbc_send(c, m.type, STB_FRAME_F_RESPONSE, m.req_id, NULL, &err);
			continue;
		}
		if (m.type != STB_MSG_RDV_CONNECT_REQ)
			continue; /* the answer to a heartbeat of ours */
		answered++;
		if (!(m.flags & STB_FRAME_F_ERROR))
			ok++;
		else if (msg_status(&m) == STB_RATE_LIMITED)
			limited++;
		else {
			char why[256] = "";
			msg_get_str(&m, TLV_IX_ERROR_TEXT, why, sizeof(why));
			if (other++ == 0)
				snprintf(first, sizeof(first), "%s %s",
				         stb_status_name(msg_status(&m)), why);
		}
	}
	printf("flood sent=%ld answered=%ld OK=%ld RATE_LIMITED=%ld other=%ld seconds=%.2f\n", sent,
	       answered, ok, limited, other, now_s() - t0);
	if (first[0] != '\0')
		printf("first other: %s\n", first);
	return answered == count ? 0 : 1;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_rdv_t *r = NULL;
	stb_error_t err;
	char code[80];
	int rc;

	if (argc != 11 || strcmp(argv[3], "flood") != 0) {
		fprintf(stderr,
		        "usage: see the comment at the top of tests/hostile/rdv_client.c\n");
		return 2;
	}
	rc = test_enrol_code(argv[4], code, sizeof(code));
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[2], &err) == -1 ||
	    stb_connect_addr(c, argv[1], &err) == -1 ||
	    (rc == 0 ? stb_rdv_enrol(c, argv[4], code, argv[5], argv[6], argv[7], &r, &err)
	             : stb_rdv_register(c, argv[4], argv[5], argv[6], argv[7], &r, &err)) == -1) {
		printf("%s %s\n", stb_status_name(err.status), err.message);
		stb_client_free(c);
		return 1;
	}
	rc = flood(r, argv[8], strtol(argv[9], NULL, 10), strtol(argv[10], NULL, 10));
	stb_rdv_free(r);
	stb_client_free(c);
	return rc;
}
