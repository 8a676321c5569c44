/*
 * pki: the CA material in the state dir.  Certificates are PEM files an
 * operator can hand out (root.pem, chain-issuing.pem, chain.pem, ocsp.pem);
 * private keys are sealed under the KEK with the key's name and its
 * certificate's hash as associated data, so a key file moved onto another
 * certificate does not open.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "signer.h"

#define PKI_FILE_MAX (64 * 1024)
#define PKI_KEY_MAX  512
#define PKI_AAD      "stbcred ca-authd key v1:"

static const char *const pki_files[] = {"root.pem",        "chain-issuing.pem",  "ocsp.pem",
                                        "root.key.sealed", "issuing.key.sealed", "ocsp.key.sealed"};
#define PKI_NFILES (sizeof(pki_files) / sizeof(pki_files[0]))

static int
pki_path(char *out, size_t cap, const char *dir, const char *name, err_t *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return err_set(err, STB_BAD_REQUEST, "path %s/%s too long", dir, name);
	return 0;
}

int
pki_present(const char *dir, err_t *err)
{
	char path[4096];
	size_t have = 0;
	const char *missing = NULL;

	for (size_t i = 0; i < PKI_NFILES; i++) {
		if (pki_path(path, sizeof(path), dir, pki_files[i], err) == -1)
			return -1;
		if (access(path, F_OK) == 0)
			have++;
		else if (missing == NULL)
			missing = pki_files[i];
	}
	if (have == 0)
		return 1;
	if (have == PKI_NFILES)
		return 0;
	return err_set(err, STB_CONFLICT, "%s holds part of a CA (%s is missing): refusing", dir,
	               missing);
}

static int
pki_read(const char *path, buf_t *out, err_t *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t chunk[4096];
	size_t n;

	if (f == NULL)
		return err_set(err, STB_NOT_FOUND, "%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(out, chunk, n) == -1) {
			fclose(f);
			OPENSSL_cleanse(chunk, sizeof(chunk));
			return err_set(err, STB_TOO_LARGE, "%s: too large", path);
		}
	fclose(f);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return 0;
}

int
pki_write_file(const char *path, const void *p, size_t len, mode_t mode, int no_clobber, err_t *err)
{
	char tmp[4096 + 8];
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1)
		return err_set(err, STB_INTERNAL, "%s: %s", tmp, strerror(errno));
	ok = write(fd, p, len) == (ssize_t)len && fchmod(fd, mode) == 0 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok)
		ok = no_clobber ? link(tmp, path) == 0 : rename(tmp, path) == 0;
	if (!ok) {
		int e = errno;
		unlink(tmp);
		return err_set(err, e == EEXIST ? STB_CONFLICT : STB_INTERNAL, "%s: %s", path,
		               strerror(e));
	}
	if (no_clobber)
		unlink(tmp);
	return 0;
}

static int
pki_aad(X509 *cert, const char *name, uint8_t *aad, size_t cap, size_t *len)
{
	size_t nl = strlen(PKI_AAD) + strlen(name);
	unsigned int hl = 0;

	if (nl + 32 > cap)
		return -1;
	memcpy(aad, PKI_AAD, strlen(PKI_AAD));
	memcpy(aad + strlen(PKI_AAD), name, strlen(name));
	if (X509_digest(cert, EVP_sha256(), aad + nl, &hl) != 1 || hl != 32)
		return -1;
	*len = nl + 32;
	return 0;
}

static int
pki_seal_key(const sealed_kek_t *kek, const char *dir, const char *name, EVP_PKEY *key, X509 *cert,
             int replace, err_t *err)
{
	char fname[64], path[4096];
	unsigned char *der = NULL;
	uint8_t aad[128];
	size_t aadlen;
	buf_t blob;
	int n, rc;

	if ((n = i2d_PrivateKey(key, &der)) <= 0)
		return err_set(err, STB_INTERNAL, "cannot encode the %s key", name);
	if (pki_aad(cert, name, aad, sizeof(aad), &aadlen) == -1) {
		OPENSSL_clear_free(der, (size_t)n);
		return err_set(err, STB_INTERNAL, "cannot hash the %s certificate", name);
	}
	buf_init(&blob, PKI_KEY_MAX + SEALED_OVERHEAD);
	rc = sealed_seal(kek, aad, aadlen, der, (size_t)n, &blob, err);
	OPENSSL_clear_free(der, (size_t)n);
	snprintf(fname, sizeof(fname), "%s.key.sealed", name);
	if (rc == 0)
		rc = pki_path(path, sizeof(path), dir, fname, err);
	if (rc == 0)
		rc = pki_write_file(path, blob.data, blob.len, 0600, !replace, err);
	buf_free(&blob);
	return rc;
}

/* name's sealed key file (path, for messages) and the AAD it was sealed
 * under, which binds it to cert. */
