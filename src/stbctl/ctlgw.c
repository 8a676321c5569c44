/* gw: stbctl commands for media-gw: subscribers and access tokens. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ctl.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

#define IMPORT_FILE_MAX (64 * 1024 * 1024)

const char ctl_gw_usage[] =
    "media-gw:\n"
    "  gw import FILE         add or replace subscribers: CSV lines\n"
    "                         device_id,cert_id[,active|suspended] or a JSON array of\n"
    "                         {\"device_id\", \"cert_id\", \"state\"}\n"
    "  gw subs [--limit N]    subscribers\n"
    "  gw introspect TOKEN_HEX  is an access token active, and whose is it\n"
    "  gw activate ID | gw suspend ID  a suspended subscriber's tokens are inactive\n"
    "  gw delete ID           remove a subscriber and its access tokens\n"
    "  gw revoke TOKEN_HEX | gw revoke --device ID  revoke one token or a device's\n";

/* ---- import ---- */

static int
gw_import_one(ctl_t *x, const char *device_id, const char *cert_id, int active, const char *where)
{
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 512);
	struct msgreq_GW_SUB_IMPORT q = {
	    .DEVICE_ID = MV_STR(device_id), .CERT_ID = MV_STR(cert_id), .ENABLED = MV_U(active)};
	if (msgenc_GW_SUB_IMPORT(&b, &q, &bad) == -1) {
		buf_free(&b);
		fprintf(stderr, "stbctl: %s: %s: %s\n", where, stb_status_name(bad.status),
		        bad.msg);
		return -1;
	}
	rc = stbc_call(x->c, STB_MSG_GW_SUB_IMPORT, &b, &m, &err);
	buf_free(&b);
	if (rc == -1) {
		fprintf(stderr, "stbctl: %s: %s: %s\n", where, stb_status_name(err.status),
		        err.message);
		/* a dropped connection fails every later row the same way */
		return err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT ? -2 : -1;
	}
	return 0;
}

/* "active" / "suspended" (and 1 / 0); -1 otherwise. */
static int
gw_state(const char *s)
{
	if (s == NULL || *s == '\0' || strcmp(s, "active") == 0 || strcmp(s, "1") == 0)
		return 1;
	if (strcmp(s, "suspended") == 0 || strcmp(s, "0") == 0)
		return 0;
	return -1;
}

static void
gw_tally(int rc, size_t *ok, size_t *bad)
{
	if (rc == 0)
		(*ok)++;
	else
		(*bad)++;
}

/* The state word of a record's third field ("active" when absent). */
static int
gw_field_state(const csv_record_t *rec)
{
	char s[16];

	if (rec->nf < 3)
		return 1;
	return csv_str(rec, 2, s, sizeof(s)) == -1 ? -1 : gw_state(s);
}

static int
gw_import_csv(ctl_t *x, const char *text, size_t len, const char *file, size_t *ok, size_t *bad)
{
	csv_reader_t r;
	csv_record_t rec;

	csv_init(&r, text, len);
	while (csv_next(&r, &rec) == 1) {
		char where[256], dev[STB_ID_MAX + 1], cert[STB_ID_MAX + 1];
		int active, rc;

		/* file:line, as cp import says it */
		snprintf(where, sizeof(where), "%s:%zu", file, rec.line);
		if (rec.first && csv_is(&rec, 0, "device_id"))
			continue; /* a header */
		if (rec.nf < 2 || rec.nf > 3 || rec.f[0].n == 0 ||
		    csv_str(&rec, 0, dev, sizeof(dev)) == -1 ||
		    csv_str(&rec, 1, cert, sizeof(cert)) == -1 ||
		    (active = gw_field_state(&rec)) == -1) {
			fprintf(stderr, "stbctl: %s: want device_id,cert_id[,active|suspended]\n",
			        where);
			(*bad)++;
			continue;
		}
		if ((rc = gw_import_one(x, dev, cert, active, where)) == -2)
			return -1;
		gw_tally(rc, ok, bad);
	}
	return 0;
}

