/* apksig: APK Signature Schemes v2 and v3 (see apksig.h).  The format is
 * that of source.android.com/docs/security/features/apksigning/v2 and v3:
 * every length is checked against what holds it. */
#include "apksig.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

static const char block_magic[16] = "APK Sig Block 42";

#define CHUNK (1u << 20)

/* A reader over [pos, end) of the block. */
typedef struct cur {
	const uint8_t *p;
	size_t pos, end;
} cur_t;

static int
cur_u32(cur_t *c, uint32_t *v)
{
	if (c->end - c->pos < 4)
		return -1;
	*v = load_le32(c->p + c->pos);
	c->pos += 4;
	return 0;
}

/* A u32-length-prefixed piece as a sub-reader. */
static int
cur_lp(cur_t *c, cur_t *sub)
{
	uint32_t len;

	if (cur_u32(c, &len) < 0 || len > c->end - c->pos)
		return -1;
	sub->p = c->p;
	sub->pos = c->pos;
	sub->end = c->pos + len;
	c->pos += len;
	return 0;
}

static apksig_span_t
cur_span(const cur_t *c)
{
	return (apksig_span_t){c->pos, c->end - c->pos};
}

/* A sequence of length-prefixed {u32 id, rest} items (digests, signatures:
 * rest is length-prefixed again; attributes: rest is the value). */
static int
parse_items(cur_t *c, apksig_item_t *items, size_t *n, int rest_lp)
{
	while (c->pos < c->end) {
		cur_t it, v;
		uint32_t id;

		if (*n >= APKSIG_ITEMS_MAX || cur_lp(c, &it) < 0 || cur_u32(&it, &id) < 0)
			return -1;
		if (rest_lp) {
			if (cur_lp(&it, &v) < 0 || it.pos != it.end)
				return -1;
		} else {
			v = it;
		}
		items[*n].id = id;
		items[*n].v = cur_span(&v);
		(*n)++;
	}
	return 0;
}

static int
parse_signed_data(cur_t sd, apksig_signer_t *s, int v3)
{
	cur_t digests, certs, attrs;

	if (cur_lp(&sd, &digests) < 0 || cur_lp(&sd, &certs) < 0)
		return -1;
	if (v3 && (cur_u32(&sd, &s->sd_min_sdk) < 0 || cur_u32(&sd, &s->sd_max_sdk) < 0))
		return -1;
	if (cur_lp(&sd, &attrs) < 0)
		return -1;
	/* v2 and v3 allow zero padding after the attributes: ignore it */
	if (parse_items(&digests, s->digests, &s->n_digests, 1) < 0 ||
	    parse_items(&attrs, s->attrs, &s->n_attrs, 0) < 0)
		return -1;
	while (certs.pos < certs.end) {
		cur_t cert;

		if (s->n_certs >= APKSIG_ITEMS_MAX || cur_lp(&certs, &cert) < 0)
			return -1;
		s->certs[s->n_certs++] = cur_span(&cert);
	}
	return 0;
}

static int
parse_signer(cur_t c, apksig_signer_t *s, int v3)
{
	cur_t sd, sigs, pk;

	if (cur_lp(&c, &sd) < 0)
		return -1;
	if (v3 && (cur_u32(&c, &s->min_sdk) < 0 || cur_u32(&c, &s->max_sdk) < 0))
		return -1;
	if (cur_lp(&c, &sigs) < 0 || cur_lp(&c, &pk) < 0 || c.pos != c.end)
		return -1;
	s->signed_data = cur_span(&sd);
	s->pubkey = cur_span(&pk);
	if (parse_signed_data(sd, s, v3) < 0 || parse_items(&sigs, s->sigs, &s->n_sigs, 1) < 0)
		return -1;
	return 0;
}

static void
parse_scheme(cur_t value, apksig_scheme_t *sc, int v3)
{
	cur_t signers;

	sc->present = 1;
	if (cur_lp(&value, &signers) < 0 || value.pos != value.end) {
		snprintf(sc->why, sizeof(sc->why), "the signer list is malformed");
		sc->malformed = 1;
		return;
	}
	while (signers.pos < signers.end) {
		cur_t one;

		if (sc->n_signers >= APKSIG_SIGNERS_MAX) {
			snprintf(sc->why, sizeof(sc->why), "more than %d signers",
			         APKSIG_SIGNERS_MAX);
			sc->malformed = 1;
			return;
		}
		if (cur_lp(&signers, &one) < 0 ||
		    parse_signer(one, &sc->signers[sc->n_signers], v3) < 0) {
			snprintf(sc->why, sizeof(sc->why), "signer %zu is malformed",
			         sc->n_signers + 1);
			sc->malformed = 1;
			return;
		}
		sc->n_signers++;
	}
	if (sc->n_signers == 0) {
		snprintf(sc->why, sizeof(sc->why), "no signers");
		sc->malformed = 1;
	}
}