static int
pki_sealed_blob(const char *dir, const char *name, X509 *cert, char *path, size_t pathcap,
                buf_t *blob, uint8_t aad[128], size_t *aadlen, err_t *err)
{
	char fname[64];

	snprintf(fname, sizeof(fname), "%s.key.sealed", name);
	if (pki_path(path, pathcap, dir, fname, err) == -1 || pki_read(path, blob, err) == -1)
		return -1;
	if (pki_aad(cert, name, aad, 128, aadlen) == -1)
		return err_set(err, STB_INTERNAL, "cannot hash the %s certificate", name);
	return 0;
}

static EVP_PKEY *
pki_open_key(const sealed_kek_t *kek, const char *dir, const char *name, X509 *cert, err_t *err)
{
	char path[4096];
	uint8_t aad[128], pt[PKI_KEY_MAX];
	const unsigned char *p = pt;
	size_t aadlen, ptlen = 0;
	EVP_PKEY *key = NULL;
	buf_t blob;

	buf_init(&blob, PKI_KEY_MAX + SEALED_OVERHEAD);
	if (pki_sealed_blob(dir, name, cert, path, sizeof(path), &blob, aad, &aadlen, err) == -1)
		goto out;
	if (sealed_open(kek, aad, aadlen, blob.data, blob.len, pt, sizeof(pt), &ptlen, err) == -1) {
		err_set(err, STB_UNAUTHENTICATED, "%s: does not open with this KEK and certificate",
		        path);
		goto out;
	}
	if ((key = d2i_AutoPrivateKey(NULL, &p, (long)ptlen)) == NULL ||
	    X509_check_private_key(cert, key) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();
		err_set(err, STB_INTERNAL, "%s: key does not match its certificate", path);
	}
out:
	OPENSSL_cleanse(pt, sizeof(pt));
	buf_free(&blob);
	return key;
}

/* The key of name as a signer key: the blob and its AAD go to the signer,
 * which must open it and sign for cert's public key. */
static EVP_PKEY *
pki_signer_key(signer_t *sg, const char *dir, const char *name, X509 *cert, err_t *err)
{
	char path[4096];
	uint8_t aad[128], probe[32], sig[SIGNER_SIG_MAX];
	size_t aadlen, siglen = sizeof(sig);
	EVP_MD_CTX *m = NULL;
	EVP_PKEY *key = NULL;
	buf_t blob;
	int ok;

	buf_init(&blob, PKI_KEY_MAX + SEALED_OVERHEAD);
	if (pki_sealed_blob(dir, name, cert, path, sizeof(path), &blob, aad, &aadlen, err) == -1)
		goto out;
	if ((key = signer_pkey(sg, X509_get0_pubkey(cert), aad, aadlen, blob.data, blob.len,
	                       err)) == NULL)
		goto out;
	/* the start-up check X509_check_private_key makes for a loaded key */
	ok = RAND_bytes(probe, sizeof(probe)) == 1 && (m = EVP_MD_CTX_new()) != NULL &&
	     EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestSign(m, sig, &siglen, probe, sizeof(probe)) == 1;
	EVP_MD_CTX_free(m);
	m = NULL;
	if (!ok) {
		if (!signer_take_err(err))
			err_set(err, STB_INTERNAL, "cannot sign with the %s key", name);
		err_set(err, err->status, "%s: %s", path, err->msg);
	} else {
		ok = (m = EVP_MD_CTX_new()) != NULL &&
		     EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) ==
		         1 &&
		     EVP_DigestVerify(m, sig, siglen, probe, sizeof(probe)) == 1;
		EVP_MD_CTX_free(m);
		if (!ok)
			err_set(err, STB_INTERNAL, "%s: key does not match its certificate", path);
	}
	if (!ok) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();
	}
out:
	buf_free(&blob);
	return key;
}

