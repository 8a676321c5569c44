/* stbctl: the operator's tool for every daemon's admin messages. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "ctl.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

/* Asked for (-h), to stdout; after a usage error, to stderr. */
static void
usage(FILE *to)
{
	fprintf(to,
	        "usage: stbctl [options] command [args]\n"
	        "options (or env STBCTL_ADDR, STB_CA, STBCTL_CERT, STBCTL_KEY):\n"
	        "  -a, --addr HOST:PORT   daemon to talk to\n"
	        "      --ca FILE          CA certificate to trust\n"
	        "      --cert FILE        admin certificate\n"
	        "      --key FILE         admin key\n"
	        "  -j, --json             JSON output for scripts\n"
	        "  -T, --timeout MS       deadline per request, 1..3600000 (default 10000)\n"
	        "  -V, --version          print the version\n"
	        "  -h, --help             print this help\n"
	        "exit status: 0 done; 1 the daemon refused the request or could not be\n"
	        "reached (the reason on stderr); 2 a usage error or a bad input file\n"
	        "commands:\n"
	        "  ping                   PING the daemon\n"
	        "  stats                  counters of the daemon\n"
	        "  config                 effective configuration (no secrets)\n"
	        "  audit verify           check the audit hash chain\n"
	        "  audit export [--since SEQ] [--limit N]\n"
	        "  audit note TEXT        append an operator note to the audit log\n"
	        "  messages [--markdown]  the message registry (--markdown: PROTOCOL.md tables)\n"
	        "%s%s%s%s%s%s%s",
	        ctl_ca_usage, ctl_cp_usage, ctl_gw_usage, ctl_rdv_usage, ctl_keys_usage,
	        ctl_qd_usage, ctl_app_usage);
}

static int
cmd_ping(ctl_t *x)
{
	uint64_t rtt;
	stb_error_t err;

	if (stb_ping(x->c, "stbctl", 6, &rtt, &err) == -1)
		return ctl_fail(&err);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "status", "OK");
		cJSON_AddNumberToObject(o, "rtt_us", (double)rtt);
		return ctl_print_json(o);
	}
	printf("OK rtt %llu us\n", (unsigned long long)rtt);
	return 0;
}

static uint64_t
get64(const msg_t *m, int tix)
{
	uint64_t v = 0;

	msg_get_u64(m, tix, &v);
	return v;
}

static int
cmd_stats(ctl_t *x)
{
	static const struct {
		int tix;
		const char *key;
	} rows[] = {
	    {TLV_IX_UPTIME_S, "uptime_s"},         {TLV_IX_REQUESTS_TOTAL, "requests"},
	    {TLV_IX_ERRORS_TOTAL, "errors"},       {TLV_IX_STORE_COMMITS, "store_commits"},
	    {TLV_IX_STORE_WRITES, "store_writes"},
	};
	char name[65] = "", ver[65] = "";
	uint32_t conns = 0, queued = 0;
	uint16_t workers = 0;
	const uint8_t *rec;
	size_t pos = 0, len;
	stb_error_t err;
	msg_t m;
	cJSON *o = NULL, *counts = NULL;

	if (stbc_call(x->c, STB_MSG_ADMIN_STATS, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	msg_get_str(&m, TLV_IX_DAEMON_NAME, name, sizeof(name));
	msg_get_str(&m, TLV_IX_VERSION_TEXT, ver, sizeof(ver));
	msg_get_u32(&m, TLV_IX_CONNECTIONS, &conns);
	msg_get_u32(&m, TLV_IX_STORE_QUEUE, &queued);
	msg_get_u16(&m, TLV_IX_WORKERS, &workers);
	if (x->json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "daemon", name);
		cJSON_AddStringToObject(o, "version", ver);
		cJSON_AddNumberToObject(o, "workers", workers);
		cJSON_AddNumberToObject(o, "connections", conns);
		cJSON_AddNumberToObject(o, "store_queue", queued);
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			cJSON_AddNumberToObject(o, rows[i].key, (double)get64(&m, rows[i].tix));
		counts = cJSON_AddArrayToObject(o, "messages");
	} else {
		printf("%-16s %s %s\n%-16s %u\n%-16s %u\n%-16s %u\n", "daemon", name, ver,
		       "workers", workers, "connections", conns, "store_queue", queued);
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			printf("%-16s %llu\n", rows[i].key,
			       (unsigned long long)get64(&m, rows[i].tix));
		printf("\n%-24s %-16s %12s\n", "MESSAGE", "STATUS", "COUNT");
	}
	while (msg_next(&m, TLV_IX_MSG_COUNT, &pos, &rec, &len) == 1) {
		uint16_t type = load_be16(rec), st = load_be16(rec + 2);
		uint64_t n = load_be64(rec + 4);
		if (x->json) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "type", proto_msg_name(type));
			cJSON_AddStringToObject(e, "status", stb_status_name(st));
			cJSON_AddNumberToObject(e, "count", (double)n);
			cJSON_AddItemToArray(counts, e);
		} else
			printf("%-24s %-16s %12llu\n", proto_msg_name(type), stb_status_name(st),
			       (unsigned long long)n);
	}
	return o != NULL ? ctl_print_json(o) : 0;
}