int
apksig_parse(const uint8_t *p, size_t n, apksig_block_t *b, err_t *err)
{
	uint64_t head;
	size_t pos = 8;

	memset(b, 0, sizeof(*b));
	b->p = p;
	b->n = n;
	if (n < 32 || memcmp(p + n - 16, block_magic, 16) != 0)
		return err_set(err, STB_BAD_REQUEST, "no signing block magic");
	head = load_le64(p);
	if (head != n - 8 || load_le64(p + n - 24) != head)
		return err_set(err, STB_BAD_REQUEST, "the signing block's sizes disagree");
	while (pos < n - 24) {
		uint64_t len;
		uint32_t id;
		cur_t value;

		if (n - 24 - pos < 8)
			return err_set(err, STB_BAD_REQUEST, "a truncated ID-value pair");
		len = load_le64(p + pos);
		pos += 8;
		if (len < 4 || len > n - 24 - pos)
			return err_set(err, STB_BAD_REQUEST,
			               "an ID-value pair runs past the block");
		id = load_le32(p + pos);
		value = (cur_t){p, pos + 4, pos + (size_t)len};
		if (id == APKSIG_ID_V2 || id == APKSIG_ID_V3) {
			apksig_scheme_t *sc = id == APKSIG_ID_V2 ? &b->v2 : &b->v3;

			if (sc->present)
				return err_set(err, STB_BAD_REQUEST,
				               "a scheme is in the block twice");
			parse_scheme(value, sc, id == APKSIG_ID_V3);
		}
		pos += (size_t)len;
	}
	return 0;
}

int
apksig_find(const apkzip_t *z, uint8_t **blk, size_t *len, uint64_t *off, apk_report_t *r,
            err_t *err)
{
	uint8_t foot[24];
	uint64_t size;

	*blk = NULL;
	if (z->cd_off < 32)
		return 0;
	if (apkzip_pread(z, z->cd_off - 24, foot, sizeof(foot), err) < 0)
		return -1;
	if (memcmp(foot + 8, block_magic, 16) != 0)
		return 0;
	size = load_le64(foot);
	if (size < 24 || size > APKSIG_BLOCK_MAX || size + 8 > z->cd_off) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.block_malformed",
		               "the APK Signing Block claims %llu bytes, which "
		               "do not fit",
		               (unsigned long long)size);
		return -1;
	}
	*len = (size_t)size + 8;
	*off = z->cd_off - *len;
	if ((*blk = malloc(*len)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (apkzip_pread(z, *off, *blk, *len, err) < 0) {
		free(*blk);
		*blk = NULL;
		return -1;
	}
	return 1;
}

/* A finding "sig.<v>.<what>" with the reason "<v>: ...". */
static void __attribute__((format(printf, 4, 5)))
sig_fail(apk_report_t *r, const char *v, const char *what, const char *fmt, ...)
{
	char code[APK_CODE_MAX], reason[APK_REASON_MAX];
	va_list ap;

	snprintf(code, sizeof(code), "sig.%s.%s", v, what);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	apk_report_add(r, APK_SEV_UNSAFE, code, "%s: %s", v, reason);
}

/* The algorithms of the schemes (apksig's SignatureAlgorithm). */
typedef struct sig_alg {
	uint32_t id;
	int key_type; /* EVP_PKEY_RSA, _EC, _DSA */
	int pss;
	int sha512; /* content digest CHUNKED_SHA512, else _SHA256 */
	const char *name;
} sig_alg_t;

static const sig_alg_t sig_algs[] = {
    {0x0101, EVP_PKEY_RSA, 1, 0, "RSA-PSS SHA-256"},
    {0x0102, EVP_PKEY_RSA, 1, 1, "RSA-PSS SHA-512"},
    {0x0103, EVP_PKEY_RSA, 0, 0, "RSA PKCS#1 SHA-256"},
    {0x0104, EVP_PKEY_RSA, 0, 1, "RSA PKCS#1 SHA-512"},
    {0x0201, EVP_PKEY_EC, 0, 0, "ECDSA SHA-256"},
    {0x0202, EVP_PKEY_EC, 0, 1, "ECDSA SHA-512"},
    {0x0301, EVP_PKEY_DSA, 0, 0, "DSA SHA-256"},
};

static const sig_alg_t *
sig_alg_find(uint32_t id)
{
	for (size_t i = 0; i < sizeof(sig_algs) / sizeof(sig_algs[0]); i++)
		if (sig_algs[i].id == id)
			return &sig_algs[i];
	return NULL; /* the verity ones (0x042x) and unknown: not used */
}

/* One section of the chunked digest: its chunks' digests into top. */
static int
digest_section(const apkzip_t *z, const EVP_MD *md, EVP_MD_CTX *top, EVP_MD_CTX *one,
               uint8_t *piece, uint64_t off, uint64_t len, const uint8_t *over, err_t *err)
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl;

	while (len > 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		uint8_t hdr[5] = {0xa5, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
		                  (uint8_t)(n >> 24)};
		const uint8_t *data = over;

		if (data == NULL) {
			if (apkzip_pread(z, off, piece, n, err) < 0)
				return -1;
			data = piece;
		}
		if (!EVP_DigestInit_ex(one, md, NULL) || !EVP_DigestUpdate(one, hdr, sizeof(hdr)) ||
		    !EVP_DigestUpdate(one, data, n) || !EVP_DigestFinal_ex(one, d, &dl) ||
		    !EVP_DigestUpdate(top, d, dl))
			return err_set_ossl(err, STB_INTERNAL, "chunk digest");
		off += n;
		len -= n;
		if (over != NULL)
			over += n;
	}
	return 0;
}

