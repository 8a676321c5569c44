/* Unit tests for appvetd's APK analysis (src/appvetd/apk.h, apkzip.c,
 * axml.c, apksig.c, apkv1.c, clam.c) on the fixtures of
 * tests/fixtures/make-apks.sh (argv[1]: their directory). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apk.h"
#include "apksig.h"
#include "axml.h"
#include "testutil.h"

static const char *fx; /* the fixtures' directory */

static const char *
fx_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", fx, name);
	return out;
}

static apk_ctx_t *
ctx_with(const apk_conf_t *conf)
{
	err_t err;
	apk_ctx_t *ctx = apk_ctx_new(conf, &err);

	if (ctx == NULL)
		fail_msg("apk_ctx_new: %s", err.msg);
	return ctx;
}

static void
analyse(apk_ctx_t *ctx, const char *name, apk_report_t *r)
{
	char path[512];
	err_t err;

	if (apk_analyse(ctx, fx_path(path, sizeof(path), name), r, &err) < 0)
		fail_msg("apk_analyse %s: %s", name, err.msg);
}

static int
has(const apk_report_t *r, const char *code)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (strcmp(r->findings[i].code, code) == 0)
			return 1;
	return 0;
}

static void
dump_findings(const char *name, const apk_report_t *r)
{
	for (size_t i = 0; i < r->n_findings; i++)
		print_message("  %s: %s %s\n", name, r->findings[i].code, r->findings[i].reason);
}

