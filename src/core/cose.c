/* cose: COSE_Sign1 / ES256 over libcbor (see cose.h). */
#include "cose.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"

#define COSE_TAG_SIGN1      18
#define COSE_TAG_SIGN1_BYTE 0xd2 /* major type 6, value 18 */
#define COSE_HDR_ALG        1
#define COSE_HDR_CRIT       2
#define COSE_HDR_KID        4
#define COSE_SIG_CONTEXT    "Signature1"
#define COSE_HDR_MAX        256 /* bytes of the protected header */
#define COSE_POINT_MAX      133 /* an uncompressed point up to P-521 */

static CRYPTO_ONCE cose_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *cose_sha256;

static void
cose_fetch(void)
{
	cose_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

/* ---- strict CBOR walk (libcbor's streaming decoder, one header at a time) ---- */

enum { WALK_LEAF, WALK_NEST, WALK_BAD };

typedef struct cose_walk {
	int kind;
	uint64_t count; /* WALK_NEST: the items inside */
} cose_walk_t;

static void
walk_leaf(void *ctx)
{
	((cose_walk_t *)ctx)->kind = WALK_LEAF;
}
static void
walk_bad(void *ctx)
{
	((cose_walk_t *)ctx)->kind = WALK_BAD;
}
static void
walk_u8(void *ctx, uint8_t v)
{
	walk_leaf(ctx);
}
static void
walk_u16(void *ctx, uint16_t v)
{
	walk_leaf(ctx);
}
static void
walk_u32(void *ctx, uint32_t v)
{
	walk_leaf(ctx);
}
static void
walk_u64(void *ctx, uint64_t v)
{
	walk_leaf(ctx);
}
static void
walk_str(void *ctx, cbor_data p, size_t n)
{
	walk_leaf(ctx);
}
static void
walk_float(void *ctx, float f)
{
	walk_leaf(ctx);
}
static void
walk_double(void *ctx, double f)
{
	walk_leaf(ctx);
}
static void
walk_bool(void *ctx, bool b)
{
	walk_leaf(ctx);
}
static void
walk_array(void *ctx, size_t n)
{
	cose_walk_t *w = ctx;
	w->kind = WALK_NEST;
	w->count = n;
}
static void
walk_map(void *ctx, size_t n)
{
	cose_walk_t *w = ctx;
	w->kind = n > SIZE_MAX / 2 ? WALK_BAD : WALK_NEST;
	w->count = (uint64_t)n * 2;
}
static void
walk_tag(void *ctx, uint64_t v)
{
	cose_walk_t *w = ctx;
	w->kind = WALK_NEST;
	w->count = 1;
}

static const struct cbor_callbacks cose_walk_cb = {
    .uint8 = walk_u8,
    .uint16 = walk_u16,
    .uint32 = walk_u32,
    .uint64 = walk_u64,
    .negint8 = walk_u8,
    .negint16 = walk_u16,
    .negint32 = walk_u32,
    .negint64 = walk_u64,
    .byte_string_start = walk_bad, /* indefinite */
    .byte_string = walk_str,
    .string = walk_str,
    .string_start = walk_bad,
    .indef_array_start = walk_bad,
    .array_start = walk_array,
    .indef_map_start = walk_bad,
    .map_start = walk_map,
    .tag = walk_tag,
    .float2 = walk_float,
    .float4 = walk_float,
    .float8 = walk_double,
    .undefined = walk_leaf,
    .null = walk_leaf,
    .boolean = walk_bool,
    .indef_break = walk_bad,
};

int
cose_cbor_check(const uint8_t *in, size_t len, err_t *err)
{
	uint64_t need[COSE_DEPTH_MAX + 1];
	size_t depth = 0, off = 0, items = 0;

	need[0] = 1;
	while (depth > 0 || need[0] > 0) {
		cose_walk_t w = {WALK_BAD, 0};
		struct cbor_decoder_result r;

		if (off >= len)
			return err_set(err, STB_BAD_REQUEST, "CBOR: truncated");
		r = cbor_stream_decode(in + off, len - off, &cose_walk_cb, &w);
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
			return err_set(err, STB_BAD_REQUEST, "CBOR: %s at byte %zu",
			               r.status == CBOR_DECODER_NEDATA ? "truncated" : "malformed",
			               off);
		if (w.kind == WALK_BAD)
			return err_set(err, STB_BAD_REQUEST,
			               "CBOR: indefinite length or stray break at byte %zu", off);
		off += r.read;
		need[depth]--;
		if (++items > len / 4 + 16)
			return err_set(err, STB_BAD_REQUEST, "CBOR: more than %zu items",
			               len / 4 + 16);
		if (w.kind == WALK_NEST && w.count > 0) {
			/* every item takes a byte at least: a count past what is
			 * left is truncated, found early */
			if (w.count > len - off)
				return err_set(err, STB_BAD_REQUEST, "CBOR: truncated");
			if (depth == COSE_DEPTH_MAX)
				return err_set(err, STB_BAD_REQUEST, "CBOR: nested deeper than %d",
				               COSE_DEPTH_MAX);
			need[++depth] = w.count;
		}
		while (depth > 0 && need[depth] == 0)
			depth--;
	}
	if (off != len)
		return err_set(err, STB_BAD_REQUEST, "CBOR: %zu bytes after the item", len - off);
	return 0;
}

int
cose_cbor_load(const uint8_t *in, size_t len, cbor_item_t **out, err_t *err)
{
	struct cbor_load_result r;

	*out = NULL;
	if (cose_cbor_check(in, len, err) == -1)
		return -1;
	*out = cbor_load(in, len, &r);
	if (*out == NULL || r.error.code != CBOR_ERR_NONE || r.read != len) {
		if (*out != NULL)
			cbor_decref(out);
		return err_set(err,
		               r.error.code == CBOR_ERR_MEMERROR ? STB_INTERNAL : STB_BAD_REQUEST,
		               "CBOR: cannot load (error %d)", (int)r.error.code);
	}
	return 0;
}

/* ---- a flat map in one pass ---- */

static void
flat_u8(void *ctx, uint8_t v)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_UINT, v, NULL, 0};
}
static void
flat_u16(void *ctx, uint16_t v)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_UINT, v, NULL, 0};
}
static void
flat_u32(void *ctx, uint32_t v)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_UINT, v, NULL, 0};
}
static void
flat_u64(void *ctx, uint64_t v)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_UINT, v, NULL, 0};
}
static void
flat_bstr(void *ctx, cbor_data p, size_t n)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_BSTR, 0, p, n};
}
static void
flat_map(void *ctx, size_t n)
{
	*(cose_flat_t *)ctx = (cose_flat_t){COSE_FLAT_MAP, n, NULL, 0};
}

