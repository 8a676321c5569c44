/* cmsmsg: CMS SignedData and EnvelopedData (see cmsmsg.h). */
#include "cmsmsg.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <string.h>

#include "x509.h"

/* The content ciphers, fetched once. */
static CRYPTO_ONCE cmsmsg_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_CIPHER *cmsmsg_ciphers[2];

static void
cmsmsg_fetch(void)
{
	cmsmsg_ciphers[CMSMSG_AES256_GCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	cmsmsg_ciphers[CMSMSG_AES256_CBC] = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static const EVP_CIPHER *
cmsmsg_cipher(int c)
{
	if (c != CMSMSG_AES256_GCM && c != CMSMSG_AES256_CBC)
		return NULL;
	if (!CRYPTO_THREAD_run_once(&cmsmsg_once, cmsmsg_fetch))
		return NULL;
	return cmsmsg_ciphers[c];
}

static CMS_ContentInfo *
cmsmsg_parse(const uint8_t *der, size_t len, err_t *err)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;

	if (der == NULL || len == 0 || len > CMSMSG_DER_MAX) {
		err_set(err, len > CMSMSG_DER_MAX ? STB_TOO_LARGE : STB_BAD_REQUEST,
		        "a CMS message is 1 to %u bytes", CMSMSG_DER_MAX);
		return NULL;
	}
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL || p != der + len) {
		CMS_ContentInfo_free(cms);
		err_set_ossl(err, STB_BAD_REQUEST, "not one DER CMS message");
		return NULL;
	}
	return cms;
}

static int
cmsmsg_encode(CMS_ContentInfo *cms, buf_t *out, err_t *err)
{
	unsigned char *der = NULL;
	int n = i2d_CMS_ContentInfo(cms, &der);
	int rc;

	if (n <= 0)
		return err_set_ossl(err, STB_INTERNAL, "CMS encoding");
	rc = buf_append(out, der, (size_t)n) == 0
	         ? 0
	         : err_set(err, STB_TOO_LARGE, "CMS message of %d bytes does not fit", n);
	OPENSSL_free(der);
	return rc;
}

/* The bytes written to a memory BIO, appended to out (reserved first, so
 * a secret is not left behind by a realloc); the BIO clears its own. */
static int
cmsmsg_drain(BIO *b, buf_t *out, err_t *err)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);

	if (n < 0 || (size_t)n > CMSMSG_CONTENT_MAX)
		return err_set(err, STB_TOO_LARGE, "CMS content larger than %u bytes",
		               CMSMSG_CONTENT_MAX);
	if (buf_reserve(out, (size_t)n) == -1)
		return err_set(err, STB_TOO_LARGE, "CMS content of %ld bytes does not fit", n);
	if (buf_append(out, p, (size_t)n) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	return 0;
}

static BIO *
cmsmsg_in(const uint8_t *data, size_t len, err_t *err)
{
	BIO *b;

	if (len > CMSMSG_CONTENT_MAX) {
		err_set(err, STB_TOO_LARGE, "CMS content larger than %u bytes", CMSMSG_CONTENT_MAX);
		return NULL;
	}
	if ((b = BIO_new_mem_buf(len > 0 ? data : (const void *)"", (int)len)) == NULL)
		err_set_ossl(err, STB_INTERNAL, "CMS input BIO");
	return b;
}

int
cmsmsg_sign(X509 *signer, EVP_PKEY *key, STACK_OF(X509) * extra, const uint8_t *data, size_t len,
            int mode, buf_t *out, err_t *err)
{
	unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	BIO *in;
	int rc;

	if (signer == NULL || key == NULL || (mode != CMSMSG_ATTACHED && mode != CMSMSG_DETACHED))
		return err_set(err, STB_BAD_REQUEST, "CMS sign: no signer, key or mode");
	if (X509_check_private_key(signer, key) != 1)
		return err_set_ossl(err, STB_BAD_REQUEST, "CMS sign: the key is not the signer's");
	if ((in = cmsmsg_in(data, len, err)) == NULL)
		return -1;
	if (mode == CMSMSG_DETACHED)
		flags |= CMS_DETACHED;
	if ((cms = CMS_sign(signer, key, extra, in, flags)) == NULL)
		rc = err_set_ossl(err, STB_INTERNAL, "CMS sign");
	else
		rc = cmsmsg_encode(cms, out, err);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	ERR_clear_error();
	return rc;
}

