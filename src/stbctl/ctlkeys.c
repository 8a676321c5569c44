/* keys: stbctl commands for keymgmtd: key import, services, bindings, pushes. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

#define KEYS_FILE_MAX (16 * 1024 * 1024)
#define KEYS_BATCH    (48 * 1024) /* CSV bytes per KM_KEY_IMPORT, under a default max_frame */

const char ctl_keys_usage[] =
    "keymgmtd:\n"
    "  keys import FILE       terminal keys: CSV key_id,key_hex[,terminal_id[,app_id]], a JSON\n"
    "                         array of {key_id, key, terminal_id, app_id}, or either as CMS\n"
    "                         EnvelopedData to keymgmtd's import certificate (DER or PEM)\n"
    "  keys list [--terminal ID] [--limit N]\n"
    "  keys show KEY_ID       a key and its bindings\n"
    "  keys register MDN APP_ID | keys cancel MDN APP_ID   (role portal)\n"
    "  keys unbind KEY_ID [--app APP_ID]\n"
    "  keys bindings [--mdn MDN] [--state pending|delivered|failed] [--limit N]\n"
    "  keys redeliver PUSH_ID  queue a failed push again\n"
    "  keys platforms         configured app platforms and their pushes\n";

/* A PEM CMS file ("CMS" or "PKCS7", as openssl cms -outform PEM writes)
 * as DER, in place; -1 when it is not one. */
