/* qd: stbctl commands for qualifyd: enrolment, devices, packages, the HSS pool. */
#include <cjson/cJSON.h>
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

#define QD_FILE_MAX (64u * 1024 * 1024)

const char ctl_qd_usage[] =
    "qualifyd:\n"
    "  qd enrol DEVICE_ID [--routing TEXT] [--ttl SECONDS]\n"
    "                         draw a registration nonce for a device\n"
    "  qd enrol --csv FILE    the same for CSV lines device_id[,routing]\n"
    "  qd devices [--limit N] enrolled devices and their state\n"
    "  qd show DEVICE_ID      one device\n"
    "  qd packages [--device ID] [--limit N]  packages at the provisioning role\n"
    "  qd hss import FILE     add pool rows: CSV lines imsi,k_hex,opc_hex\n"
    "  qd hss generate FIRST_IMSI COUNT --op-file FILE\n"
    "                         add COUNT IMSIs from FIRST_IMSI, K random, OPc from the\n"
    "                         operator's OP (32 hex digits in FILE)\n"
    "  qd hss pool            pool rows by state\n"
    "  qd hss release IMSI    put a held row (expired package) back in the pool\n"
    "  qd hss retire IMSI     take a row out of use for good\n";

/* One request; the answer in *m (valid until the next call).  -1 printed. */
static int
qd_call(ctl_t *x, uint16_t type, buf_t *b, msg_t *m, const char *where)
{
	stb_error_t err;

	if (stbc_call(x->c, type, b, m, &err) == -1) {
		if (where != NULL)
			fprintf(stderr, "stbctl: %s: %s: %s\n", where, stb_status_name(err.status),
			        err.message);
		else
			ctl_fail(&err);
		return err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT ? -2 : -1;
	}
	return 0;
}

/* ---- enrolment ---- */

static int
qd_enrol_one(ctl_t *x, const char *dev, const char *routing, long ttl, const char *where,
             uint64_t *expires)
{
	struct msgreq_QD_ENROL q = {.DEVICE_ID = MV_STR(dev),
	                            .QD_ROUTING = MV_IF(routing != NULL, MV_STR(routing)),
	                            .QD_NONCE_TTL_S = MV_IF(ttl > 0, MV_U(ttl))};
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 1024);
	if (msgenc_QD_ENROL(&b, &q, &bad) == -1) {
		buf_free(&b);
		if (where == NULL)
			return ctl_bad_request(&bad) == 2 ? -1 : -1;
		fprintf(stderr, "stbctl: %s: %s\n", where, bad.msg);
		return -1;
	}
	rc = qd_call(x, STB_MSG_QD_ENROL, &b, &m, where);
	buf_free(&b);
	if (rc == 0)
		msg_get_u64(&m, TLV_IX_QD_NONCE_EXPIRES, expires);
	return rc;
}

static int
qd_enrol_csv(ctl_t *x, const char *file)
{
	size_t len, ok = 0, bad = 0;
	char *text = ctl_slurp(file, QD_FILE_MAX, &len);
	csv_reader_t r;
	csv_record_t rec;
	uint64_t exp;
	int rc = 0;

	if (text == NULL) {
		fprintf(stderr, "stbctl: cannot read %s\n", file);
		return 1;
	}
	csv_init(&r, text, len);
	while (csv_next(&r, &rec) == 1) {
		char where[64], dev[STB_ID_MAX + 1], routing[257] = "";
		int one;

		snprintf(where, sizeof(where), "%s:%zu", file, rec.line);
		if (rec.first && csv_is(&rec, 0, "device_id"))
			continue;
		if (rec.nf < 1 || rec.nf > 2 || csv_str(&rec, 0, dev, sizeof(dev)) == -1 ||
		    (rec.nf == 2 && csv_str(&rec, 1, routing, sizeof(routing)) == -1)) {
			fprintf(stderr, "stbctl: %s: want device_id[,routing]\n", where);
			bad++;
			continue;
		}
		one = qd_enrol_one(x, dev, routing[0] ? routing : NULL, 0, where, &exp);
		if (one == -2) {
			rc = -1;
			break;
		}
		one == 0 ? ok++ : bad++;
	}
	OPENSSL_clear_free(text, len);
	return ctl_print_tally(x, "enrolled", "device(s)", ok, bad, rc);
}