/* Whether want is among the message's signers; 0 or -1 with err. */
static int
cmsmsg_signers(CMS_ContentInfo *cms, X509 *want, X509 **signer, err_t *err)
{
	STACK_OF(X509) *s = CMS_get0_signers(cms);
	int found = want == NULL, rc = -1;

	for (int i = 0; s != NULL && !found && i < sk_X509_num(s); i++)
		found = X509_cmp(sk_X509_value(s, i), want) == 0;
	if (s == NULL || sk_X509_num(s) == 0)
		err_set(err, STB_UNAUTHENTICATED, "CMS message has no signer");
	else if (!found)
		err_set(err, STB_UNAUTHENTICATED, "CMS message not signed by the required signer");
	else
		rc = 0;
	if (rc == 0 && signer != NULL) {
		*signer = sk_X509_value(s, 0);
		X509_up_ref(*signer);
	}
	sk_X509_free(s); /* the certificates are the message's */
	return rc;
}

int
cmsmsg_verify(X509_STORE *trust, X509 *want_signer, const uint8_t *der, size_t len,
              const uint8_t *detached, size_t detached_len, buf_t *content, X509 **signer,
              err_t *err)
{
	return cmsmsg_verify_certs(trust, want_signer, der, len, detached, detached_len, content,
	                           signer, NULL, err);
}

/* SignedData parsed without its certificates field, the certificates
 * from crt_from_der_memo() (matched on their DER) and added back: a
 * process that checks many messages of the same signer (a gateway
 * bootstrapping many devices) decodes the signer's certificates once.
 * The signatures do not cover the field.  NULL (and the caller parses
 * as usual) when the message is anything but that plain shape. */
