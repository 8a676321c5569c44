#include "tls.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fmode.h"
#include "hex.h"
#include "proto.h"
#include "x509.h"

/* TLS 1.2 for STBs: ECDHE with AEAD only. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

const char *
tls_errstr(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, cap, "no OpenSSL error");
	else
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* OpenSSL reports a missing file as "system lib"; say which and why. */
static int
tls_file_readable(const char *path, const char *what, err_t *err)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return err_set(err, STB_NOT_FOUND, "%s %s: %s", what, path, strerror(errno));
	fclose(f);
	return 0;
}

static int
tls_ctx_common(SSL_CTX *ctx, const tls_conf_t *conf, err_t *err)
{
	char e[256];

	SSL_CTX_set_min_proto_version(ctx, conf->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1)
		return err_set(err, STB_INTERNAL, "TLS cipher setup: %s", tls_errstr(e, sizeof(e)));
	/* idle connections give their buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (conf->cert != NULL && *conf->cert != '\0') {
		if (tls_file_readable(conf->cert, "certificate", err) == -1 ||
		    tls_file_readable(conf->key, "private key", err) == -1)
			return -1;
		if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert) != 1)
			return err_set(err, STB_NOT_FOUND, "certificate %s: %s", conf->cert,
			               tls_errstr(e, sizeof(e)));
		/* the KEK's rule: a key others can read is refused, not used */
		if (fmode_private_path(conf->key, "TLS key", err) == -1)
			return -1;
		if (SSL_CTX_use_PrivateKey_file(ctx, conf->key, SSL_FILETYPE_PEM) != 1)
			return err_set(err, STB_NOT_FOUND, "private key %s: %s", conf->key,
			               tls_errstr(e, sizeof(e)));
		if (SSL_CTX_check_private_key(ctx) != 1)
			return err_set(err, STB_BAD_REQUEST, "%s does not match %s", conf->key,
			               conf->cert);
	}
	if (conf->ca != NULL && *conf->ca != '\0' &&
	    tls_file_readable(conf->ca, "CA file", err) == -1)
		return -1;
	if (conf->ca != NULL && *conf->ca != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, conf->ca, NULL) != 1)
		return err_set(err, STB_NOT_FOUND, "CA file %s: %s", conf->ca,
		               tls_errstr(e, sizeof(e)));
	return 0;
}

/* What a refused client certificate was, for the log: kept on the SSL only
 * when verification fails, so an accepted handshake pays nothing. */
typedef struct tls_refused {
	char fp[17];
	int error;
} tls_refused_t;

static int tls_refused_idx = -1;
static pthread_once_t tls_refused_once = PTHREAD_ONCE_INIT;

static void
tls_refused_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

static void
tls_refused_init(void)
{
	tls_refused_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_refused_free);
}

static int
tls_verify_record(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	tls_refused_t *rf;
	X509 *leaf;
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (ok || tls_refused_idx < 0)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || SSL_get_ex_data(ssl, tls_refused_idx) != NULL)
		return ok;
	if ((rf = OPENSSL_zalloc(sizeof(*rf))) == NULL)
		return ok;
	rf->error = X509_STORE_CTX_get_error(xs);
	if ((leaf = X509_STORE_CTX_get0_cert(xs)) != NULL &&
	    X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1 && mdlen >= 8)
		hex_encode(md, 8, rf->fp);
	if (SSL_set_ex_data(ssl, tls_refused_idx, rf) != 1)
		OPENSSL_free(rf);
	return ok;
}

const char *
tls_refused_reason(SSL *ssl, const char **fingerprint)
{
	tls_refused_t *rf = tls_refused_idx < 0 ? NULL : SSL_get_ex_data(ssl, tls_refused_idx);

	*fingerprint = NULL;
	if (rf == NULL)
		return NULL;
	*fingerprint = rf->fp[0] != '\0' ? rf->fp : NULL;
	switch (rf->error) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate_out_of_date";
	case X509_V_ERR_CERT_REVOKED:
		return "certificate_revoked";
	default:
		return "untrusted_certificate";
	}
}

/* ---- TLS 1.3 session tickets ----
 *
 * One key set per process: every listener and worker thread of a daemon
 * encrypts tickets under the same current key, so a device that did its
 * full handshake at one listener resumes at another of the same daemon.
 * Keys come from RAND_bytes and rotate every ticket lifetime; the previous
 * key still opens tickets (and the client gets a fresh one), so none dies
 * at the rotation.  Nothing is written to disk: a restart forgets every
 * session.  A ticket's session keeps the client certificate and its
 * verification result as the full handshake had them (OpenSSL stores both
 * in the ticket; not the verified chain); tls_ticket_decrypted refuses to
 * resume once that certificate has expired, and the session id context
 * (tls_sid_ctx) ties a ticket to listeners with the same client
 * authentication and the same trust anchors. */

typedef struct tls_tkey {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	time_t born;
	int set;
} tls_tkey_t;