/* Every fixture: its verdict, schemes and the finding that says why. */
static void
test_fixtures(void **state)
{
	static const struct {
		const char *apk;
		apk_verdict_t verdict;
		apk_sig_state_t v1, v2, v3;
		const char *code, *code2; /* must be there (or NULL) */
	} cases[] = {
	    /* eicar.apk is SAFE without ClamAV (see test_clamav) */
	    {"v1.apk", APK_SAFE, APK_SIG_VERIFIED, APK_SIG_ABSENT, APK_SIG_ABSENT, NULL, NULL},
	    {"v1-sha256.apk", APK_SAFE, APK_SIG_VERIFIED, APK_SIG_ABSENT, APK_SIG_ABSENT, NULL,
	     NULL},
	    {"v2.apk", APK_SAFE, APK_SIG_ABSENT, APK_SIG_VERIFIED, APK_SIG_ABSENT, NULL, NULL},
	    {"v2ec.apk", APK_SAFE, APK_SIG_ABSENT, APK_SIG_VERIFIED, APK_SIG_ABSENT, NULL, NULL},
	    {"v1v2.apk", APK_SAFE, APK_SIG_VERIFIED, APK_SIG_VERIFIED, APK_SIG_ABSENT, NULL, NULL},
	    {"v3.apk", APK_SAFE, APK_SIG_VERIFIED, APK_SIG_VERIFIED, APK_SIG_VERIFIED, NULL, NULL},
	    {"eicar.apk", APK_SAFE, APK_SIG_VERIFIED, APK_SIG_VERIFIED, APK_SIG_ABSENT, NULL, NULL},
	    {"modified.apk", APK_UNSAFE, APK_SIG_FAILED, APK_SIG_FAILED, APK_SIG_ABSENT,
	     "sig.v2.digest_mismatch", "sig.v1.digest_mismatch"},
	    {"v2-minsdk14.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_VERIFIED, APK_SIG_ABSENT,
	     "sig.v1.missing", NULL},
	    {"modified-v2.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_FAILED, APK_SIG_ABSENT,
	     "sig.v2.digest_mismatch", NULL},
	    {"modified-v1.apk", APK_UNSAFE, APK_SIG_FAILED, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "sig.v1.digest_mismatch", NULL},
	    {"appended.apk", APK_UNSAFE, APK_SIG_FAILED, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "sig.v1.unsigned_entry", "sig.v2.stripped"},
	    {"unsigned.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "sig.unsigned", NULL},
	    {"duplicate.apk", APK_UNSAFE, APK_SIG_VERIFIED, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "zip.duplicate_entry", NULL},
	    {"traversal.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "zip.path_traversal", "zip.absolute_path"},
	    {"bomb.apk", APK_UNSAFE, APK_SIG_VERIFIED, APK_SIG_VERIFIED, APK_SIG_ABSENT,
	     "zip.ratio", NULL},
	    {"nomanifest.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "apk.no_manifest", NULL},
	    {"baddex.apk", APK_UNSAFE, APK_SIG_ABSENT, APK_SIG_ABSENT, APK_SIG_ABSENT,
	     "apk.dex_malformed", NULL},
	    {"perms.apk", APK_UNSAFE, APK_SIG_VERIFIED, APK_SIG_VERIFIED, APK_SIG_ABSENT,
	     "perm.dangerous", NULL},
	};
	apk_conf_t conf;
	apk_ctx_t *ctx;

	(void)state;
	apk_conf_default(&conf);
	ctx = ctx_with(&conf);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		apk_report_t r;

		analyse(ctx, cases[i].apk, &r);
		if (r.verdict != cases[i].verdict || r.v1 != cases[i].v1 || r.v2 != cases[i].v2 ||
		    r.v3 != cases[i].v3 || (cases[i].code != NULL && !has(&r, cases[i].code)) ||
		    (cases[i].code2 != NULL && !has(&r, cases[i].code2))) {
			dump_findings(cases[i].apk, &r);
			fail_msg("%s: verdict %s v1 %s v2 %s v3 %s", cases[i].apk,
			         apk_verdict_name(r.verdict), apk_sig_state_name(r.v1),
			         apk_sig_state_name(r.v2), apk_sig_state_name(r.v3));
		}
		/* a SAFE one has no finding at all, and names its signer */
		if (cases[i].verdict == APK_SAFE) {
			if (r.n_findings != 0 || !r.has_signer || !r.signature_ok)
				fail_msg("%s: SAFE with %zu findings", cases[i].apk, r.n_findings);
			assert_string_equal(r.package, strcmp(cases[i].apk, "eicar.apk") == 0
			                                   ? "org.stbcred.eicar"
			                                   : "org.stbcred.app");
		}
		apk_report_free(&r);
	}
	apk_ctx_free(ctx);
}

/* What the report holds for the common case: digests, manifest, perms. */
static void
test_report(void **state)
{
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;
	char *json;
	err_t err;
	FILE *f;
	char path[512], line[256];

	(void)state;
	apk_conf_default(&conf);
	ctx = ctx_with(&conf);
	analyse(ctx, "perms.apk", &r);
	assert_string_equal(r.package, "org.stbcred.perms");
	assert_string_equal(r.version_name, "1.7");
	assert_int_equal(r.version_code, 7);
	assert_int_equal(r.n_perms, 4);
	assert_string_equal(r.perms[0], "android.permission.INTERNET");
	assert_string_equal(r.perms[3], "android.permission.SEND_SMS");
	assert_int_equal(r.n_dex, 1);
	assert_string_equal(r.dex[0].name, "classes.dex");
	/* three dangerous ones, INTERNET is not */
	{
		size_t n = 0;

		for (size_t i = 0; i < r.n_findings; i++)
			n += strcmp(r.findings[i].code, "perm.dangerous") == 0;
		assert_int_equal(n, 3);
	}
	assert_non_null(json = apk_report_json(&r, &err));
	assert_non_null(strstr(json, "\"verdict\":\"UNSAFE\""));
	assert_non_null(strstr(json, "\"code\":\"perm.dangerous\""));
	free(json);
	apk_report_free(&r);

	/* the signer is the fixtures' RSA certificate (openssl's digest) */
	analyse(ctx, "v1v2.apk", &r);
	{
		char hex[65], cmd[1024];

		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", r.signer_sha256[i]);
		snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -outform DER | sha256sum",
		         fx_path(path, sizeof(path), "rsa.crt"));
		assert_non_null(f = popen(cmd, "r"));
		assert_non_null(fgets(line, sizeof(line), f));
		pclose(f);
		assert_memory_equal(line, hex, 64);
	}
	apk_report_free(&r);
	apk_ctx_free(ctx);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
hexof(const uint8_t *d, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The package's and a DEX's digest on the blocklist; a reload turns a SAFE
 * package UNSAFE; a bad line is refused and the old list stays. */
static void
test_blocklist(void **state)
{
	const char *dir = tu_dir;

	(void)state;
	char bl[512], text[512], pkg[65], dex[65];
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;
	err_t err;

	snprintf(bl, sizeof(bl), "%s/blocklist", dir);
	write_file(bl, "# empty for now\n\n");
	apk_conf_default(&conf);
	conf.blocklist_path = bl;
	ctx = ctx_with(&conf);
	analyse(ctx, "v1v2.apk", &r);
	assert_int_equal(r.verdict, APK_SAFE);
	hexof(r.sha256, pkg);
	apk_report_free(&r);
	analyse(ctx, "v1.apk", &r);
	assert_int_equal(r.verdict, APK_SAFE);
	hexof(r.dex[0].sha256, dex);
	apk_report_free(&r);

	snprintf(text, sizeof(text), "# flow E test list\n%s  v1v2.apk, blocked\n  %s # a dex\n",
	         pkg, dex);
	write_file(bl, text);
	assert_int_equal(apk_ctx_reload_blocklist(ctx, &err), 0);
	analyse(ctx, "v1v2.apk", &r);
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_true(has(&r, "blocklist.package"));
	apk_report_free(&r);
	/* v1.apk shares the DEX of app (the same unsigned build) */
	analyse(ctx, "v1.apk", &r);
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_true(has(&r, "blocklist.dex"));
	assert_false(has(&r, "blocklist.package"));
	apk_report_free(&r);

	write_file(bl, "not-a-digest\n");
	assert_int_equal(apk_ctx_reload_blocklist(ctx, &err), -1);
	assert_non_null(strstr(err.msg, ":1:"));
	analyse(ctx, "v1v2.apk", &r);
	assert_true(has(&r, "blocklist.package")); /* the old list stays */
	apk_report_free(&r);
	apk_ctx_free(ctx);

	/* a digest one character short is no digest */
	write_file(bl, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	               "abcde\n");
	assert_null(apk_ctx_new(&conf, &err));
}

/* A small custom database (an .ndb body signature of the EICAR string, made
 * here) finds the EICAR file inside eicar.apk, and nothing in v1v2.apk. */
static void
test_clamav(void **state)
{
	const char *dir = tu_dir;

	(void)state;
	static const char eicar_part[] = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE";
	char db[512], line[256];
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;
	size_t n;

	snprintf(db, sizeof(db), "%s/stbcred.ndb", dir);
	n = (size_t)snprintf(line, sizeof(line), "Stbcred.Test.EICAR:0:*:");
	for (size_t i = 0; i < sizeof(eicar_part) - 1; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x",
		                      (unsigned char)eicar_part[i]);
	snprintf(line + n, sizeof(line) - n, "\n");
	write_file(db, line);
	apk_conf_default(&conf);
	conf.clamav_db = db;
	ctx = ctx_with(&conf);
	analyse(ctx, "eicar.apk", &r);
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_true(has(&r, "clamav.match"));
	apk_report_free(&r);
	analyse(ctx, "v1v2.apk", &r);
	assert_int_equal(r.verdict, APK_SAFE);
	apk_report_free(&r);
	apk_ctx_free(ctx);
}

/* The caps: past the total nothing is inflated; past the entry count the
 * archive is not even listed. */
static void
test_caps(void **state)
{
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;

	(void)state;
	apk_conf_default(&conf);
	conf.max_total_uncompressed = 64u << 20; /* bomb.apk: 100 MiB */
	ctx = ctx_with(&conf);
	analyse(ctx, "bomb.apk", &r);
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_true(has(&r, "zip.too_large"));
	assert_int_equal(r.n_dex, 0);             /* nothing inflated */
	assert_int_equal(r.v1, APK_SIG_FAILED);   /* so v1 cannot verify */
	assert_int_equal(r.v2, APK_SIG_VERIFIED); /* v2 reads raw bytes */
	apk_report_free(&r);
	apk_ctx_free(ctx);

	apk_conf_default(&conf);
	conf.max_entries = 3;
	ctx = ctx_with(&conf);
	analyse(ctx, "v1v2.apk", &r);
	assert_true(has(&r, "zip.too_many_entries"));
	assert_int_equal(r.verdict, APK_UNSAFE);
	apk_report_free(&r);
	apk_ctx_free(ctx);
}

static uint8_t *
read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	assert_non_null(p = malloc((size_t)len));
	assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return p;
}

static void
write_all(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* An entry whose declared size lies (smaller than what it inflates to):
 * reading stops at the declared size instead of trusting the stream. */
static void
test_lying_size(void **state)
{
	const char *dir = tu_dir;

	(void)state;
	char path[512], out[512];
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;
	size_t n, patched = 0;
	uint8_t *p;

	p = read_all(fx_path(path, sizeof(path), "bomb.apk"), &n);
	/* assets/zeros.bin: its uncompressed size, in the local header (at
	 * 22) and the central directory entry (at 24), down to 1 MiB */
	for (size_t i = 0; i + 46 < n; i++) {
		size_t at;

		if (memcmp(p + i, "PK\3\4", 4) == 0 &&
		    memcmp(p + i + 30, "assets/zeros.bin", 16) == 0)
			at = i + 22;
		else if (memcmp(p + i, "PK\1\2", 4) == 0 &&
		         memcmp(p + i + 46, "assets/zeros.bin", 16) == 0)
			at = i + 24;
		else
			continue;
		p[at] = 0;
		p[at + 1] = 0;
		p[at + 2] = 0x10;
		p[at + 3] = 0;
		patched++;
	}
	assert_int_equal(patched, 2);
	snprintf(out, sizeof(out), "%s/liar.apk", dir);
	write_all(out, p, n);
	free(p);
	apk_conf_default(&conf);
	conf.max_ratio = 1000000; /* the ratio is not what catches it */
	ctx = ctx_with(&conf);
	{
		err_t err;

		assert_int_equal(apk_analyse(ctx, out, &r, &err), 0);
	}
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_int_equal(r.v1, APK_SIG_FAILED);
	assert_true(has(&r, "sig.v1.unreadable"));
	/* stopped by the count, not after inflating all of it */
	{
		int stopped = 0;

		for (size_t i = 0; i < r.n_findings; i++)
			stopped |= strstr(r.findings[i].reason, "past its declared size") != NULL;
		assert_true(stopped);
	}
	apk_report_free(&r);
	apk_ctx_free(ctx);
}

/* Not a ZIP at all is a finding; a file that is not there is an error. */
static void
test_not_zip(void **state)
{
	char path[512];
	apk_conf_t conf;
	apk_ctx_t *ctx;
	apk_report_t r;
	err_t err;

	(void)state;
	snprintf(path, sizeof(path), "%s/text.apk", tu_dir);
	write_file(path, "not a zip archive\n");
	apk_conf_default(&conf);
	ctx = ctx_with(&conf);
	assert_int_equal(apk_analyse(ctx, path, &r, &err), 0);
	assert_int_equal(r.verdict, APK_UNSAFE);
	assert_true(has(&r, "zip.not_zip"));
	assert_int_equal(r.size, 18);
	apk_report_free(&r);
	snprintf(path, sizeof(path), "%s/absent.apk", tu_dir);
	assert_int_equal(apk_analyse(ctx, path, &r, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	apk_report_free(&r);
	apk_ctx_free(ctx);
}

typedef struct thr {
	apk_ctx_t *ctx;
	int bad;
} thr_t;

static void *
thr_main(void *arg)
{
	thr_t *t = arg;
	static const char *const names[] = {"v1v2.apk", "modified.apk", "v3.apk", "perms.apk"};

	for (int i = 0; i < 8; i++) {
		char path[512];
		apk_report_t r;
		err_t err;
		const char *name = names[i % 4];
		int want_safe = i % 4 == 0 || i % 4 == 2;

		if (apk_analyse(t->ctx, fx_path(path, sizeof(path), name), &r, &err) < 0 ||
		    (r.verdict == APK_SAFE) != want_safe)
			t->bad++;
		apk_report_free(&r);
	}
	return NULL;
}

/* One ctx, several threads at once (the worker pool's way). */
static void
test_threads(void **state)
{
	pthread_t th[4];
	thr_t t[4];
	apk_conf_t conf;
	apk_ctx_t *ctx;

	(void)state;
	apk_conf_default(&conf);
	ctx = ctx_with(&conf);
	for (int i = 0; i < 4; i++) {
		t[i] = (thr_t){ctx, 0};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	apk_ctx_free(ctx);
}

/* The manifest of v1v2.apk out of the archive, by unzip(1). */
static uint8_t *
manifest_bytes(size_t *n)
{
	char cmd[1024];
	FILE *f;
	uint8_t *p = malloc(1 << 20);

	assert_non_null(p);
	snprintf(cmd, sizeof(cmd), "unzip -p %s/v1v2.apk AndroidManifest.xml", fx);
	assert_non_null(f = popen(cmd, "r"));
	*n = fread(p, 1, 1 << 20, f);
	pclose(f);
	assert_true(*n > 100);
	return p;
}

/* Every truncation and many single-byte changes of a real manifest are
 * refused or read, never read out of bounds (ASan watches). */
static void
test_axml_bounds(void **state)
{
	axml_manifest_t m;
	size_t n;
	uint8_t *p = manifest_bytes(&n), *q;
	err_t err;

	(void)state;
	assert_int_equal(axml_manifest_parse(p, n, &m, &err), 0);
	assert_string_equal(m.package, "org.stbcred.app");
	assert_int_equal(m.min_sdk, 14);
	assert_int_equal(m.n_perms, 1);
	axml_manifest_free(&m);
	for (size_t len = 0; len < n; len++) {
		/* exactly-sized copies, so ASan sees any read past the end */
		assert_non_null(q = malloc(len ? len : 1));
		memcpy(q, p, len);
		assert_int_equal(axml_manifest_parse(q, len, &m, &err), -1);
		axml_manifest_free(&m);
		free(q);
	}
	assert_non_null(q = malloc(n));
	for (size_t i = 0; i < n; i++) {
		memcpy(q, p, n);
		q[i] ^= 0xa5;
		(void)axml_manifest_parse(q, n, &m, &err);
		axml_manifest_free(&m);
	}
	free(q);
	free(p);
}

/* A UTF-8 string pool (aapt writes UTF-16 for manifests): a document
 * built here with <manifest package="x.y"><uses-permission
 * android:name="a.B"/></manifest>. */
static size_t
put16(uint8_t *p, size_t at, unsigned v)
{
	p[at] = (uint8_t)v;
	p[at + 1] = (uint8_t)(v >> 8);
	return at + 2;
}

static size_t
put32(uint8_t *p, size_t at, uint32_t v)
{
	at = put16(p, at, v & 0xffff);
	return put16(p, at, v >> 16);
}

static size_t
elem(uint8_t *p, size_t at, uint32_t name, uint32_t (*attrs)[3], int nattrs)
{
	size_t start = at;

	at = put16(p, at, 0x0102);
	at = put16(p, at, 16);
	at = put32(p, at, (uint32_t)(36 + 20 * nattrs));
	at = put32(p, at, 1);
	at = put32(p, at, 0xffffffffu);
	at = put32(p, at, 0xffffffffu); /* ns */
	at = put32(p, at, name);
	at = put16(p, at, 20);
	at = put16(p, at, 20);
	at = put16(p, at, (unsigned)nattrs);
	at = put16(p, at, 0);
	at = put16(p, at, 0);
	at = put16(p, at, 0);
	for (int i = 0; i < nattrs; i++) {
		at = put32(p, at, attrs[i][0]); /* ns */
		at = put32(p, at, attrs[i][1]); /* name */
		at = put32(p, at, attrs[i][2]); /* raw value */
		at = put16(p, at, 8);
		p[at++] = 0;
		p[at++] = 0x03;
		at = put32(p, at, attrs[i][2]);
	}
	(void)start;
	return at;
}

static size_t
end_elem(uint8_t *p, size_t at, uint32_t name)
{
	at = put16(p, at, 0x0103);
	at = put16(p, at, 16);
	at = put32(p, at, 24);
	at = put32(p, at, 1);
	at = put32(p, at, 0xffffffffu);
	at = put32(p, at, 0xffffffffu);
	return put32(p, at, name);
}

static void
test_axml_utf8(void **state)
{
	static const char *const strs[] = {"manifest",
	                                   "package",
	                                   "x.y",
	                                   "uses-permission",
	                                   "name",
	                                   "a.B",
	                                   "http://schemas.android.com/apk/res/android"};
	enum { S_MANIFEST, S_PACKAGE, S_XY, S_USES, S_NAME, S_AB, S_NS };
	uint8_t p[1024] = {0};
	size_t at = 8, pool, data;
	uint32_t rattrs[1][3] = {{0xffffffffu, S_PACKAGE, S_XY}};
	uint32_t pattrs[1][3] = {{S_NS, S_NAME, S_AB}};
	axml_manifest_t m;
	err_t err;

	(void)state;
	/* the string pool */
	pool = at;
	at = put16(p, at, 0x0001);
	at = put16(p, at, 28);
	at += 4; /* size, below */
	at = put32(p, at, 7);
	at = put32(p, at, 0);
	at = put32(p, at, 0x100); /* UTF-8 */
	at = put32(p, at, 28 + 4 * 7);
	at = put32(p, at, 0);
	data = 0;
	for (int i = 0; i < 7; i++) {
		at = put32(p, at, (uint32_t)data);
		data += strlen(strs[i]) + 3;
	}
	for (int i = 0; i < 7; i++) {
		size_t l = strlen(strs[i]);

		p[at++] = (uint8_t)l;
		p[at++] = (uint8_t)l;
		memcpy(p + at, strs[i], l);
		at += l + 1;
	}
	while (at % 4)
		at++;
	put32(p, pool + 4, (uint32_t)(at - pool));
	/* no resource map: android:name is matched by name and namespace */
	at = elem(p, at, S_MANIFEST, rattrs, 1);
	at = elem(p, at, S_USES, pattrs, 1);
	at = end_elem(p, at, S_USES);
	at = end_elem(p, at, S_MANIFEST);
	put16(p, 0, 0x0003);
	put16(p, 2, 8);
	put32(p, 4, (uint32_t)at);
	if (axml_manifest_parse(p, at, &m, &err) < 0)
		fail_msg("axml: %s", err.msg);
	assert_string_equal(m.package, "x.y");
	assert_int_equal(m.n_perms, 1);
	assert_string_equal(m.perms[0], "a.B");
	axml_manifest_free(&m);
	/* an unbalanced document is refused */
	put32(p, 4, (uint32_t)(at - 24));
	assert_int_equal(axml_manifest_parse(p, at - 24, &m, &err), -1);
	axml_manifest_free(&m);
}

/* The signing block of v1v2.apk parses; every truncation, and a length
 * pointing past its holder, is refused. */
static void
test_apksig_parse(void **state)
{
	char path[512];
	size_t n, len = 0;
	uint8_t *p = read_all(fx_path(path, sizeof(path), "v1v2.apk"), &n);
	const uint8_t *magic = NULL;
	apksig_block_t b;
	uint64_t size;
	err_t err;
	uint8_t *blk;

	(void)state;
	for (size_t i = 0; i + 16 <= n; i++)
		if (memcmp(p + i, "APK Sig Block 42", 16) == 0)
			magic = p + i;
	assert_non_null(magic);
	memcpy(&size, magic - 8, 8); /* little-endian host */
	len = (size_t)size + 8;
	blk = (uint8_t *)magic + 16 - len;
	assert_int_equal(apksig_parse(blk, len, &b, &err), 0);
	assert_true(b.v2.present);
	assert_false(b.v2.malformed);
	assert_int_equal(b.v2.n_signers, 1);
	assert_true(b.v2.signers[0].n_sigs >= 1);
	assert_true(b.v2.signers[0].n_certs == 1);
	assert_false(b.v3.present);
	for (size_t k = 0; k < len; k++) {
		uint8_t *q = malloc(k ? k : 1);

		assert_non_null(q);
		memcpy(q, blk + len - k, k); /* its tail: magic kept */
		(void)apksig_parse(q, k, &b, &err);
		memcpy(q, blk, k); /* its head: no magic */
		assert_int_equal(apksig_parse(q, k, &b, &err), -1);
		free(q);
	}
	/* the v2 value's signer list length one byte too long */
	{
		uint8_t *q = malloc(len);

		assert_non_null(q);
		memcpy(q, blk, len);
		q[8 + 8 + 4] += 1;
		assert_int_equal(apksig_parse(q, len, &b, &err), 0);
		assert_true(b.v2.present && b.v2.malformed);
		free(q);
	}
	free(p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixtures),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test_setup_teardown(test_blocklist, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_clamav, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test_setup_teardown(test_lying_size, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_not_zip, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_axml_bounds),
	    cmocka_unit_test(test_axml_utf8),
	    cmocka_unit_test(test_apksig_parse),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_apk FIXTURES\n");
		return 2;
	}
	fx = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