static CMS_ContentInfo *
cmsmsg_parse_signed(const uint8_t *der, size_t len)
{
	static const uint8_t signed_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
	const uint8_t *p = der, *end = der + len, *c, *oidtlv, *oid, *sd, *sdend, *mid, *rest,
	              *certs;
	size_t n, on, sdl, oidl, inner, nc;
	int s1, s2, total, nx = 0;
	X509 *x[8];
	CMS_ContentInfo *cms = NULL;
	unsigned char *tmp = NULL, *w;
	const unsigned char *rp;

	/* ContentInfo { OID signedData, [0] { SignedData } } */
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	oidtlv = p;
	if (crt_der_tlv(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, &oid, &on) == -1 ||
	    on != sizeof(signed_oid) || memcmp(oid, signed_oid, on) != 0)
		return NULL;
	oidl = (size_t)(p - oidtlv);
	if (crt_der_tlv(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &c, &n) == -1 || p != end)
		return NULL;
	p = c;
	end = c + n;
	/* SignedData { version, digestAlgorithms, encapContentInfo,
	 *   certificates [0] IMPLICIT OPTIONAL, crls [1] OPTIONAL, signerInfos } */
	if (crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &sd, &sdl) == -1 || p != end)
		return NULL;
	p = sd;
	sdend = sd + sdl;
	if (crt_der_tlv(&p, sdend, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
	    crt_der_tlv(&p, sdend, V_ASN1_SET, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
	    crt_der_tlv(&p, sdend, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1)
		return NULL;
	mid = p;
	if (crt_der_tlv(&p, sdend, 0, V_ASN1_CONTEXT_SPECIFIC, &certs, &nc) == -1)
		return NULL; /* no certificates: nothing to save */
	rest = p;
	if ((nx = crt_der_certs_memo(certs, nc, x, (int)(sizeof(x) / sizeof(x[0])))) < 0) {
		nx = 0;
		goto out;
	}
	/* the message again without the certificates field */
	inner = (size_t)(mid - sd) + (size_t)(sdend - rest);
	if (len > INT_MAX / 2 || (s1 = ASN1_object_size(1, (int)inner, V_ASN1_SEQUENCE)) <= 0 ||
	    (s2 = ASN1_object_size(1, s1, 0)) <= 0 ||
	    (total = ASN1_object_size(1, (int)oidl + s2, V_ASN1_SEQUENCE)) <= 0 ||
	    (tmp = OPENSSL_malloc((size_t)total)) == NULL)
		goto out;
	w = tmp;
	ASN1_put_object(&w, 1, (int)oidl + s2, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(w, oidtlv, oidl);
	w += oidl;
	ASN1_put_object(&w, 1, s1, 0, V_ASN1_CONTEXT_SPECIFIC);
	ASN1_put_object(&w, 1, (int)inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(w, sd, (size_t)(mid - sd));
	w += mid - sd;
	memcpy(w, rest, (size_t)(sdend - rest));
	rp = tmp;
	if ((cms = d2i_CMS_ContentInfo(NULL, &rp, total)) == NULL || rp != tmp + total)
		goto fail;
	for (int i = 0; i < nx; i++)
		if (CMS_add1_cert(cms, x[i]) != 1)
			goto fail;
	goto out;
fail:
	CMS_ContentInfo_free(cms);
	cms = NULL;
out:
	for (int i = 0; i < nx; i++)
		X509_free(x[i]);
	OPENSSL_free(tmp);
	ERR_clear_error();
	return cms;
}

int
cmsmsg_verify_certs(X509_STORE *trust, X509 *want_signer, const uint8_t *der, size_t len,
                    const uint8_t *detached, size_t detached_len, buf_t *content, X509 **signer,
                    STACK_OF(X509) * *certs, err_t *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *dcont = NULL, *out = NULL;
	int rc = -1;

	if (signer != NULL)
		*signer = NULL;
	if (certs != NULL)
		*certs = NULL;
	if (trust == NULL)
		return err_set(err, STB_BAD_REQUEST, "CMS verify: no trust store");
	if (der != NULL && len > 0 && len <= CMSMSG_DER_MAX)
		cms = cmsmsg_parse_signed(der, len);
	if (cms == NULL && (cms = cmsmsg_parse(der, len, err)) == NULL)
		return -1;
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		err_set(err, STB_BAD_REQUEST, "CMS message is not SignedData");
		goto out;
	}
	if ((CMS_is_detached(cms) == 1) != (detached != NULL)) {
		err_set(err, STB_BAD_REQUEST, "CMS content %s",
		        detached ? "is inside and given" : "is missing");
		goto out;
	}
	if ((detached != NULL && (dcont = cmsmsg_in(detached, detached_len, err)) == NULL))
		goto out;
	if ((out = BIO_new(BIO_s_mem())) == NULL) {
		err_set_ossl(err, STB_INTERNAL, "CMS output BIO");
		goto out;
	}
	if (CMS_verify(cms, NULL, trust, dcont, out, CMS_BINARY) != 1) {
		err_set_ossl(err, STB_UNAUTHENTICATED, "CMS signature or signer chain");
		goto out;
	}
	if (cmsmsg_signers(cms, want_signer, signer, err) == -1)
		goto out;
	if (detached == NULL && content != NULL && cmsmsg_drain(out, content, err) == -1) {
		if (signer != NULL) {
			X509_free(*signer);
			*signer = NULL;
		}
		goto out;
	}
	if (certs != NULL && (*certs = CMS_get1_certs(cms)) == NULL)
		*certs = sk_X509_new_null();
	rc = 0;
out:
	BIO_free(out);
	BIO_free(dcont);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return rc;
}

int
cmsmsg_encrypt(X509 *recip, const uint8_t *data, size_t len, int cipher, buf_t *out, err_t *err)
{
	const EVP_CIPHER *c = cmsmsg_cipher(cipher);
	EVP_PKEY *pub = recip != NULL ? X509_get0_pubkey(recip) : NULL;
	STACK_OF(X509) *certs = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	int rc = -1;

	if (pub == NULL || !EVP_PKEY_is_a(pub, "EC")) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "CMS encrypt: the recipient has no EC key");
	}
	if (c == NULL)
		return err_set_ossl(err, STB_BAD_REQUEST, "CMS encrypt: no such cipher");
	if ((in = cmsmsg_in(data, len, err)) == NULL)
		return -1;
	if ((certs = sk_X509_new_null()) == NULL || sk_X509_push(certs, recip) == 0) {
		err_set_ossl(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	/* an AEAD cipher makes AuthEnvelopedData (RFC 5083) */
	if ((cms = CMS_encrypt(certs, in, c, CMS_BINARY)) == NULL) {
		err_set_ossl(err, STB_INTERNAL, "CMS encrypt");
		goto out;
	}
	rc = cmsmsg_encode(cms, out, err);
out:
	CMS_ContentInfo_free(cms);
	sk_X509_free(certs);
	BIO_free(in);
	ERR_clear_error();
	return rc;
}

int
cmsmsg_decrypt(EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len, buf_t *out, err_t *err)
{
	CMS_ContentInfo *cms;
	BIO *plain = NULL;
	int nid, rc = -1;

	if (key == NULL)
		return err_set(err, STB_BAD_REQUEST, "CMS decrypt: no key");
	if ((cms = cmsmsg_parse(der, len, err)) == NULL)
		return -1;
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		err_set(err, STB_BAD_REQUEST, "CMS message is not (Auth)EnvelopedData");
		goto out;
	}
	if ((plain = BIO_new(BIO_s_mem())) == NULL) {
		err_set_ossl(err, STB_INTERNAL, "CMS output BIO");
		goto out;
	}
	if (CMS_decrypt(cms, key, cert, NULL, plain, CMS_BINARY) != 1) {
		err_set_ossl(err, STB_UNAUTHENTICATED,
		             "CMS message not for this key, or tampered with");
		goto out;
	}
	rc = cmsmsg_drain(plain, out, err);
out:
	BIO_free(plain); /* a memory BIO clears its buffer when freed */
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return rc;
}
