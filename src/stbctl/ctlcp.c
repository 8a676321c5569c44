/* cp: stbctl commands for cert-proxyd. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ctl.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"
#include "x509.h"

#define IMPORT_FILE_MAX (64 * 1024 * 1024)
#define SECRET_MAX      64

const char ctl_cp_usage[] =
    "cert-proxyd:\n"
    "  cp import FILE         add or replace STBs: CSV device_id,secret_hex[,enabled[,cert_ids]]\n"
    "                         (cert_ids: the IDs the STB may hold, space-separated;\n"
    "                         given, they replace its list) or a JSON array of\n"
    "                         {device_id, secret_hex, enabled, cert_ids: [ID, ...]}\n"
    "  cp stbs [--limit N]    registered STBs (no secrets)\n"
    "  cp certs [--device ID] [--limit N]  stored certificates\n"
    "  cp show CERT_ID [--pem]  one certificate (--pem: the certificate itself)\n"
    "  cp revoke CERT_ID [--reason N]  revoke at ca-authd and mark revoked\n"
    "  cp pending [--limit N] certificate updates waiting for their STB\n"
    "  cp scan                run the validity scanner now\n"
    "  cp enable ID | cp disable ID  a disabled STB cannot authenticate and is cut off\n"
    "  cp delete ID           remove an STB, its secret, certificate IDs and pending\n"
    "                         updates (its issued certificates stay: revoke them first)\n";

/* ---- import ---- */

#define CERT_IDS_MAX 4096 /* the registry's CERT_IDS limit */

/* ids: the STB's cert_ids, space-separated, or NULL to keep its list. */
static int
import_one(ctl_t *x, const char *id, const char *hex, size_t hexlen, int enabled, const char *ids,
           const char *where)
{
	uint8_t secret[SECRET_MAX];
	size_t slen = 0;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	if (hex_decode(hex, hexlen, secret, sizeof(secret), &slen) == -1 || slen < 16) {
		fprintf(stderr, "stbctl: %s: secret of %s is not 16..64 bytes of hex\n", where, id);
		return -1;
	}
	buf_init(&b, 512 + CERT_IDS_MAX);
	struct msgreq_CP_STB_IMPORT q = {.DEVICE_ID = MV_STR(id),
	                                 .DEVICE_SECRET = MV_BYTES(secret, slen),
	                                 .ENABLED = MV_U(enabled),
	                                 .CERT_IDS = MV_IF(ids != NULL, MV_STR(ids))};
	if (msgenc_CP_STB_IMPORT(&b, &q, &bad) == -1) {
		OPENSSL_cleanse(secret, sizeof(secret));
		buf_wipe(&b);
		fprintf(stderr, "stbctl: %s: %s: %s\n", where, stb_status_name(bad.status),
		        bad.msg);
		return -1;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	rc = stbc_call(x->c, STB_MSG_CP_STB_IMPORT, &b, &m, &err);
	buf_wipe(&b);
	if (rc == -1) {
		if (b.failed)
			fprintf(stderr, "stbctl: %s: device ID %s too long\n", where, id);
		else
			fprintf(stderr, "stbctl: %s: %s: %s: %s\n", where, id,
			        stb_status_name(err.status), err.message);
		return -1;
	}
	return 0;
}

static int
enabled_word(const char *s, size_t n)
{
	if ((n == 1 && *s == '1') || (n == 4 && strncmp(s, "true", 4) == 0) ||
	    (n == 3 && strncmp(s, "yes", 3) == 0))
		return 1;
	if ((n == 1 && *s == '0') || (n == 5 && strncmp(s, "false", 5) == 0) ||
	    (n == 2 && strncmp(s, "no", 2) == 0))
		return 0;
	return -1;
}

/* The cert_ids column: IDs separated by blanks, as CERT_IDS wants them
 * (single spaces). */
static int
cert_ids_field(const char *f, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int blank = f[i] == ' ' || f[i] == '\t';
		if (blank && (o == 0 || out[o - 1] == ' '))
			continue;
		if (o + 1 >= cap)
			return -1;
		out[o++] = blank ? ' ' : f[i];
	}
	out[o] = '\0';
	return 0;
}

