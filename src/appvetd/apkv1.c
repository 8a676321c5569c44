/* apkv1: JAR signature verification (see apkv1.h).  Which entries need a
 * digest, and the manifest's sections, follow apksig's V1SchemeVerifier. */
#include "apkv1.h"

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MF_MAX      (32u << 20) /* MANIFEST.MF and a .SF */
#define BLOCK_MAX   (1u << 20)
#define ATTRS_MAX   8
#define SIGNERS_MAX 8
#define VALUE_MAX   1024

typedef struct mf_attr {
	char name[64];
	char value[VALUE_MAX];
} mf_attr_t;

/* A section of a manifest or .SF: its raw bytes and the attributes this
 * check reads (Name, *-Digest*, X-Android-APK-Signed). */
typedef struct mf_section {
	size_t off, len;
	char *name; /* the Name attribute; NULL in the main section */
	size_t n_attrs;
	mf_attr_t *attrs;
} mf_section_t;

typedef struct mf {
	const uint8_t *p;
	size_t n;
	size_t n_sec;
	mf_section_t *sec; /* sec[0]: the main section */
	mf_section_t **by_name;
} mf_t;

static void
mf_free(mf_t *m)
{
	for (size_t i = 0; i < m->n_sec; i++) {
		free(m->sec[i].name);
		free(m->sec[i].attrs);
	}
	free(m->sec);
	free(m->by_name);
	memset(m, 0, sizeof(*m));
}

static int
mf_interesting(const char *name)
{
	size_t n = strlen(name);

	return strcasecmp(name, "Name") == 0 || strcasecmp(name, "X-Android-APK-Signed") == 0 ||
	       (n > 7 && strcasecmp(name + n - 7, "-Digest") == 0) ||
	       strcasestr(name, "-Digest-Manifest") != NULL;
}

/* One line at *pos (without its end of line); *next is past it. */
static size_t
mf_line(const mf_t *m, size_t pos, size_t *next)
{
	size_t e = pos;

	while (e < m->n && m->p[e] != '\r' && m->p[e] != '\n')
		e++;
	*next = e;
	if (*next < m->n && m->p[*next] == '\r')
		(*next)++;
	if (*next < m->n && m->p[*next] == '\n' && (*next == e || m->p[e] == '\r'))
		(*next)++;
	return e - pos;
}