static uint64_t
chunks(uint64_t len)
{
	return (len + CHUNK - 1) / CHUNK;
}

/* The content digest over the entries [0, blk_off), the central directory
 * and the EOCD whose CD offset names the block's start instead. */
static int
content_digest(const apkzip_t *z, uint64_t blk_off, const EVP_MD *md, uint8_t *out,
               unsigned *outlen, err_t *err)
{
	uint64_t n = chunks(blk_off) + chunks(z->cd_size) + chunks(z->size - z->eocd_off);
	uint8_t *eocd = NULL, *piece = NULL;
	EVP_MD_CTX *top = EVP_MD_CTX_new(), *one = EVP_MD_CTX_new();
	uint8_t hdr[5] = {0x5a, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
	                  (uint8_t)(n >> 24)};
	size_t elen = (size_t)(z->size - z->eocd_off);
	int rc = -1;

	if (top == NULL || one == NULL || (piece = malloc(CHUNK)) == NULL ||
	    (eocd = malloc(elen)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	if (n > 0xffffffffu) {
		err_set(err, STB_TOO_LARGE, "too many chunks");
		goto out;
	}
	if (apkzip_pread(z, z->eocd_off, eocd, elen, err) < 0)
		goto out;
	for (int i = 0; i < 4; i++)
		eocd[16 + i] = (uint8_t)(blk_off >> (8 * i));
	if (!EVP_DigestInit_ex(top, md, NULL) || !EVP_DigestUpdate(top, hdr, sizeof(hdr))) {
		err_set_ossl(err, STB_INTERNAL, "digest");
		goto out;
	}
	if (digest_section(z, md, top, one, piece, 0, blk_off, NULL, err) < 0 ||
	    digest_section(z, md, top, one, piece, z->cd_off, z->cd_size, NULL, err) < 0 ||
	    digest_section(z, md, top, one, piece, z->eocd_off, elen, eocd, err) < 0)
		goto out;
	if (!EVP_DigestFinal_ex(top, out, outlen)) {
		err_set_ossl(err, STB_INTERNAL, "digest");
		goto out;
	}
	rc = 0;
out:
	free(piece);
	free(eocd);
	EVP_MD_CTX_free(top);
	EVP_MD_CTX_free(one);
	return rc;
}

static int
sig_check(const sig_alg_t *a, EVP_PKEY *pk, const apk_mds_t *mds, const uint8_t *data, size_t dlen,
          const uint8_t *sig, size_t slen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = a->sha512 ? mds->sha512 : mds->sha256;
	int ok = 0;

	if (mctx == NULL)
		return 0;
	if (EVP_PKEY_get_base_id(pk) == a->key_type &&
	    EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pk) == 1 &&
	    (!a->pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	                 EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
	                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, EVP_MD_get_size(md)) > 0)))
		ok = EVP_DigestVerify(mctx, sig, slen, data, dlen) == 1;
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return ok;
}