static int
import_csv(ctl_t *x, const char *text, size_t len, const char *file, int *ok, int *bad)
{
	csv_reader_t r;
	csv_record_t rec;

	csv_init(&r, text, len);
	while (csv_next(&r, &rec) == 1) {
		char id[STB_ID_MAX + 1], where[256], ids[CERT_IDS_MAX + 1];
		size_t nf = rec.nf;
		int en = 1;

		snprintf(where, sizeof(where), "%s:%zu", file, rec.line);
		if (rec.f[0].n == 0 || (rec.first && csv_is(&rec, 0, "device_id")))
			continue; /* no device, or the header */
		/* as before the shared reader: one trailing comma is ignored */
		if (nf <= CSV_FIELDS_MAX && rec.f[nf - 1].n == 0)
			nf--;
		if (nf < 2 || nf > 4 || csv_str(&rec, 0, id, sizeof(id)) == -1 ||
		    (nf >= 3 && (en = enabled_word(rec.f[2].s, rec.f[2].n)) < 0) ||
		    (nf == 4 && cert_ids_field(rec.f[3].s, rec.f[3].n, ids, sizeof(ids)) == -1)) {
			fprintf(stderr,
			        "stbctl: %s: want device_id,secret_hex[,enabled[,cert_ids]]\n",
			        where);
			(*bad)++;
			continue;
		}
		if (import_one(x, id, rec.f[1].s, rec.f[1].n, en, nf == 4 ? ids : NULL, where) == 0)
			(*ok)++;
		else
			(*bad)++;
	}
	return 0;
}

/* "cert_ids": an array of strings, joined with single spaces. */
static int
json_ids(const cJSON *arr, char *out, size_t cap)
{
	const cJSON *it;
	size_t o = 0;

	if (!cJSON_IsArray(arr))
		return -1;
	out[0] = '\0';
	cJSON_ArrayForEach(it, arr)
	{
		size_t n;
		if (!cJSON_IsString(it) || (n = strlen(it->valuestring)) == 0 || o + n + 2 > cap)
			return -1;
		if (o > 0)
			out[o++] = ' ';
		memcpy(out + o, it->valuestring, n + 1);
		o += n;
	}
	return 0;
}

static int
import_json(ctl_t *x, const char *text, size_t len, const char *file, int *ok, int *bad)
{
	cJSON *arr = cJSON_ParseWithLength(text, len), *o;
	int i = 0;

	if (!cJSON_IsArray(arr)) {
		fprintf(stderr, "stbctl: %s: not a JSON array\n", file);
		cJSON_Delete(arr);
		return -1;
	}
	cJSON_ArrayForEach(o, arr)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "device_id");
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "secret_hex");
		const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
		const cJSON *ci = cJSON_GetObjectItemCaseSensitive(o, "cert_ids");
		char where[256], ids[CERT_IDS_MAX + 1];
		snprintf(where, sizeof(where), "%s[%d]", file, i++);
		if (!cJSON_IsString(id) || !cJSON_IsString(sh) ||
		    (en != NULL && !cJSON_IsBool(en) && !cJSON_IsNumber(en)) ||
		    (ci != NULL && json_ids(ci, ids, sizeof(ids)) == -1)) {
			fprintf(stderr,
			        "stbctl: %s: want {device_id, secret_hex, enabled, cert_ids: [ID, "
			        "...]}\n",
			        where);
			(*bad)++;
			continue;
		}
		if (import_one(x, id->valuestring, sh->valuestring, strlen(sh->valuestring),
		               en == NULL || cJSON_IsTrue(en) ||
		                   (cJSON_IsNumber(en) && en->valueint),
		               ci != NULL ? ids : NULL, where) == 0)
			(*ok)++;
		else
			(*bad)++;
		OPENSSL_cleanse(sh->valuestring, strlen(sh->valuestring));
	}
	cJSON_Delete(arr);
	return 0;
}

