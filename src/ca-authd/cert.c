/* cert: building and reading X.509 certificates and requests. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "sig.h"
#include "x509.h"

#define CERT_EXT_MAX 2048

int
cert_serial_new(uint8_t serial[CA_SERIAL_LEN], err_t *err)
{
	if (RAND_bytes(serial, CA_SERIAL_LEN) != 1)
		return err_set(err, STB_INTERNAL, "RAND_bytes failed");
	/* positive, and no leading zero byte: always CA_SERIAL_LEN long */
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
	return 0;
}

/* The rule lives once, in core (sig.c); issue.c and keyinfo.c call it by
 * this name. */
int
cert_key_is_p256(EVP_PKEY *key)
{
	return sig_key_is_p256(key);
}

EVP_PKEY *
cert_key_new(err_t *err)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL)
		err_set(err, STB_INTERNAL, "cannot generate a P-256 key");
	return k;
}

int
cert_csr_check(const uint8_t *der, size_t len, EVP_PKEY **pub, err_t *err)
{
	const unsigned char *p = der;
	X509_REQ *req;
	EVP_PKEY *k;

	*pub = NULL;
	if (len > 65536 || (req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error(); /* nothing left behind for the next SSL_get_error */
		return err_set(err, STB_BAD_REQUEST, "CSR is not a DER PKCS#10 request");
	}
	if (p != der + len) {
		X509_REQ_free(req);
		return err_set(err, STB_BAD_REQUEST, "CSR has %zu bytes after its end",
		               (size_t)(der + len - p));
	}
	if ((k = X509_REQ_get_pubkey(req)) == NULL || !cert_key_is_p256(k)) {
		EVP_PKEY_free(k);
		X509_REQ_free(req);
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST,
		               "CSR key is not an EC P-256 key given by its curve name "
		               "(explicit parameters are refused)");
	}
	if (X509_REQ_verify(req, k) != 1) {
		EVP_PKEY_free(k);
		X509_REQ_free(req);
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST,
		               "CSR signature does not verify (no proof of possession)");
	}
	X509_REQ_free(req);
	*pub = k;
	return 0;
}

static int
cert_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, err_t *err)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ex == NULL) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "extension %s: cannot encode '%s'",
		               OBJ_nid2sn(nid), value);
	}
	ok = X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : err_set(err, STB_INTERNAL, "cannot add extension %s", OBJ_nid2sn(nid));
}

static int
cert_name(X509_NAME *n, const char *cn, const char *org)
{
	if (org != NULL && *org != '\0' &&
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1,
	                                0))
		return -1;
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                                0))
		return -1;
	return 0;
}

/* Version, serial, names, dates and key: what every certificate has. */
static X509 *
cert_skeleton(const char *cn, const char *org, const uint8_t serial[CA_SERIAL_LEN], int64_t nb,
              int64_t na, EVP_PKEY *pub, X509 *issuer, err_t *err)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, CA_SERIAL_LEN, NULL);
	X509_NAME *name = X509_NAME_new();
	int ok;

	ok = x != NULL && bn != NULL && name != NULL && X509_set_version(x, 2) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	     cert_name(name, cn, org) == 0 && X509_set_subject_name(x, name) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
	     ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) != NULL &&
	     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL && X509_set_pubkey(x, pub);
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		ERR_clear_error();
		err_set(err, STB_BAD_REQUEST, "cannot build a certificate for '%s'", cn);
		return NULL;
	}
	return x;
}

static int
cert_sign(X509 *x, EVP_PKEY *key, err_t *err)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		ERR_clear_error();
		return err_set(err, STB_INTERNAL, "cannot sign the certificate");
	}
	return 0;
}

/* "URI:a,DNS:b,IP:c" from the spec. */
static int
cert_san_text(const cert_spec_t *s, char *out, size_t cap)
{
	size_t used = 0;
	static const char *const kinds[] = {"URI", "DNS", "IP"};
	const char *const *lists[] = {s->uris, s->dns, s->ips};
	const int max[] = {4, 8, 8};

	out[0] = '\0';
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < max[k] && lists[k][i] != NULL; i++) {
			int n;
			if (strchr(lists[k][i], ',') != NULL)
				return -1;
			n = snprintf(out + used, cap - used, "%s%s:%s", used ? "," : "", kinds[k],
			             lists[k][i]);
			if (n < 0 || (size_t)n >= cap - used)
				return -1;
			used += (size_t)n;
		}
	return 0;
}