/* The digests each scheme needs, computed at most once per call. */
typedef struct digests {
	int have256, have512;
	uint8_t d256[32], d512[64];
} digests_t;

static int
need_digest(const apkzip_t *z, uint64_t blk_off, const apk_mds_t *mds, digests_t *dg, int sha512,
            const uint8_t **d, size_t *dl, err_t *err)
{
	unsigned n;

	if (sha512) {
		if (!dg->have512 && content_digest(z, blk_off, mds->sha512, dg->d512, &n, err) < 0)
			return -1;
		dg->have512 = 1;
		*d = dg->d512;
		*dl = 64;
	} else {
		if (!dg->have256 && content_digest(z, blk_off, mds->sha256, dg->d256, &n, err) < 0)
			return -1;
		dg->have256 = 1;
		*d = dg->d256;
		*dl = 32;
	}
	return 0;
}

/* One signer: a supported signature verifies with its public key, the
 * signed data lists the same algorithms, the first certificate holds that
 * key, and the content digests match.  0 verified, 1 failed (finding
 * added), -1 error. */
static int
verify_signer(const apkzip_t *z, const apksig_block_t *b, uint64_t blk_off,
              const apksig_signer_t *s, const char *v, const apk_mds_t *mds, digests_t *dg,
              apk_report_t *r, uint8_t cert_sha256[32], err_t *err)
{
	const uint8_t *pkp = b->p + s->pubkey.off, *cp;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &pkp, (long)s->pubkey.len);
	X509 *cert = NULL;
	int verified = 0, rc = 1;

	if (pk == NULL) {
		ERR_clear_error();
		sig_fail(r, v, "bad_key", "the public key does not parse");
		return 1;
	}
	for (size_t i = 0; i < s->n_sigs; i++) {
		const sig_alg_t *a = sig_alg_find(s->sigs[i].id);
		int listed = 0;

		if (a == NULL)
			continue;
		for (size_t j = 0; j < s->n_digests; j++)
			listed |= s->digests[j].id == s->sigs[i].id;
		if (!listed || !sig_check(a, pk, mds, b->p + s->signed_data.off, s->signed_data.len,
		                          b->p + s->sigs[i].v.off, s->sigs[i].v.len)) {
			sig_fail(r, v, "bad_signature", "the %s signature does not verify",
			         a->name);
			goto out;
		}
		verified++;
	}
	if (verified == 0) {
		sig_fail(r, v, "no_supported_signature",
		         "no signature in an algorithm this vetting supports");
		goto out;
	}
	if (s->n_certs == 0) {
		sig_fail(r, v, "no_certificate", "no certificate");
		goto out;
	}
	cp = b->p + s->certs[0].off;
	if ((cert = d2i_X509(NULL, &cp, (long)s->certs[0].len)) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(cert), pk) != 1) {
		ERR_clear_error();
		sig_fail(r, v, "certificate_mismatch",
		         "the certificate does not hold the signing key");
		goto out;
	}
	if (!EVP_Digest(b->p + s->certs[0].off, s->certs[0].len, cert_sha256, NULL, mds->sha256,
	                NULL)) {
		rc = err_set_ossl(err, STB_INTERNAL, "digest");
		goto out;
	}
	for (size_t j = 0; j < s->n_digests; j++) {
		const sig_alg_t *a = sig_alg_find(s->digests[j].id);
		const uint8_t *d;
		size_t dl;

		if (a == NULL)
			continue;
		if (need_digest(z, blk_off, mds, dg, a->sha512, &d, &dl, err) < 0) {
			rc = -1;
			goto out;
		}
		if (s->digests[j].v.len != dl ||
		    CRYPTO_memcmp(d, b->p + s->digests[j].v.off, dl) != 0) {
			sig_fail(r, v, "digest_mismatch",
			         "the package's %s digest does not match the signed one (modified "
			         "after signing)",
			         a->sha512 ? "SHA-512" : "SHA-256");
			goto out;
		}
	}
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(pk);
	return rc;
}

