/* apppay: the published app QR payload (see apppay.h). */
#include "apppay.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base45.h"
#include "proto.h"
#include "sig.h"

#define APPPAY_VERSION   1
#define APPPAY_COSE_MAX  768 /* bytes: APPPAY_TEXT_MAX of base45, with room */
#define APPPAY_BODY_MAX  512
#define APPPAY_ADATA_MAX 256

enum { K_VERSION = 1, K_FLAG, K_ISSUED, K_EXPIRES, K_REF, K_KEY_ID, K_NONCE, K_ID1, K_COUNT };

static CRYPTO_ONCE apppay_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *apppay_sha256;
static EVP_CIPHER *apppay_gcm;

static void
apppay_fetch(void)
{
	apppay_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	apppay_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static int
apppay_algs(err_t *err)
{
	if (!CRYPTO_THREAD_run_once(&apppay_once, apppay_fetch) || apppay_sha256 == NULL ||
	    apppay_gcm == NULL)
		return err_set_ossl(err, STB_INTERNAL, "SHA-256 / AES-256-GCM");
	return 0;
}

int
apppay_ref(const char *id1, uint8_t ref[APPPAY_REF_LEN], err_t *err)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	buf_t tbs;
	int rc = -1;

	if (!proto_id_valid((const uint8_t *)id1, strnlen(id1, STB_ID_MAX + 1)))
		return err_set(err, STB_BAD_REQUEST, "ID1 is not an identifier");
	if (apppay_algs(err) == -1)
		return -1;
	buf_init(&tbs, 4 + 16 + 4 + STB_ID_MAX);
	if (sig_tbs_label(&tbs, "STB-APPREF-V1", err) == 0 && sig_tbs_str(&tbs, id1, err) == 0) {
		if (EVP_Digest(tbs.data, tbs.len, md, &mdlen, apppay_sha256, NULL) == 1) {
			memcpy(ref, md, APPPAY_REF_LEN);
			rc = 0;
		} else {
			err_set_ossl(err, STB_INTERNAL, "SHA-256");
		}
	}
	buf_free(&tbs);
	return rc;
}