X509 *
cert_leaf_new(const cert_spec_t *s, const uint8_t serial[CA_SERIAL_LEN], EVP_PKEY *pub,
              X509 *issuer, EVP_PKEY *issuer_key, err_t *err)
{
	char v[CERT_EXT_MAX];
	X509V3_CTX ctx;
	X509 *x;

	if ((x = cert_skeleton(s->cn, s->organization, serial, s->not_before, s->not_after, pub,
	                       issuer, err)) == NULL)
		return NULL;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (cert_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) == -1)
		goto fail;
	snprintf(v, sizeof(v), "critical,%s", s->key_usage);
	if (cert_ext(x, &ctx, NID_key_usage, v, err) == -1)
		goto fail;
	if (s->ocsp_signing) {
		if (cert_ext(x, &ctx, NID_ext_key_usage, "OCSPSigning", err) == -1 ||
		    cert_ext(x, &ctx, NID_id_pkix_OCSP_noCheck, "ignored", err) == -1)
			goto fail;
	} else if (s->ext_key_usage != NULL &&
	           cert_ext(x, &ctx, NID_ext_key_usage, s->ext_key_usage, err) == -1)
		goto fail;
	if (cert_ext(x, &ctx, NID_subject_key_identifier, "hash", err) == -1 ||
	    cert_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err) == -1)
		goto fail;
	if (cert_san_text(s, v, sizeof(v)) == -1) {
		err_set(err, STB_BAD_REQUEST, "subjectAltName too long or holds a comma");
		goto fail;
	}
	if (v[0] != '\0' && cert_ext(x, &ctx, NID_subject_alt_name, v, err) == -1)
		goto fail;
	if (s->ocsp_url != NULL && *s->ocsp_url != '\0') {
		snprintf(v, sizeof(v), "OCSP;URI:%s", s->ocsp_url);
		if (cert_ext(x, &ctx, NID_info_access, v, err) == -1)
			goto fail;
	}
	if (s->crl_url != NULL && *s->crl_url != '\0') {
		snprintf(v, sizeof(v), "URI:%s", s->crl_url);
		if (cert_ext(x, &ctx, NID_crl_distribution_points, v, err) == -1)
			goto fail;
	}
	if (cert_sign(x, issuer_key, err) == -1)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

X509 *
cert_ca_new(const char *cn, const char *org, int64_t days, int pathlen, EVP_PKEY *key, X509 *issuer,
            EVP_PKEY *issuer_key, err_t *err)
{
	uint8_t serial[CA_SERIAL_LEN];
	int64_t now = (int64_t)time(NULL);
	char bc[64];
	X509V3_CTX ctx;
	X509 *x;

	if (cert_serial_new(serial, err) == -1)
		return NULL;
	if ((x = cert_skeleton(cn, org, serial, now - 60, now + days * 86400, key, issuer, err)) ==
	    NULL)
		return NULL;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (pathlen >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:TRUE");
	if (cert_ext(x, &ctx, NID_basic_constraints, bc, err) == -1 ||
	    cert_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err) == -1 ||
	    cert_ext(x, &ctx, NID_subject_key_identifier, "hash", err) == -1 ||
	    (issuer != NULL &&
	     cert_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err) == -1) ||
	    cert_sign(x, issuer ? issuer_key : key, err) == -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ca-authd's serial sizes are the core's (x509.h, crt_serial_*). */
_Static_assert(CA_SERIAL_MAX == CRT_SERIAL_MAX && CA_SERIAL_HEX == CRT_SERIAL_HEX,
               "ca-authd serials are the core's");

int
cert_cn(X509 *x, char *out, size_t cap)
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *u = NULL;
	int l;

	if (i < 0)
		return -1;
	l = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (l < 0 || (size_t)l >= cap || memchr(u, '\0', (size_t)l) != NULL) {
		OPENSSL_free(u);
		return -1;
	}
	memcpy(out, u, (size_t)l);
	out[l] = '\0';
	OPENSSL_free(u);
	return 0;
}

int
cert_der(X509 *x, uint8_t **der, size_t *len, err_t *err)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

	if (n <= 0)
		return err_set(err, STB_INTERNAL, "cannot encode the certificate");
	*der = p;
	*len = (size_t)n;
	return 0;
}