static int
qd_enrol(ctl_t *x, int argc, char **argv)
{
	const char *routing = NULL;
	char t[CTL_TIME_CAP];
	uint64_t exp = 0;
	long ttl = 0;

	if (argc == 2 && strcmp(argv[0], "--csv") == 0)
		return qd_enrol_csv(x, argv[1]);
	if (argc < 1 || argv[0][0] == '-')
		goto usage;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(argv[i], "--routing") == 0)
			routing = argv[i + 1];
		else if (strcmp(argv[i], "--ttl") == 0 && (ttl = strtol(argv[i + 1], NULL, 10)) > 0)
			;
		else
			goto usage;
	}
	if (qd_enrol_one(x, argv[0], routing, ttl, NULL, &exp) != 0)
		return 1;
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "device_id", argv[0]);
		cJSON_AddStringToObject(o, "nonce_expires", ctl_time((double)exp, t));
		return ctl_print_json(o);
	}
	printf("enrolled %s, nonce expires %s\n", argv[0], ctl_time((double)exp, t));
	return 0;
usage:
	fprintf(stderr, "stbctl: qd enrol DEVICE_ID [--routing TEXT] [--ttl SECONDS] | "
	                "qd enrol --csv FILE\n");
	return 2;
}

/* ---- lists ---- */

/* Unix-time members as ISO-8601 strings, for --json and tables alike. */
static void
qd_iso(cJSON *o, const char *const *keys)
{
	char t[CTL_TIME_CAP];

	for (; *keys != NULL; keys++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
		if (cJSON_IsNumber(v))
			cJSON_ReplaceItemInObjectCaseSensitive(
			    o, *keys, cJSON_CreateString(ctl_time(v->valuedouble, t)));
	}
}

static const char *const dev_times[] = {"enrolled_at", "nonce_expires", "package_expires",
                                        "changed_at", NULL};
static const char *const pkg_times[] = {"issued", "expires", "confirmed_at", NULL};

static void
qd_dev_row(const cJSON *o)
{
	if (o == NULL) {
		printf("%-24s %-16s %-16s %-10s %-21s %-21s %s\n", "DEVICE", "STATE", "IMSI",
		       "HSS ROW", "ENROLLED", "NONCE EXPIRES", "ROUTING");
		return;
	}
	qd_iso((cJSON *)o, dev_times);
	printf("%-24s %-16s %-16s %-10s %-21s %-21s %s\n", ctl_jstr(o, "device_id"),
	       ctl_jstr(o, "state"), *ctl_jstr(o, "imsi") ? ctl_jstr(o, "imsi") : "-",
	       *ctl_jstr(o, "hss_row") ? ctl_jstr(o, "hss_row") : "-", ctl_jstr(o, "enrolled_at"),
	       ctl_jstr(o, "nonce_expires"),
	       *ctl_jstr(o, "routing") ? ctl_jstr(o, "routing") : "-");
}

static void
qd_pkg_row(const cJSON *o)
{
	if (o == NULL) {
		printf("%-24s %-10s %-21s %-21s %-21s %s\n", "DEVICE", "STATE", "ISSUED", "EXPIRES",
		       "CONFIRMED", "DIGEST");
		return;
	}
	qd_iso((cJSON *)o, pkg_times);
	printf("%-24s %-10s %-21s %-21s %-21s %.16s\n", ctl_jstr(o, "device_id"),
	       ctl_jstr(o, "state"), ctl_jstr(o, "issued"), ctl_jstr(o, "expires"),
	       ctl_jstr(o, "confirmed_at"), ctl_jstr(o, "digest"));
}

/* With --json, ctl_list prints entries as they come: convert first. */
static int
qd_list(ctl_t *x, uint16_t type, buf_t *b, ctl_row_fn row, const char *const *times)
{
	stb_error_t err;
	size_t pos = 0, n;
	const uint8_t *p;
	cJSON *arr;
	msg_t m;

	if (!x->json)
		return ctl_list(x, type, b, TLV_IX_ENTRY, row);
	if (stbc_call(x->c, type, b, &m, &err) == -1)
		return ctl_fail(&err);
	arr = cJSON_CreateArray();
	while (msg_next(&m, TLV_IX_ENTRY, &pos, &p, &n) == 1) {
		cJSON *o = cJSON_ParseWithLength((const char *)p, n);
		if (o != NULL) {
			qd_iso(o, times);
			cJSON_AddItemToArray(arr, o);
		}
	}
	return ctl_print_json(arr);
}