static int
cp_import(ctl_t *x, const char *file)
{
	FILE *fp = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	int ok = 0, bad = 0, rc;
	const char *s;

	if (fp == NULL) {
		fprintf(stderr, "stbctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	do {
		if (len == cap) {
			char *nt = cap < IMPORT_FILE_MAX
			               ? realloc(text, (cap = cap ? cap * 2 : 65536) + 1)
			               : NULL;
			if (nt == NULL) {
				fprintf(stderr, "stbctl: %s: too large\n", file);
				OPENSSL_clear_free(text, len);
				if (fp != stdin)
					fclose(fp);
				return 1;
			}
			text = nt;
		}
		n = fread(text + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	if (fp != stdin)
		fclose(fp);
	text[len] = '\0';
	for (s = text; s < text + len && strchr(" \t\r\n", *s) != NULL; s++)
		;
	if (s < text + len && *s == '[')
		rc = import_json(x, text, len, file, &ok, &bad);
	else
		rc = import_csv(x, text, len, file, &ok, &bad);
	OPENSSL_cleanse(text, len);
	free(text);
	if (rc == -1)
		return 1;
	if (x->json)
		printf("{\"imported\": %d, \"failed\": %d}\n", ok, bad);
	else if (bad)
		printf("imported %d STB(s), %d failed\n", ok, bad);
	else
		printf("imported %d STB(s)\n", ok);
	return bad ? 1 : 0;
}

/* ---- lists ---- */

static void
stb_row(const cJSON *o)
{
	char t[CTL_TIME_CAP];

	const cJSON *it;

	if (o == NULL) {
		printf("%-28s %-8s %6s %6s %-20s %s\n", "DEVICE", "ENABLED", "CERTS", "ONLINE",
		       "UPDATED", "CERT_IDS");
		return;
	}
	printf("%-28s %-8s %6.0f %6.0f %-20s", ctl_jstr(o, "device_id"),
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "enabled")) ? "yes" : "no",
	       ctl_jnum(o, "certs"), ctl_jnum(o, "online"), ctl_time(ctl_jnum(o, "updated"), t));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "cert_ids"))
	{
		if (cJSON_IsString(it))
			printf(" %s", it->valuestring);
	}
	printf("\n");
}

static void
cert_row(const cJSON *o)
{
	char t[CTL_TIME_CAP];

	if (o == NULL)
		printf("%-24s %-20s %-9s %-20s %-9s %s\n", "CERT", "DEVICE", "STATE", "NOT_AFTER",
		       "PENDING", "SERIAL");
	else
		printf("%-24s %-20s %-9s %-20s %-9s %s\n", ctl_jstr(o, "cert_id"),
		       ctl_jstr(o, "device_id"), ctl_jstr(o, "state"),
		       ctl_time(ctl_jnum(o, "not_after"), t), ctl_jstr(o, "pending"),
		       ctl_jstr(o, "serial"));
}

static void
pending_row(const cJSON *o)
{
	char t[CTL_TIME_CAP];

	if (o == NULL)
		printf("%-24s %-20s %-9s %6s %s\n", "CERT", "DEVICE", "REASON", "ONLINE", "SINCE");
	else
		printf("%-24s %-20s %-9s %6.0f %s\n", ctl_jstr(o, "cert_id"),
		       ctl_jstr(o, "device_id"), ctl_jstr(o, "reason"), ctl_jnum(o, "online"),
		       ctl_time(ctl_jnum(o, "created"), t));
}