static int
mf_add_attr(mf_section_t *s, const char *line, size_t len, err_t *err)
{
	const char *colon = memchr(line, ':', len);
	size_t nl, vl;
	mf_attr_t *a;
	char name[64];

	if (colon == NULL || colon == line || colon + 1 >= line + len || colon[1] != ' ')
		return err_set(err, STB_BAD_REQUEST,
		               "a manifest line without "
		               "\"name: value\"");
	nl = (size_t)(colon - line);
	if (nl >= sizeof(name))
		return 0; /* not one we read */
	memcpy(name, line, nl);
	name[nl] = '\0';
	if (!mf_interesting(name))
		return 0;
	vl = len - nl - 2;
	if (vl >= VALUE_MAX)
		return err_set(err, STB_BAD_REQUEST, "a manifest value too long");
	if (strcasecmp(name, "Name") == 0) {
		if (s->name != NULL)
			return err_set(err, STB_BAD_REQUEST, "two Name lines");
		/* the line is not NUL-terminated: no strndup */
		if ((s->name = malloc(vl + 1)) == NULL)
			return err_set(err, STB_INTERNAL, "out of memory");
		memcpy(s->name, colon + 2, vl);
		s->name[vl] = '\0';
		return 0;
	}
	if (s->n_attrs >= ATTRS_MAX)
		return err_set(err, STB_BAD_REQUEST, "too many digests");
	if (s->attrs == NULL && (s->attrs = calloc(ATTRS_MAX, sizeof(*s->attrs))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	a = &s->attrs[s->n_attrs++];
	memcpy(a->name, name, nl + 1);
	memcpy(a->value, colon + 2, vl);
	a->value[vl] = '\0';
	return 0;
}

static int
sec_cmp(const void *a, const void *b)
{
	const mf_section_t *x = *(mf_section_t *const *)a;
	const mf_section_t *y = *(mf_section_t *const *)b;

	return strcmp(x->name, y->name);
}

/* Sections split by empty lines; a line starting with a space continues
 * the one before (joined here, at most VALUE_MAX). */
static int
mf_parse(mf_t *m, const uint8_t *p, size_t n, err_t *err)
{
	size_t pos = 0, cap = 0;
	char *line = malloc(VALUE_MAX + 64);
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->p = p;
	m->n = n;
	if (line == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	while (pos < n) {
		mf_section_t *s;
		size_t next, len;

		if (m->n_sec == cap) {
			size_t nc = cap ? cap * 2 : 64;
			mf_section_t *ns = realloc(m->sec, nc * sizeof(*ns));

			if (ns == NULL) {
				err_set(err, STB_INTERNAL, "out of memory");
				goto out;
			}
			m->sec = ns;
			cap = nc;
		}
		s = &m->sec[m->n_sec++];
		memset(s, 0, sizeof(*s));
		s->off = pos;
		while (pos < n) {
			size_t ll = 0;

			len = mf_line(m, pos, &next);
			if (len == 0) { /* the section's end */
				pos = next;
				break;
			}
			if (m->p[pos] == ' ') {
				err_set(err, STB_BAD_REQUEST, "a continuation line without a line");
				goto out;
			}
			for (;;) {
				size_t take = len < VALUE_MAX + 63 - ll ? len : VALUE_MAX + 63 - ll;

				memcpy(line + ll, m->p + pos, take);
				ll += take;
				pos = next;
				if (pos >= n || m->p[pos] != ' ')
					break;
				len = mf_line(m, pos + 1, &next);
				pos++;
			}
			if (mf_add_attr(s, line, ll, err) < 0)
				goto out;
		}
		s->len = pos - s->off;
		if (m->n_sec > 1 && s->name == NULL) {
			if (s->len == 0 || s->n_attrs == 0) {
				m->n_sec--; /* trailing empty lines */
				free(s->attrs);
				continue;
			}
			err_set(err, STB_BAD_REQUEST, "a section without Name");
			goto out;
		}
	}
	if (m->n_sec == 0) {
		err_set(err, STB_BAD_REQUEST, "an empty manifest");
		goto out;
	}
	if ((m->by_name = calloc(m->n_sec, sizeof(*m->by_name))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 1; i < m->n_sec; i++)
		m->by_name[i - 1] = &m->sec[i];
	qsort(m->by_name, m->n_sec - 1, sizeof(*m->by_name), sec_cmp);
	for (size_t i = 1; i + 1 < m->n_sec; i++)
		if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0) {
			err_set(err, STB_BAD_REQUEST, "two sections for \"%.128s\"",
			        m->by_name[i]->name);
			goto out;
		}
	rc = 0;
out:
	free(line);
	return rc;
}

static const mf_section_t *
mf_find(const mf_t *m, const char *name)
{
	mf_section_t key = {.name = (char *)name}, *kp = &key, **hit;

	if (m->n_sec < 2)
		return NULL;
	hit = bsearch(&kp, m->by_name, m->n_sec - 1, sizeof(*m->by_name), sec_cmp);
	return hit != NULL ? *hit : NULL;
}

/* The digest named by an attribute "<ALG><suffix>" (SHA1, SHA-1, SHA-256,
 * SHA-512), or NULL when the attribute is another one. */
static const EVP_MD *
mf_digest_of(const apk_mds_t *mds, const char *attr, const char *suffix)
{
	static const struct {
		const char *name;
		int which;
	} algs[] = {{"SHA1", 1}, {"SHA-1", 1}, {"SHA-256", 256}, {"SHA-512", 512}};
	size_t al = strlen(attr), sl = strlen(suffix);

	if (al <= sl || strcasecmp(attr + al - sl, suffix) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (strlen(algs[i].name) != al - sl ||
		    strncasecmp(attr, algs[i].name, al - sl) != 0)
			continue;
		return algs[i].which == 1     ? mds->sha1
		       : algs[i].which == 256 ? mds->sha256
		                              : mds->sha512;
	}
	return NULL;
}

/* 1 when the base64 value is the digest d of dl bytes. */
static int
b64_matches(const char *b64, const uint8_t *d, size_t dl)
{
	uint8_t raw[96];
	size_t n = strlen(b64), pad = 0;
	int got;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(raw))
		return 0;
	pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
	got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got - pad != dl)
		return 0;
	return CRYPTO_memcmp(raw, d, dl) == 0;
}

typedef struct entry_digest {
	EVP_MD_CTX *ctx[ATTRS_MAX];
	size_t n;
} entry_digest_t;

static int
sink_digest(void *arg, const uint8_t *p, size_t n, err_t *err)
{
	entry_digest_t *e = arg;

	for (size_t i = 0; i < e->n; i++)
		if (!EVP_DigestUpdate(e->ctx[i], p, n))
			return err_set_ossl(err, STB_INTERNAL, "digest");
	return 0;
}

/* apksig's rule: every entry but directories and the signature files
 * directly in META-INF/ needs a digest in the manifest. */
static int
needs_digest(const char *name)
{
	size_t n = strlen(name);
	const char *base;

	if (n == 0 || name[n - 1] == '/')
		return 0;
	if (strncmp(name, "META-INF/", 9) != 0)
		return 1;
	base = name + 9;
	if (strchr(base, '/') != NULL)
		return 1;
	n = strlen(base);
	if (strcmp(base, "MANIFEST.MF") == 0 || strncmp(base, "SIG-", 4) == 0)
		return 0;
	if (n >= 3 &&
	    (strcasecmp(base + n - 3, ".SF") == 0 || strcasecmp(base + n - 3, ".EC") == 0))
		return 0;
	if (n >= 4 &&
	    (strcasecmp(base + n - 4, ".RSA") == 0 || strcasecmp(base + n - 4, ".DSA") == 0))
		return 0;
	return 1;
}

/* The entries' digests against MANIFEST.MF: 0 all match, 1 one does not
 * (finding added), -1 error. */
static int
v1_check_entries(apkzip_t *z, const mf_t *mf, const apk_mds_t *mds, apk_report_t *r, err_t *err)
{
	size_t covered = 0;

	for (size_t i = 0; i < z->n; i++) {
		const apkzip_entry_t *e = &z->ent[i];
		const mf_section_t *s;
		entry_digest_t ed = {0};
		err_t rerr;
		int rc = 0;

		if (!needs_digest(e->name))
			continue;
		if (apkzip_find(z, e->name) != e)
			continue; /* a duplicate: zip.duplicate_entry says so */
		if ((s = mf_find(mf, e->name)) == NULL) {
			apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.unsigned_entry",
			               "v1: entry \"%.128s\" is not in "
			               "MANIFEST.MF (added after signing)",
			               e->name);
			return 1;
		}
		covered++;
		for (size_t j = 0; j < s->n_attrs; j++) {
			const EVP_MD *md = mf_digest_of(mds, s->attrs[j].name, "-Digest");

			if (md == NULL)
				continue;
			if ((ed.ctx[ed.n] = EVP_MD_CTX_new()) == NULL ||
			    !EVP_DigestInit_ex(ed.ctx[ed.n], md, NULL)) {
				EVP_MD_CTX_free(ed.ctx[ed.n]);
				rc = err_set_ossl(err, STB_INTERNAL, "digest");
				goto next;
			}
			ed.n++;
		}
		if (ed.n == 0) {
			apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.no_digest",
			               "v1: entry \"%.128s\" has no digest this "
			               "vetting supports",
			               e->name);
			return 1;
		}
		if (apkzip_read(z, e, sink_digest, &ed, &rerr) < 0) {
			apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.unreadable", "v1: %s", rerr.msg);
			rc = 1;
			goto next;
		}
		for (size_t j = 0, k = 0; j < s->n_attrs; j++) {
			uint8_t d[EVP_MAX_MD_SIZE];
			unsigned dl;

			if (mf_digest_of(mds, s->attrs[j].name, "-Digest") == NULL)
				continue;
			if (!EVP_DigestFinal_ex(ed.ctx[k++], d, &dl)) {
				rc = err_set_ossl(err, STB_INTERNAL, "digest");
				goto next;
			}
			if (!b64_matches(s->attrs[j].value, d, dl)) {
				apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.digest_mismatch",
				               "v1: the %s of \"%.128s\" is not the "
				               "one in MANIFEST.MF (modified after "
				               "signing)",
				               s->attrs[j].name, e->name);
				rc = 1;
				goto next;
			}
		}
	next:
		for (size_t k = 0; k < ed.n; k++)
			EVP_MD_CTX_free(ed.ctx[k]);
		if (rc != 0)
			return rc;
	}
	if (covered + 1 < mf->n_sec) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.missing_entry",
		               "v1: MANIFEST.MF names entries the package does "
		               "not hold");
		return 1;
	}
	return 0;
}