static int
cmd_config(ctl_t *x)
{
	stb_error_t err;
	const uint8_t *p;
	size_t len;
	msg_t m;

	if (stbc_call(x->c, STB_MSG_ADMIN_CONFIG_DUMP, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	msg_get_bytes(&m, TLV_IX_CONFIG_JSON, &p, &len);
	printf("%.*s\n", (int)len, (const char *)p);
	return 0;
}

static int
audit_verify(ctl_t *x)
{
	uint64_t count = 0, bad = 0;
	const uint8_t *head = NULL;
	size_t hl = 0;
	char hex[65] = "";
	stb_error_t err;
	msg_t m;

	if (stbc_call(x->c, STB_MSG_ADMIN_AUDIT_VERIFY, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	msg_get_u64(&m, TLV_IX_AUDIT_COUNT, &count);
	msg_get_u64(&m, TLV_IX_AUDIT_BAD_SEQ, &bad);
	if (msg_get_bytes(&m, TLV_IX_AUDIT_HEAD, &head, &hl) == 0)
		hex_encode(head, hl < 32 ? hl : 32, hex);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "intact", bad == 0);
		cJSON_AddNumberToObject(o, "records", (double)count);
		if (bad)
			cJSON_AddNumberToObject(o, "bad_seq", (double)bad);
		else
			cJSON_AddStringToObject(o, "head", hex);
		ctl_print_json(o);
	} else if (bad)
		printf("audit chain BROKEN at record %llu (%llu records read)\n",
		       (unsigned long long)bad, (unsigned long long)count);
	else
		printf("audit chain intact: %llu records, head %s\n", (unsigned long long)count,
		       count ? hex : "-");
	return bad ? 3 : 0;
}

static int
audit_export(ctl_t *x, int argc, char **argv)
{
	uint64_t since = 1, last = 0;
	long long limit = -1; /* all */
	int first = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
			since = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
		         (limit = strtoll(argv[++i], NULL, 10)) > 0)
			continue;
		else {
			fprintf(stderr, "stbctl: audit export [--since SEQ] [--limit N]\n");
			return 2;
		}
	}
	if (x->json)
		printf("[");
	for (;;) {
		const uint8_t *p;
		size_t pos = 0, len, got = 0;
		stb_error_t err;
		buf_t b;
		msg_t m;
		int rc;

		struct msgreq_ADMIN_AUDIT_EXPORT q = {.AUDIT_SEQ = MV_U(since)};
		err_t e;

		buf_init(&b, 64);
		if (msgenc_ADMIN_AUDIT_EXPORT(&b, &q, &e) == -1) {
			buf_free(&b);
			return ctl_bad_request(&e);
		}
		rc = stbc_call(x->c, STB_MSG_ADMIN_AUDIT_EXPORT, &b, &m, &err);
		buf_free(&b);
		if (rc == -1)
			return ctl_fail(&err);
		while (msg_next(&m, TLV_IX_AUDIT_RECORD, &pos, &p, &len) == 1) {
			cJSON *r = cJSON_ParseWithLength((const char *)p, len);
			const cJSON *seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
			if (cJSON_IsNumber(seq))
				last = (uint64_t)seq->valuedouble;
			if (x->json)
				printf("%s%.*s", first ? "\n  " : ",\n  ", (int)len,
				       (const char *)p);
			else {
				char t[CTL_TIME_CAP];
				if (first)
					printf("%-8s %-20s %-16s %-24s %s\n", "SEQ", "TIME",
					       "EVENT", "ACTOR", "DETAIL");
				printf("%-8.0f %-20s %-16s %-24s %s\n", ctl_jnum(r, "seq"),
				       ctl_time(ctl_jnum(r, "ts"), t), ctl_jstr(r, "event"),
				       ctl_jstr(r, "actor"), ctl_jstr(r, "detail"));
			}
			cJSON_Delete(r);
			first = 0;
			got++;
			if (limit > 0 && --limit == 0)
				break;
		}
		if (got == 0 || limit == 0 || last < since)
			break;
		since = last + 1;
	}
	if (x->json)
		printf("\n]\n");
	return 0;
}