/* The next item at *off; kind COSE_FLAT_OTHER for any we do not take
 * (the empty callbacks leave it so).  in passed cose_cbor_check. */
static int
flat_next(const uint8_t *in, size_t len, size_t *off, cose_flat_t *it, const char *what, err_t *err)
{
	struct cbor_decoder_result r;

	*it = (cose_flat_t){COSE_FLAT_OTHER, 0, NULL, 0};
	if (*off >= len)
		return err_set(err, STB_BAD_REQUEST, "%s: truncated", what);
	{
		struct cbor_callbacks cb = cbor_empty_callbacks;

		cb.uint8 = flat_u8;
		cb.uint16 = flat_u16;
		cb.uint32 = flat_u32;
		cb.uint64 = flat_u64;
		cb.byte_string = flat_bstr;
		cb.map_start = flat_map;
		r = cbor_stream_decode(in + *off, len - *off, &cb, it);
	}
	if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
		return err_set(err, STB_BAD_REQUEST, "%s: malformed", what);
	*off += r.read;
	return 0;
}

int
cose_cbor_flat_map(const uint8_t *in, size_t len, cose_flat_t *vals, size_t nkeys, const char *what,
                   err_t *err)
{
	cose_flat_t it, key;
	size_t off = 0;
	uint64_t n;

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = (cose_flat_t){COSE_FLAT_NONE, 0, NULL, 0};
	if (cose_cbor_check(in, len, err) == -1 || flat_next(in, len, &off, &it, what, err) == -1)
		return -1;
	if (it.kind != COSE_FLAT_MAP)
		return err_set(err, STB_BAD_REQUEST, "%s is not a map", what);
	n = it.u;
	for (uint64_t i = 0; i < n; i++) {
		if (flat_next(in, len, &off, &key, what, err) == -1)
			return -1;
		if (key.kind != COSE_FLAT_UINT || key.u >= nkeys)
			return err_set(err, STB_BAD_REQUEST, "%s has an unknown key", what);
		if (vals[key.u].kind != COSE_FLAT_NONE)
			return err_set(err, STB_BAD_REQUEST, "%s repeats key %u", what,
			               (unsigned)key.u);
		if (flat_next(in, len, &off, &vals[key.u], what, err) == -1)
			return -1;
		/* a nested value would need a walk past it: it is refused here,
		 * as the typed readers would refuse it */
		if (vals[key.u].kind != COSE_FLAT_UINT && vals[key.u].kind != COSE_FLAT_BSTR)
			return err_set(err, STB_BAD_REQUEST, "%s: key %u holds another type", what,
			               (unsigned)key.u);
	}
	if (off != len) /* cose_cbor_check said one item: this cannot be */
		return err_set(err, STB_BAD_REQUEST, "%s: bytes after the map", what);
	return 0;
}

