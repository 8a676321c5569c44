/*
 * tls: SSL_CTX construction (made once, shared by every connection), peer
 * role extraction from SAN URIs, and the holder that swaps contexts on
 * SIGHUP without touching established connections.
 */
#ifndef STB_TLS_H
#define STB_TLS_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>

#include "err.h"

enum { TLS_CLIENT_AUTH_NONE, TLS_CLIENT_AUTH_OPTIONAL, TLS_CLIENT_AUTH_REQUIRE };

typedef struct tls_conf {
	const char *cert; /* PEM: leaf then chain */
	const char *key;  /* PEM private key */
	const char *ca;   /* PEM trust anchors for the peer */
	int client_auth;  /* server side: TLS_CLIENT_AUTH_* */
	int tls13_only;   /* daemon-to-daemon: TLS 1.3 only */
	/* server side: issue TLS 1.3 session tickets under the process's key
	 * set (tls_tickets_*), valid ticket_lifetime_s (default 7200) */
	int session_tickets;
	long ticket_lifetime_s;
} tls_conf_t;

#define TLS_TICKET_LIFETIME_DEFAULT 7200

/* Session tickets resumed at this process's listeners since start, and
 * those refused (unknown or rotated-out key, expired client certificate,
 * another listener's trust): for metrics. */
void tls_tickets_counts(unsigned long long *resumed, unsigned long long *refused);
/* The ticket keys rotate now (the previous set still opens tickets made
 * under it, once); tests and an operator's "forget every session". */
int tls_tickets_rotate(err_t *err);

SSL_CTX *tls_server_ctx_new(const tls_conf_t *conf, err_t *err);
/* Client context: verifies the server against conf->ca; presents
 * conf->cert/key when set. */
SSL_CTX *tls_client_ctx_new(const tls_conf_t *conf, err_t *err);
/* Role bits from the peer certificate's urn:stbcred:role: SAN URIs;
 * STB_R_ANONYMOUS when the peer showed none. */
uint32_t tls_peer_roles(SSL *ssl);
uint32_t tls_cert_roles(X509 *cert);
/* First OpenSSL error as text, for messages. */
const char *tls_errstr(char *buf, size_t cap);
/* After a server handshake failed: why the client's certificate was refused
 * ("untrusted_certificate", "certificate_out_of_date", "certificate_revoked";
 * a literal) and its SHA-256 fingerprint's first 16 hex digits in
 * *fingerprint (NULL when unknown); NULL when no certificate was refused. */
const char *tls_refused_reason(SSL *ssl, const char **fingerprint);

/* Holds the current context for new connections. */
typedef struct tls_holder {
	pthread_mutex_t mu;
	SSL_CTX *ctx;
} tls_holder_t;

void tls_holder_init(tls_holder_t *h, SSL_CTX *ctx); /* takes the reference */
/* The current context with a reference the caller must SSL_CTX_free. */
SSL_CTX *tls_holder_get(tls_holder_t *h);
void tls_holder_swap(tls_holder_t *h, SSL_CTX *ctx); /* takes the reference */
void tls_holder_destroy(tls_holder_t *h);

#endif