static int
pki_pem_certs(const char *path, X509 *const *certs, int n, int no_clobber, err_t *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;
	int rc;

	if (b == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
		if (PEM_write_bio_X509(b, certs[i]) != 1) {
			BIO_free(b);
			return err_set(err, STB_INTERNAL, "cannot encode a certificate");
		}
	len = BIO_get_mem_data(b, &p);
	rc = pki_write_file(path, p, (size_t)len, 0644, no_clobber, err);
	BIO_free(b);
	return rc;
}

int
pki_write_pem_certs(const char *path, X509 *const *certs, int n, err_t *err)
{
	return pki_pem_certs(path, certs, n, 0, err);
}

int
pki_write_pem_key(const char *path, EVP_PKEY *key, err_t *err)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *p;
	long len;
	int rc;

	if (b == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(b);
		return err_set(err, STB_INTERNAL, "cannot encode the key");
	}
	len = BIO_get_mem_data(b, &p);
	rc = pki_write_file(path, p, (size_t)len, 0600, 0, err);
	OPENSSL_cleanse(p, (size_t)len);
	BIO_free(b);
	return rc;
}

static int
pki_write_cert(const char *dir, const char *name, X509 *const *certs, int n, err_t *err)
{
	char path[4096];

	if (pki_path(path, sizeof(path), dir, name, err) == -1)
		return -1;
	return pki_pem_certs(path, certs, n, 1, err);
}

