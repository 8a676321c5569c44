/*
 * km_client: plays an SMS gateway towards keymgmtd: one KM_SMS_INBOUND
 * {originator_mdn, text} as the identity given.  Prints "REPLY <text>" or
 * "ERR <STATUS_NAME> <text>" and exits 0 / 1.
 *
 * usage: km_client HOST:PORT CA CERT KEY FROM_MDN TEXT
 */
#include <stdio.h>
#include <string.h>

#include "msgenc.h"
#include "stbc.h"

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_error_t err = {0};
	char reply[161] = "";
	err_t e;
	buf_t b;
	msg_t m;
	int rc = 1;

	if (argc != 7) {
		fprintf(stderr, "usage: km_client HOST:PORT CA CERT KEY FROM_MDN TEXT\n");
		return 2;
	}
	struct msgreq_KM_SMS_INBOUND q = {.KM_ORIGINATOR_MDN = MV_STR(argv[5]),
	                                  .KM_SMS_TEXT = MV_STR(argv[6])};
	buf_init(&b, 1024);
	if (msgenc_KM_SMS_INBOUND(&b, &q, &e) == -1) {
		printf("ERR %s %s\n", stb_status_name(e.status), e.msg);
		buf_free(&b);
		return 1;
	}
	if (stb_client_new(&c, &err) == 0 && stb_client_set_ca_file(c, argv[2], &err) == 0 &&
	    stb_client_set_identity(c, argv[3], argv[4], &err) == 0 &&
	    (stb_client_set_timeout(c, 10000), 1) && stb_connect_addr(c, argv[1], &err) == 0 &&
	    stbc_call(c, STB_MSG_KM_SMS_INBOUND, &b, &m, &err) == 0) {
		msg_get_str(&m, TLV_IX_KM_SMS_REPLY, reply, sizeof(reply));
		printf("REPLY %s\n", reply);
		rc = 0;
	} else if (err.status != 0)
		printf("ERR %s %s\n", stb_status_name(err.status), err.message);
	buf_free(&b);
	stb_client_free(c);
	return rc;
}
