#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"stbcred", 7);
	/* Neither libstbclient nor the daemons resume TLS 1.3 sessions yet:
	 * tickets would cost both sides work on every handshake for nothing. */
	SSL_CTX_set_num_tickets(ctx, 0);
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