int
cose_flat_uint(const cose_flat_t *v, uint64_t *out, const char *what, err_t *err)
{
	if (v->kind != COSE_FLAT_UINT)
		return err_set(err, STB_BAD_REQUEST, "%s: an unsigned integer is missing", what);
	*out = v->u;
	return 0;
}

int
cose_flat_bstr(const cose_flat_t *v, size_t min, size_t max, const uint8_t **p, size_t *len,
               const char *what, err_t *err)
{
	if (v->kind != COSE_FLAT_BSTR)
		return err_set(err, STB_BAD_REQUEST, "%s: a byte string is missing", what);
	if (v->n < min || v->n > max)
		return err_set(err, STB_BAD_REQUEST, "%s: %zu bytes, not %zu to %zu", what, v->n,
		               min, max);
	*p = v->p;
	*len = v->n;
	return 0;
}

int
cose_cbor_serialize(const cbor_item_t *item, buf_t *out, err_t *err)
{
	unsigned char *p = NULL;
	size_t size = 0, n;
	int rc = 0;

	n = cbor_serialize_alloc(item, &p, &size);
	if (n == 0)
		rc = err_set(err, STB_INTERNAL, "CBOR: cannot serialize");
	else if (buf_append(out, p, n) == -1)
		rc = err_set(err, STB_TOO_LARGE, "CBOR: %zu bytes do not fit", n);
	free(p);
	return rc;
}

