/* rdv: stbctl commands for rendezvousd. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

const char ctl_rdv_usage[] = "rendezvousd:\n"
                             "  rdv provision ID       add a device to the legal-device list;\n"
                             "                         prints its one-time enrolment code (once)\n"
                             "  rdv deprovision ID     remove a device (an online one is cut off)\n"
                             "  rdv online             devices with an open control channel\n"
                             "  rdv sessions [--limit N]  the most recent sessions\n";

/* The enrolment code the answer carries: the only time anyone sees it. */
static int
rdv_provisioned(ctl_t *x, const char *id, const msg_t *m)
{
	char code[80] = "";
	cJSON *o;
	int rc;

	if (msg_get_str(m, TLV_IX_RDV_ENROL_CODE, code, sizeof(code)) == -1) {
		fprintf(stderr, "stbctl: the answer lacks the enrolment code\n");
		return 1;
	}
	if (x->json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "device_id", id);
		cJSON_AddStringToObject(o, "enrol_code", code);
		cJSON_AddStringToObject(o, "status", "OK");
		rc = ctl_print_json(o);
	} else {
		printf("%-24s %s\n", "DEVICE", "ENROLMENT CODE");
		printf("%-24s %s\n", id, code);
		fprintf(stderr, "stbctl: the enrolment code is shown once: give it to the device "
		                "for its first registration\n");
		rc = 0;
	}
	OPENSSL_cleanse(code, sizeof(code));
	return rc;
}

static int
rdv_device_cmd(ctl_t *x, uint16_t type, const char *id, const char *done)
{
	stb_error_t err;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_RDV_PROVISION prov = {.RDV_DEVICE_ID = MV_STR(id)};
	struct msgreq_RDV_DEPROVISION deprov = {.RDV_DEVICE_ID = MV_STR(id)};
	err_t bad;

	buf_init(&b, 256);
	if ((type == STB_MSG_RDV_PROVISION ? msgenc_RDV_PROVISION(&b, &prov, &bad)
	                                   : msgenc_RDV_DEPROVISION(&b, &deprov, &bad)) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, type, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	if (type == STB_MSG_RDV_PROVISION)
		return rdv_provisioned(x, id, &m);
	if (x->json)
		printf("{\"device_id\": \"%s\", \"status\": \"OK\"}\n", id);
	else
		printf("%s %s\n", id, done);
	return 0;
}

static void
rdv_device_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-24s %-15s %-24s %-22s %s\n", "DEVICE", "OVERLAY", "ENDPOINT", "PEER",
		       "SINCE");
	else {
		char t[CTL_TIME_CAP];
		printf("%-24s %-15s %-24s %-22s %s\n", ctl_jstr(o, "device_id"),
		       ctl_jstr(o, "overlay_address"), ctl_jstr(o, "endpoint"), ctl_jstr(o, "peer"),
		       ctl_time(ctl_jnum(o, "since"), t));
	}
}

static void
rdv_session_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-32s %-20s %-20s %-20s %-20s %s\n", "SESSION", "CALLER", "TARGET",
		       "ISSUED", "EXPIRES", "STATE");
	else {
		char t1[CTL_TIME_CAP], t2[CTL_TIME_CAP];
		printf("%-32s %-20s %-20s %-20s %-20s %s\n", ctl_jstr(o, "session_id"),
		       ctl_jstr(o, "caller_id"), ctl_jstr(o, "target_id"),
		       ctl_time(ctl_jnum(o, "issued"), t1), ctl_time(ctl_jnum(o, "expires"), t2),
		       ctl_jstr(o, "state"));
	}
}

int
ctl_rdv(ctl_t *x, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[0], "provision") == 0)
		return rdv_device_cmd(x, STB_MSG_RDV_PROVISION, argv[1], "provisioned");
	if (argc == 2 && strcmp(argv[0], "deprovision") == 0)
		return rdv_device_cmd(x, STB_MSG_RDV_DEPROVISION, argv[1], "deprovisioned");
	if (argc >= 1 && strcmp(argv[0], "online") == 0) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "--json") == 0)
				x->json = 1;
		return ctl_list(x, STB_MSG_RDV_LIST_ONLINE, NULL, TLV_IX_RDV_DEVICE_ENTRY,
		                rdv_device_row);
	}
	if (argc >= 1 && strcmp(argv[0], "sessions") == 0) {
		struct msgreq_RDV_LIST_SESSIONS q = {0};
		err_t bad;
		buf_t b;
		int rc;
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--json") == 0)
				x->json = 1;
			else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
				q.AUDIT_LIMIT = MV_U(strtoul(argv[++i], NULL, 10));
			else {
				fprintf(stderr, "stbctl: rdv sessions [--json] [--limit N]\n");
				return 2;
			}
		}
		buf_init(&b, 64);
		rc = msgenc_RDV_LIST_SESSIONS(&b, &q, &bad) == -1
		         ? ctl_bad_request(&bad)
		         : ctl_list(x, STB_MSG_RDV_LIST_SESSIONS, &b, TLV_IX_RDV_SESSION_ENTRY,
		                    rdv_session_row);
		buf_free(&b);
		return rc;
	}
	fprintf(stderr, "stbctl: rdv provision ID | deprovision ID | online [--json] | "
	                "sessions [--json] [--limit N]\n");
	return 2;
}