static int
keys_pem_cms(char *text, size_t *len)
{
	BIO *bio = BIO_new_mem_buf(text, (int)*len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long n = 0;
	int rc = -1;

	if (bio != NULL && PEM_read_bio(bio, &name, &header, &der, &n) == 1 &&
	    (strcmp(name, "CMS") == 0 || strcmp(name, "PKCS7") == 0) && n > 0 &&
	    (size_t)n <= *len) {
		memcpy(text, der, (size_t)n);
		*len = (size_t)n;
		rc = 0;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return rc;
}

static void
keys_progress(size_t done, size_t total)
{
	int w = 40, fill = total ? (int)((double)done / (double)total * w) : w;

	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r[%.*s%*s] %3d%%", fill, "########################################",
	        w - fill, "", total ? (int)(done * 100 / total) : 100);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* One KM_KEY_IMPORT: text (is_cms: CMS DER) from line first_line. */
static int
keys_send(ctl_t *x, const char *file, const uint8_t sha[32], const char *p, size_t n, int is_cms,
          uint32_t first_line, uint32_t *imported, uint32_t *unchanged)
{
	struct msgreq_KM_KEY_IMPORT q = {
	    .KM_IMPORT_TEXT = MV_IF(!is_cms, MV_BYTES(p, n)),
	    .KM_FIRST_LINE = MV_IF(!is_cms, MV_U(first_line)),
	    .KM_IMPORT_CMS = MV_IF(is_cms, MV_BYTES(p, n)),
	    .KM_FILE_NAME = MV_STR(file),
	    .KM_FILE_SHA256 = MV_BYTES(sha, 32),
	};
	uint32_t a = 0, b = 0;
	stb_error_t err;
	err_t bad;
	buf_t req;
	msg_t m;
	int rc;

	buf_init(&req, n + 1024);
	if (msgenc_KM_KEY_IMPORT(&req, &q, &bad) == -1) {
		buf_wipe(&req);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_KM_KEY_IMPORT, &req, &m, &err);
	buf_wipe(&req);
	if (rc == -1) {
		if (isatty(STDERR_FILENO))
			fputc('\n', stderr);
		return ctl_fail(&err); /* the text names the file and line */
	}
	msg_get_u32(&m, TLV_IX_KM_IMPORTED, &a);
	msg_get_u32(&m, TLV_IX_KM_UNCHANGED, &b);
	*imported += a;
	*unchanged += b;
	return 0;
}

static int
keys_import(ctl_t *x, const char *path)
{
	size_t len = 0, off = 0;
	char *text = ctl_slurp(path, KEYS_FILE_MAX, &len);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	uint8_t sha[32];
	unsigned int shalen = 0;
	uint32_t imported = 0, unchanged = 0, line = 1;
	int rc = 0, is_cms;
	size_t i;

	if (text == NULL) {
		fprintf(stderr, "stbctl: cannot read %s (or larger than %d MiB)\n", path,
		        KEYS_FILE_MAX >> 20);
		return 1;
	}
	EVP_Digest(text, len, sha, &shalen, EVP_sha256(), NULL);
	is_cms = len > 0 && (unsigned char)text[0] == 0x30;
	if (!is_cms && strncmp(text, "-----BEGIN ", 11) == 0) {
		if (keys_pem_cms(text, &len) == -1) {
			fprintf(stderr, "stbctl: %s: a PEM file that is not CMS\n", path);
			OPENSSL_clear_free(text, len);
			return 1;
		}
		is_cms = 1;
	}
	for (i = 0; i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r'); i++)
		;
	if (is_cms || (i < len && (text[i] == '[' || text[i] == '{')) || len <= KEYS_BATCH) {
		/* one batch: CMS and JSON files go whole */
		rc = keys_send(x, base, sha, text, len, is_cms, 1, &imported, &unchanged);
		keys_progress(len, len);
	} else {
		/* CSV: whole lines per batch, each all or nothing */
		while (rc == 0 && off < len) {
			size_t n = len - off > KEYS_BATCH ? KEYS_BATCH : len - off;
			uint32_t lines = 0;

			if (off + n < len) {
				while (n > 0 && text[off + n - 1] != '\n')
					n--;
				if (n == 0) {
					fprintf(stderr,
					        "stbctl: %s:%u: a line longer than %d bytes\n",
					        path, line, KEYS_BATCH);
					rc = 1;
					break;
				}
			}
			for (size_t j = 0; j < n; j++)
				lines += text[off + j] == '\n';
			rc = keys_send(x, base, sha, text + off, n, 0, line, &imported, &unchanged);
			off += n;
			line += lines;
			keys_progress(off, len);
		}
	}
	OPENSSL_cleanse(text, len);
	OPENSSL_clear_free(text, len);
	if (rc != 0)
		return rc;
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "imported", imported);
		cJSON_AddNumberToObject(o, "unchanged", unchanged);
		return ctl_print_json(o);
	}
	printf("imported %u key(s), %u already there\n", imported, unchanged);
	return 0;
}

/* ---- tables ---- */

static void
key_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-32s %-24s %-16s %-20s %s\n", "KEY_ID", "TERMINAL", "APP_HINT", "IMPORTED",
		       "BINDINGS");
	else
		printf("%-32s %-24s %-16s %-20s %.0f\n", ctl_jstr(o, "key_id"),
		       ctl_jstr(o, "terminal_id"), ctl_jstr(o, "app_hint"),
		       ctl_jstr(o, "imported_at"), ctl_jnum(o, "bindings"));
}

static void
binding_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-8s %-32s %-16s %-15s %-9s %-5s %-20s %s\n", "PUSH", "KEY_ID", "APP",
		       "MDN", "STATE", "TRIES", "BOUND", "DELIVERED");
	else
		printf("%-8.0f %-32s %-16s %-15s %-9s %-5.0f %-20s %s\n", ctl_jnum(o, "push_id"),
		       ctl_jstr(o, "key_id"), ctl_jstr(o, "app_id"), ctl_jstr(o, "mdn"),
		       ctl_jstr(o, "state"), ctl_jnum(o, "tries"), ctl_jstr(o, "bound_at"),
		       ctl_jstr(o, "delivered_at"));
}

static void
platform_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-24s %-24s %-8s %-9s %-6s %s\n", "APP", "ADDRESS", "PENDING", "DELIVERED",
		       "FAILED", "CERT");
	else
		printf("%-24s %-24s %-8.0f %-9.0f %-6.0f %s\n", ctl_jstr(o, "app_id"),
		       ctl_jstr(o, "address"), ctl_jnum(o, "pending"), ctl_jnum(o, "delivered"),
		       ctl_jnum(o, "failed"), ctl_jstr(o, "cert_subject"));
}