static int
audit_note(ctl_t *x, const char *text)
{
	stb_error_t err;
	uint64_t seq = 0;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_ADMIN_AUDIT_NOTE q = {.NOTE_TEXT = MV_STR(text)};
	err_t e;

	buf_init(&b, 2048);
	if (msgenc_ADMIN_AUDIT_NOTE(&b, &q, &e) == -1) {
		buf_free(&b);
		return ctl_bad_request(&e);
	}
	rc = stbc_call(x->c, STB_MSG_ADMIN_AUDIT_NOTE, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u64(&m, TLV_IX_AUDIT_SEQ, &seq);
	if (x->json)
		printf("{\"seq\": %llu}\n", (unsigned long long)seq);
	else
		printf("audit record %llu\n", (unsigned long long)seq);
	return 0;
}

static int
cmd_messages(const ctl_t *x)
{
	if (x->json) {
		cJSON *arr = cJSON_CreateArray();
		for (int i = 0; i < MSG_IX_COUNT; i++) {
			char roles[256], num[8];
			cJSON *o = cJSON_CreateObject(), *r = cJSON_CreateArray();
			proto_roles_str(proto_msgs[i].roles, roles, sizeof(roles));
			snprintf(num, sizeof(num), "0x%04x", proto_msgs[i].num);
			cJSON_AddStringToObject(o, "message", proto_msgs[i].name);
			cJSON_AddStringToObject(o, "type", num);
			for (char *tok = strtok(roles, ","); tok != NULL; tok = strtok(NULL, ","))
				cJSON_AddItemToArray(r, cJSON_CreateString(tok));
			cJSON_AddItemToObject(o, "senders", r);
			cJSON_AddStringToObject(o, "description", proto_msgs[i].desc);
			cJSON_AddItemToArray(arr, o);
		}
		return ctl_print_json(arr);
	}
	printf("%-24s %-7s %-30s %s\n", "MESSAGE", "TYPE", "SENDERS", "DESCRIPTION");
	for (int i = 0; i < MSG_IX_COUNT; i++) {
		char roles[256];
		proto_roles_str(proto_msgs[i].roles, roles, sizeof(roles));
		printf("%-24s 0x%04x  %-30s %s\n", proto_msgs[i].name, proto_msgs[i].num, roles,
		       proto_msgs[i].desc);
	}
	return 0;
}

/* ---- stbctl messages --markdown: the registry tables of PROTOCOL.md ---- */

static const struct {
	int code;
	const char *desc;
} md_statuses[STATUS_COUNT] = {
#define STB_STATUS(n, c, d) {c, d},
#include "stb_proto.def"
};

/* A table cell: pipes would end the cell, < and & would start HTML. */
static void
md_text(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", stdout);
		else if (*s == '<')
			fputs("&lt;", stdout);
		else if (*s == '&')
			fputs("&amp;", stdout);
		else if (*s == '\n')
			putchar(' ');
		else
			putchar(*s);
	}
}