static int
qd_devices(ctl_t *x, int argc, char **argv)
{
	struct msgreq_QD_DEVICES q = {0};
	err_t bad;
	buf_t b;
	int rc;

	if (argc == 2 && strcmp(argv[0], "--limit") == 0)
		q.LIMIT = MV_U(strtoul(argv[1], NULL, 10));
	else if (argc != 0) {
		fprintf(stderr, "stbctl: qd devices [--limit N]\n");
		return 2;
	}
	buf_init(&b, 64);
	rc = msgenc_QD_DEVICES(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : qd_list(x, STB_MSG_QD_DEVICES, &b, qd_dev_row, dev_times);
	buf_free(&b);
	return rc;
}

static int
qd_show(ctl_t *x, const char *dev)
{
	struct msgreq_QD_SHOW q = {.DEVICE_ID = MV_STR(dev)};
	err_t bad;
	buf_t b;
	int rc;

	buf_init(&b, 256);
	rc = msgenc_QD_SHOW(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : qd_list(x, STB_MSG_QD_SHOW, &b, qd_dev_row, dev_times);
	buf_free(&b);
	return rc;
}

static int
qd_packages(ctl_t *x, int argc, char **argv)
{
	struct msgreq_QD_PACKAGES q = {0};
	err_t bad;
	buf_t b;
	int rc;

	for (int i = 0; i < argc; i += 2) {
		if (i + 1 < argc && strcmp(argv[i], "--limit") == 0)
			q.LIMIT = MV_U(strtoul(argv[i + 1], NULL, 10));
		else if (i + 1 < argc && strcmp(argv[i], "--device") == 0)
			q.DEVICE_ID = MV_STR(argv[i + 1]);
		else {
			fprintf(stderr, "stbctl: qd packages [--device ID] [--limit N]\n");
			return 2;
		}
	}
	buf_init(&b, 256);
	rc = msgenc_QD_PACKAGES(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : qd_list(x, STB_MSG_QD_PACKAGES, &b, qd_pkg_row, pkg_times);
	buf_free(&b);
	return rc;
}

/* ---- the HSS pool ---- */

static int
qd_hex16(const char *s, size_t n, uint8_t out[16])
{
	size_t got = 0;

	return n == 32 && hex_decode(s, n, out, 16, &got) == 0 && got == 16 ? 0 : -1;
}

static int
qd_hss_import(ctl_t *x, const char *file)
{
	size_t len, ok = 0, bad = 0;
	char *text = ctl_slurp(file, QD_FILE_MAX, &len);
	csv_reader_t r;
	csv_record_t rec;
	int rc = 0;

	if (text == NULL) {
		fprintf(stderr, "stbctl: cannot read %s\n", file);
		return 1;
	}
	csv_init(&r, text, len);
	while (csv_next(&r, &rec) == 1) {
		char where[64], imsi[16];
		uint8_t k[16], opc[16];
		err_t e;
		buf_t b;
		msg_t m;
		int one;

		snprintf(where, sizeof(where), "%s:%zu", file, rec.line);
		if (rec.first && csv_is(&rec, 0, "imsi"))
			continue;
		if (rec.nf != 3 || csv_str(&rec, 0, imsi, sizeof(imsi)) == -1 ||
		    qd_hex16(rec.f[1].s, rec.f[1].n, k) == -1 ||
		    qd_hex16(rec.f[2].s, rec.f[2].n, opc) == -1) {
			fprintf(stderr, "stbctl: %s: want imsi,k_hex(32),opc_hex(32)\n", where);
			bad++;
			continue;
		}
		struct msgreq_QD_HSS_IMPORT q = {
		    .QD_IMSI = MV_STR(imsi), .QD_K = MV_BYTES(k, 16), .QD_OPC = MV_BYTES(opc, 16)};
		buf_init(&b, 256);
		if (msgenc_QD_HSS_IMPORT(&b, &q, &e) == -1) {
			fprintf(stderr, "stbctl: %s: %s\n", where, e.msg);
			one = -1;
		} else
			one = qd_call(x, STB_MSG_QD_HSS_IMPORT, &b, &m, where);
		buf_wipe(&b);
		OPENSSL_cleanse(k, sizeof(k));
		OPENSSL_cleanse(opc, sizeof(opc));
		if (one == -2) {
			rc = -1;
			break;
		}
		one == 0 ? ok++ : bad++;
	}
	OPENSSL_clear_free(text, len);
	return ctl_print_tally(x, "imported", "HSS row(s)", ok, bad, rc);
}

static int
qd_hss_generate(ctl_t *x, const char *first, const char *count, const char *opfile)
{
	size_t len = 0, n;
	char *text = ctl_slurp(opfile, 4096, &len);
	uint8_t op[16];
	uint32_t done = 0;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	if (text == NULL) {
		fprintf(stderr, "stbctl: cannot read %s\n", opfile);
		return 1;
	}
	for (n = len; n > 0 && strchr(" \t\r\n", text[n - 1]) != NULL; n--)
		;
	rc = qd_hex16(text, n, op);
	OPENSSL_clear_free(text, len);
	if (rc == -1) {
		fprintf(stderr, "stbctl: %s: want the OP as 32 hex digits\n", opfile);
		return 2;
	}
	struct msgreq_QD_HSS_GENERATE q = {.QD_IMSI = MV_STR(first),
	                                   .QD_COUNT = MV_U(strtoul(count, NULL, 10)),
	                                   .QD_OP = MV_BYTES(op, 16)};
	buf_init(&b, 256);
	rc = msgenc_QD_HSS_GENERATE(&b, &q, &e);
	OPENSSL_cleanse(op, sizeof(op));
	if (rc == -1) {
		buf_wipe(&b);
		return ctl_bad_request(&e);
	}
	rc = qd_call(x, STB_MSG_QD_HSS_GENERATE, &b, &m, NULL);
	buf_wipe(&b);
	if (rc != 0)
		return 1;
	msg_get_u32(&m, TLV_IX_QD_COUNT, &done);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "generated", done);
		return ctl_print_json(o);
	}
	printf("generated %u HSS row(s) from %s\n", done, first);
	return 0;
}

static int
qd_hss_pool(ctl_t *x)
{
	char backend[33] = "";
	uint64_t v[4] = {0};
	static const char *const names[4] = {"free", "held", "delivered", "retired"};
	static const int tix[4] = {TLV_IX_QD_POOL_FREE, TLV_IX_QD_POOL_HELD,
	                           TLV_IX_QD_POOL_DELIVERED, TLV_IX_QD_POOL_RETIRED};
	msg_t m;

	if (qd_call(x, STB_MSG_QD_HSS_POOL, NULL, &m, NULL) != 0)
		return 1;
	msg_get_str(&m, TLV_IX_QD_HSS_BACKEND, backend, sizeof(backend));
	for (int i = 0; i < 4; i++)
		msg_get_u64(&m, tix[i], &v[i]);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "backend", backend);
		for (int i = 0; i < 4; i++)
			cJSON_AddNumberToObject(o, names[i], (double)v[i]);
		return ctl_print_json(o);
	}
	printf("%-10s %s\n", "backend", backend);
	for (int i = 0; i < 4; i++)
		printf("%-10s %llu\n", names[i], (unsigned long long)v[i]);
	return 0;
}