static int
verify_scheme(const apkzip_t *z, const apksig_block_t *b, uint64_t blk_off,
              const apksig_scheme_t *sc, int v3, const apk_mds_t *mds, digests_t *dg,
              apk_report_t *r, uint8_t cert[32], err_t *err)
{
	const char *v = v3 ? "v3" : "v2";
	uint8_t c[32];

	if (sc->malformed) {
		sig_fail(r, v, "malformed", "%s", sc->why);
		return 1;
	}
	for (size_t i = 0; i < sc->n_signers; i++) {
		const apksig_signer_t *s = &sc->signers[i];
		int rc;

		if (v3 && (s->min_sdk != s->sd_min_sdk || s->max_sdk != s->sd_max_sdk ||
		           s->min_sdk > s->max_sdk)) {
			apk_report_add(r, APK_SEV_UNSAFE, "sig.v3.sdk_mismatch",
			               "v3: the signer's SDK range is not the "
			               "signed one");
			return 1;
		}
		rc = verify_signer(z, b, blk_off, s, v, mds, dg, r, c, err);
		if (rc != 0)
			return rc;
		if (i == 0)
			memcpy(cert, c, 32);
	}
	if (!v3 && sc->n_signers > 1) {
		/* Android takes one v2 signer per APK; several are not the
		 * TV's usual case but apksigner accepts them */
		apk_report_add(r, APK_SEV_WARN, "sig.v2.several_signers", "v2: %zu signers",
		               sc->n_signers);
	}
	return 0;
}

int
apksig_verify(const apkzip_t *z, const apk_mds_t *mds, apk_report_t *r, apksig_result_t *res,
              err_t *err)
{
	uint8_t *blk;
	size_t len;
	uint64_t off;
	apksig_block_t b;
	digests_t dg = {0};
	err_t perr;
	int rc;

	memset(res, 0, sizeof(*res));
	r->v2 = r->v3 = APK_SIG_ABSENT;
	if (z->n == 0)
		return 0;
	rc = apksig_find(z, &blk, &len, &off, r, err);
	if (rc < 0) {
		if (blk == NULL && apk_report_has(r, "sig.block_malformed")) {
			r->v2 = APK_SIG_FAILED;
			return 0;
		}
		return -1;
	}
	if (rc == 0)
		return 0;
	if (apksig_parse(blk, len, &b, &perr) < 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "sig.block_malformed",
		               "the APK Signing Block: %s", perr.msg);
		r->v2 = APK_SIG_FAILED;
		free(blk);
		return 0;
	}
	rc = 0;
	if (b.v3.present) {
		rc = verify_scheme(z, &b, off, &b.v3, 1, mds, &dg, r, res->v3_cert, err);
		if (rc < 0)
			goto out;
		r->v3 = rc == 0 ? APK_SIG_VERIFIED : APK_SIG_FAILED;
		res->has_v3 = rc == 0;
	}
	if (b.v2.present) {
		rc = verify_scheme(z, &b, off, &b.v2, 0, mds, &dg, r, res->v2_cert, err);
		if (rc < 0)
			goto out;
		r->v2 = rc == 0 ? APK_SIG_VERIFIED : APK_SIG_FAILED;
		res->has_v2 = rc == 0;
		for (size_t i = 0; i < b.v2.n_signers; i++) {
			const apksig_signer_t *s = &b.v2.signers[i];

			for (size_t j = 0; j < s->n_attrs; j++)
				if (s->attrs[j].id == APKSIG_ATTR_STRIPPING &&
				    s->attrs[j].v.len == 4 &&
				    load_le32(b.p + s->attrs[j].v.off) == 3)
					res->v3_required = 1;
		}
	}
	if (res->v3_required && !b.v3.present)
		apk_report_add(r, APK_SEV_UNSAFE, "sig.v3.stripped",
		               "v2 says the package was signed with v3, and the "
		               "v3 signature is gone");
	if (res->has_v2 && res->has_v3 && memcmp(res->v2_cert, res->v3_cert, 32) != 0)
		apk_report_add(r, APK_SEV_WARN, "sig.v3.rotated",
		               "v3 names another signer than v2 (key rotation)");
	rc = 0;
out:
	free(blk);
	return rc;
}