static void
md_status_table(void)
{
	printf("### Status codes\n\n| code | name | meaning |\n|---:|---|---|\n");
	for (size_t i = 0; i < STATUS_COUNT; i++) {
		printf("| %d | `%s` | ", md_statuses[i].code, stb_status_name(md_statuses[i].code));
		md_text(md_statuses[i].desc);
		printf(" |\n");
	}
}

static void
md_role_table(void)
{
	printf("\n### Roles\n\n| bit | role | certificate SAN URI |\n|---:|---|---|\n");
	for (int i = 0; i < ROLE_COUNT; i++) {
		unsigned bit = 0;
		while (bit < 31 && !(proto_roles[i].bit & (1u << bit)))
			bit++;
		if (proto_roles[i].bit == STB_R_ANONYMOUS)
			printf("| %u | `%s` | (none: a peer without a certificate) |\n", bit,
			       proto_roles[i].uri);
		else
			printf("| %u | `%s` | `%s%s` |\n", bit, proto_roles[i].uri,
			       STB_ROLE_URI_PREFIX, proto_roles[i].uri);
	}
}

static void
md_tlv_len(const proto_tlv_t *t)
{
	if (t->min == t->max)
		printf("%u", t->min);
	else
		printf("%u..%u", t->min, t->max);
}

static void
md_tlv_table(void)
{
	printf("\n### TLVs\n\n| number | name | kind | length | repeatable | description |\n"
	       "|---|---|---|---:|---|---|\n");
	for (int i = 0; i < TLV_IX_COUNT; i++) {
		const proto_tlv_t *t = &proto_tlvs[i];
		printf("| 0x%04x | `%s` | %s | ", t->num, t->name, proto_tlv_kind_name(t->kind));
		md_tlv_len(t);
		printf(" | %s | ", t->repeatable ? "yes" : "no");
		md_text(t->desc);
		printf(" |\n");
	}
}

static void
md_msg_table(void)
{
	printf("\n### Messages\n\n| number | name | senders | description |\n|---|---|---|---|\n");
	for (int i = 0; i < MSG_IX_COUNT; i++) {
		char roles[256];
		proto_roles_str(proto_msgs[i].roles, roles, sizeof(roles));
		printf("| 0x%04x | `%s` | %s | ", proto_msgs[i].num, proto_msgs[i].name, roles);
		md_text(proto_msgs[i].desc);
		printf(" |\n");
	}
}

static void
md_field_rows(int mix, int dir)
{
	const char *what = dir == MSG_DIR_REQ ? "request" : "response";
	int n = 0;

	for (size_t i = 0; i < proto_nfields; i++) {
		const proto_field_t *f = &proto_fields[i];
		const proto_tlv_t *t = &proto_tlvs[f->tlv];
		if (f->msg != mix || f->dir != dir)
			continue;
		printf("| %s | `%s` | 0x%04x | %s | %s |\n", what, t->name, t->num,
		       proto_tlv_kind_name(t->kind), f->required ? "REQUIRED" : "OPTIONAL");
		n++;
	}
	if (n == 0)
		printf("| %s | (no TLVs) | | | |\n", what);
}

static void
md_msg_fields(void)
{
	printf("\n### Message bodies\n");
	for (int i = 0; i < MSG_IX_COUNT; i++) {
		char roles[256];
		proto_roles_str(proto_msgs[i].roles, roles, sizeof(roles));
		printf("\n#### `%s` (0x%04x)\n\n", proto_msgs[i].name, proto_msgs[i].num);
		md_text(proto_msgs[i].desc);
		printf(". Senders: %s.\n\n| body | TLV | number | kind | presence |\n"
		       "|---|---|---|---|---|\n",
		       roles);
		md_field_rows(i, MSG_DIR_REQ);
		md_field_rows(i, MSG_DIR_RSP);
	}
}