cbor_item_t *
cose_cbor_build_uint(uint64_t v)
{
	if (v <= UINT8_MAX)
		return cbor_build_uint8((uint8_t)v);
	if (v <= UINT16_MAX)
		return cbor_build_uint16((uint16_t)v);
	if (v <= UINT32_MAX)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

bool
cose_cbor_push(cbor_item_t *array, cbor_item_t *item)
{
	bool ok = item != NULL && cbor_array_push(array, item);

	if (item != NULL)
		cbor_decref(&item);
	return ok;
}

bool
cose_cbor_put(cbor_item_t *map, uint64_t key, cbor_item_t *value)
{
	cbor_item_t *k = cose_cbor_build_uint(key);
	bool ok = k != NULL && value != NULL &&
	          cbor_map_add(map, (struct cbor_pair){.key = k, .value = value});

	if (k != NULL)
		cbor_decref(&k);
	if (value != NULL)
		cbor_decref(&value);
	return ok;
}

int
cose_cbor_fields(const cbor_item_t *map, const cbor_item_t **vals, size_t nkeys, const char *what,
                 err_t *err)
{
	struct cbor_pair *pairs;
	size_t n;

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	if (!cbor_isa_map(map) || !cbor_map_is_definite(map))
		return err_set(err, STB_BAD_REQUEST, "%s is not a map", what);
	n = cbor_map_size(map);
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < n; i++) {
		uint64_t k;

		if (!cbor_isa_uint(pairs[i].key) || (k = cbor_get_int(pairs[i].key)) >= nkeys)
			return err_set(err, STB_BAD_REQUEST, "%s has an unknown key", what);
		if (vals[k] != NULL)
			return err_set(err, STB_BAD_REQUEST, "%s repeats key %u", what,
			               (unsigned)k);
		vals[k] = pairs[i].value;
	}
	return 0;
}

int
cose_cbor_uint(const cbor_item_t *item, uint64_t *v, const char *what, err_t *err)
{
	if (item == NULL || !cbor_isa_uint(item))
		return err_set(err, STB_BAD_REQUEST, "%s: an unsigned integer is missing", what);
	*v = cbor_get_int(item);
	return 0;
}

int
cose_cbor_bstr(const cbor_item_t *item, size_t min, size_t max, const uint8_t **p, size_t *len,
               const char *what, err_t *err)
{
	size_t n;

	if (item == NULL || !cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
		return err_set(err, STB_BAD_REQUEST, "%s: a byte string is missing", what);
	n = cbor_bytestring_length(item);
	if (n < min || n > max)
		return err_set(err, STB_BAD_REQUEST, "%s: %zu bytes, not %zu to %zu", what, n, min,
		               max);
	*p = cbor_bytestring_handle(item);
	*len = n;
	return 0;
}

int
cose_cbor_tstr(const cbor_item_t *item, size_t min, size_t max, const char **p, size_t *len,
               const char *what, err_t *err)
{
	size_t n;

	if (item == NULL || !cbor_isa_string(item) || !cbor_string_is_definite(item))
		return err_set(err, STB_BAD_REQUEST, "%s: a text string is missing", what);
	n = cbor_string_length(item);
	if (n < min || n > max)
		return err_set(err, STB_BAD_REQUEST, "%s: %zu bytes, not %zu to %zu", what, n, min,
		               max);
	*p = (const char *)cbor_string_handle(item);
	*len = n;
	return 0;
}

/* ---- COSE_Sign1 ---- */

/* The last key's kid on this thread, by its encoded public point:
 * i2d_PUBKEY goes through OpenSSL 3's encoders and costs as much as the
 * ECDSA verify it would precede on every check. */
static _Thread_local struct {
	uint8_t point[COSE_POINT_MAX];
	size_t len;
	uint8_t kid[COSE_KID_LEN];
} cose_kid_cache;

int
cose_kid_of_key(EVP_PKEY *key, uint8_t kid[COSE_KID_LEN], err_t *err)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE], point[COSE_POINT_MAX];
	unsigned int mdlen = 0;
	size_t plen = 0;
	int n, ok;

	if (!sig_key_is_p256(key))
		return err_set(err, STB_BAD_REQUEST, "COSE: the key is not EC P-256");
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
	                                    sizeof(point), &plen) != 1)
		return err_set_ossl(err, STB_INTERNAL, "COSE: public point");
	if (plen == cose_kid_cache.len && memcmp(point, cose_kid_cache.point, plen) == 0) {
		memcpy(kid, cose_kid_cache.kid, COSE_KID_LEN);
		return 0;
	}
	if (!CRYPTO_THREAD_run_once(&cose_once, cose_fetch) || cose_sha256 == NULL)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256");
	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		return err_set_ossl(err, STB_INTERNAL, "COSE: public key DER");
	ok = EVP_Digest(der, (size_t)n, md, &mdlen, cose_sha256, NULL) == 1;
	OPENSSL_free(der);
	if (!ok)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256");
	memcpy(kid, md, COSE_KID_LEN);
	memcpy(cose_kid_cache.point, point, plen);
	cose_kid_cache.len = plen;
	memcpy(cose_kid_cache.kid, kid, COSE_KID_LEN);
	return 0;
}