static struct {
	pthread_mutex_t mu;
	tls_tkey_t cur, prev;
	long lifetime_s;
	EVP_CIPHER *aes;
	atomic_ullong resumed, refused;
} tls_tk = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int
tls_tkey_new(tls_tkey_t *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return -1;
	k->born = time(NULL);
	k->set = 1;
	return 0;
}

/* Under tls_tk.mu: a first key set, or a rotation when the current one is
 * a lifetime old (or force). */
static int
tls_tkeys_fresh(int force)
{
	tls_tkey_t k;

	if (tls_tk.aes == NULL &&
	    (tls_tk.aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL)
		return -1;
	if (tls_tk.cur.set && !force && time(NULL) - tls_tk.cur.born < tls_tk.lifetime_s)
		return 0;
	if (tls_tkey_new(&k) == -1)
		return -1;
	tls_tk.prev = tls_tk.cur;
	tls_tk.cur = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int
tls_tickets_rotate(err_t *err)
{
	int rc;

	pthread_mutex_lock(&tls_tk.mu);
	rc = tls_tkeys_fresh(1);
	pthread_mutex_unlock(&tls_tk.mu);
	return rc == 0 ? 0 : err_set(err, STB_INTERNAL, "session ticket keys: no randomness");
}

void
tls_tickets_counts(unsigned long long *resumed, unsigned long long *refused)
{
	*resumed = atomic_load(&tls_tk.resumed);
	*refused = atomic_load(&tls_tk.refused);
}

static int
tls_tkey_use(const tls_tkey_t *k, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
             int enc)
{
	OSSL_PARAM p[3];

	p[0] =
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	p[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, p) != 1)
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(cctx, tls_tk.aes, NULL, k->aes, iv) == 1 ? 0 : -1;
	return EVP_DecryptInit_ex(cctx, tls_tk.aes, NULL, k->aes, iv) == 1 ? 0 : -1;
}

/* OpenSSL's ticket key callback: 1 used the current key, 2 an older one
 * (renew), 0 no key for this ticket (full handshake), -1 failure. */
static int
tls_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
               EVP_MAC_CTX *hctx, int enc)
{
	int rc = -1;

	(void)ssl;
	pthread_mutex_lock(&tls_tk.mu);
	if (tls_tkeys_fresh(0) == -1)
		goto done;
	if (enc) {
		memcpy(name, tls_tk.cur.name, sizeof(tls_tk.cur.name));
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(tls_tk.aes)) == 1 &&
		    tls_tkey_use(&tls_tk.cur, iv, cctx, hctx, 1) == 0)
			rc = 1;
	} else if (CRYPTO_memcmp(name, tls_tk.cur.name, sizeof(tls_tk.cur.name)) == 0)
		rc = tls_tkey_use(&tls_tk.cur, iv, cctx, hctx, 0) == 0 ? 1 : -1;
	else if (tls_tk.prev.set &&
	         CRYPTO_memcmp(name, tls_tk.prev.name, sizeof(tls_tk.prev.name)) == 0)
		rc = tls_tkey_use(&tls_tk.prev, iv, cctx, hctx, 0) == 0 ? 2 : -1;
	else
		rc = 0;
done:
	pthread_mutex_unlock(&tls_tk.mu);
	if (rc == 0)
		atomic_fetch_add(&tls_tk.refused, 1);
	return rc;
}

static int
tls_ticket_made(SSL *ssl, void *arg)
{
	(void)ssl;
	(void)arg;
	return 1;
}

/* A ticket that opened: resumed only while the client certificate it
 * carries is within its validity (a ticket must not outlive it).  Always
 * renewed: a TLS 1.3 client uses a ticket once, and without a new one the
 * device's next connection would be a full handshake. */
static SSL_TICKET_RETURN
tls_ticket_decrypted(SSL *ssl, SSL_SESSION *ss, const unsigned char *name, size_t nlen,
                     SSL_TICKET_STATUS status, void *arg)
{
	X509 *peer;

	(void)ssl;
	(void)name;
	(void)nlen;
	(void)arg;
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		return status == SSL_TICKET_EMPTY || status == SSL_TICKET_NO_DECRYPT
		           ? SSL_TICKET_RETURN_IGNORE_RENEW
		           : SSL_TICKET_RETURN_IGNORE;
	peer = SSL_SESSION_get0_peer(ss);
	if (peer != NULL && (X509_cmp_time(X509_get0_notAfter(peer), NULL) <= 0 ||
	                     X509_cmp_time(X509_get0_notBefore(peer), NULL) >= 0)) {
		atomic_fetch_add(&tls_tk.refused, 1);
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	atomic_fetch_add(&tls_tk.resumed, 1);
	return SSL_TICKET_RETURN_USE_RENEW;
}

/* The session id context: a session resumes only at listeners that
 * authenticate clients the same way against the same anchors (a ticket
 * from a listener without client certificates never resumes at one that
 * requires them). */
static int
tls_sid_ctx(SSL_CTX *ctx, const tls_conf_t *conf, err_t *err)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE], one[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, ol;
	unsigned char mode = (unsigned char)conf->client_auth;
	int ok = mc != NULL && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) == 1 &&
	         EVP_DigestUpdate(mc, "stbcred-sid-v1", 14) == 1 &&
	         EVP_DigestUpdate(mc, &mode, 1) == 1;

	for (int i = 0; ok && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (x != NULL)
			ok = X509_digest(x, EVP_sha256(), one, &ol) == 1 &&
			     EVP_DigestUpdate(mc, one, ol) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(mc, md, &mdlen) == 1 &&
	     SSL_CTX_set_session_id_context(
	         ctx, md, mdlen > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH : mdlen) == 1;
	EVP_MD_CTX_free(mc);
	return ok ? 0 : err_set_ossl(err, STB_INTERNAL, "TLS session id context");
}