static int
gw_import_json(ctl_t *x, const char *text, size_t len, const char *file, size_t *ok, size_t *bad)
{
	cJSON *arr = cJSON_ParseWithLength(text, len), *o;
	size_t i = 0;
	int rc = 0;

	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		fprintf(stderr, "stbctl: %s: not a JSON array of subscribers\n", file);
		return -1;
	}
	cJSON_ArrayForEach(o, arr)
	{
		const cJSON *dv = cJSON_GetObjectItemCaseSensitive(o, "device_id");
		const cJSON *cv = cJSON_GetObjectItemCaseSensitive(o, "cert_id");
		const cJSON *sv = cJSON_GetObjectItemCaseSensitive(o, "state");
		const cJSON *av = cJSON_GetObjectItemCaseSensitive(o, "active");
		char where[256];
		int active = 1, r;

		snprintf(where, sizeof(where), "%s[%zu]", file, i++);
		if (cJSON_IsString(sv))
			active = gw_state(sv->valuestring);
		else if (cJSON_IsBool(av))
			active = cJSON_IsTrue(av);
		else if (sv != NULL || av != NULL)
			active = -1;
		if (!cJSON_IsString(dv) || !cJSON_IsString(cv) || active == -1) {
			fprintf(stderr,
			        "stbctl: %s: want {\"device_id\": ID, \"cert_id\": ID, "
			        "\"state\": \"active\"|\"suspended\"}\n",
			        where);
			(*bad)++;
			continue;
		}
		if ((r = gw_import_one(x, dv->valuestring, cv->valuestring, active, where)) == -2) {
			rc = -1;
			break;
		}
		gw_tally(r, ok, bad);
	}
	cJSON_Delete(arr);
	return rc;
}

static int
gw_import(ctl_t *x, const char *path)
{
	size_t len = 0, ok = 0, bad = 0;
	char *text = ctl_slurp(path, IMPORT_FILE_MAX, &len), *p;
	int rc;

	if (text == NULL) {
		fprintf(stderr, "stbctl: cannot read %s (or larger than %d MiB)\n", path,
		        IMPORT_FILE_MAX >> 20);
		return 1;
	}
	for (p = text; isspace((unsigned char)*p); p++)
		;
	rc = *p == '[' ? gw_import_json(x, text, len, path, &ok, &bad)
	               : gw_import_csv(x, text, len, path, &ok, &bad);
	OPENSSL_clear_free(text, len);
	return ctl_print_tally(x, "imported", "subscriber(s)", ok, bad, rc);
}

/* ---- listing, introspection ---- */

static void
gw_sub_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-32s %-32s %-10s %s\n", "DEVICE", "CERT", "STATE", "UPDATED");
	else {
		char t[CTL_TIME_CAP];
		printf("%-32s %-32s %-10s %s\n", ctl_jstr(o, "device_id"), ctl_jstr(o, "cert_id"),
		       ctl_jstr(o, "state"), ctl_time(ctl_jnum(o, "updated"), t));
	}
}

static int
gw_introspect(ctl_t *x, const char *hex)
{
	uint8_t tok[32];
	char device[STB_ID_MAX + 1] = "-", cert[STB_ID_MAX + 1] = "-";
	uint64_t expires = 0;
	uint8_t active = 0;
	stb_error_t err;
	buf_t b;
	msg_t m;
	int rc;

	if (strlen(hex) != 2 * sizeof(tok) ||
	    hex_decode(hex, strlen(hex), tok, sizeof(tok), NULL) == -1) {
		fprintf(stderr, "stbctl: a token is 64 hex digits\n");
		return 2;
	}
	struct msgreq_GW_TOKEN_INTROSPECT q = {.ACCESS_TOKEN = MV_BYTES(tok, sizeof(tok))};
	err_t bad;

	buf_init(&b, 64);
	rc = msgenc_GW_TOKEN_INTROSPECT(&b, &q, &bad);
	OPENSSL_cleanse(tok, sizeof(tok));
	if (rc == -1) {
		buf_wipe(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_GW_TOKEN_INTROSPECT, &b, &m, &err);
	buf_wipe(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u8(&m, TLV_IX_TOKEN_ACTIVE, &active);
	msg_get_str(&m, TLV_IX_DEVICE_ID, device, sizeof(device));
	msg_get_str(&m, TLV_IX_CERT_ID, cert, sizeof(cert));
	msg_get_u64(&m, TLV_IX_TOKEN_EXPIRES, &expires);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "active", active == 1);
		if (active == 1) {
			cJSON_AddStringToObject(o, "device_id", device);
			cJSON_AddStringToObject(o, "cert_id", cert);
			cJSON_AddNumberToObject(o, "expires", (double)expires);
		}
		return ctl_print_json(o);
	}
	if (active == 1) {
		char t[CTL_TIME_CAP];
		printf("active device=%s cert=%s expires=%s\n", device, cert,
		       ctl_time((double)expires, t));
	} else
		printf("inactive\n");
	return 0;
}

