/* stubanalyse: a stand-in for apk's analysis (apk.h) until branch apk's
 * apk*.c land; only the package digest, a "PK" check and the blocklist.
 * Removed by the merge of apk. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apk.h"
#include "hex.h"

struct apk_ctx {
	char *blocklist;
};

void
apk_conf_default(apk_conf_t *conf)
{
	memset(conf, 0, sizeof(*conf));
}

apk_ctx_t *
apk_ctx_new(const apk_conf_t *conf, err_t *err)
{
	apk_ctx_t *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (conf->blocklist_path != NULL)
		c->blocklist = strdup(conf->blocklist_path);
	return c;
}

int
apk_ctx_reload_blocklist(apk_ctx_t *ctx, err_t *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

void
apk_ctx_free(apk_ctx_t *ctx)
{
	if (ctx != NULL)
		free(ctx->blocklist);
	free(ctx);
}

void
apk_report_init(apk_report_t *r)
{
	memset(r, 0, sizeof(*r));
}

void
apk_report_free(apk_report_t *r)
{
	free(r->findings);
	apk_report_init(r);
}

static void
finding(apk_report_t *r, const char *code, const char *reason)
{
	apk_finding_t *f = realloc(r->findings, (r->n_findings + 1) * sizeof(*f));

	if (f == NULL)
		return;
	r->findings = f;
	f += r->n_findings++;
	snprintf(f->code, sizeof(f->code), "%s", code);
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
	f->severity = APK_SEV_UNSAFE;
	r->verdict = APK_UNSAFE;
}

int
apk_analyse(apk_ctx_t *ctx, const char *path, apk_report_t *r, err_t *err)
{
	FILE *f = fopen(path, "rb");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], head[2] = {0, 0};
	char hex[65], line[256];
	size_t n;
	int first = 1;

	apk_report_init(r);
	if (f == NULL || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		if (f)
			fclose(f);
		EVP_MD_CTX_free(md);
		return err_set(err, STB_INTERNAL, "cannot read %s", path);
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (first && n >= 2)
			memcpy(head, buf, 2);
		first = 0;
		EVP_DigestUpdate(md, buf, n);
		r->size += n;
	}
	fclose(f);
	EVP_DigestFinal_ex(md, r->sha256, NULL);
	EVP_MD_CTX_free(md);
	if (head[0] != 'P' || head[1] != 'K')
		finding(r, "zip.not_a_zip", "the package is not a ZIP archive");
	hex_encode(r->sha256, 32, hex);
	if (ctx->blocklist != NULL && (f = fopen(ctx->blocklist, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncasecmp(line, hex, 64) == 0)
				finding(r, "blocklist.package",
				        "the package's SHA-256 is blocklisted");
		fclose(f);
	}
	return 0;
}

char *
apk_report_json(const apk_report_t *r, err_t *err)
{
	char *s = malloc(64);

	(void)r;
	if (s == NULL)
		err_set(err, STB_INTERNAL, "out of memory");
	else
		snprintf(s, 64, "{\"stub\":true}");
	return s;
}

const char *
apk_verdict_name(apk_verdict_t v)
{
	return v == APK_SAFE ? "SAFE" : "UNSAFE";
}

const char *
apk_severity_name(apk_severity_t s)
{
	return s == APK_SEV_UNSAFE ? "unsafe" : s == APK_SEV_WARN ? "warn" : "info";
}

const char *
apk_sig_state_name(apk_sig_state_t s)
{
	return s == APK_SIG_VERIFIED ? "verified" : s == APK_SIG_FAILED ? "failed" : "absent";
}