/* One header of libcbor's encoder (enc) for n, then n bytes of p (none for
 * an array's header: p NULL). */
static int
cose_tbs_item(buf_t *tbs, size_t (*enc)(size_t, unsigned char *, size_t), size_t n, const void *p,
              err_t *err)
{
	unsigned char hdr[9];
	size_t h = enc(n, hdr, sizeof(hdr));

	if (h == 0 || buf_append(tbs, hdr, h) == -1 ||
	    (p != NULL && n > 0 && buf_append(tbs, p, n) == -1))
		return err_set(err, STB_TOO_LARGE, "COSE: the signed bytes do not fit");
	return 0;
}

/* The Sig_structure ["Signature1", protected, external_aad, payload],
 * written by libcbor's streaming encoder straight into tbs (one
 * allocation; building the item tree took eight and a copy of the
 * payload). */
static int
cose_tbs(const uint8_t *prot, size_t plen, const uint8_t *aad, size_t alen, const uint8_t *payload,
         size_t len, buf_t *tbs, err_t *err)
{
	const size_t clen = strlen(COSE_SIG_CONTEXT);

	if (buf_reserve(tbs, 1 + 4 * 9 + clen + plen + alen + len) == -1)
		return err_set(err, STB_TOO_LARGE, "COSE: the signed bytes do not fit");
	if (cose_tbs_item(tbs, cbor_encode_array_start, 4, NULL, err) == -1 ||
	    cose_tbs_item(tbs, cbor_encode_string_start, clen, COSE_SIG_CONTEXT, err) == -1 ||
	    cose_tbs_item(tbs, cbor_encode_bytestring_start, plen, prot, err) == -1 ||
	    cose_tbs_item(tbs, cbor_encode_bytestring_start, alen, aad, err) == -1 ||
	    cose_tbs_item(tbs, cbor_encode_bytestring_start, len, payload, err) == -1)
		return -1;
	return 0;
}

/* OpenSSL's DER ECDSA-Sig-Value to COSE's r || s, and back. */
static int
cose_sig_from_der(const uint8_t *der, size_t n, uint8_t out[COSE_SIG_LEN], err_t *err)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
	int ok;

	if (s == NULL)
		return err_set_ossl(err, STB_INTERNAL, "ECDSA signature DER");
	ok = BN_bn2binpad(ECDSA_SIG_get0_r(s), out, 32) == 32 &&
	     BN_bn2binpad(ECDSA_SIG_get0_s(s), out + 32, 32) == 32;
	ECDSA_SIG_free(s);
	return ok ? 0 : err_set_ossl(err, STB_INTERNAL, "ECDSA signature r || s");
}

/* One INTEGER of a DER ECDSA-Sig-Value from 32 big-endian bytes: the
 * shortest form, a 0 byte ahead of a high bit.  Written here rather than
 * through BIGNUM and ECDSA_SIG (four allocations a check); OpenSSL's
 * verify parses it strictly again. */
static size_t
cose_der_int(const uint8_t v[32], uint8_t *out)
{
	size_t i = 0, n;
	int pad;

	while (i < 31 && v[i] == 0)
		i++;
	n = 32 - i;
	pad = (v[i] & 0x80) != 0;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + (size_t)pad);
	out[2] = 0;
	memcpy(out + 2 + pad, v + i, n);
	return 2 + (size_t)pad + n;
}

