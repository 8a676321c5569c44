#include "testpki.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static long serial = 1;

const char *
tu_pki_path(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
	return out;
}

static int
write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
	char path[512];
	FILE *f = fopen(tu_pki_path(path, sizeof(path), dir, name), "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = cert != NULL ? PEM_write_X509(f, cert)
	                  : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *cert = X509_new();
	X509_NAME *name;

	if (cert == NULL)
		return NULL;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name);
	(void)issuer_key;
	return cert;
}

int
tu_pki_ca(const char *dir)
{
	tu_pki_free();
	if ((ca_key = EVP_EC_gen("P-256")) == NULL ||
	    (ca_cert = make_cert(ca_key, "test CA", NULL, NULL)) == NULL ||
	    add_ext(ca_cert, ca_cert, NID_basic_constraints, "critical,CA:TRUE") == -1 ||
	    add_ext(ca_cert, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") == -1 ||
	    add_ext(ca_cert, ca_cert, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(ca_cert, ca_key, EVP_sha256()) == 0)
		return -1;
	return write_pem(dir, "ca.crt", ca_cert, NULL);
}

int
tu_pki_leaf(const char *dir, const char *name, const char *role)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key != NULL ? make_cert(key, name, ca_cert, ca_key) : NULL;
	char san[256], file[128];
	int rc = -1;

	if (role != NULL)
		snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,URI:urn:stbcred:role:%s",
		         role);
	else
		snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1");
	if (cert != NULL && add_ext(cert, ca_cert, NID_basic_constraints, "CA:FALSE") == 0 &&
	    add_ext(cert, ca_cert, NID_subject_alt_name, san) == 0 &&
	    add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid") == 0 &&
	    X509_sign(cert, ca_key, EVP_sha256()) != 0) {
		snprintf(file, sizeof(file), "%s.crt", name);
		rc = write_pem(dir, file, cert, NULL);
		snprintf(file, sizeof(file), "%s.key", name);
		if (rc == 0)
			rc = write_pem(dir, file, NULL, key);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

void
tu_pki_free(void)
{
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	ca_cert = NULL;
	ca_key = NULL;
}

static void *
tu_srv_loop(void *arg)
{
	event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int
tu_srv_start(tu_srv_t *t, const char *dir, const srv_conf_t *conf, void *ctx, void (*reg)(srv_t *s))
{
	char cert[512], key[512], ca[512];
	tls_conf_t tc = {tu_pki_path(cert, sizeof(cert), dir, "srv.crt"),
	                 tu_pki_path(key, sizeof(key), dir, "srv.key"),
	                 tu_pki_path(ca, sizeof(ca), dir, "ca.crt"), TLS_CLIENT_AUTH_OPTIONAL, 0};
	srv_conf_t sc = *conf;
	SSL_CTX *sctx;
	err_t err;
	const char *colon;

	memset(t, 0, sizeof(*t));
	signal(SIGPIPE, SIG_IGN); /* as daemon.c: a write to a peer that left */
	evthread_use_pthreads();
	if ((sctx = tls_server_ctx_new(&tc, &err)) == NULL) {
		fprintf(stderr, "tu_srv_start: %s\n", err.msg);
		return -1;
	}
	tls_holder_init(&t->holder, sctx);
	sc.listen = "127.0.0.1:0";
	if ((t->base = event_base_new()) == NULL ||
	    (t->srv = srv_new(&sc, &t->holder, ctx, &err)) == NULL)
		return -1;
	if (reg != NULL)
		reg(t->srv);
	if (srv_start(t->srv, t->base, &err) == -1) {
		fprintf(stderr, "tu_srv_start: %s\n", err.msg);
		return -1;
	}
	snprintf(t->addr, sizeof(t->addr), "%s", srv_bound(t->srv));
	colon = strrchr(t->addr, ':');
	t->port = colon != NULL ? atoi(colon + 1) : 0;
	return pthread_create(&t->thread, NULL, tu_srv_loop, t->base) == 0 ? 0 : -1;
}

void
tu_srv_stop(tu_srv_t *t)
{
	/* the accepting loop first: then nothing but us touches the listener */
	event_base_loopexit(t->base, NULL); /* a timer: holds even before the loop runs */
	pthread_join(t->thread, NULL);
	srv_drain(t->srv, 500);
	srv_free(t->srv);
	event_base_free(t->base);
	tls_holder_destroy(&t->holder);
}