/* Tickets on (one per full handshake, under the process's keys) or off. */
static int
tls_tickets_setup(SSL_CTX *ctx, const tls_conf_t *conf, err_t *err)
{
	long life =
	    conf->ticket_lifetime_s > 0 ? conf->ticket_lifetime_s : TLS_TICKET_LIFETIME_DEFAULT;
	int rc;

	if (tls_sid_ctx(ctx, conf, err) == -1)
		return -1;
	/* stateless tickets only: no server-side cache to fill or lock */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!conf->session_tickets) {
		/* no ticket nobody would resume: saves both sides work */
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		return 0;
	}
	pthread_mutex_lock(&tls_tk.mu);
	tls_tk.lifetime_s = life; /* one value per daemon: the last listener's */
	rc = tls_tkeys_fresh(0);
	pthread_mutex_unlock(&tls_tk.mu);
	if (rc == -1)
		return err_set(err, STB_INTERNAL, "session ticket keys: no randomness");
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, life);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_key) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, tls_ticket_made, tls_ticket_decrypted, NULL) != 1)
		return err_set_ossl(err, STB_INTERNAL, "session tickets");
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const tls_conf_t *conf, err_t *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int mode = SSL_VERIFY_NONE;

	if (ctx == NULL) {
		err_set(err, STB_INTERNAL, "SSL_CTX_new failed");
		return NULL;
	}
	if (conf->cert == NULL || *conf->cert == '\0') {
		err_set(err, STB_NOT_FOUND, "a server needs tls.cert and tls.key");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (tls_ctx_common(ctx, conf, err) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (conf->client_auth != TLS_CLIENT_AUTH_NONE) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->ca);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ctx, names);
		mode = SSL_VERIFY_PEER;
		if (conf->client_auth == TLS_CLIENT_AUTH_REQUIRE)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	}
	pthread_once(&tls_refused_once, tls_refused_init);
	SSL_CTX_set_verify(ctx, mode, mode == SSL_VERIFY_NONE ? NULL : tls_verify_record);
	if (tls_tickets_setup(ctx, conf, err) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tls_client_ctx_new(const tls_conf_t *conf, err_t *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		err_set(err, STB_INTERNAL, "SSL_CTX_new failed");
		return NULL;
	}
	if (tls_ctx_common(ctx, conf, err) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static int
tls_role_add(const char *name, size_t len, void *arg)
{
	*(uint32_t *)arg |= proto_role_by_name(name, len);
	return 0;
}

uint32_t
tls_cert_roles(X509 *cert)
{
	uint32_t roles = 0;

	if (cert == NULL)
		return STB_R_ANONYMOUS;
	crt_san_uri_each(cert, STB_ROLE_URI_PREFIX, tls_role_add, &roles);
	/* anonymous is what a peer is without a role, never something claimed */
	roles &= ~(uint32_t)STB_R_ANONYMOUS;
	return roles != 0 ? roles : STB_R_ANONYMOUS;
}

uint32_t
tls_peer_roles(SSL *ssl)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);

	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return STB_R_ANONYMOUS;
	return tls_cert_roles(cert);
}

void
tls_holder_init(tls_holder_t *h, SSL_CTX *ctx)
{
	pthread_mutex_init(&h->mu, NULL);
	h->ctx = ctx;
}

SSL_CTX *
tls_holder_get(tls_holder_t *h)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&h->mu);
	ctx = h->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&h->mu);
	return ctx;
}

void
tls_holder_swap(tls_holder_t *h, SSL_CTX *ctx)
{
	SSL_CTX *old;

	pthread_mutex_lock(&h->mu);
	old = h->ctx;
	h->ctx = ctx;
	pthread_mutex_unlock(&h->mu);
	SSL_CTX_free(old);
}

void
tls_holder_destroy(tls_holder_t *h)
{
	SSL_CTX_free(h->ctx);
	h->ctx = NULL;
	pthread_mutex_destroy(&h->mu);
}