static int
digest_matches(const EVP_MD *md, const uint8_t *p, size_t n, const char *b64)
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl;

	if (!EVP_Digest(p, n, d, &dl, md, NULL))
		return 0;
	return b64_matches(b64, d, dl);
}

/* The .SF against MANIFEST.MF: the whole manifest's digest, or else the
 * main attributes' and every section's.  1 they match. */
static int
v1_sf_matches(const mf_t *sf, const mf_t *mf, const apk_mds_t *mds)
{
	const mf_section_t *main = &sf->sec[0];
	int whole = 0, main_ok = 0;

	for (size_t j = 0; j < main->n_attrs; j++) {
		const EVP_MD *md;

		if ((md = mf_digest_of(mds, main->attrs[j].name, "-Digest-Manifest")) != NULL &&
		    digest_matches(md, mf->p, mf->n, main->attrs[j].value))
			whole = 1;
		if ((md = mf_digest_of(mds, main->attrs[j].name,
		                       "-Digest-Manifest-Main-Attributes")) != NULL &&
		    digest_matches(md, mf->p + mf->sec[0].off, mf->sec[0].len,
		                   main->attrs[j].value))
			main_ok = 1;
	}
	if (whole)
		return 1;
	if (!main_ok || sf->n_sec != mf->n_sec)
		return 0;
	for (size_t i = 1; i < sf->n_sec; i++) {
		const mf_section_t *s = &sf->sec[i], *m = mf_find(mf, s->name);
		int ok = 0;

		if (m == NULL)
			return 0;
		for (size_t j = 0; j < s->n_attrs; j++) {
			const EVP_MD *md = mf_digest_of(mds, s->attrs[j].name, "-Digest");

			if (md == NULL)
				continue;
			if (!digest_matches(md, mf->p + m->off, m->len, s->attrs[j].value))
				return 0;
			ok = 1;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* The PKCS#7 block over the .SF, verified against the certificate it
 * carries; cert gets that certificate's SHA-256.  Not cmsmsg_verify():
 * that one chains each signer to a trust store, and Android trusts an APK
 * signer by its certificate alone. */
static int
v1_block_verifies(const buf_t *block, const buf_t *sf, const apk_mds_t *mds, uint8_t cert[32])
{
	const unsigned char *p = block->data;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)block->len);
	BIO *data = NULL;
	STACK_OF(X509) *signers = NULL;
	unsigned char *der = NULL;
	int ok = 0, dl;

	if (cms == NULL || p != block->data + block->len)
		goto out;
	if ((data = BIO_new_mem_buf(sf->data, (int)sf->len)) == NULL)
		goto out;
	if (CMS_verify(cms, NULL, NULL, data, NULL, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1)
		goto out;
	signers = CMS_get0_signers(cms);
	if (signers == NULL || sk_X509_num(signers) < 1)
		goto out;
	if ((dl = i2d_X509(sk_X509_value(signers, 0), &der)) <= 0)
		goto out;
	ok = EVP_Digest(der, (size_t)dl, cert, NULL, mds->sha256, NULL);
out:
	OPENSSL_free(der);
	sk_X509_free(signers);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return ok;
}

static int
read_entry(apkzip_t *z, const apkzip_entry_t *e, buf_t *b, size_t max, apk_report_t *r, err_t *err)
{
	err_t rerr;

	buf_init(b, max);
	if (apkzip_read_buf(z, e, b, &rerr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.unreadable", "v1: %s", rerr.msg);
		return 1;
	}
	(void)err;
	return 0;
}

static void
v1_apk_signed(const mf_t *sf, apkv1_result_t *res)
{
	const mf_section_t *main = &sf->sec[0];

	for (size_t j = 0; j < main->n_attrs; j++) {
		if (strcasecmp(main->attrs[j].name, "X-Android-APK-Signed") != 0)
			continue;
		for (const char *p = main->attrs[j].value; *p != '\0'; p++) {
			if (*p == '2')
				res->apk_signed_v2 = 1;
			if (*p == '3')
				res->apk_signed_v3 = 1;
		}
	}
}

/* One signer: NAME.SF and its block NAME.RSA|.DSA|.EC.  0 verified, 1
 * failed (finding added), -1 error. */
static int
v1_signer(apkzip_t *z, const apkzip_entry_t *sfe, const mf_t *mf, const apk_mds_t *mds,
          apk_report_t *r, apkv1_result_t *res, uint8_t cert[32], err_t *err)
{
	static const char *const exts[] = {".RSA", ".DSA", ".EC"};
	char name[APK_NAME_MAX];
	const apkzip_entry_t *be = NULL;
	buf_t sfb, blk = {0};
	mf_t sf = {0};
	err_t perr;
	int rc = 1;

	for (size_t i = 0; i < 3 && be == NULL; i++) {
		snprintf(name, sizeof(name), "%.*s%s", (int)(sfe->name_len - 3), sfe->name,
		         exts[i]);
		be = apkzip_find(z, name);
	}
	if (be == NULL) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.no_signature_block",
		               "v1: %.128s has no signature block", sfe->name);
		return 1;
	}
	if ((rc = read_entry(z, sfe, &sfb, MF_MAX, r, err)) != 0)
		return rc;
	if ((rc = read_entry(z, be, &blk, BLOCK_MAX, r, err)) != 0)
		goto out;
	rc = 1;
	if (mf_parse(&sf, sfb.data, sfb.len, &perr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.malformed", "v1: %.128s: %s", sfe->name,
		               perr.msg);
		goto out;
	}
	if (!v1_block_verifies(&blk, &sfb, mds, cert)) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.bad_signature",
		               "v1: the PKCS#7 signature in %.128s does not "
		               "verify",
		               be->name);
		goto out;
	}
	if (!v1_sf_matches(&sf, mf, mds)) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.sf_mismatch",
		               "v1: %.128s does not match MANIFEST.MF", sfe->name);
		goto out;
	}
	v1_apk_signed(&sf, res);
	rc = 0;
