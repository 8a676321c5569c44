/* app: stbctl commands for appvetd (flow E). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "hex.h"
#include "msgenc.h"
#include "qrimg.h"
#include "stbc.h"
#include "tlv.h"

#define RETRIES   8 /* reconnects during one upload */
#define CHUNK_DEF 49152

const char ctl_app_usage[] =
    "appvetd:\n"
    "  app submit FILE [--name N] [--version V] [--chunk BYTES]  upload (chunked,\n"
    "                         resumes after a dropped connection), submit; prints ID1\n"
    "  app list [--limit N]   submitted apps, newest first\n"
    "  app show ID1           one app: IDs, state, flag, digests, times\n"
    "  app findings ID1       the findings of its newest verdict\n"
    "  app publish ID1 [--validity S]  record the flag and sign the published QR\n"
    "  app revet ID1          vet again with the current blocklist\n"
    "  app qr ID1 [--submitted] [--png FILE] [--svg FILE]  the QR text, drawn\n"
    "  app index export FILE  the signed index snapshot for offline checks\n"
    "  app pubkey [FILE]      the operator's public key TVs trust (PEM)\n";

static int
app_usage(void)
{
	fprintf(
	    stderr,
	    "stbctl: app submit FILE [--name N] [--version V] [--chunk BYTES] | list [--limit N] | "
	    "show ID1 | findings ID1 | publish ID1 [--validity S] | revet ID1 | "
	    "qr ID1 [--submitted] [--png FILE] [--svg FILE] | index export FILE | "
	    "pubkey [FILE]\n");
	return 2;
}

/* ---- submit ---- */

static int
file_digest(FILE *f, uint8_t sha[32], uint64_t *size, stb_error_t *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536];
	size_t n;
	int ok;

	*size = 0;
	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		ok = EVP_DigestUpdate(md, buf, n) == 1;
		*size += n;
	}
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, sha, NULL) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return stbc_fail(err, STB_INTERNAL, "cannot read the package");
	return 0;
}

static void
progress(uint64_t done, uint64_t total, int tty)
{
	int width = 30, fill;
	double pct;

	if (!tty || total == 0)
		return;
	pct = (double)done * 100.0 / (double)total;
	fill = (int)((double)width * (double)done / (double)total);
	fprintf(stderr, "\r[%.*s%*s] %5.1f%% %.1f/%.1f MiB", fill, "##############################",
	        width - fill, "", pct, (double)done / 1048576.0, (double)total / 1048576.0);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* A failure a new connection may cure (the connection dropped). */
static int
retryable(const stb_error_t *err)
{
	return err->status == STB_UNAVAILABLE || err->status == STB_TIMEOUT;
}

static int
reconnect(ctl_t *x, int attempt, stb_error_t *err)
{
	struct timespec ts = {0, 200000000L * (attempt < 5 ? attempt : 5)};

	stb_disconnect(x->c);
	nanosleep(&ts, NULL);
	if (x->addr == NULL)
		return stbc_fail(err, STB_UNAVAILABLE, "no address to reconnect to");
	return stb_connect_addr(x->c, x->addr, err);
}

static int
upload_offset(ctl_t *x, const uint8_t id[16], uint64_t *off, stb_error_t *err)
{
	struct msgreq_APP_UPLOAD_OFFSET q = {.APP_UPLOAD_ID = MV_BYTES(id, 16)};
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 64);
	if (msgenc_APP_UPLOAD_OFFSET(&b, &q, &bad) == -1) {
		buf_free(&b);
		return stbc_fail(err, bad.status, "%s", bad.msg);
	}
	rc = stbc_call(x->c, STB_MSG_APP_UPLOAD_OFFSET, &b, &m, err);
	buf_free(&b);
	if (rc == 0 && msg_get_u64(&m, TLV_IX_APP_OFFSET, off) == -1)
		rc = stbc_fail(err, STB_BAD_REQUEST, "the answer lacks APP_OFFSET");
	return rc;
}

/* Sends f from the server's offset to the end; reconnects and resumes when
 * the connection drops. */
