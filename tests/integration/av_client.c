/*
 * av_client: an anonymous TV for appvetd's check listener, over the
 * internal client API (the library's stb_app_check is avq's and tested
 * there).
 *
 *   av_client ADDR CA check PAYLOAD...   one line per payload:
 *       "ALLOW SAFE name version" | "DENY UNSAFE name version: warning" |
 *       "<STATUS> message"
 *   av_client ADDR CA index FILE         APP_INDEX_EXPORT into FILE
 *   av_client ADDR CA flood N PAYLOAD    N checks on one connection; the
 *       count of each answer status
 *
 * The exit status is 0 when every request got an answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

static int
check_one(stb_client_t *c, const char *payload, int quiet, int *status)
{
	struct msgreq_APP_CHECK q = {.APP_QR_PAYLOAD = MV_STR(payload)};
	char name[129] = "", version[65] = "", warning[513] = "";
	uint8_t result = 0, flag = 0;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 2048);
	if (msgenc_APP_CHECK(&b, &q, &bad) == -1) {
		buf_free(&b);
		if (!quiet)
			printf("%s (not sent) %s\n", stb_status_name(bad.status), bad.msg);
		*status = bad.status;
		return 0;
	}
	rc = stbc_call(c, STB_MSG_APP_CHECK, &b, &m, &err);
	buf_free(&b);
	if (rc == -1) {
		*status = err.status;
		if (!quiet)
			printf("%s %s\n", stb_status_name(err.status), err.message);
		return err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT ? -1 : 0;
	}
	*status = STB_OK;
	if (quiet)
		return 0;
	msg_get_u8(&m, TLV_IX_APP_RESULT, &result);
	msg_get_u8(&m, TLV_IX_APP_FLAG, &flag);
	msg_get_str(&m, TLV_IX_APP_NAME, name, sizeof(name));
	msg_get_str(&m, TLV_IX_APP_VERSION, version, sizeof(version));
	msg_get_str(&m, TLV_IX_APP_WARNING, warning, sizeof(warning));
	printf("%s %s %s %s%s%s\n",
	       result == 1   ? "ALLOW"
	       : result == 2 ? "DENY"
	                     : "?",
	       flag == 1   ? "SAFE"
	       : flag == 2 ? "UNSAFE"
	                   : "?",
	       name, version, warning[0] ? ": " : "", warning);
	return 0;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_error_t err;
	int rc = 0, st;

	if (argc < 5) {
		fprintf(stderr, "usage: av_client ADDR CA check PAYLOAD... | index FILE | "
		                "flood N PAYLOAD\n");
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[2], &err) == -1 ||
	    stb_connect_addr(c, argv[1], &err) == -1) {
		printf("%s %s\n", stb_status_name(err.status), err.message);
		stb_client_free(c);
		return 1;
	}
	if (strcmp(argv[3], "check") == 0) {
		for (int i = 4; i < argc && rc == 0; i++)
			if (check_one(c, argv[i], 0, &st) == -1)
				rc = 1;
	} else if (strcmp(argv[3], "index") == 0) {
		msg_t m;
		const uint8_t *p;
		size_t len;
		FILE *f;

		if (stbc_call(c, STB_MSG_APP_INDEX_EXPORT, NULL, &m, &err) == -1) {
			printf("%s %s\n", stb_status_name(err.status), err.message);
			rc = 1;
		} else if (msg_get_bytes(&m, TLV_IX_APP_INDEX, &p, &len) == 0 &&
		           (f = fopen(argv[4], "wb")) != NULL) {
			rc = fwrite(p, 1, len, f) == len ? 0 : 1;
			fclose(f);
			printf("OK %zu bytes\n", len);
		} else
			rc = 1;
	} else if (strcmp(argv[3], "flood") == 0 && argc == 6) {
		long n = strtol(argv[4], NULL, 10);
		long counts[32] = {0};

		for (long i = 0; i < n && rc == 0; i++) {
			if (check_one(c, argv[5], 1, &st) == -1)
				rc = 1;
			counts[st >= 0 && st < 32 ? st : 31]++;
		}
		for (int s = 0; s < 32; s++)
			if (counts[s])
				printf("%s %ld\n", stb_status_name(s), counts[s]);
	} else
		rc = 2;
	stb_client_free(c);
	return rc;
}
