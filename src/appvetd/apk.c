/* apk: the analysis of one package (see apk.h): the context, the
 * blocklist, the report, and the order of the checks. */
#include "apk.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apkrun.h"
#include "apksig.h"
#include "apkv1.h"
#include "apkzip.h"
#include "axml.h"
#include "bytes.h"
#include "clam.h"
#include "hex.h"

#define BLOCKLIST_FILE_MAX (256u << 20)
#define MANIFEST_MAX       (8u << 20)
#define PIECE              (1u << 20)
#define DEX_HEADER         0x70
#define DANGEROUS_MAX      256
#define ANDROID_V2_SDK     24 /* Android 7.0: the first to read v2 */

typedef struct blocklist {
	atomic_int refs;
	size_t n;
	uint8_t (*d)[APK_SHA256_LEN]; /* sorted */
	uint8_t file_sha256[APK_SHA256_LEN];
} blocklist_t;

struct apk_ctx {
	apk_conf_t conf;
	char *blocklist_path, *clamav_db;
	char **dangerous;
	size_t n_dangerous;
	apk_mds_t mds;
	clam_t *clam;
	pthread_mutex_t lock; /* guards bl's pointer */
	blocklist_t *bl;
};

void
apk_conf_default(apk_conf_t *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->max_entries = 65535;
	conf->max_total_uncompressed = 1ull << 30;
	conf->max_ratio = 100;
}

static int
digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, APK_SHA256_LEN);
}

static void
blocklist_put(blocklist_t *bl)
{
	if (bl == NULL || atomic_fetch_sub(&bl->refs, 1) != 1)
		return;
	free(bl->d);
	free(bl);
}

/* One digest a line, blanks and '#' comments around it. */
static int
blocklist_parse(blocklist_t *bl, const char *s, size_t len, const char *path, err_t *err)
{
	size_t cap = 0, line = 0;
	const char *end = s + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl != NULL ? nl : end, *p = s;
		size_t outlen;

		line++;
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p < e && *p != '#') {
			if (e - p < 64 ||
			    (e - p > 64 && !isspace((unsigned char)p[64]) && p[64] != '#')) {
				return err_set(err, STB_BAD_REQUEST, "%s:%zu: not a SHA-256 in hex",
				               path, line);
			}
			if (bl->n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				void *nd = realloc(bl->d, nc * APK_SHA256_LEN);

				if (nd == NULL)
					return err_set(err, STB_INTERNAL, "out of memory");
				bl->d = nd;
				cap = nc;
			}
			if (hex_decode(p, 64, bl->d[bl->n], APK_SHA256_LEN, &outlen) < 0 ||
			    outlen != APK_SHA256_LEN)
				return err_set(err, STB_BAD_REQUEST, "%s:%zu: not a SHA-256 in hex",
				               path, line);
			bl->n++;
		}
		s = nl != NULL ? nl + 1 : end;
	}
	if (bl->n > 0)
		qsort(bl->d, bl->n, APK_SHA256_LEN, digest_cmp);
	return 0;
}