static X509 *
pki_read_cert(const char *dir, const char *name, err_t *err)
{
	char path[4096];
	X509 *x = NULL;
	BIO *b;
	buf_t f;

	buf_init(&f, PKI_FILE_MAX);
	if (pki_path(path, sizeof(path), dir, name, err) == -1 || pki_read(path, &f, err) == -1) {
		buf_free(&f);
		return NULL;
	}
	if ((b = BIO_new_mem_buf(f.data, (int)f.len)) != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	buf_free(&f);
	if (x == NULL) {
		ERR_clear_error();
		err_set(err, STB_INTERNAL, "%s: not a PEM certificate", path);
	}
	return x;
}

static int
pki_issuing_der(pki_t *p, err_t *err)
{
	return cert_der(p->issuing, &p->issuing_der, &p->issuing_der_len, err);
}

/* The delegated OCSP responder: a leaf of the issuing CA. */
static X509 *
pki_responder(const ca_conf_t *conf, EVP_PKEY *key, X509 *issuing, EVP_PKEY *issuing_key,
              err_t *err)
{
	uint8_t serial[CA_SERIAL_LEN];
	char cn[CA_ID_CAP + 32];
	int64_t now = (int64_t)time(NULL);
	cert_spec_t s;

	memset(&s, 0, sizeof(s));
	snprintf(cn, sizeof(cn), "%s OCSP responder", conf->issuing_name);
	s.cn = cn;
	s.organization = conf->organization;
	s.key_usage = "digitalSignature";
	s.ocsp_signing = 1;
	s.not_before = now - 60;
	s.not_after = now + conf->ocsp_days * 86400;
	if (cert_serial_new(serial, err) == -1)
		return NULL;
	return cert_leaf_new(&s, serial, key, issuing, issuing_key, err);
}

int
pki_create(const ca_conf_t *conf, const sealed_kek_t *kek, const char *dir, pki_t *out, err_t *err)
{
	EVP_PKEY *root_key = NULL;
	X509 *chain[2];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((rc = pki_present(dir, err)) != 1)
		return rc == -1 ? -1 : err_set(err, STB_CONFLICT, "%s already holds a CA", dir);
	rc = -1;
	if ((root_key = cert_key_new(err)) == NULL ||
	    (out->issuing_key = cert_key_new(err)) == NULL ||
	    (out->ocsp_key = cert_key_new(err)) == NULL)
		goto out;
	if ((out->root = cert_ca_new(conf->root_name, conf->organization, conf->root_days, -1,
	                             root_key, NULL, NULL, err)) == NULL ||
	    (out->issuing = cert_ca_new(conf->issuing_name, conf->organization, conf->issuing_days,
	                                0, out->issuing_key, out->root, root_key, err)) == NULL ||
	    (out->ocsp = pki_responder(conf, out->ocsp_key, out->issuing, out->issuing_key, err)) ==
	        NULL)
		goto out;
	chain[0] = out->issuing;
	chain[1] = out->root;
	/* keys first: certificates without their keys would look complete */
	if (pki_seal_key(kek, dir, "root", root_key, out->root, 0, err) == -1 ||
	    pki_seal_key(kek, dir, "issuing", out->issuing_key, out->issuing, 0, err) == -1 ||
	    pki_seal_key(kek, dir, "ocsp", out->ocsp_key, out->ocsp, 0, err) == -1 ||
	    pki_write_cert(dir, "chain.pem", chain, 2, err) == -1 ||
	    pki_write_cert(dir, "ocsp.pem", &out->ocsp, 1, err) == -1 ||
	    pki_write_cert(dir, "chain-issuing.pem", &out->issuing, 1, err) == -1 ||
	    pki_write_cert(dir, "root.pem", &out->root, 1, err) == -1)
		goto out;
	rc = pki_issuing_der(out, err);
out:
	EVP_PKEY_free(root_key);
	if (rc == -1)
		pki_clear(out);
	return rc;
}

/* Loads the certificates and either opens the keys under kek or hands
 * them to the signer sg. */
static int
pki_load_with(const sealed_kek_t *kek, signer_t *sg, const char *dir, pki_t *out, err_t *err)
{
	EVP_PKEY *rk;

	memset(out, 0, sizeof(*out));
	if ((out->root = pki_read_cert(dir, "root.pem", err)) == NULL ||
	    (out->issuing = pki_read_cert(dir, "chain-issuing.pem", err)) == NULL ||
	    (out->ocsp = pki_read_cert(dir, "ocsp.pem", err)) == NULL)
		goto fail;
	rk = X509_get0_pubkey(out->root);
	if (X509_check_issued(out->root, out->issuing) != X509_V_OK || rk == NULL ||
	    X509_verify(out->issuing, rk) != 1 ||
	    X509_check_issued(out->issuing, out->ocsp) != X509_V_OK ||
	    X509_verify(out->ocsp, X509_get0_pubkey(out->issuing)) != 1) {
		ERR_clear_error();
		err_set(err, STB_INTERNAL, "%s: the certificates do not chain to root.pem", dir);
		goto fail;
	}
	if (sg != NULL) {
		out->issuing_key = pki_signer_key(sg, dir, "issuing", out->issuing, err);
		out->ocsp_key = out->issuing_key == NULL
		                    ? NULL
		                    : pki_signer_key(sg, dir, "ocsp", out->ocsp, err);
	} else {
		out->issuing_key = pki_open_key(kek, dir, "issuing", out->issuing, err);
		out->ocsp_key = out->issuing_key == NULL
		                    ? NULL
		                    : pki_open_key(kek, dir, "ocsp", out->ocsp, err);
	}
	if (out->issuing_key == NULL || out->ocsp_key == NULL || pki_issuing_der(out, err) == -1)
		goto fail;
	return 0;
fail:
	pki_clear(out);
	return -1;
}

int
pki_load(const sealed_kek_t *kek, const char *dir, pki_t *out, err_t *err)
{
	return pki_load_with(kek, NULL, dir, out, err);
}

int
pki_load_signer(signer_t *sg, const char *dir, pki_t *out, err_t *err)
{
	return pki_load_with(NULL, sg, dir, out, err);
}

int
pki_renew_responder(const ca_conf_t *conf, const sealed_kek_t *kek, const char *dir, X509 **out,
                    err_t *err)
{
	char path[4096];
	EVP_PKEY *ik = NULL, *key = NULL;
	X509 *issuing, *x = NULL;
	int rc = -1;

	*out = NULL;
	/* only the issuing CA is needed: this also mends a half-done renewal */
	if ((issuing = pki_read_cert(dir, "chain-issuing.pem", err)) == NULL ||
	    (ik = pki_open_key(kek, dir, "issuing", issuing, err)) == NULL ||
	    (key = cert_key_new(err)) == NULL ||
	    (x = pki_responder(conf, key, issuing, ik, err)) == NULL)
		goto out;
	/* the key first: a crash between the two leaves a pair that does
	 * not load, and running this again mends it */
	if (pki_seal_key(kek, dir, "ocsp", key, x, 1, err) == -1 ||
	    pki_path(path, sizeof(path), dir, "ocsp.pem", err) == -1 ||
	    pki_pem_certs(path, &x, 1, 0, err) == -1)
		goto out;
	*out = x;
	x = NULL;
	rc = 0;
out:
	X509_free(x);
	X509_free(issuing);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(key);
	return rc;
}

void
pki_clear(pki_t *p)
{
	X509_free(p->root);
	X509_free(p->issuing);
	X509_free(p->ocsp);
	EVP_PKEY_free(p->issuing_key);
	EVP_PKEY_free(p->ocsp_key);
	OPENSSL_free(p->issuing_der);
	memset(p, 0, sizeof(*p));
}