static int
upload_send(ctl_t *x, FILE *f, const uint8_t id[16], uint64_t size, uint32_t chunk,
            stb_error_t *err)
{
	uint8_t *buf = malloc(chunk);
	uint64_t off = 0, next;
	int tty = isatty(2), tries = 0, rc = 0;
	size_t n;
	err_t bad;
	buf_t b;
	msg_t m;

	if (buf == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	buf_init(&b, (size_t)chunk + 256);
	while (off < size) {
		struct msgreq_APP_UPLOAD_CHUNK q = {0};

		n = size - off < chunk ? (size_t)(size - off) : chunk;
		if (fseeko(f, (off_t)off, SEEK_SET) == -1 || fread(buf, 1, n, f) != n) {
			rc = stbc_fail(err, STB_INTERNAL, "cannot read the package at %llu",
			               (unsigned long long)off);
			break;
		}
		q.APP_UPLOAD_ID = MV_BYTES(id, 16);
		q.APP_OFFSET = MV_U(off);
		q.APP_CHUNK = MV_BYTES(buf, n);
		buf_reset(&b);
		if (msgenc_APP_UPLOAD_CHUNK(&b, &q, &bad) == -1) {
			rc = stbc_fail(err, bad.status, "%s", bad.msg);
			break;
		}
		if (stbc_call(x->c, STB_MSG_APP_UPLOAD_CHUNK, &b, &m, err) == 0 &&
		    msg_get_u64(&m, TLV_IX_APP_OFFSET, &next) == 0) {
			off = next;
			progress(off, size, tty);
			continue;
		}
		/* dropped: a new connection, and the server says where to go on;
		 * a CONFLICT (our offset is not its length) likewise */
		if (!retryable(err) && err->status != STB_CONFLICT) {
			rc = -1;
			break;
		}
		if (retryable(err)) {
			if (++tries > RETRIES) {
				rc = -1;
				break;
			}
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "stbctl: connection lost at %llu bytes (%s); resuming\n",
			        (unsigned long long)off, err->message);
			if (reconnect(x, tries, err) == -1)
				continue;
		}
		if (upload_offset(x, id, &off, err) == -1 && !retryable(err)) {
			rc = -1;
			break;
		}
	}
	buf_free(&b);
	free(buf);
	return rc;
}

/* A call that survives one dropped connection (it is idempotent or says
 * CONFLICT when repeated). */
static int
call_retry(ctl_t *x, uint16_t type, const buf_t *b, msg_t *m, stb_error_t *err)
{
	for (int tries = 0;; tries++) {
		if (stbc_call(x->c, type, b, m, err) == 0)
			return 0;
		if (!retryable(err) || tries >= RETRIES || reconnect(x, tries + 1, err) == -1)
			return -1;
	}
}

static int
app_submit(ctl_t *x, int argc, char **argv)
{
	const char *path = argv[0], *name = NULL, *version = "1.0";
	char base[129], id1[STB_ID_MAX + 1] = "", *dot;
	uint8_t sha[32], id[16];
	const uint8_t *p;
	size_t len;
	uint64_t size;
	uint32_t chunk = CHUNK_DEF, want = CHUNK_DEF;
	stb_error_t err;
	err_t bad;
	FILE *f;
	buf_t b;
	msg_t m;
	cJSON *o;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc)
			version = argv[++i];
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			want = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else
			return app_usage();
	}
	if (want == 0 || want > CHUNK_DEF) {
		fprintf(stderr, "stbctl: --chunk is 1..%d bytes\n", CHUNK_DEF);
		return 2;
	}
	if (name == NULL) {
		const char *s = strrchr(path, '/');
		snprintf(base, sizeof(base), "%s", s ? s + 1 : path);
		if ((dot = strrchr(base, '.')) != NULL && dot != base)
			*dot = '\0';
		name = base;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "stbctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (file_digest(f, sha, &size, &err) == -1)
		goto fail;
	{
		struct msgreq_APP_UPLOAD_BEGIN q = {.APP_SIZE = MV_U(size),
		                                    .APP_SHA256 = MV_BYTES(sha, 32)};
		buf_init(&b, 128);
		if (msgenc_APP_UPLOAD_BEGIN(&b, &q, &bad) == -1) {
			buf_free(&b);
			fclose(f);
			return ctl_bad_request(&bad);
		}
		rc = call_retry(x, STB_MSG_APP_UPLOAD_BEGIN, &b, &m, &err);
		buf_free(&b);
		if (rc == -1)
			goto fail;
		if (msg_get_bytes(&m, TLV_IX_APP_UPLOAD_ID, &p, &len) == -1 || len != 16) {
			stbc_fail(&err, STB_BAD_REQUEST, "the answer lacks the upload id");
			goto fail;
		}
		memcpy(id, p, 16);
		msg_get_u32(&m, TLV_IX_APP_CHUNK_MAX, &chunk);
		if (chunk == 0 || chunk > want)
			chunk = want;
	}
	if (upload_send(x, f, id, size, chunk, &err) == -1)
		goto fail;
	{
		struct msgreq_APP_SUBMIT q = {.APP_UPLOAD_ID = MV_BYTES(id, 16),
		                              .APP_NAME = MV_STR(name),
		                              .APP_VERSION = MV_STR(version)};
		buf_init(&b, 512);
		if (msgenc_APP_SUBMIT(&b, &q, &bad) == -1) {
			buf_free(&b);
			fclose(f);
			return ctl_bad_request(&bad);
		}
		rc = call_retry(x, STB_MSG_APP_SUBMIT, &b, &m, &err);
		buf_free(&b);
		if (rc == -1)
			goto fail;
		msg_get_str(&m, TLV_IX_APP_ID1, id1, sizeof(id1));
	}
	fclose(f);
	if (x->json) {
		char hex[65];
		hex_encode(sha, 32, hex);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id1", id1);
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "version", version);
		cJSON_AddNumberToObject(o, "size", (double)size);
		cJSON_AddStringToObject(o, "sha256", hex);
		return ctl_print_json(o);
	}
	printf("%s\n", id1);
	return 0;