static blocklist_t *
blocklist_load(const char *path, const apk_mds_t *mds, err_t *err)
{
	blocklist_t *bl = calloc(1, sizeof(*bl));
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;

	if (bl == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	atomic_init(&bl->refs, 1);
	if (path == NULL) {
		EVP_Digest("", 0, bl->file_sha256, NULL, mds->sha256, NULL);
		return bl;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		err_set(err, STB_NOT_FOUND, "blocklist %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0 ||
	    (unsigned long)ftell(f) > BLOCKLIST_FILE_MAX) {
		err_set(err, STB_TOO_LARGE,
		        "blocklist %s: unreadable or over "
		        "256 MiB",
		        path);
		goto fail;
	}
	len = (size_t)ftell(f);
	rewind(f);
	if ((text = malloc(len ? len : 1)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto fail;
	}
	if (fread(text, 1, len, f) != len) {
		err_set(err, STB_INTERNAL, "blocklist %s: short read", path);
		goto fail;
	}
	if (blocklist_parse(bl, text, len, path, err) < 0)
		goto fail;
	if (!EVP_Digest(text, len, bl->file_sha256, NULL, mds->sha256, NULL)) {
		err_set_ossl(err, STB_INTERNAL, "digest");
		goto fail;
	}
	free(text);
	fclose(f);
	return bl;
fail:
	free(text);
	if (f != NULL)
		fclose(f);
	blocklist_put(bl);
	return NULL;
}

static int
blocklist_has(const blocklist_t *bl, const uint8_t d[APK_SHA256_LEN])
{
	return bl->n > 0 && bsearch(d, bl->d, bl->n, APK_SHA256_LEN, digest_cmp) != NULL;
}

static int
ctx_dangerous(apk_ctx_t *ctx, const char *list, err_t *err)
{
	const char *p = list != NULL ? list : APK_DANGEROUS_DEFAULT;

	if ((ctx->dangerous = calloc(DANGEROUS_MAX, sizeof(char *))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	while (*p != '\0') {
		size_t n;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		n = strcspn(p, ", \t\n");
		if (n == 0)
			break;
		if (n >= APK_NAME_MAX)
			return err_set(err, STB_BAD_REQUEST,
			               "a dangerous permission name over %d "
			               "bytes",
			               APK_NAME_MAX - 1);
		if (ctx->n_dangerous >= DANGEROUS_MAX)
			return err_set(err, STB_BAD_REQUEST, "more than %d dangerous permissions",
			               DANGEROUS_MAX);
		if ((ctx->dangerous[ctx->n_dangerous] = strndup(p, n)) == NULL)
			return err_set(err, STB_INTERNAL, "out of memory");
		ctx->n_dangerous++;
		p += n;
	}
	return 0;
}

apk_ctx_t *
apk_ctx_new(const apk_conf_t *conf, err_t *err)
{
	apk_ctx_t *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->conf = *conf;
	if (conf->max_entries == 0 || conf->max_total_uncompressed == 0 || conf->max_ratio == 0) {
		err_set(err, STB_BAD_REQUEST, "APK caps must be positive");
		goto fail;
	}
	if ((ctx->mds.sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
	    (ctx->mds.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (ctx->mds.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL) {
		err_set_ossl(err, STB_INTERNAL, "fetching digests");
		goto fail;
	}
	if ((conf->blocklist_path != NULL &&
	     (ctx->blocklist_path = strdup(conf->blocklist_path)) == NULL) ||
	    (conf->clamav_db != NULL && (ctx->clamav_db = strdup(conf->clamav_db)) == NULL)) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto fail;
	}
	ctx->conf.blocklist_path = ctx->blocklist_path;
	ctx->conf.clamav_db = ctx->clamav_db;
	ctx->conf.dangerous_permissions = NULL;
	if (ctx_dangerous(ctx, conf->dangerous_permissions, err) < 0)
		goto fail;
	if ((ctx->bl = blocklist_load(ctx->blocklist_path, &ctx->mds, err)) == NULL)
		goto fail;
	if (ctx->clamav_db != NULL &&
	    (ctx->clam = clam_new(ctx->clamav_db, conf->max_total_uncompressed, err)) == NULL)
		goto fail;
	return ctx;
fail:
	apk_ctx_free(ctx);
	return NULL;
}

int
apk_ctx_reload_blocklist(apk_ctx_t *ctx, err_t *err)
{
	blocklist_t *bl = blocklist_load(ctx->blocklist_path, &ctx->mds, err), *old;

	if (bl == NULL)
		return -1;
	pthread_mutex_lock(&ctx->lock);
	old = ctx->bl;
	ctx->bl = bl;
	pthread_mutex_unlock(&ctx->lock);
	blocklist_put(old);
	return 0;
}

void
apk_ctx_free(apk_ctx_t *ctx)
{
	if (ctx == NULL)
		return;
	clam_free(ctx->clam);
	blocklist_put(ctx->bl);
	for (size_t i = 0; i < ctx->n_dangerous; i++)
		free(ctx->dangerous[i]);
	free(ctx->dangerous);
	EVP_MD_free(ctx->mds.sha1);
	EVP_MD_free(ctx->mds.sha256);
	EVP_MD_free(ctx->mds.sha512);
	free(ctx->blocklist_path);
	free(ctx->clamav_db);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

void
apk_report_init(apk_report_t *r)
{
	memset(r, 0, sizeof(*r));
	r->version_code = -1;
	r->verdict = APK_SAFE;
}

void
apk_report_free(apk_report_t *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_perms; i++)
		free(r->perms[i]);
	free(r->perms);
	free(r->dex);
	free(r->findings);
	apk_report_init(r);
}

void
apk_report_add(apk_report_t *r, apk_severity_t sev, const char *code, const char *fmt, ...)
{
	apk_finding_t *f;
	va_list ap;

	if (sev == APK_SEV_UNSAFE)
		r->verdict = APK_UNSAFE;
	if (r->findings == NULL && (r->findings = calloc(APK_FINDINGS_MAX, sizeof(*f))) == NULL) {
		r->verdict = APK_UNSAFE; /* cannot say why: not SAFE */
		r->n_findings_dropped++;
		return;
	}
	if (r->n_findings >= APK_FINDINGS_MAX) {
		r->n_findings_dropped++;
		return;
	}
	f = &r->findings[r->n_findings++];
	f->severity = sev;
	snprintf(f->code, sizeof(f->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
}

int
apk_report_has(const apk_report_t *r, const char *code)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (strcmp(r->findings[i].code, code) == 0)
			return 1;
	return 0;
}

static int
report_has_prefix(const apk_report_t *r, const char *prefix, apk_severity_t sev)
{
	size_t n = strlen(prefix);

	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].severity >= sev && strncmp(r->findings[i].code, prefix, n) == 0)
			return 1;
	return 0;
}

/* The whole file's SHA-256. */
static int
analyse_file_digest(const apkzip_t *z, const apk_mds_t *mds, uint8_t *out, err_t *err)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t *piece = malloc(PIECE);
	int rc = -1;

	if (c == NULL || piece == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	if (!EVP_DigestInit_ex(c, mds->sha256, NULL)) {
		err_set_ossl(err, STB_INTERNAL, "digest");
		goto out;
	}
	for (uint64_t off = 0; off < z->size;) {
		size_t n = z->size - off < PIECE ? (size_t)(z->size - off) : PIECE;

		if (apkzip_pread(z, off, piece, n, err) < 0)
			goto out;
		if (!EVP_DigestUpdate(c, piece, n)) {
			err_set_ossl(err, STB_INTERNAL, "digest");
			goto out;
		}
		off += n;
	}
	if (!EVP_DigestFinal_ex(c, out, NULL)) {
		err_set_ossl(err, STB_INTERNAL, "digest");
		goto out;
	}
	rc = 0;
out:
	free(piece);
	EVP_MD_CTX_free(c);
	return rc;
}

static int
is_dex_name(const char *name)
{
	size_t i = 7;

	if (strncmp(name, "classes", 7) != 0)
		return 0;
	while (isdigit((unsigned char)name[i]))
		i++;
	return strcmp(name + i, ".dex") == 0;
}

typedef struct dex_sink {
	EVP_MD_CTX *md;
	uint8_t hdr[DEX_HEADER];
	size_t have;
} dex_sink_t;

static int
dex_sink(void *arg, const uint8_t *p, size_t n, err_t *err)
{
	dex_sink_t *d = arg;

	if (d->have < DEX_HEADER) {
		size_t take = DEX_HEADER - d->have < n ? DEX_HEADER - d->have : n;

		memcpy(d->hdr + d->have, p, take);
		d->have += take;
	}
	if (!EVP_DigestUpdate(d->md, p, n))
		return err_set_ossl(err, STB_INTERNAL, "digest");
	return 0;
}

/* The DEX header: magic "dex\n0NN\0", header size, file size, endian. */
static const char *
dex_header_problem(const dex_sink_t *d, uint64_t size)
{
	const uint8_t *h = d->hdr;

	if (d->have < DEX_HEADER)
		return "shorter than a DEX header";
	if (memcmp(h, "dex\n0", 5) != 0 || !isdigit(h[5]) || !isdigit(h[6]) || h[7] != 0)
		return "no DEX magic";
	if (load_le32(h + 36) != DEX_HEADER)
		return "a header size other than 0x70";
	if (load_le32(h + 40) != 0x12345678u)
		return "not little-endian";
	if (load_le32(h + 32) != size)
		return "a file size other than the entry's";
	return NULL;
}

static int
analyse_dex(apkzip_t *z, apk_ctx_t *ctx, const blocklist_t *bl, apk_report_t *r, err_t *err)
{
	for (size_t i = 0; i < z->n; i++) {
		const apkzip_entry_t *e = &z->ent[i];
		dex_sink_t ds = {0};
		const char *why;
		apk_dex_t *x;
		err_t rerr;

		if (!is_dex_name(e->name) || apkzip_find(z, e->name) != e)
			continue;
		if (r->n_dex >= APK_DEX_MAX) {
			apk_report_add(r, APK_SEV_UNSAFE, "apk.too_many_dex",
			               "more than %d DEX files", APK_DEX_MAX);
			return 0;
		}
		if (r->dex == NULL && (r->dex = calloc(APK_DEX_MAX, sizeof(*r->dex))) == NULL)
			return err_set(err, STB_INTERNAL, "out of memory");
		if ((ds.md = EVP_MD_CTX_new()) == NULL ||
		    !EVP_DigestInit_ex(ds.md, ctx->mds.sha256, NULL)) {
			EVP_MD_CTX_free(ds.md);
			return err_set_ossl(err, STB_INTERNAL, "digest");
		}
		if (apkzip_read(z, e, dex_sink, &ds, &rerr) < 0) {
			EVP_MD_CTX_free(ds.md);
			apk_report_add(r, APK_SEV_UNSAFE, "apk.dex_unreadable", "%.128s: %s",
			               e->name, rerr.msg);
			continue;
		}
		x = &r->dex[r->n_dex++];
		snprintf(x->name, sizeof(x->name), "%s", e->name);
		if (!EVP_DigestFinal_ex(ds.md, x->sha256, NULL)) {
			EVP_MD_CTX_free(ds.md);
			return err_set_ossl(err, STB_INTERNAL, "digest");
		}
		EVP_MD_CTX_free(ds.md);
		if ((why = dex_header_problem(&ds, e->usize)) != NULL)
			apk_report_add(r, APK_SEV_UNSAFE, "apk.dex_malformed", "%.128s: %s",
			               e->name, why);
		if (blocklist_has(bl, x->sha256))
			apk_report_add(r, APK_SEV_UNSAFE, "blocklist.dex",
			               "%.128s is on the blocklist", e->name);
	}
	if (apkzip_find(z, "classes.dex") == NULL)
		apk_report_add(r, APK_SEV_UNSAFE, "apk.no_dex",
		               "no classes.dex (no code Android would run, or "
		               "code hidden elsewhere)");
	return 0;
}

/* AndroidManifest.xml: package, version, permissions. */
static int
analyse_manifest(apkzip_t *z, apk_ctx_t *ctx, apk_report_t *r, int64_t *min_sdk, err_t *err)
{
	const apkzip_entry_t *e = apkzip_find(z, "AndroidManifest.xml");
	axml_manifest_t m;
	buf_t b;
	err_t perr;
	int rc = 0;

	*min_sdk = -1;
	if (e == NULL) {
		apk_report_add(r, APK_SEV_UNSAFE, "apk.no_manifest", "no AndroidManifest.xml");
		return 0;
	}
	buf_init(&b, MANIFEST_MAX);
	if (apkzip_read_buf(z, e, &b, &perr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "apk.manifest_malformed",
		               "AndroidManifest.xml: %s", perr.msg);
		buf_free(&b);
		return 0;
	}
	if (axml_manifest_parse(b.data, b.len, &m, &perr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "apk.manifest_malformed",
		               "AndroidManifest.xml: %s", perr.msg);
		goto out;
	}
	snprintf(r->package, sizeof(r->package), "%s", m.package);
	snprintf(r->version_name, sizeof(r->version_name), "%s", m.version_name);
	r->version_code = m.version_code;
	*min_sdk = m.min_sdk;
	if (m.package[0] == '\0')
		apk_report_add(r, APK_SEV_UNSAFE, "apk.manifest_malformed",
		               "AndroidManifest.xml names no package");
	if (m.n_perms_dropped > 0)
		apk_report_add(r, APK_SEV_UNSAFE, "perm.too_many", "more than %d permissions",
		               AXML_PERMS_MAX);
	r->perms = m.perms;
	r->n_perms = m.n_perms;
	m.perms = NULL;
	m.n_perms = 0;
	for (size_t i = 0; i < r->n_perms; i++)
		for (size_t j = 0; j < ctx->n_dangerous; j++)
			if (strcmp(r->perms[i], ctx->dangerous[j]) == 0)
				apk_report_add(r, APK_SEV_UNSAFE, "perm.dangerous",
				               "asks for %.128s", r->perms[i]);
out:
	axml_manifest_free(&m);
	buf_free(&b);
	(void)err;
	return rc;
}

/* The schemes against each other, as Android and apksigner see them. */
static void
analyse_schemes(apk_report_t *r, const apkv1_result_t *v1, const apksig_result_t *v23,
                int64_t min_sdk)
{
	int any =
	    r->v1 == APK_SIG_VERIFIED || r->v2 == APK_SIG_VERIFIED || r->v3 == APK_SIG_VERIFIED;
	int failed = r->v1 == APK_SIG_FAILED || r->v2 == APK_SIG_FAILED || r->v3 == APK_SIG_FAILED;

	if (v1->apk_signed_v2 && r->v2 == APK_SIG_ABSENT)
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v2.stripped",
		               "the v1 signature says the package was signed "
		               "with v2, and the v2 signature is gone");
	if (v1->apk_signed_v3 && r->v3 == APK_SIG_ABSENT && !apk_report_has(r, "sig.v3.stripped"))
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v3.stripped",
		               "the v1 signature says the package was signed "
		               "with v3, and the v3 signature is gone");
	if (v1->verified && v23->has_v2 && memcmp(v1->cert, v23->v2_cert, 32))
		apk_report_add(r, APK_SEV_UNSAFE, "sig.signer_mismatch",
		               "the v1 and v2 signers are not the same");
	if (!any && !failed)
		apk_report_add(r, APK_SEV_UNSAFE, "sig.unsigned", "the package is not signed");
	else if (any && r->v1 != APK_SIG_VERIFIED && min_sdk < ANDROID_V2_SDK)
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.missing",
		               "minSdkVersion %lld: Android before 7.0 needs a "
		               "v1 signature",
		               (long long)(min_sdk < 0 ? 1 : min_sdk));
	if (v23->has_v3) {
		memcpy(r->signer_sha256, v23->v3_cert, 32);
		r->has_signer = 1;
	} else if (v23->has_v2) {
		memcpy(r->signer_sha256, v23->v2_cert, 32);
		r->has_signer = 1;
	} else if (v1->verified) {
		memcpy(r->signer_sha256, v1->cert, 32);
		r->has_signer = 1;
	}
	r->signature_ok = any && !failed && !report_has_prefix(r, "sig.", APK_SEV_UNSAFE) &&
	                  !apk_report_has(r, "zip.duplicate_entry") &&
	                  !report_has_prefix(r, "zip.malformed", APK_SEV_UNSAFE) &&
	                  !apk_report_has(r, "zip.inconsistent");
}

int
apk_analyse(apk_ctx_t *ctx, const char *path, apk_report_t *r, err_t *err)
{
	apkv1_result_t v1 = {0};
	apksig_result_t v23 = {0};
	blocklist_t *bl;
	int64_t min_sdk = -1;
	apkzip_t z;
	int rc = -1;

	apk_report_init(r);
	pthread_mutex_lock(&ctx->lock);
	bl = ctx->bl;
	atomic_fetch_add(&bl->refs, 1);
	pthread_mutex_unlock(&ctx->lock);
	memcpy(r->blocklist_sha256, bl->file_sha256, APK_SHA256_LEN);

	if (apkzip_open(&z, path, &ctx->conf, r, err) < 0)
		goto out;
	r->size = z.size;
	if (analyse_file_digest(&z, &ctx->mds, r->sha256, err) < 0)
		goto out;
	if (blocklist_has(bl, r->sha256))
		apk_report_add(r, APK_SEV_UNSAFE, "blocklist.package",
		               "the package is on the blocklist");
	if (z.n > 0) {
		if (analyse_manifest(&z, ctx, r, &min_sdk, err) < 0 ||
		    analyse_dex(&z, ctx, bl, r, err) < 0 ||
		    apksig_verify(&z, &ctx->mds, r, &v23, err) < 0 ||
		    apkv1_verify(&z, &ctx->mds, r, &v1, err) < 0)
			goto out;
		analyse_schemes(r, &v1, &v23, min_sdk);
	}
	if (ctx->clam != NULL && clam_scan(ctx->clam, z.fd, path, r, err) < 0)
		goto out;
	rc = 0;
out:
	apkzip_close(&z);
	blocklist_put(bl);
	return rc;
}

const char *
apk_verdict_name(apk_verdict_t v)
{
	return v == APK_SAFE ? "SAFE" : "UNSAFE";
}

const char *
apk_severity_name(apk_severity_t s)
{
	switch (s) {
	case APK_SEV_INFO:
		return "info";
	case APK_SEV_WARN:
		return "warn";
	case APK_SEV_UNSAFE:
		return "unsafe";
	}
	return "unknown";
}

const char *
apk_sig_state_name(apk_sig_state_t s)
{
	switch (s) {
	case APK_SIG_ABSENT:
		return "absent";
	case APK_SIG_VERIFIED:
		return "verified";
	case APK_SIG_FAILED:
		return "failed";
	}
	return "unknown";
}

static cJSON *
json_hex(const uint8_t *p, size_t n)
{
	char s[2 * 64 + 1];

	hex_encode(p, n, s);
	s[2 * n] = '\0';
	return cJSON_CreateString(s);
}

char *
apk_report_json(const apk_report_t *r, err_t *err)
{
	cJSON *o = cJSON_CreateObject(), *a, *x;
	char *s = NULL;

	if (o == NULL)
		goto oom;
	cJSON_AddItemToObject(o, "sha256", json_hex(r->sha256, 32));
	cJSON_AddNumberToObject(o, "size", (double)r->size);
	cJSON_AddNumberToObject(o, "entries", (double)r->entries);
	cJSON_AddStringToObject(o, "package", r->package);
	cJSON_AddStringToObject(o, "version_name", r->version_name);
	cJSON_AddNumberToObject(o, "version_code", (double)r->version_code);
	if ((a = cJSON_AddArrayToObject(o, "dex")) == NULL)
		goto oom;
	for (size_t i = 0; i < r->n_dex; i++) {
		if ((x = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(a, x);
		cJSON_AddStringToObject(x, "name", r->dex[i].name);
		cJSON_AddItemToObject(x, "sha256", json_hex(r->dex[i].sha256, 32));
	}
	if ((x = cJSON_AddObjectToObject(o, "schemes")) == NULL)
		goto oom;
	cJSON_AddStringToObject(x, "v1", apk_sig_state_name(r->v1));
	cJSON_AddStringToObject(x, "v2", apk_sig_state_name(r->v2));
	cJSON_AddStringToObject(x, "v3", apk_sig_state_name(r->v3));
	cJSON_AddBoolToObject(o, "signature_ok", r->signature_ok);
	if (r->has_signer)
		cJSON_AddItemToObject(o, "signer_sha256", json_hex(r->signer_sha256, 32));
	if ((a = cJSON_AddArrayToObject(o, "permissions")) == NULL)
		goto oom;
	for (size_t i = 0; i < r->n_perms; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(r->perms[i]));
	if ((a = cJSON_AddArrayToObject(o, "findings")) == NULL)
		goto oom;
	for (size_t i = 0; i < r->n_findings; i++) {
		if ((x = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(a, x);
		cJSON_AddStringToObject(x, "code", r->findings[i].code);
		cJSON_AddStringToObject(x, "severity", apk_severity_name(r->findings[i].severity));
		cJSON_AddStringToObject(x, "reason", r->findings[i].reason);
	}
	if (r->n_findings_dropped > 0)
		cJSON_AddNumberToObject(o, "findings_dropped", (double)r->n_findings_dropped);
	cJSON_AddItemToObject(o, "blocklist_sha256", json_hex(r->blocklist_sha256, 32));
	cJSON_AddStringToObject(o, "verdict", apk_verdict_name(r->verdict));
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		goto oom;
	cJSON_Delete(o);
	return s;
oom:
	cJSON_Delete(o);
	err_set(err, STB_INTERNAL, "out of memory");
	return NULL;
}