static int
cp_show(ctl_t *x, const char *id, int pem)
{
	const uint8_t *p, *der = NULL;
	size_t pos = 0, len, dl = 0;
	stb_error_t err;
	cJSON *o = NULL;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_CP_CERT_SHOW q = {.CERT_ID = MV_STR(id)};
	err_t bad;

	buf_init(&b, 256);
	if (msgenc_CP_CERT_SHOW(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_CP_CERT_SHOW, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	if (msg_next(&m, TLV_IX_ENTRY, &pos, &p, &len) == 1)
		o = cJSON_ParseWithLength((const char *)p, len);
	if (o == NULL) {
		fprintf(stderr, "stbctl: cert-proxyd sent no entry\n");
		return 1;
	}
	if (pem) {
		X509 *xc;
		msg_get_bytes(&m, TLV_IX_CERT_DER, &der, &dl);
		cJSON_Delete(o);
		if ((xc = crt_from_der(der, dl, &bad)) == NULL) {
			fprintf(stderr, "stbctl: the certificate does not parse: %s\n", bad.msg);
			return 1;
		}
		rc = PEM_write_X509(stdout, xc) == 1 ? 0 : 1;
		X509_free(xc);
		if (rc)
			fprintf(stderr, "stbctl: cannot write the certificate\n");
		return rc;
	}
	if (x->json)
		return ctl_print_json(o);
	for (cJSON *it = o->child; it != NULL; it = it->next) {
		char t[CTL_TIME_CAP];
		if (cJSON_IsString(it))
			printf("%-14s %s\n", it->string, it->valuestring);
		else if (cJSON_IsNull(it))
			printf("%-14s -\n", it->string);
		else if (strcmp(it->string, "not_after") == 0 ||
		         strcmp(it->string, "issued_at") == 0 ||
		         strcmp(it->string, "revoked_at") == 0)
			printf("%-14s %s\n", it->string, ctl_time(it->valuedouble, t));
		else
			printf("%-14s %.0f\n", it->string, it->valuedouble);
	}
	cJSON_Delete(o);
	return 0;
}

static int
cp_revoke(ctl_t *x, const char *id, int reason)
{
	stb_error_t err;
	uint64_t at = 0;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_CP_CERT_REVOKE q = {.CERT_ID = MV_STR(id),
	                                  .REVOKE_REASON = MV_IF(reason >= 0, MV_U(reason))};
	err_t bad;

	buf_init(&b, 256);
	if (msgenc_CP_CERT_REVOKE(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_CP_CERT_REVOKE, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u64(&m, TLV_IX_REVOKED_AT, &at);
	if (x->json)
		printf("{\"cert_id\": \"%s\", \"revoked_at\": %llu}\n", id, (unsigned long long)at);
	else
		printf("%s revoked at %llu\n", id, (unsigned long long)at);
	return 0;
}

static int
cp_scan(ctl_t *x)
{
	stb_error_t err;
	msg_t m;

	if (stbc_call(x->c, STB_MSG_CP_SCAN_NOW, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	printf(x->json ? "{\"status\": \"OK\"}\n" : "scan done\n");
	return 0;
}

static int
cp_usage(void)
{
	fprintf(stderr, "usage: stbctl [options] cp COMMAND\n%s", ctl_cp_usage);
	return 2;
}

/* Options after the command word: --json, --limit N, --device ID,
 * --reason N, --pem; what each command takes is checked by the caller. */
typedef struct cp_opts {
	long limit;
	const char *device;
	int reason;
	int pem;
	const char *arg; /* the one positional argument */
	int nargs;
} cp_opts_t;

static int
cp_parse(ctl_t *x, int argc, char **argv, cp_opts_t *o)
{
	*o = (cp_opts_t){-1, NULL, -1, 0, NULL, 0};
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else if (strcmp(argv[i], "--pem") == 0)
			o->pem = 1;
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
			o->device = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			o->limit = strtol(argv[++i], &end, 10);
			if (*end != '\0' || o->limit < 1 || o->limit > 1000000)
				return -1;
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			o->reason = (int)strtol(argv[++i], &end, 10);
			if (*end != '\0' || o->reason < 0 || o->reason > 10)
				return -1;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return -1;
		else {
			o->arg = argv[i];
			o->nargs++;
		}
	}
	return 0;
}

/* enable, disable, delete: one STB by ID */
static int
cp_stb_change(ctl_t *x, const char *verb, const char *id)
{
	int del = strcmp(verb, "delete") == 0, en = strcmp(verb, "enable") == 0;
	struct msgreq_CP_STB_ENABLE qe = {.DEVICE_ID = MV_STR(id), .ENABLED = MV_U(en)};
	struct msgreq_CP_STB_DELETE qd = {.DEVICE_ID = MV_STR(id)};
	uint16_t type = del ? STB_MSG_CP_STB_DELETE : STB_MSG_CP_STB_ENABLE;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 256);
	if ((del ? msgenc_CP_STB_DELETE(&b, &qd, &bad) : msgenc_CP_STB_ENABLE(&b, &qe, &bad)) ==
	    -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, type, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "device_id", id);
		cJSON_AddStringToObject(o, "status", "OK");
		if (!del)
			cJSON_AddBoolToObject(o, "enabled", en);
		return ctl_print_json(o);
	}
	printf("%s %s\n", id, del ? "deleted" : en ? "enabled" : "disabled");
	return 0;
}

int
ctl_cp(ctl_t *x, int argc, char **argv)
{
	cp_opts_t o;
	err_t bad;
	buf_t b;
	int rc;

	if (argc < 1 || cp_parse(x, argc, argv, &o) == -1)
		return cp_usage();
	if (strcmp(argv[0], "import") == 0 && o.nargs == 1)
		return cp_import(x, o.arg);
	if (strcmp(argv[0], "show") == 0 && o.nargs == 1)
		return cp_show(x, o.arg, o.pem);
	if (strcmp(argv[0], "revoke") == 0 && o.nargs == 1)
		return cp_revoke(x, o.arg, o.reason);
	if (strcmp(argv[0], "scan") == 0 && o.nargs == 0)
		return cp_scan(x);
	if ((strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0 ||
	     strcmp(argv[0], "delete") == 0) &&
	    o.nargs == 1)
		return cp_stb_change(x, argv[0], o.arg);
	if (o.nargs != 0)
		return cp_usage();
	buf_init(&b, 256);
	msg_val_t limit = MV_IF(o.limit > 0, MV_U(o.limit));
	if (strcmp(argv[0], "stbs") == 0) {
		struct msgreq_CP_STB_LIST q = {.LIMIT = limit};
		rc = msgenc_CP_STB_LIST(&b, &q, &bad) == -1
		         ? ctl_bad_request(&bad)
		         : ctl_list(x, STB_MSG_CP_STB_LIST, &b, TLV_IX_ENTRY, stb_row);
	} else if (strcmp(argv[0], "certs") == 0) {
		struct msgreq_CP_CERT_LIST q = {
		    .DEVICE_ID = MV_IF(o.device != NULL, MV_STR(o.device)), .LIMIT = limit};
		rc = msgenc_CP_CERT_LIST(&b, &q, &bad) == -1
		         ? ctl_bad_request(&bad)
		         : ctl_list(x, STB_MSG_CP_CERT_LIST, &b, TLV_IX_ENTRY, cert_row);
	} else if (strcmp(argv[0], "pending") == 0) {
		struct msgreq_CP_PENDING_LIST q = {.LIMIT = limit};
		rc = msgenc_CP_PENDING_LIST(&b, &q, &bad) == -1
		         ? ctl_bad_request(&bad)
		         : ctl_list(x, STB_MSG_CP_PENDING_LIST, &b, TLV_IX_ENTRY, pending_row);
	} else
		rc = cp_usage();
	buf_free(&b);
	return rc;
}
