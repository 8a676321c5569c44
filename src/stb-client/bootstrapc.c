/* bootstrapc: stb_bootstrap, the device's side of the credentialing
 * bootstrap (flow D, PROTOCOL.md): registration, credentialing and
 * provisioning at qualifyd, the package checked and opened here. */
#include <errno.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "loginc.h"
#include "msgenc.h"
#include "ocspc.h"
#include "qualify.h"

#define BOOT_KEY_MAX  8192 /* a PEM private key from the secret store */
#define BOOT_ADDR_MAX 263  /* a role address, host:port, and its NUL */

/* What one run carries from step to step; wiped at the end. */
struct boot {
	stb_client_t *c;
	char at[BOOT_ADDR_MAX]; /* the address c is connected to, "" none */
	char device_id[STB_ID_MAX + 1];
	uint8_t nonce[QUALIFY_NONCE_LEN];
	uint8_t client_random[QUALIFY_RANDOM_LEN];
	uint8_t session[QUALIFY_SESSION_LEN];
	uint8_t ticket[QUALIFY_TICKET_LEN];
	char cred_addr[BOOT_ADDR_MAX], prov_addr[BOOT_ADDR_MAX];
	int connections;
	int resumed; /* of which resumed a TLS session */
};

static int
boot_fail(stb_error_t *err, const err_t *e, const char *step)
{
	stbc_fail(err, e->status, "%s", e->msg);
	return loginc_step(err, step);
}

/* The device key from the secret store and the certificate file, as c's
 * TLS identity.  The PEM is wiped. */