int
apppay_key_id(const uint8_t key[APPPAY_KEY_LEN], uint8_t id[APPPAY_KEY_ID_LEN], err_t *err)
{
	static const char label[] = "STB-APPPAY-KEYID-V1";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (apppay_algs(err) == -1)
		return -1;
	if (HMAC(apppay_sha256, key, APPPAY_KEY_LEN, (const uint8_t *)label, sizeof(label) - 1, md,
	         &mdlen) == NULL)
		return err_set_ossl(err, STB_INTERNAL, "HMAC-SHA256");
	memcpy(id, md, APPPAY_KEY_ID_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

/* The GCM associated data: what the ciphertext is bound to. */
static int
apppay_adata(const apppay_t *p, buf_t *ad, err_t *err)
{
	if (sig_tbs_label(ad, "STB-APPPAY-ID1-V1", err) == -1 ||
	    sig_tbs_u64(ad, (uint64_t)p->flag, err) == -1 ||
	    sig_tbs_u64(ad, p->issued, err) == -1 || sig_tbs_u64(ad, p->expires, err) == -1 ||
	    sig_tbs_bytes(ad, p->ref, APPPAY_REF_LEN, err) == -1 ||
	    sig_tbs_bytes(ad, p->key_id, APPPAY_KEY_ID_LEN, err) == -1)
		return -1;
	return 0;
}

/* AES-256-GCM of in (n bytes) into out, tag after the ciphertext
 * (encrypt), or of the ciphertext||tag in into out (decrypt).  keyed: a
 * context that holds key's schedule already (only the nonce is set), or
 * NULL for one made here. */
static int
apppay_gcm_run(int enc, const uint8_t key[APPPAY_KEY_LEN], EVP_CIPHER_CTX *keyed, const apppay_t *p,
               const uint8_t *in, size_t n, uint8_t *out, err_t *err)
{
	EVP_CIPHER_CTX *ctx = keyed;
	buf_t ad;
	int len = 0, fin = 0, ok;
	size_t body = enc ? n : n - APPPAY_TAG_LEN;

	if (apppay_algs(err) == -1)
		return -1;
	buf_init(&ad, APPPAY_ADATA_MAX);
	if (apppay_adata(p, &ad, err) == -1) {
		buf_free(&ad);
		return -1;
	}
	if (ctx == NULL && (ctx = EVP_CIPHER_CTX_new()) == NULL) {
		buf_free(&ad);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	ok = (keyed != NULL ? EVP_CipherInit_ex2(ctx, NULL, NULL, p->nonce, enc, NULL)
	                    : EVP_CipherInit_ex2(ctx, apppay_gcm, key, p->nonce, enc, NULL)) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &len, ad.data, (int)ad.len) == 1 &&
	     EVP_CipherUpdate(ctx, out, &len, in, (int)body) == 1 && (size_t)len == body &&
	     (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, APPPAY_TAG_LEN,
	                                 (void *)(in + body)) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 && fin == 0 &&
	     (!enc ||
	      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, APPPAY_TAG_LEN, out + body) == 1);
	if (keyed == NULL)
		EVP_CIPHER_CTX_free(ctx);
	buf_free(&ad);
	if (!ok) {
		OPENSSL_cleanse(out, body);
		return err_set_ossl(err, enc ? STB_INTERNAL : STB_UNAUTHENTICATED,
		                    enc ? "AES-256-GCM" : "ID1 does not open under this key");
	}
	return 0;
}

static cbor_item_t *
apppay_body(const apppay_t *p)
{
	cbor_item_t *m = cbor_new_definite_map(K_COUNT - 1);

	if (m == NULL)
		return NULL;
	if (!cose_cbor_put(m, K_VERSION, cbor_build_uint8(APPPAY_VERSION)) ||
	    !cose_cbor_put(m, K_FLAG, cbor_build_uint8((uint8_t)p->flag)) ||
	    !cose_cbor_put(m, K_ISSUED, cose_cbor_build_uint(p->issued)) ||
	    !cose_cbor_put(m, K_EXPIRES, cose_cbor_build_uint(p->expires)) ||
	    !cose_cbor_put(m, K_REF, cbor_build_bytestring(p->ref, APPPAY_REF_LEN)) ||
	    !cose_cbor_put(m, K_KEY_ID, cbor_build_bytestring(p->key_id, APPPAY_KEY_ID_LEN)) ||
	    !cose_cbor_put(m, K_NONCE, cbor_build_bytestring(p->nonce, APPPAY_NONCE_LEN)) ||
	    !cose_cbor_put(m, K_ID1, cbor_build_bytestring(p->ct, p->ct_len)))
		cbor_decref(&m);
	return m;
}

int
apppay_encode(const char *id1, int flag, uint64_t issued, uint64_t expires,
              const uint8_t enc_key[APPPAY_KEY_LEN], EVP_PKEY *sign_key, char *out, size_t cap,
              err_t *err)
{
	size_t idlen = strnlen(id1, STB_ID_MAX + 1);
	cbor_item_t *m = NULL;
	apppay_t p;
	buf_t body, cose;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	if (flag != APPPAY_SAFE && flag != APPPAY_UNSAFE)
		return err_set(err, STB_BAD_REQUEST, "flag %d is neither SAFE nor UNSAFE", flag);
	if (expires <= issued)
		return err_set(err, STB_BAD_REQUEST, "a payload expires after it is issued");
	p.flag = flag;
	p.issued = issued;
	p.expires = expires;
	if (apppay_ref(id1, p.ref, err) == -1 || apppay_key_id(enc_key, p.key_id, err) == -1)
		return -1;
	if (RAND_bytes(p.nonce, APPPAY_NONCE_LEN) != 1)
		return err_set_ossl(err, STB_INTERNAL, "RAND_bytes");
	if (apppay_gcm_run(1, enc_key, NULL, &p, (const uint8_t *)id1, idlen, p.ct, err) == -1)
		return -1;
	p.ct_len = idlen + APPPAY_TAG_LEN;
	buf_init(&body, APPPAY_BODY_MAX);
	buf_init(&cose, APPPAY_COSE_MAX);
	if ((m = apppay_body(&p)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	if (cose_cbor_serialize(m, &body, err) == -1 ||
	    cose_sign1_encode(sign_key, body.data, body.len, (const uint8_t *)APPPAY_AAD,
	                      strlen(APPPAY_AAD), &cose, err) == -1)
		goto done;
	if (cap < sizeof(APPPAY_PREFIX)) {
		err_set(err, STB_TOO_LARGE, "payload text does not fit in %zu", cap);
		goto done;
	}
	memcpy(out, APPPAY_PREFIX, sizeof(APPPAY_PREFIX) - 1);
	if (base45_encoded_len(cose.len) + sizeof(APPPAY_PREFIX) - 1 > APPPAY_TEXT_MAX) {
		err_set(err, STB_TOO_LARGE, "payload text longer than %d", APPPAY_TEXT_MAX);
		goto done;
	}
	rc = base45_encode(cose.data, cose.len, out + sizeof(APPPAY_PREFIX) - 1,
	                   cap - (sizeof(APPPAY_PREFIX) - 1), NULL, err);
done:
	if (m != NULL)
		cbor_decref(&m);
	buf_free(&body);
	buf_free(&cose);
	return rc;
}

/* The COSE payload's map into p (everything but the signer's kid), in one
 * pass without an item tree (cose_cbor_flat_map). */
static int
apppay_parse_body(const uint8_t *in, size_t len, apppay_t *p, err_t *err)
{
	cose_flat_t v[K_COUNT];
	const uint8_t *b;
	uint64_t ver = 0, flag = 0;
	size_t n;

	if (cose_cbor_flat_map(in, len, v, K_COUNT, "app payload", err) == -1 ||
	    cose_flat_uint(&v[K_VERSION], &ver, "app payload version", err) == -1)
		return -1;
	if (ver != APPPAY_VERSION)
		return err_set(err, STB_BAD_REQUEST, "app payload version %llu is not %d",
		               (unsigned long long)ver, APPPAY_VERSION);
	if (cose_flat_uint(&v[K_FLAG], &flag, "app payload flag", err) == -1 ||
	    cose_flat_uint(&v[K_ISSUED], &p->issued, "app payload issued", err) == -1 ||
	    cose_flat_uint(&v[K_EXPIRES], &p->expires, "app payload expires", err) == -1)
		return -1;
	if (flag != APPPAY_SAFE && flag != APPPAY_UNSAFE)
		return err_set(err, STB_BAD_REQUEST, "app payload flag %llu is unknown",
		               (unsigned long long)flag);
	p->flag = (int)flag;
	if (p->expires <= p->issued)
		return err_set(err, STB_BAD_REQUEST, "app payload expires before it is issued");
	if (cose_flat_bstr(&v[K_REF], APPPAY_REF_LEN, APPPAY_REF_LEN, &b, &n, "app payload ref",
	                   err) == -1)
		return -1;
	memcpy(p->ref, b, n);
	if (cose_flat_bstr(&v[K_KEY_ID], APPPAY_KEY_ID_LEN, APPPAY_KEY_ID_LEN, &b, &n,
	                   "app payload key id", err) == -1)
		return -1;
	memcpy(p->key_id, b, n);
	if (cose_flat_bstr(&v[K_NONCE], APPPAY_NONCE_LEN, APPPAY_NONCE_LEN, &b, &n,
	                   "app payload nonce", err) == -1)
		return -1;
	memcpy(p->nonce, b, n);
	if (cose_flat_bstr(&v[K_ID1], APPPAY_TAG_LEN + 1, APPPAY_CT_MAX, &b, &n, "app payload ID1",
	                   err) == -1)
		return -1;
	memcpy(p->ct, b, n);
	p->ct_len = n;
	return 0;
}

/* apppay_verify by pub, or by cv when not NULL. */
static int
apppay_verify_by(const char *text, size_t len, EVP_PKEY *pub, cose_verifier_t *cv, uint64_t now,
                 apppay_t *out, err_t *err)
{
	const size_t plen = sizeof(APPPAY_PREFIX) - 1;
	uint8_t raw[APPPAY_COSE_MAX];
	size_t rawlen = 0;
	cose_sign1_t m;
	apppay_t p;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	if (len > APPPAY_TEXT_MAX)
		return err_set(err, STB_BAD_REQUEST, "app payload longer than %d characters",
		               APPPAY_TEXT_MAX);
	if (len < plen || memcmp(text, APPPAY_PREFIX, plen) != 0)
		return err_set(err, STB_BAD_REQUEST, "app payload does not start with %s",
		               APPPAY_PREFIX);
	if (base45_decode(text + plen, len - plen, raw, sizeof(raw), &rawlen, err) == -1) {
		if (err != NULL)
			err->status = STB_BAD_REQUEST;
		return -1;
	}
	if (cose_sign1_decode(raw, rawlen, sizeof(raw), &m, err) == -1) {
		cose_sign1_clear(&m);
		return -1;
	}
	/* the signature before the body: unsigned bytes are never parsed */
	if ((cv != NULL ? cose_sign1_verify_by(&m, cv, (const uint8_t *)APPPAY_AAD,
	                                       strlen(APPPAY_AAD), err)
	                : cose_sign1_verify(&m, pub, (const uint8_t *)APPPAY_AAD,
	                                    strlen(APPPAY_AAD), err)) == -1 ||
	    apppay_parse_body(m.payload, m.payload_len, &p, err) == -1)
		goto done;
	memcpy(p.signer_kid, m.kid, m.kid_len);
	p.signer_kid_len = m.kid_len;
	*out = p;
	if (now >= p.expires)
		err_set(err, STB_EXPIRED, "the app payload expired");
	else if (p.issued > now + APPPAY_SKEW_S)
		err_set(err, STB_BAD_REQUEST, "the app payload is not valid yet");
	else
		rc = 0;
done:
	cose_sign1_clear(&m);
	return rc;
}

int
apppay_verify(const char *text, size_t len, EVP_PKEY *pub, uint64_t now, apppay_t *out, err_t *err)
{
	return apppay_verify_by(text, len, pub, NULL, now, out, err);
}

/* apppay_open with kid = enc_key's key id, and keyed (or NULL) as in
 * apppay_gcm_run. */
static int
apppay_open_by(const apppay_t *p, const uint8_t enc_key[APPPAY_KEY_LEN],
               const uint8_t kid[APPPAY_KEY_ID_LEN], EVP_CIPHER_CTX *keyed,
               char id1[STB_ID_MAX + 1], err_t *err)
{
	uint8_t plain[APPPAY_CT_MAX];
	size_t n;

	if (p->ct_len <= APPPAY_TAG_LEN || p->ct_len > APPPAY_CT_MAX)
		return err_set(err, STB_BAD_REQUEST, "ID1 ciphertext of %zu bytes", p->ct_len);
	if (CRYPTO_memcmp(kid, p->key_id, APPPAY_KEY_ID_LEN) != 0)
		return err_set(err, STB_UNAUTHENTICATED, "ID1 is under another key");
	if (apppay_gcm_run(0, enc_key, keyed, p, p->ct, p->ct_len, plain, err) == -1)
		return -1;
	n = p->ct_len - APPPAY_TAG_LEN;
	if (!proto_id_valid(plain, n)) {
		OPENSSL_cleanse(plain, sizeof(plain));
		return err_set(err, STB_BAD_REQUEST, "ID1 is not an identifier");
	}
	memcpy(id1, plain, n);
	id1[n] = '\0';
	OPENSSL_cleanse(plain, sizeof(plain));
	return 0;
}

int
apppay_open(const apppay_t *p, const uint8_t enc_key[APPPAY_KEY_LEN], char id1[STB_ID_MAX + 1],
            err_t *err)
{
	uint8_t kid[APPPAY_KEY_ID_LEN];

	if (apppay_key_id(enc_key, kid, err) == -1)
		return -1;
	return apppay_open_by(p, enc_key, kid, NULL, id1, err);
}

/* ---- the reader: keys set up once ---- */

/* Idle keyed GCM contexts, as sig.c's verifier keeps its verify contexts. */
#define APPPAY_READER_IDLE 32

struct apppay_reader {
	cose_verifier_t cv;
	uint8_t key_id[APPPAY_KEY_ID_LEN];
	EVP_CIPHER_CTX *tmpl; /* keyed for decryption */
	pthread_mutex_t mu;
	EVP_CIPHER_CTX *idle[APPPAY_READER_IDLE];
	int nidle;
};

apppay_reader_t *
apppay_reader_new(EVP_PKEY *pub, const uint8_t enc_key[APPPAY_KEY_LEN], err_t *err)
{
	apppay_reader_t *rd;

	if (apppay_algs(err) == -1)
		return NULL;
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&rd->mu, NULL);
	if (cose_verifier_init(&rd->cv, pub, err) == -1 ||
	    apppay_key_id(enc_key, rd->key_id, err) == -1) {
		apppay_reader_free(rd);
		return NULL;
	}
	if ((rd->tmpl = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_CipherInit_ex2(rd->tmpl, apppay_gcm, enc_key, NULL, 0, NULL) != 1) {
		err_set_ossl(err, STB_INTERNAL, "AES-256-GCM");
		apppay_reader_free(rd);
		return NULL;
	}
	return rd;
}

int
apppay_reader_verify(apppay_reader_t *rd, const char *text, size_t len, uint64_t now, apppay_t *out,
                     err_t *err)
{
	return apppay_verify_by(text, len, NULL, &rd->cv, now, out, err);
}

int
apppay_reader_open(apppay_reader_t *rd, const apppay_t *p, char id1[STB_ID_MAX + 1], err_t *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	int rc;

	pthread_mutex_lock(&rd->mu);
	if (rd->nidle > 0)
		ctx = rd->idle[--rd->nidle];
	pthread_mutex_unlock(&rd->mu);
	if (ctx == NULL &&
	    ((ctx = EVP_CIPHER_CTX_new()) == NULL || EVP_CIPHER_CTX_copy(ctx, rd->tmpl) != 1)) {
		EVP_CIPHER_CTX_free(ctx);
		return err_set_ossl(err, STB_INTERNAL, "AES-256-GCM");
	}
	rc = apppay_open_by(p, NULL, rd->key_id, ctx, id1, err);
	pthread_mutex_lock(&rd->mu);
	if (rd->nidle < APPPAY_READER_IDLE) {
		rd->idle[rd->nidle++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&rd->mu);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

void
apppay_reader_free(apppay_reader_t *rd)
{
	if (rd == NULL)
		return;
	for (int i = 0; i < rd->nidle; i++)
		EVP_CIPHER_CTX_free(rd->idle[i]);
	EVP_CIPHER_CTX_free(rd->tmpl);
	cose_verifier_clear(&rd->cv);
	pthread_mutex_destroy(&rd->mu);
	OPENSSL_cleanse(rd, sizeof(*rd));
	free(rd);
}