out:
	mf_free(&sf);
	buf_free(&sfb);
	buf_free(&blk);
	return rc;
}

static int
is_sf(const apkzip_entry_t *e)
{
	return e->name_len > 12 && strncmp(e->name, "META-INF/", 9) == 0 &&
	       strchr(e->name + 9, '/') == NULL &&
	       strcasecmp(e->name + e->name_len - 3, ".SF") == 0;
}

int
apkv1_verify(apkzip_t *z, const apk_mds_t *mds, apk_report_t *r, apkv1_result_t *res, err_t *err)
{
	const apkzip_entry_t *mfe = apkzip_find(z, "META-INF/MANIFEST.MF");
	size_t n_sf = 0;
	buf_t mfb = {0};
	mf_t mf = {0};
	err_t perr;
	int rc = 1;

	memset(res, 0, sizeof(*res));
	r->v1 = APK_SIG_ABSENT;
	for (size_t i = 0; i < z->n; i++)
		n_sf += is_sf(&z->ent[i]);
	if (n_sf == 0)
		return 0; /* a manifest alone is a plain JAR's, not a signature */
	r->v1 = APK_SIG_FAILED;
	if (n_sf > SIGNERS_MAX) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.malformed", "v1: %zu signature files",
		               n_sf);
		return 0;
	}
	if (mfe == NULL) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.no_manifest",
		               "v1: signature files without META-INF/MANIFEST.MF");
		return 0;
	}
	if (read_entry(z, mfe, &mfb, MF_MAX, r, err) != 0)
		goto out;
	if (mf_parse(&mf, mfb.data, mfb.len, &perr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v1.malformed", "v1: MANIFEST.MF: %s",
		               perr.msg);
		goto out;
	}
	for (size_t i = 0, k = 0; i < z->n; i++) {
		uint8_t cert[32];

		if (!is_sf(&z->ent[i]) || apkzip_find(z, z->ent[i].name) != &z->ent[i])
			continue;
		if ((rc = v1_signer(z, &z->ent[i], &mf, mds, r, res, cert, err)) != 0)
			goto out;
		if (k++ == 0)
			memcpy(res->cert, cert, 32);
	}
	if ((rc = v1_check_entries(z, &mf, mds, r, err)) != 0)
		goto out;
	r->v1 = APK_SIG_VERIFIED;
	res->verified = 1;
out:
	mf_free(&mf);
	buf_free(&mfb);
	return rc < 0 ? -1 : 0;
}