fail:
	fclose(f);
	return ctl_fail(&err);
}

/* ---- views ---- */

static void
app_row(const cJSON *o)
{
	char t[CTL_TIME_CAP];

	if (o == NULL) {
		printf("%-64s %-20s %-10s %-10s %-6s %s\n", "ID1", "NAME", "VERSION", "STATE",
		       "FLAG", "SUBMITTED");
		return;
	}
	printf("%-64s %-20s %-10s %-10s %-6s %s\n", ctl_jstr(o, "id1"), ctl_jstr(o, "name"),
	       ctl_jstr(o, "version"), ctl_jstr(o, "state"), ctl_jstr(o, "flag"),
	       ctl_time(ctl_jnum(o, "submitted"), t));
}

static int
app_list(ctl_t *x, int argc, char **argv)
{
	struct msgreq_APP_LIST q = {0};
	err_t bad;
	buf_t b;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			q.LIMIT = MV_U(strtoul(argv[++i], NULL, 10));
		else
			return app_usage();
	}
	buf_init(&b, 64);
	rc = msgenc_APP_LIST(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : ctl_list(x, STB_MSG_APP_LIST, &b, TLV_IX_ENTRY, app_row);
	buf_free(&b);
	return rc;
}

/* Sends a request whose only field is ID1; the answer in *m. */
static int
id1_call(ctl_t *x, uint16_t type, const char *id1, msg_t *m, stb_error_t *err, err_t *bad)
{
	buf_t b;
	int rc;
	struct msgreq_APP_SHOW qs = {.APP_ID1 = MV_STR(id1)};
	struct msgreq_APP_FINDINGS qf = {.APP_ID1 = MV_STR(id1)};
	struct msgreq_APP_REVET qr = {.APP_ID1 = MV_STR(id1)};

	buf_init(&b, 256);
	rc = type == STB_MSG_APP_SHOW       ? msgenc_APP_SHOW(&b, &qs, bad)
	     : type == STB_MSG_APP_FINDINGS ? msgenc_APP_FINDINGS(&b, &qf, bad)
	                                    : msgenc_APP_REVET(&b, &qr, bad);
	if (rc == -1) {
		buf_free(&b);
		return 2;
	}
	rc = stbc_call(x->c, type, &b, m, err);
	buf_free(&b);
	return rc == -1 ? 1 : 0;
}

static void
print_kv(const cJSON *o, const char *indent)
{
	const cJSON *it;
	char t[CTL_TIME_CAP], *s;

	cJSON_ArrayForEach(it, o)
	{
		if (cJSON_IsString(it))
			printf("%s%-16s %s\n", indent, it->string, it->valuestring);
		else if (cJSON_IsNumber(it) && (strcmp(it->string, "submitted") == 0 ||
		                                strcmp(it->string, "vet_time") == 0 ||
		                                strcmp(it->string, "published") == 0 ||
		                                strcmp(it->string, "expires") == 0))
			printf("%s%-16s %s\n", indent, it->string, ctl_time(it->valuedouble, t));
		else if (cJSON_IsNumber(it))
			printf("%s%-16s %.0f\n", indent, it->string, it->valuedouble);
		else if (cJSON_IsNull(it))
			printf("%s%-16s -\n", indent, it->string);
		else if (cJSON_IsObject(it) && strcmp(it->string, "report") == 0) {
			printf("%sreport:\n", indent);
			print_kv(it, "  ");
		} else if ((s = cJSON_PrintUnformatted(it)) != NULL) {
			printf("%s%-16s %s\n", indent, it->string, s);
			free(s);
		}
	}
}