/* activate, suspend, delete ID; revoke TOKEN_HEX | --device ID */
static int
gw_change(ctl_t *x, const char *verb, const char *arg, int by_device)
{
	int del = strcmp(verb, "delete") == 0, rev = strcmp(verb, "revoke") == 0;
	int act = strcmp(verb, "activate") == 0;
	uint8_t tok[32];
	uint32_t count = 0;
	uint16_t type;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	if (rev && !by_device &&
	    (strlen(arg) != 2 * sizeof(tok) ||
	     hex_decode(arg, strlen(arg), tok, sizeof(tok), NULL) == -1)) {
		fprintf(stderr, "stbctl: a token is 64 hex digits\n");
		return 2;
	}
	struct msgreq_GW_SUB_ENABLE qe = {.DEVICE_ID = MV_STR(arg), .ENABLED = MV_U(act)};
	struct msgreq_GW_SUB_DELETE qd = {.DEVICE_ID = MV_STR(arg)};
	struct msgreq_GW_TOKEN_REVOKE qr = {.ACCESS_TOKEN =
	                                        MV_IF(!by_device, MV_BYTES(tok, sizeof(tok))),
	                                    .DEVICE_ID = MV_IF(by_device, MV_STR(arg))};
	buf_init(&b, 256);
	if (rev) {
		type = STB_MSG_GW_TOKEN_REVOKE;
		rc = msgenc_GW_TOKEN_REVOKE(&b, &qr, &bad);
	} else if (del) {
		type = STB_MSG_GW_SUB_DELETE;
		rc = msgenc_GW_SUB_DELETE(&b, &qd, &bad);
	} else {
		type = STB_MSG_GW_SUB_ENABLE;
		rc = msgenc_GW_SUB_ENABLE(&b, &qe, &bad);
	}
	OPENSSL_cleanse(tok, sizeof(tok));
	if (rc == -1) {
		buf_wipe(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, type, &b, &m, &err);
	buf_wipe(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u32(&m, TLV_IX_TOKEN_COUNT, &count);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "status", "OK");
		if (!rev || by_device)
			cJSON_AddStringToObject(o, "device_id", arg);
		if (rev || del)
			cJSON_AddNumberToObject(o, "tokens_revoked", count);
		else
			cJSON_AddStringToObject(o, "state", act ? "active" : "suspended");
		return ctl_print_json(o);
	}
	if (rev)
		printf("%u token(s) revoked\n", count);
	else if (del)
		printf("%s deleted, %u token(s) revoked\n", arg, count);
	else
		printf("%s %s\n", arg, act ? "active" : "suspended");
	return 0;
}

int
ctl_gw(ctl_t *x, int argc, char **argv)
{
	buf_t b;
	int rc = 2;

	buf_init(&b, 64);
	for (int i = 1; i < argc; i++) /* --json anywhere after the verb */
		if (strcmp(argv[i], "--json") == 0) {
			x->json = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	if (argc == 2 && strcmp(argv[0], "import") == 0)
		rc = gw_import(x, argv[1]);
	else if (argc == 2 && strcmp(argv[0], "introspect") == 0)
		rc = gw_introspect(x, argv[1]);
	else if (argc == 2 &&
	         (strcmp(argv[0], "activate") == 0 || strcmp(argv[0], "suspend") == 0 ||
	          strcmp(argv[0], "delete") == 0 || strcmp(argv[0], "revoke") == 0))
		rc = gw_change(x, argv[0], argv[1], 0);
	else if (argc == 3 && strcmp(argv[0], "revoke") == 0 && strcmp(argv[1], "--device") == 0)
		rc = gw_change(x, argv[0], argv[2], 1);
	else if (argc >= 1 && strcmp(argv[0], "subs") == 0 &&
	         (argc == 1 || (argc == 3 && strcmp(argv[1], "--limit") == 0))) {
		struct msgreq_GW_SUB_LIST q = {
		    .LIMIT = MV_IF(argc == 3, MV_U(strtoul(argv[2], NULL, 10)))};
		err_t bad;
		rc = msgenc_GW_SUB_LIST(&b, &q, &bad) == -1
		         ? ctl_bad_request(&bad)
		         : ctl_list(x, STB_MSG_GW_SUB_LIST, &b, TLV_IX_ENTRY, gw_sub_row);
	} else
		fprintf(stderr,
		        "stbctl: gw import FILE | subs [--limit N] | introspect TOKEN_HEX | "
		        "activate ID | suspend ID | delete ID | revoke TOKEN_HEX | "
		        "revoke --device ID (each with --json)\n");
	buf_free(&b);
	return rc;
}