static int
boot_identity(stb_client_t *c, const stb_bootstrap_conf_t *conf, stb_error_t *err)
{
	unsigned char *pem;
	size_t len = 0;
	EVP_PKEY *key = NULL;
	BIO *bio;
	char e[256];
	int rc = -1;

	if (conf->key_name == NULL)
		return 0;
	stbc_session_forget(c); /* it carries the identity set before */
	if (c->secrets == NULL || c->secrets->load == NULL || conf->cert_file == NULL)
		return stbc_fail(err, STB_BAD_REQUEST,
		                 "key_name needs a secret store and cert_file");
	if ((pem = OPENSSL_secure_malloc(BOOT_KEY_MAX)) == NULL &&
	    (pem = OPENSSL_malloc(BOOT_KEY_MAX)) == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	if (c->secrets->load(c->secrets_ctx, conf->key_name, pem, BOOT_KEY_MAX, &len) != 0 ||
	    len == 0 || len > BOOT_KEY_MAX) {
		stbc_fail(err, STB_NOT_FOUND, "the secret store has no key \"%s\"", conf->key_name);
		goto done;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL) {
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (key == NULL) {
		stbc_fail(err, STB_BAD_REQUEST, "key \"%s\" is not a PEM private key",
		          conf->key_name);
		goto done;
	}
	if (SSL_CTX_use_certificate_chain_file(c->ctx, conf->cert_file) != 1) {
		stbc_fail(err, STB_NOT_FOUND, "certificate %s: %s", conf->cert_file,
		          stbc_ssl_errstr(e, sizeof(e)));
		goto done;
	}
	if (SSL_CTX_use_PrivateKey(c->ctx, key) != 1 || SSL_CTX_check_private_key(c->ctx) != 1) {
		stbc_fail(err, STB_BAD_REQUEST, "key \"%s\" does not match %s", conf->key_name,
		          conf->cert_file);
		goto done;
	}
	rc = 0;
done:
	EVP_PKEY_free(key);
	OPENSSL_cleanse(pem, BOOT_KEY_MAX);
	OPENSSL_free(pem);
	ERR_clear_error();
	return rc;
}

/* c connected to addr (kept when it already is). */
static int
boot_connect(struct boot *b, const char *addr, const char *step, stb_error_t *err)
{
	if (b->c->ssl != NULL && strcmp(b->at, addr) == 0)
		return 0;
	stb_disconnect(b->c);
	b->at[0] = '\0';
	if (stb_connect_addr(b->c, addr, err) == -1)
		return loginc_step(err, step);
	snprintf(b->at, sizeof(b->at), "%s", addr);
	b->connections++;
	b->resumed += stb_client_resumed(b->c);
	return 0;
}

static int
boot_register(struct boot *b, const stb_bootstrap_conf_t *conf, stb_error_t *err)
{
	static const char step[] = "registration";
	const uint8_t *nonce;
	size_t nl = 0;
	struct msgreq_QD_REGISTER q = {
	    .DEVICE_ID =
	        MV_IF(conf->device_id != NULL, MV_STR(conf->device_id ? conf->device_id : ""))};
	err_t e;
	buf_t m;
	msg_t rsp;
	int rc;

	if (boot_connect(b, conf->reg_addr, step, err) == -1)
		return -1;
	buf_init(&m, 512);
	rc = msgenc_QD_REGISTER(&m, &q, &e);
	if (rc == -1) {
		buf_free(&m);
		return boot_fail(err, &e, step);
	}
	rc = stbc_call(b->c, STB_MSG_QD_REGISTER, &m, &rsp, err);
	buf_free(&m);
	if (rc == -1)
		return loginc_step(err, step);
	if (msg_get_str(&rsp, TLV_IX_DEVICE_ID, b->device_id, sizeof(b->device_id)) == -1 ||
	    msg_get_bytes(&rsp, TLV_IX_QD_REG_NONCE, &nonce, &nl) == -1 ||
	    nl != QUALIFY_NONCE_LEN ||
	    msg_get_str(&rsp, TLV_IX_QD_CRED_ADDR, b->cred_addr, sizeof(b->cred_addr)) == -1) {
		loginc_wipe_rbuf(b->c);
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	}
	memcpy(b->nonce, nonce, QUALIFY_NONCE_LEN);
	loginc_wipe_rbuf(b->c);
	if (conf->device_id != NULL && strcmp(conf->device_id, b->device_id) != 0)
		return stbc_fail(err, STB_UNAUTHENTICATED, "%s: the answer is for another device",
		                 step);
	return 0;
}

static int
boot_credentials(struct boot *b, stb_error_t *err)
{
	static const char step[] = "credential request";
	const uint8_t *ticket;
	size_t tl = 0;
	err_t e;
	buf_t m;
	msg_t rsp;
	int rc;

	if (RAND_bytes(b->client_random, sizeof(b->client_random)) != 1)
		return stbc_fail(err, STB_INTERNAL, "%s: no randomness", step);
	rc = qualify_session_nonce(b->nonce, b->device_id, b->client_random, b->session, &e);
	OPENSSL_cleanse(b->nonce, sizeof(b->nonce)); /* only the derivation leaves the device */
	if (rc == -1)
		return boot_fail(err, &e, step);
	if (boot_connect(b, b->cred_addr, step, err) == -1)
		return -1;
	struct msgreq_QD_CRED_REQ q = {
	    .DEVICE_ID = MV_STR(b->device_id),
	    .QD_CLIENT_RANDOM = MV_BYTES(b->client_random, sizeof(b->client_random)),
	    .QD_SESSION_NONCE = MV_BYTES(b->session, sizeof(b->session))};
	buf_init(&m, 512);
	if (msgenc_QD_CRED_REQ(&m, &q, &e) == -1) {
		buf_free(&m);
		return boot_fail(err, &e, step);
	}
	rc = stbc_call(b->c, STB_MSG_QD_CRED_REQ, &m, &rsp, err);
	buf_free(&m);
	if (rc == -1)
		return loginc_step(err, step);
	if (msg_get_str(&rsp, TLV_IX_QD_PROV_ADDR, b->prov_addr, sizeof(b->prov_addr)) == -1 ||
	    msg_get_bytes(&rsp, TLV_IX_QD_TICKET, &ticket, &tl) == -1 || tl != QUALIFY_TICKET_LEN) {
		loginc_wipe_rbuf(b->c);
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	}
	memcpy(b->ticket, ticket, QUALIFY_TICKET_LEN);
	loginc_wipe_rbuf(b->c);
	return 0;
}

/* QD_PKG_FETCH: the package DER appended to pkg. */
static int
boot_fetch(struct boot *b, buf_t *pkg, stb_error_t *err)
{
	static const char step[] = "package fetch";
	const uint8_t *p;
	size_t n = 0;
	struct msgreq_QD_PKG_FETCH q = {.QD_TICKET = MV_BYTES(b->ticket, sizeof(b->ticket))};
	err_t e;
	buf_t m;
	msg_t rsp;
	int rc;

	if (boot_connect(b, b->prov_addr, step, err) == -1)
		return -1;
	buf_init(&m, 256);
	if (msgenc_QD_PKG_FETCH(&m, &q, &e) == -1) {
		buf_free(&m);
		return boot_fail(err, &e, step);
	}
	rc = stbc_call(b->c, STB_MSG_QD_PKG_FETCH, &m, &rsp, err);
	buf_wipe(&m);
	if (rc == -1)
		return loginc_step(err, step);
	if (msg_get_bytes(&rsp, TLV_IX_QD_PACKAGE, &p, &n) == -1 || buf_append(pkg, p, n) == -1) {
		loginc_wipe_rbuf(b->c);
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	}
	loginc_wipe_rbuf(b->c);
	return 0;
}

/* 1 when x issued signer: names, key identifiers and the signature. */
static int
boot_issued(X509 *x, X509 *signer)
{
	return x != NULL && X509_check_issued(x, signer) == X509_V_OK &&
	       X509_verify(signer, X509_get0_pubkey(x)) == 1;
}

/* The signer's issuer among the certificates the package carries, or else
 * the operator CA file's (the chain to trust was checked with the package
 * already; this finds the key the OCSP answer must come from without
 * building the chain twice). */
static X509 *
boot_issuer(X509_STORE *trust, X509 *signer, STACK_OF(X509) * certs)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(trust);
	X509 *issuer = NULL;

	for (int i = 0; i < sk_X509_num(certs) && issuer == NULL; i++)
		if (boot_issued(sk_X509_value(certs, i), signer))
			issuer = sk_X509_value(certs, i);
	for (int i = 0; i < sk_X509_OBJECT_num(objs) && issuer == NULL; i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (boot_issued(x, signer))
			issuer = x;
	}
	if (issuer != NULL && X509_up_ref(issuer) != 1)
		issuer = NULL;
	ERR_clear_error();
	return issuer;
}

/* The operator certificate's OCSP status: 0 only when good. */
static int
boot_ocsp(stb_client_t *c, const stb_bootstrap_conf_t *conf, X509_STORE *trust, X509 *signer,
          STACK_OF(X509) * certs, stb_error_t *err)
{
	static const char step[] = "operator certificate status";
	STACK_OF(OPENSSL_STRING) *aia = NULL;
	const char *url = conf->ocsp_url;
	X509 *issuer = boot_issuer(trust, signer, certs);
	ocspc_req_t *q = NULL;
	ocspc_result_t res;
	int timeout_s = c->timeout_ms / 1000 > 0 ? c->timeout_ms / 1000 : 1, rc = -1;
	err_t e;
	buf_t rsp;

	buf_init(&rsp, OCSPC_RESP_MAX);
	if (issuer == NULL) {
		stbc_fail(err, STB_UNAUTHENTICATED, "%s: no issuer for the operator certificate",
		          step);
		goto done;
	}
	if (url == NULL && (aia = X509_get1_ocsp(signer)) != NULL && sk_OPENSSL_STRING_num(aia) > 0)
		url = sk_OPENSSL_STRING_value(aia, 0);
	if (url == NULL) {
		stbc_fail(err, STB_BAD_REQUEST, "%s: no OCSP responder (set ocsp_url)", step);
		goto done;
	}
	if (timeout_s > OCSPC_TIMEOUT_MAX)
		timeout_s = OCSPC_TIMEOUT_MAX;
	if ((q = ocspc_req_new(signer, issuer, OCSPC_SHA1, &e)) == NULL ||
	    ocspc_query(url, NULL, timeout_s, 0, q, &rsp, &e) == -1 ||
	    ocspc_check(q, rsp.data, rsp.len, NULL, &res, &e) == -1) {
		boot_fail(err, &e, step);
		goto done;
	}
	rc = 0;
done:
	ocspc_req_free(q);
	X509_email_free(aia);
	X509_free(issuer);
	buf_free(&rsp);
	return rc;
}

static int
boot_confirm(struct boot *b, const uint8_t digest[QUALIFY_DIGEST_LEN], stb_error_t *err)
{
	static const char step[] = "package confirmation";
	struct msgreq_QD_PKG_CONFIRM q = {.QD_TICKET = MV_BYTES(b->ticket, sizeof(b->ticket)),
	                                  .QD_PKG_DIGEST = MV_BYTES(digest, QUALIFY_DIGEST_LEN)};
	err_t e;
	buf_t m;
	msg_t rsp;
	int rc;

	if (boot_connect(b, b->prov_addr, step, err) == -1)
		return -1;
	buf_init(&m, 256);
	if (msgenc_QD_PKG_CONFIRM(&m, &q, &e) == -1) {
		buf_free(&m);
		return boot_fail(err, &e, step);
	}
	rc = stbc_call(b->c, STB_MSG_QD_PKG_CONFIRM, &m, &rsp, err);
	buf_wipe(&m);
	return rc == -1 ? loginc_step(err, step) : 0;
}

/* The operator CA file as a trust store, kept for the process while the
 * file is the same (path, inode, size, mtime): decoding certificates is
 * dear in OpenSSL 3 (a decoder context per public key), and every handle
 * of the process (a gateway, a factory line, the bench) bootstraps against
 * the same file.  The store is only read once built, so handles on any
 * thread share it.  NULL with err. */
static struct {
	pthread_mutex_t lock;
	X509_STORE *store;
	char path[512];
	unsigned long ino;
	long long size, mtime;
} boot_trust_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static X509_STORE *
boot_trust(const char *path, stb_error_t *err)
{
	struct stat st;
	X509_STORE *s = NULL;
	int hit;

	if (stat(path, &st) == -1) {
		stbc_fail(err, STB_NOT_FOUND, "operator CA file %s cannot be read: %s", path,
		          strerror(errno));
		return NULL;
	}
	pthread_mutex_lock(&boot_trust_cache.lock);
	hit = boot_trust_cache.store != NULL && strcmp(boot_trust_cache.path, path) == 0 &&
	      boot_trust_cache.ino == (unsigned long)st.st_ino &&
	      boot_trust_cache.size == (long long)st.st_size &&
	      boot_trust_cache.mtime == (long long)st.st_mtime &&
	      X509_STORE_up_ref(boot_trust_cache.store) == 1;
	if (hit)
		s = boot_trust_cache.store;
	pthread_mutex_unlock(&boot_trust_cache.lock);
	if (hit)
		return s;
	/* the operator CA is the only anchor; the signer is an operator
	 * service certificate (TLS purposes), not an S/MIME one */
	if ((s = X509_STORE_new()) == NULL || X509_STORE_load_file(s, path) != 1 ||
	    X509_STORE_set_purpose(s, X509_PURPOSE_ANY) != 1) {
		X509_STORE_free(s);
		ERR_clear_error();
		stbc_fail(err, STB_NOT_FOUND, "operator CA file %s cannot be read", path);
		return NULL;
	}
	if (strlen(path) < sizeof(boot_trust_cache.path) && X509_STORE_up_ref(s) == 1) {
		X509_STORE *old;

		pthread_mutex_lock(&boot_trust_cache.lock);
		old = boot_trust_cache.store;
		boot_trust_cache.store = s;
		snprintf(boot_trust_cache.path, sizeof(boot_trust_cache.path), "%s", path);
		boot_trust_cache.ino = (unsigned long)st.st_ino;
		boot_trust_cache.size = (long long)st.st_size;
		boot_trust_cache.mtime = (long long)st.st_mtime;
		pthread_mutex_unlock(&boot_trust_cache.lock);
		X509_STORE_free(old); /* handles using it hold their own reference */
	}
	return s;
}

/* Opens and checks the package, stores the credentials, confirms. */
static int
boot_open(struct boot *b, const stb_bootstrap_conf_t *conf, const buf_t *pkg,
          stb_credentials_fn store, void *ctx, stb_bootstrap_result_t *out, stb_error_t *err)
{
	static const char step[] = "package check";
	EVP_PKEY *key = SSL_CTX_get0_privatekey(b->c->ctx);
	X509 *cert = SSL_CTX_get0_certificate(b->c->ctx), *signer = NULL;
	X509_STORE *trust = boot_trust(conf->operator_ca_file, err);
	STACK_OF(X509) *certs = NULL;
	qualify_creds_t qc;
	stb_credentials_t sc;
	uint8_t digest[QUALIFY_DIGEST_LEN];
	err_t e;
	int rc = -1;

	memset(&qc, 0, sizeof(qc));
	memset(&sc, 0, sizeof(sc));
	if (trust == NULL)
		goto done;
	if (qualify_pkg_open_certs(trust, key, cert, pkg->data, pkg->len, b->device_id, b->session,
	                           &qc, &signer, &certs, &e) == -1) {
		boot_fail(err, &e, step);
		goto done;
	}
	if (boot_ocsp(b->c, conf, trust, signer, certs, err) == -1)
		goto done;
	if (qualify_pkg_digest(pkg->data, pkg->len, digest, &e) == -1) {
		boot_fail(err, &e, step);
		goto done;
	}
	snprintf(sc.device_id, sizeof(sc.device_id), "%s", qc.device_id);
	snprintf(sc.imsi, sizeof(sc.imsi), "%s", qc.imsi);
	memcpy(sc.k, qc.k, sizeof(sc.k));
	memcpy(sc.opc, qc.opc, sizeof(sc.opc));
	sc.issued = qc.issued;
	sc.expires = qc.expires;
	qualify_creds_wipe(&qc);
	if (store(ctx, &sc) != 0) {
		stbc_fail(err, STB_INTERNAL, "the device refused to store the credentials");
		goto done;
	}
	snprintf(out->device_id, sizeof(out->device_id), "%s", sc.device_id);
	snprintf(out->imsi, sizeof(out->imsi), "%s", sc.imsi);
	out->expires = sc.expires;
	memcpy(out->pkg_digest, digest, sizeof(digest));
	stb_credentials_clear(&sc);
	rc = boot_confirm(b, digest, err);
done:
	qualify_creds_wipe(&qc);
	stb_credentials_clear(&sc);
	X509_free(signer);
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_free(trust);
	ERR_clear_error();
	return rc;
}

int
stb_bootstrap(stb_client_t *c, const stb_bootstrap_conf_t *conf, stb_credentials_fn store,
              void *ctx, stb_bootstrap_result_t *out, stb_error_t *err)
{
	struct boot b;
	buf_t pkg;
	int rc = -1;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (c == NULL || conf == NULL || store == NULL || out == NULL || conf->reg_addr == NULL ||
	    conf->operator_ca_file == NULL)
		return stbc_fail(err, STB_BAD_REQUEST,
		                 "stb_bootstrap needs a client, reg_addr, operator_ca_file, store "
		                 "and out");
	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	b.c = c;
	buf_init(&pkg, QUALIFY_PKG_MAX);
	if (boot_identity(c, conf, err) == -1)
		goto done;
	if (SSL_CTX_get0_privatekey(c->ctx) == NULL || SSL_CTX_get0_certificate(c->ctx) == NULL) {
		stbc_fail(err, STB_BAD_REQUEST, "no device certificate and key");
		goto done;
	}
	stb_disconnect(c);
	if (boot_register(&b, conf, err) == -1 || boot_credentials(&b, err) == -1 ||
	    boot_fetch(&b, &pkg, err) == -1 ||
	    boot_open(&b, conf, &pkg, store, ctx, out, err) == -1)
		goto done;
	out->connections = b.connections;
	out->resumed = b.resumed;
	stbc_log(c, STB_LOG_INFO, "bootstrap of %s done: IMSI %s", out->device_id, out->imsi);
	rc = 0;
done:
	stb_disconnect(c);
	buf_wipe(&pkg);
	OPENSSL_cleanse(&b, sizeof(b));
	return rc;
}

void
stb_credentials_clear(stb_credentials_t *creds)
{
	if (creds != NULL)
		OPENSSL_cleanse(creds, sizeof(*creds));
}