static int
app_show(ctl_t *x, const char *id1)
{
	stb_error_t err;
	err_t bad;
	msg_t m;
	const uint8_t *p;
	size_t len;
	cJSON *o;
	int rc = id1_call(x, STB_MSG_APP_SHOW, id1, &m, &err, &bad);

	if (rc == 2)
		return ctl_bad_request(&bad);
	if (rc == 1)
		return ctl_fail(&err);
	if (msg_get_bytes(&m, TLV_IX_ENTRY, &p, &len) == -1 ||
	    (o = cJSON_ParseWithLength((const char *)p, len)) == NULL) {
		fprintf(stderr, "stbctl: the answer lacks the app\n");
		return 1;
	}
	if (x->json)
		return ctl_print_json(o);
	print_kv(o, "");
	cJSON_Delete(o);
	return 0;
}

static void
finding_row(const cJSON *o)
{
	if (o == NULL)
		printf("%-32s %-8s %s\n", "CODE", "SEVERITY", "REASON");
	else
		printf("%-32s %-8s %s\n", ctl_jstr(o, "code"), ctl_jstr(o, "severity"),
		       ctl_jstr(o, "reason"));
}

static int
app_findings(ctl_t *x, const char *id1)
{
	struct msgreq_APP_FINDINGS q = {.APP_ID1 = MV_STR(id1)};
	err_t bad;
	buf_t b;
	int rc;

	buf_init(&b, 256);
	rc = msgenc_APP_FINDINGS(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : ctl_list(x, STB_MSG_APP_FINDINGS, &b, TLV_IX_APP_FINDING, finding_row);
	buf_free(&b);
	return rc;
}

static const char *
flag_name(uint8_t f)
{
	return f == STB_APP_SAFE ? "SAFE" : f == STB_APP_UNSAFE ? "UNSAFE" : "?";
}

static int
app_publish(ctl_t *x, int argc, char **argv)
{
	struct msgreq_APP_PUBLISH q = {.APP_ID1 = MV_STR(argv[0])};
	char id3[STB_ID_MAX + 1] = "", payload[STB_APP_PAYLOAD_MAX + 1] = "", t[CTL_TIME_CAP];
	uint64_t expires = 0;
	uint8_t flag = 0;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	cJSON *o;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else if (strcmp(argv[i], "--validity") == 0 && i + 1 < argc)
			q.APP_VALIDITY_S = MV_U(strtoul(argv[++i], NULL, 10));
		else
			return app_usage();
	}
	buf_init(&b, 256);
	if (msgenc_APP_PUBLISH(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_APP_PUBLISH, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_str(&m, TLV_IX_APP_ID3, id3, sizeof(id3));
	msg_get_u8(&m, TLV_IX_APP_FLAG, &flag);
	msg_get_str(&m, TLV_IX_APP_QR_PAYLOAD, payload, sizeof(payload));
	msg_get_u64(&m, TLV_IX_APP_EXPIRES, &expires);
	if (x->json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id1", argv[0]);
		cJSON_AddStringToObject(o, "id3", id3);
		cJSON_AddStringToObject(o, "flag", flag_name(flag));
		cJSON_AddStringToObject(o, "payload", payload);
		cJSON_AddNumberToObject(o, "expires", (double)expires);
		return ctl_print_json(o);
	}
	printf("%-16s %s\n%-16s %s\n%-16s %s\n%-16s %s\n", "id3", id3, "flag", flag_name(flag),
	       "expires", ctl_time((double)expires, t), "payload", payload);
	return 0;
}

static int
app_revet(ctl_t *x, const char *id1)
{
	char id2[STB_ID_MAX + 1] = "";
	uint8_t flag = 0;
	stb_error_t err;
	err_t bad;
	msg_t m;
	cJSON *o;
	int rc = id1_call(x, STB_MSG_APP_REVET, id1, &m, &err, &bad);

	if (rc == 2)
		return ctl_bad_request(&bad);
	if (rc == 1)
		return ctl_fail(&err);
	msg_get_str(&m, TLV_IX_APP_ID2, id2, sizeof(id2));
	msg_get_u8(&m, TLV_IX_APP_FLAG, &flag);
	if (x->json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id1", id1);
		cJSON_AddStringToObject(o, "id2", id2);
		cJSON_AddStringToObject(o, "flag", flag_name(flag));
		return ctl_print_json(o);
	}
	printf("%-16s %s\n%-16s %s\n", "id2", id2, "flag", flag_name(flag));
	return 0;
}

static int
app_qr(ctl_t *x, int argc, char **argv)
{
	struct msgreq_APP_QR q = {.APP_ID1 = MV_STR(argv[0])};
	const char *png = NULL, *svg = NULL;
	char text[STB_APP_PAYLOAD_MAX + 1] = "";
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--png") == 0 && i + 1 < argc)
			png = argv[++i];
		else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
			svg = argv[++i];
		else if (strcmp(argv[i], "--submitted") == 0)
			q.APP_QR_KIND = MV_U(1);
		else if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else
			return app_usage();
	}
	buf_init(&b, 256);
	if (msgenc_APP_QR(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_APP_QR, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_str(&m, TLV_IX_APP_QR_PAYLOAD, text, sizeof(text));
	if ((png != NULL && qrimg_write_png(text, png, &bad) == -1) ||
	    (svg != NULL && qrimg_write_svg(text, svg, &bad) == -1)) {
		fprintf(stderr, "stbctl: %s\n", bad.msg);
		return 1;
	}
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id1", argv[0]);
		cJSON_AddStringToObject(o, "payload", text);
		if (png)
			cJSON_AddStringToObject(o, "png", png);
		if (svg)
			cJSON_AddStringToObject(o, "svg", svg);
		return ctl_print_json(o);
	}
	printf("%s\n", text);
	return 0;
}

/* Writes len bytes to path through a temporary file and a rename. */
static int
write_file(const char *path, const void *p, size_t len, int mode)
{
	char tmp[4096];
	FILE *f;
	int ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	if ((f = fopen(tmp, "wb")) == NULL)
		return -1;
	ok = fwrite(p, 1, len, f) == len;
	ok = fclose(f) == 0 && ok && chmod(tmp, (mode_t)mode) == 0 && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	return ok ? 0 : -1;
}

static int
app_index_export(ctl_t *x, const char *path)
{
	const uint8_t *p;
	size_t len;
	uint64_t version = 0, expires = 0;
	char t[CTL_TIME_CAP];
	stb_error_t err;
	msg_t m;
	cJSON *o;

	if (stbc_call(x->c, STB_MSG_APP_INDEX_EXPORT, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	if (msg_get_bytes(&m, TLV_IX_APP_INDEX, &p, &len) == -1) {
		fprintf(stderr, "stbctl: the answer lacks the index\n");
		return 1;
	}
	msg_get_u64(&m, TLV_IX_APP_INDEX_VERSION, &version);
	msg_get_u64(&m, TLV_IX_APP_EXPIRES, &expires);
	if (write_file(path, p, len, 0644) == -1) {
		fprintf(stderr, "stbctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (x->json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "file", path);
		cJSON_AddNumberToObject(o, "version", (double)version);
		cJSON_AddNumberToObject(o, "expires", (double)expires);
		cJSON_AddNumberToObject(o, "bytes", (double)len);
		return ctl_print_json(o);
	}
	printf("%s: index version %llu, %zu bytes, expires %s\n", path, (unsigned long long)version,
	       len, ctl_time((double)expires, t));
	return 0;
}

static int
app_pubkey(ctl_t *x, const char *path)
{
	char pem[4097] = "";
	stb_error_t err;
	msg_t m;

	(void)x;
	if (stbc_call(x->c, STB_MSG_APP_PUBKEY, NULL, &m, &err) == -1)
		return ctl_fail(&err);
	msg_get_str(&m, TLV_IX_APP_PUBKEY, pem, sizeof(pem));
	if (path == NULL) {
		fputs(pem, stdout);
		return 0;
	}
	if (write_file(path, pem, strlen(pem), 0644) == -1) {
		fprintf(stderr, "stbctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

int
ctl_app(ctl_t *x, int argc, char **argv)
{
	int json_only = argc >= 3 && strcmp(argv[2], "--json") == 0;

	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return app_list(x, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "submit") == 0)
		return app_submit(x, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "publish") == 0)
		return app_publish(x, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "qr") == 0)
		return app_qr(x, argc - 1, argv + 1);
	if (argc == 3 && strcmp(argv[0], "index") == 0 && strcmp(argv[1], "export") == 0)
		return app_index_export(x, argv[2]);
	if (argc <= 2 && argc >= 1 && strcmp(argv[0], "pubkey") == 0)
		return app_pubkey(x, argc == 2 ? argv[1] : NULL);
	if (argc == 2 || (argc == 3 && json_only)) {
		if (json_only)
			x->json = 1;
		if (strcmp(argv[0], "show") == 0)
			return app_show(x, argv[1]);
		if (strcmp(argv[0], "findings") == 0)
			return app_findings(x, argv[1]);
		if (strcmp(argv[0], "revet") == 0)
			return app_revet(x, argv[1]);
	}
	return app_usage();
}