static int
cose_sig_to_der(const uint8_t in[COSE_SIG_LEN], uint8_t der[SIG_MAX], size_t *n, err_t *err)
{
	size_t len = 2;

	(void)err;
	len += cose_der_int(in, der + len);
	len += cose_der_int(in + 32, der + len);
	der[0] = 0x30; /* SEQUENCE; at most 70 bytes inside: the short length form */
	der[1] = (uint8_t)(len - 2);
	*n = len;
	return 0;
}

int
cose_sign1_encode(EVP_PKEY *key, const uint8_t *payload, size_t len, const uint8_t *aad,
                  size_t aad_len, buf_t *out, err_t *err)
{
	uint8_t kid[COSE_KID_LEN], der[SIG_MAX], rs[COSE_SIG_LEN];
	cbor_item_t *hdr = NULL, *msg = NULL, *tag = NULL;
	buf_t prot, tbs;
	size_t derlen = 0;
	int rc = -1;

	buf_init(&prot, COSE_HDR_MAX);
	buf_init(&tbs, COSE_MAX + 1024);
	if (len > COSE_MAX)
		return err_set(err, STB_TOO_LARGE, "COSE: payload longer than %u", COSE_MAX);
	if (cose_kid_of_key(key, kid, err) == -1)
		return -1;
	if ((hdr = cbor_new_definite_map(2)) == NULL ||
	    !cose_cbor_put(hdr, COSE_HDR_ALG, cbor_build_negint8((uint8_t)(-1 - COSE_ALG_ES256))) ||
	    !cose_cbor_put(hdr, COSE_HDR_KID, cbor_build_bytestring(kid, sizeof(kid)))) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	if (cose_cbor_serialize(hdr, &prot, err) == -1 ||
	    cose_tbs(prot.data, prot.len, aad, aad_len, payload, len, &tbs, err) == -1 ||
	    sig_sign(key, tbs.data, tbs.len, der, &derlen, err) == -1 ||
	    cose_sig_from_der(der, derlen, rs, err) == -1)
		goto done;
	if ((msg = cbor_new_definite_array(4)) == NULL ||
	    !cose_cbor_push(msg, cbor_build_bytestring(prot.data, prot.len)) ||
	    !cose_cbor_push(msg, cbor_new_definite_map(0)) ||
	    !cose_cbor_push(msg, cbor_build_bytestring(len ? payload : (const uint8_t *)"", len)) ||
	    !cose_cbor_push(msg, cbor_build_bytestring(rs, sizeof(rs))) ||
	    (tag = cbor_build_tag(COSE_TAG_SIGN1, msg)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	rc = cose_cbor_serialize(tag, out, err);
done:
	if (hdr != NULL)
		cbor_decref(&hdr);
	if (msg != NULL)
		cbor_decref(&msg);
	if (tag != NULL)
		cbor_decref(&tag);
	buf_free(&prot);
	buf_free(&tbs);
	return rc;
}

/* Takes a kid from a header's value into m (once across both headers). */
static int
cose_take_kid(const cbor_item_t *v, cose_sign1_t *m, err_t *err)
{
	const uint8_t *p;
	size_t n;

	if (m->kid_len > 0)
		return err_set(err, STB_BAD_REQUEST, "COSE: kid in both headers");
	if (cose_cbor_bstr(v, 1, COSE_KID_MAX, &p, &n, "COSE kid", err) == -1)
		return -1;
	memcpy(m->kid, p, n);
	m->kid_len = n;
	return 0;
}

/* A header map: int or text labels; in the protected one alg must be
 * ES256 and crit is refused (we know no extension to require). */
static int
cose_header(const cbor_item_t *map, int protected_hdr, cose_sign1_t *m, err_t *err)
{
	struct cbor_pair *pairs;
	int have_alg = 0;

	if (!cbor_isa_map(map) || !cbor_map_is_definite(map))
		return err_set(err, STB_BAD_REQUEST, "COSE: a header is not a map");
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
		int64_t label;

		if (cbor_isa_string(k))
			continue; /* private text labels: nothing we rely on */
		if (cbor_isa_uint(k) && cbor_get_int(k) <= INT32_MAX)
			label = (int64_t)cbor_get_int(k);
		else if (cbor_isa_negint(k) && cbor_get_int(k) < INT32_MAX)
			label = -1 - (int64_t)cbor_get_int(k);
		else
			return err_set(err, STB_BAD_REQUEST, "COSE: a bad header label");
		if (label == COSE_HDR_ALG) {
			if (!protected_hdr || have_alg)
				return err_set(err, STB_BAD_REQUEST,
				               "COSE: alg outside the protected header or twice");
			if (!cbor_isa_negint(v) ||
			    cbor_get_int(v) != (uint64_t)(-1 - COSE_ALG_ES256))
				return err_set(err, STB_BAD_REQUEST, "COSE: alg is not ES256");
			have_alg = 1;
		} else if (label == COSE_HDR_CRIT) {
			return err_set(err, STB_BAD_REQUEST,
			               "COSE: critical headers we do not know");
		} else if (label == COSE_HDR_KID) {
			if (cose_take_kid(v, m, err) == -1)
				return -1;
		}
	}
	if (protected_hdr && !have_alg)
		return err_set(err, STB_BAD_REQUEST, "COSE: no alg in the protected header");
	return 0;
}

static int
cose_copy(uint8_t **dst, size_t *dlen, const uint8_t *p, size_t n, err_t *err)
{
	if ((*dst = malloc(n ? n : 1)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	memcpy(*dst, p, n);
	*dlen = n;
	return 0;
}

static int
cose_sign1_parse(const cbor_item_t *arr, cose_sign1_t *m, err_t *err)
{
	cbor_item_t **items, *hdr = NULL;
	const uint8_t *p;
	size_t n;
	int rc;

	if (!cbor_isa_array(arr) || !cbor_array_is_definite(arr) || cbor_array_size(arr) != 4)
		return err_set(err, STB_BAD_REQUEST, "COSE: not a COSE_Sign1 array of 4");
	items = cbor_array_handle(arr);
	if (cose_cbor_bstr(items[0], 1, COSE_HDR_MAX, &p, &n, "COSE protected header", err) == -1 ||
	    cose_copy(&m->protected_hdr, &m->protected_len, p, n, err) == -1)
		return -1;
	if (cose_cbor_load(p, n, &hdr, err) == -1)
		return -1;
	rc = cose_header(hdr, 1, m, err);
	cbor_decref(&hdr);
	if (rc == -1 || cose_header(items[1], 0, m, err) == -1)
		return -1;
	if (cose_cbor_bstr(items[2], 0, COSE_MAX, &p, &n, "COSE payload", err) == -1 ||
	    cose_copy(&m->payload, &m->payload_len, p, n, err) == -1)
		return -1;
	if (cose_cbor_bstr(items[3], COSE_SIG_LEN, COSE_SIG_LEN, &p, &n, "COSE signature", err) ==
	    -1)
		return -1;
	memcpy(m->sig, p, COSE_SIG_LEN);
	return 0;
}

int
cose_sign1_decode(const uint8_t *in, size_t len, size_t max, cose_sign1_t *out, err_t *err)
{
	cbor_item_t *top = NULL, *inner = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > max || len > COSE_MAX)
		return err_set(err, STB_TOO_LARGE, "COSE: %zu bytes, more than %zu", len,
		               max < COSE_MAX ? max : COSE_MAX);
	/* tag 18 in its one-byte form (0xd2): libcbor 0.8 refuses the
	 * directly encoded tags 6 to 20 as "unassigned", so the tag byte is
	 * taken here and the array below it goes to libcbor */
	if (len > 0 && in[0] == COSE_TAG_SIGN1_BYTE) {
		in++;
		len--;
	}
	if (cose_cbor_load(in, len, &top, err) == -1)
		return -1;
	if (cbor_isa_tag(top)) {
		if (cbor_tag_value(top) != COSE_TAG_SIGN1) {
			cbor_decref(&top);
			return err_set(err, STB_BAD_REQUEST, "COSE: the tag is not COSE_Sign1");
		}
		inner = cbor_tag_item(top); /* a new reference */
	}
	rc = cose_sign1_parse(inner != NULL ? inner : top, out, err);
	if (inner != NULL)
		cbor_decref(&inner);
	cbor_decref(&top);
	return rc;
}

/* m's signature over its Sig_structure, by pub or by v. */
static int
cose_verify_sig(const cose_sign1_t *m, EVP_PKEY *pub, sig_verifier_t *v, const uint8_t *aad,
                size_t aad_len, err_t *err)
{
	uint8_t der[SIG_MAX];
	size_t derlen = 0;
	buf_t tbs;
	int rc;

	if (cose_sig_to_der(m->sig, der, &derlen, err) == -1)
		return err_set(err, STB_UNAUTHENTICATED, "COSE: the signature is not r || s");
	buf_init(&tbs, COSE_MAX + 1024);
	rc = cose_tbs(m->protected_hdr, m->protected_len, aad, aad_len, m->payload, m->payload_len,
	              &tbs, err);
	if (rc == 0 && (v != NULL ? sig_verifier_verify(v, tbs.data, tbs.len, der, derlen, err)
	                          : sig_verify(pub, tbs.data, tbs.len, der, derlen, err)) == -1)
		rc = err_set(err,
		             err != NULL && err->status == STB_BAD_REQUEST ? STB_BAD_REQUEST
		                                                           : STB_UNAUTHENTICATED,
		             "COSE: the signature does not verify");
	buf_free(&tbs);
	return rc;
}

static int
cose_check_kid(const cose_sign1_t *m, const uint8_t kid[COSE_KID_LEN], err_t *err)
{
	if (m->kid_len > 0 &&
	    (m->kid_len != COSE_KID_LEN || CRYPTO_memcmp(kid, m->kid, COSE_KID_LEN) != 0))
		return err_set(err, STB_UNAUTHENTICATED, "COSE: signed by another key");
	return 0;
}

int
cose_sign1_verify(const cose_sign1_t *m, EVP_PKEY *pub, const uint8_t *aad, size_t aad_len,
                  err_t *err)
{
	if (m->kid_len > 0) {
		uint8_t kid[COSE_KID_LEN];

		if (cose_kid_of_key(pub, kid, err) == -1 || cose_check_kid(m, kid, err) == -1)
			return -1;
	}
	return cose_verify_sig(m, pub, NULL, aad, aad_len, err);
}

int
cose_verifier_init(cose_verifier_t *v, EVP_PKEY *pub, err_t *err)
{
	memset(v, 0, sizeof(*v));
	if (cose_kid_of_key(pub, v->kid, err) == -1 ||
	    (v->sig = sig_verifier_new(pub, err)) == NULL)
		return -1;
	return 0;
}

void
cose_verifier_clear(cose_verifier_t *v)
{
	if (v == NULL)
		return;
	sig_verifier_free(v->sig);
	memset(v, 0, sizeof(*v));
}

int
cose_sign1_verify_by(const cose_sign1_t *m, cose_verifier_t *v, const uint8_t *aad, size_t aad_len,
                     err_t *err)
{
	if (cose_check_kid(m, v->kid, err) == -1)
		return -1;
	return cose_verify_sig(m, NULL, v->sig, aad, aad_len, err);
}

void
cose_sign1_clear(cose_sign1_t *m)
{
	if (m == NULL)
		return;
	free(m->protected_hdr);
	free(m->payload);
	memset(m, 0, sizeof(*m));
}