static int
qd_hss_state(ctl_t *x, uint16_t type, const char *imsi)
{
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 64);
	if (type == STB_MSG_QD_HSS_RELEASE) {
		struct msgreq_QD_HSS_RELEASE q = {.QD_IMSI = MV_STR(imsi)};
		rc = msgenc_QD_HSS_RELEASE(&b, &q, &e);
	} else {
		struct msgreq_QD_HSS_RETIRE q = {.QD_IMSI = MV_STR(imsi)};
		rc = msgenc_QD_HSS_RETIRE(&b, &q, &e);
	}
	if (rc == -1) {
		buf_free(&b);
		return ctl_bad_request(&e);
	}
	rc = qd_call(x, type, &b, &m, NULL);
	buf_free(&b);
	if (rc != 0)
		return 1;
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "imsi", imsi);
		cJSON_AddStringToObject(o, "state",
		                        type == STB_MSG_QD_HSS_RELEASE ? "free" : "retired");
		return ctl_print_json(o);
	}
	printf("%s %s\n", imsi, type == STB_MSG_QD_HSS_RELEASE ? "released" : "retired");
	return 0;
}

static int
qd_hss(ctl_t *x, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[0], "import") == 0)
		return qd_hss_import(x, argv[1]);
	if (argc == 5 && strcmp(argv[0], "generate") == 0 && strcmp(argv[3], "--op-file") == 0)
		return qd_hss_generate(x, argv[1], argv[2], argv[4]);
	if (argc == 1 && strcmp(argv[0], "pool") == 0)
		return qd_hss_pool(x);
	if (argc == 2 && strcmp(argv[0], "release") == 0)
		return qd_hss_state(x, STB_MSG_QD_HSS_RELEASE, argv[1]);
	if (argc == 2 && strcmp(argv[0], "retire") == 0)
		return qd_hss_state(x, STB_MSG_QD_HSS_RETIRE, argv[1]);
	fprintf(stderr, "stbctl: qd hss import FILE | generate FIRST_IMSI COUNT --op-file FILE | "
	                "pool | release IMSI | retire IMSI\n");
	return 2;
}

int
ctl_qd(ctl_t *x, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) /* --json anywhere after the verb */
		if (strcmp(argv[i], "--json") == 0) {
			x->json = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	if (argc >= 1 && strcmp(argv[0], "enrol") == 0)
		return qd_enrol(x, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "devices") == 0)
		return qd_devices(x, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[0], "show") == 0)
		return qd_show(x, argv[1]);
	if (argc >= 1 && strcmp(argv[0], "packages") == 0)
		return qd_packages(x, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "hss") == 0)
		return qd_hss(x, argc - 1, argv + 1);
	fprintf(stderr, "stbctl: qd enrol | devices | show | packages | hss (each with --json)\n");
	return 2;
}