static void
cmd_messages_markdown(void)
{
	md_status_table();
	md_role_table();
	md_tlv_table();
	md_msg_table();
	md_msg_fields();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
	                                         {"ca", required_argument, NULL, 'C'},
	                                         {"cert", required_argument, NULL, 'c'},
	                                         {"key", required_argument, NULL, 'k'},
	                                         {"json", no_argument, NULL, 'j'},
	                                         {"timeout", required_argument, NULL, 'T'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {NULL, 0, NULL, 0}};
	const char *addr = getenv("STBCTL_ADDR"), *ca = getenv("STB_CA");
	const char *cert = getenv("STBCTL_CERT"), *key = getenv("STBCTL_KEY");
	int ch, timeout = 10000, rc = 2;
	stb_error_t err;
	ctl_t x = {NULL, 0, NULL};

	while ((ch = getopt_long(argc, argv, "+a:jT:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'C':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'j':
			x.json = 1;
			break;
		case 'T': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 || v > 3600000) {
				fprintf(stderr,
				        "stbctl: -T %s: a number of milliseconds, 1..3600000\n",
				        optarg);
				return 2;
			}
			timeout = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("stbctl %s\n", stb_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[0], "audit") == 0 &&
	    (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "export") != 0 &&
	                  (strcmp(argv[1], "note") != 0 || argc != 3)))) {
		fprintf(stderr, "usage: stbctl audit verify\n"
		                "       stbctl audit export [--since SEQ] [--limit N]\n"
		                "       stbctl audit note TEXT\n");
		return 2;
	}
	if (strcmp(argv[0], "messages") == 0) {
		if (argc == 2 && strcmp(argv[1], "--markdown") == 0)
			cmd_messages_markdown();
		else if (argc == 1)
			return cmd_messages(&x);
		else {
			usage(stderr);
			return 2;
		}
		return 0;
	}
	if (addr == NULL || ca == NULL || cert == NULL || key == NULL) {
		fprintf(stderr, "stbctl: need --addr, --ca, --cert and --key\n");
		return 2;
	}
	if (stb_client_new(&x.c, &err) == -1 || stb_client_set_ca_file(x.c, ca, &err) == -1 ||
	    stb_client_set_identity(x.c, cert, key, &err) == -1)
		return ctl_fail(&err);
	stb_client_set_timeout(x.c, timeout);
	x.addr = addr;
	if (stb_connect_addr(x.c, addr, &err) == -1) {
		rc = ctl_fail(&err);
		goto out;
	}
	if (strcmp(argv[0], "ping") == 0)
		rc = cmd_ping(&x);
	else if (strcmp(argv[0], "stats") == 0)
		rc = cmd_stats(&x);
	else if (strcmp(argv[0], "config") == 0)
		rc = cmd_config(&x);
	else if (strcmp(argv[0], "audit") == 0 && argc >= 2 && strcmp(argv[1], "verify") == 0)
		rc = audit_verify(&x);
	else if (strcmp(argv[0], "audit") == 0 && argc >= 2 && strcmp(argv[1], "export") == 0)
		rc = audit_export(&x, argc - 2, argv + 2);
	else if (strcmp(argv[0], "audit") == 0 && argc == 3 && strcmp(argv[1], "note") == 0)
		rc = audit_note(&x, argv[2]);
	else if (strcmp(argv[0], "rdv") == 0)
		rc = ctl_rdv(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "ca") == 0)
		rc = ctl_ca(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "cp") == 0)
		rc = ctl_cp(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "gw") == 0)
		rc = ctl_gw(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "keys") == 0)
		rc = ctl_keys(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "qd") == 0)
		rc = ctl_qd(&x, argc - 1, argv + 1);
	else if (strcmp(argv[0], "app") == 0)
		rc = ctl_app(&x, argc - 1, argv + 1);
	else {
		fprintf(stderr, "stbctl: unknown command '%s' (stbctl --help lists them)\n",
		        argv[0]);
		rc = 2;
	}
out:
	stb_client_free(x.c);
	return rc;
}