static int
keys_show(ctl_t *x, const char *key_id)
{
	struct msgreq_KM_KEY_SHOW q = {.KM_KEY_ID = MV_STR(key_id)};
	const uint8_t *p;
	size_t len;
	stb_error_t err;
	err_t bad;
	cJSON *o, *b;
	buf_t req;
	msg_t m;
	int rc;

	buf_init(&req, 512);
	if (msgenc_KM_KEY_SHOW(&req, &q, &bad) == -1) {
		buf_free(&req);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_KM_KEY_SHOW, &req, &m, &err);
	buf_free(&req);
	if (rc == -1)
		return ctl_fail(&err);
	if (msg_get_bytes(&m, TLV_IX_ENTRY, &p, &len) == -1 ||
	    (o = cJSON_ParseWithLength((const char *)p, len)) == NULL) {
		fprintf(stderr, "stbctl: an answer without its entry\n");
		return 1;
	}
	if (x->json)
		return ctl_print_json(o);
	printf("key_id:      %s\nterminal_id: %s\napp_hint:    %s\nimported:    %s\n",
	       ctl_jstr(o, "key_id"), ctl_jstr(o, "terminal_id"), ctl_jstr(o, "app_hint"),
	       ctl_jstr(o, "imported_at"));
	binding_row(NULL);
	cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(o, "binding_list")) binding_row(b);
	cJSON_Delete(o);
	return 0;
}

/* A request that answers OK or KM_REVOKES. */
static int
keys_simple(ctl_t *x, uint16_t type, const buf_t *req, const char *what)
{
	stb_error_t err;
	uint32_t revokes = 0;
	msg_t m;
	int has;

	if (stbc_call(x->c, type, req, &m, &err) == -1)
		return ctl_fail(&err);
	has = msg_get_u32(&m, TLV_IX_KM_REVOKES, &revokes) == 0;
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "ok", 1);
		if (has)
			cJSON_AddNumberToObject(o, "revokes", revokes);
		return ctl_print_json(o);
	}
	if (has)
		printf("%s; %u KEY_REVOKE push(es) queued\n", what, revokes);
	else
		printf("%s\n", what);
	return 0;
}

/* The value after --name in argv[from..], or NULL; -1 in *bad for an
 * option without its value or an unknown one. */
static const char *
keys_opt(int argc, char **argv, int from, const char *name, const char *const *known, int *bad)
{
	const char *v = NULL;

	for (int i = from; i < argc; i++) {
		int ok = 0;

		for (const char *const *k = known; *k; k++)
			ok |= strcmp(argv[i], *k) == 0;
		if (!ok || i + 1 >= argc) {
			*bad = 1;
			return NULL;
		}
		if (strcmp(argv[i], name) == 0)
			v = argv[i + 1];
		i++;
	}
	return v;
}

int
ctl_keys(ctl_t *x, int argc, char **argv)
{
	static const char *const list_opts[] = {"--terminal", "--limit", NULL};
	static const char *const bind_opts[] = {"--mdn", "--state", "--limit", NULL};
	static const char *const unbind_opts[] = {"--app", NULL};
	const char *v, *lim;
	int bad = 0, rc = 2;
	err_t e;
	buf_t b;

	buf_init(&b, 1024);
	for (int i = 1; i < argc; i++) /* --json anywhere after the verb */
		if (strcmp(argv[i], "--json") == 0) {
			x->json = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	if (argc == 2 && strcmp(argv[0], "import") == 0) {
		rc = keys_import(x, argv[1]);
	} else if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		v = keys_opt(argc, argv, 1, "--terminal", list_opts, &bad);
		lim = keys_opt(argc, argv, 1, "--limit", list_opts, &bad);
		struct msgreq_KM_KEY_LIST q = {.KM_TERMINAL_ID = MV_IF(v != NULL, MV_STR(v)),
		                               .LIMIT = MV_IF(lim != NULL, MV_U(atol(lim)))};
		if (!bad)
			rc = msgenc_KM_KEY_LIST(&b, &q, &e) == -1
			         ? ctl_bad_request(&e)
			         : ctl_list(x, STB_MSG_KM_KEY_LIST, &b, TLV_IX_ENTRY, key_row);
	} else if (argc == 2 && strcmp(argv[0], "show") == 0) {
		rc = keys_show(x, argv[1]);
	} else if (argc == 3 &&
	           (strcmp(argv[0], "register") == 0 || strcmp(argv[0], "cancel") == 0)) {
		int reg = strcmp(argv[0], "register") == 0;
		struct msgreq_KM_SERVICE_REGISTER q = {.KM_MDN = MV_STR(argv[1]),
		                                       .KM_APP_ID = MV_STR(argv[2])};
		struct msgreq_KM_SERVICE_CANCEL qc = {.KM_MDN = MV_STR(argv[1]),
		                                      .KM_APP_ID = MV_STR(argv[2])};
		if ((reg ? msgenc_KM_SERVICE_REGISTER(&b, &q, &e)
		         : msgenc_KM_SERVICE_CANCEL(&b, &qc, &e)) == -1)
			rc = ctl_bad_request(&e);
		else
			rc = keys_simple(
			    x, reg ? STB_MSG_KM_SERVICE_REGISTER : STB_MSG_KM_SERVICE_CANCEL, &b,
			    reg ? "registered" : "cancelled");
	} else if (argc >= 2 && strcmp(argv[0], "unbind") == 0) {
		v = keys_opt(argc, argv, 2, "--app", unbind_opts, &bad);
		struct msgreq_KM_UNBIND q = {.KM_KEY_ID = MV_STR(argv[1]),
		                             .KM_APP_ID = MV_IF(v != NULL, MV_STR(v))};
		if (!bad)
			rc = msgenc_KM_UNBIND(&b, &q, &e) == -1
			         ? ctl_bad_request(&e)
			         : keys_simple(x, STB_MSG_KM_UNBIND, &b, "unbound");
	} else if (argc >= 1 && strcmp(argv[0], "bindings") == 0) {
		const char *mdn = keys_opt(argc, argv, 1, "--mdn", bind_opts, &bad);
		const char *st = keys_opt(argc, argv, 1, "--state", bind_opts, &bad);
		int state = st == NULL                     ? -1
		            : strcmp(st, "pending") == 0   ? 0
		            : strcmp(st, "delivered") == 0 ? 1
		            : strcmp(st, "failed") == 0    ? 2
		                                           : -2;
		lim = keys_opt(argc, argv, 1, "--limit", bind_opts, &bad);
		struct msgreq_KM_BINDINGS q = {.KM_MDN = MV_IF(mdn != NULL, MV_STR(mdn)),
		                               .KM_PUSH_STATE = MV_IF(state >= 0, MV_U(state)),
		                               .LIMIT = MV_IF(lim != NULL, MV_U(atol(lim)))};
		if (state == -2)
			fprintf(stderr, "stbctl: --state is pending, delivered or failed\n");
		else if (!bad)
			rc = msgenc_KM_BINDINGS(&b, &q, &e) == -1
			         ? ctl_bad_request(&e)
			         : ctl_list(x, STB_MSG_KM_BINDINGS, &b, TLV_IX_ENTRY, binding_row);
	} else if (argc == 2 && strcmp(argv[0], "redeliver") == 0) {
		char *end;
		unsigned long long id = strtoull(argv[1], &end, 10);
		struct msgreq_KM_REDELIVER q = {.KM_PUSH_ID = MV_U(id)};
		if (*end != '\0' || id == 0)
			fprintf(stderr, "stbctl: PUSH_ID is a number\n");
		else
			rc = msgenc_KM_REDELIVER(&b, &q, &e) == -1
			         ? ctl_bad_request(&e)
			         : keys_simple(x, STB_MSG_KM_REDELIVER, &b, "queued again");
	} else if (argc == 1 && strcmp(argv[0], "platforms") == 0) {
		rc = ctl_list(x, STB_MSG_KM_PLATFORMS, NULL, TLV_IX_ENTRY, platform_row);
	} else {
		bad = 1;
	}
	if (bad || rc == 2)
		fprintf(stderr, "%s", ctl_keys_usage);
	buf_free(&b);
	return rc;
}
