/*
 * crl: the CRL, DER, signed by the issuing CA.  Rebuilt after every
 * revoke and on a timer, served at /crl and written to state_dir/crl.der.
 * The CRL number never goes back and is never drawn twice, by this instance
 * or another on the same database: it is the ca_counters row 'crl' taken in
 * a write job (its row lock orders the instances), at least the larger of
 * the current time and the last number plus one (read back from crl.der at
 * start, for a database older than the counter).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "signer.h"

struct crl_walk {
	X509_CRL *crl;
	int failed;
};

static int
crl_add(const certdb_row_t *r, void *arg)
{
	struct crl_walk *w = arg;
	X509_REVOKED *rv = X509_REVOKED_new();
	BIGNUM *bn = BN_bin2bn(r->serial, (int)r->serial_len, NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ASN1_TIME *at = ASN1_TIME_set(NULL, (time_t)r->revoked_at);
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
	int ok = rv != NULL && ai != NULL && at != NULL && reason != NULL &&
	         X509_REVOKED_set_serialNumber(rv, ai) && X509_REVOKED_set_revocationDate(rv, at) &&
	         (r->reason == 0 || (ASN1_ENUMERATED_set(reason, r->reason) &&
	                             X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0)));

	if (ok && X509_CRL_add0_revoked(w->crl, rv))
		rv = NULL;
	else
		w->failed = 1;
	X509_REVOKED_free(rv);
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(at);
	ASN1_ENUMERATED_free(reason);
	return w->failed ? -1 : 0;
}

static int
crl_extensions(ca_t *ca, X509_CRL *crl, uint64_t number)
{
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509_EXTENSION *aki;
	X509V3_CTX ctx;
	int ok;

	X509V3_set_ctx(&ctx, ca->pki.issuing, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	ok = num != NULL && aki != NULL && ASN1_INTEGER_set_uint64(num, number) &&
	     X509_CRL_add_ext(crl, aki, -1) &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	return ok ? 0 : -1;
}

int
crl_build(ca_t *ca, store_conn_t *c, int64_t now, uint64_t number, uint8_t **der, size_t *len,
          err_t *err)
{
	struct crl_walk w = {X509_CRL_new(), 0};
	ASN1_TIME *lu = ASN1_TIME_set(NULL, (time_t)now);
	ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)(now + ca->conf->crl_validity_s));
	unsigned char *p = NULL;
	int n = -1, ok;

	ok = w.crl != NULL && lu != NULL && nu != NULL && X509_CRL_set_version(w.crl, 1) &&
	     X509_CRL_set_issuer_name(w.crl, X509_get_subject_name(ca->pki.issuing)) &&
	     X509_CRL_set1_lastUpdate(w.crl, lu) && X509_CRL_set1_nextUpdate(w.crl, nu);
	ASN1_TIME_free(lu);
	ASN1_TIME_free(nu);
	if (!ok) {
		err_set(err, STB_INTERNAL, "cannot build a CRL");
		goto out;
	}
	/* expired certificates leave the CRL (RFC 5280 3.3) */
	if (certdb_revoked(c, now, crl_add, &w, err) == -1)
		goto out;
	if (w.failed) {
		err_set(err, STB_INTERNAL, "cannot add an entry to the CRL");
		goto out;
	}
	X509_CRL_sort(w.crl);
	if (crl_extensions(ca, w.crl, number) == -1 ||
	    X509_CRL_sign(w.crl, ca->pki.issuing_key, EVP_sha256()) <= 0 ||
	    (n = i2d_X509_CRL(w.crl, &p)) <= 0) {
		if (!signer_take_err(err))
			err_set(err, STB_INTERNAL, "cannot sign the CRL");
		n = -1;
		goto out;
	}
	*der = malloc((size_t)n);
	if (*der == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		n = -1;
		goto out;
	}
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
out:
	ERR_clear_error();
	OPENSSL_free(p);
	X509_CRL_free(w.crl);
	return n > 0 ? 0 : -1;
}

struct crl_draw {
	int64_t floor, number;
};

static int
crl_draw(store_conn_t *c, void *arg, err_t *err)
{
	struct crl_draw *d = arg;

	return certdb_counter_next(c, "crl", d->floor, &d->number, err);
}

int
crl_refresh(ca_t *ca, store_conn_t *c, err_t *err)
{
	struct crl_draw draw;
	int64_t now = (int64_t)time(NULL);
	uint64_t number;
	char path[4096];
	uint8_t *der = NULL, *old;
	size_t len = 0;

	if (!ca->ready)
		return 0;
	/* one at a time: numbers are drawn in order */
	pthread_mutex_lock(&ca->crl_mu);
	draw.floor = (int64_t)ca->crl_number + 1;
	if (now > draw.floor)
		draw.floor = now;
	if (store_write_sync(ca->d->store, crl_draw, &draw, err) == -1) {
		pthread_mutex_unlock(&ca->crl_mu);
		return -1;
	}
	number = (uint64_t)draw.number;
	if (crl_build(ca, c, now, number, &der, &len, err) == -1) {
		pthread_mutex_unlock(&ca->crl_mu);
		return -1;
	}
	old = ca->crl_der;
	ca->crl_der = der;
	ca->crl_len = len;
	ca->crl_number = number;
	snprintf(path, sizeof(path), "%s/crl.der", ca->d->conf.state_dir);
	if (pki_write_file(path, der, len, 0644, 0, err) == -1) {
		pthread_mutex_unlock(&ca->crl_mu);
		free(old);
		return -1;
	}
	pthread_mutex_unlock(&ca->crl_mu);
	free(old);
	log_debug("CRL %llu published", (unsigned long long)number);
	return 0;
}

/* The number of the CRL a previous run left, 0 when none. */
static uint64_t
crl_last_number(const char *dir)
{
	char path[4096];
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/crl.der", dir);
	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	crl = d2i_X509_CRL_fp(f, NULL);
	fclose(f);
	if (crl != NULL && (num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) != NULL &&
	    ASN1_INTEGER_get_uint64(&v, num) != 1)
		v = 0;
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	ERR_clear_error();
	return v;
}

static void
crl_tick(evutil_socket_t fd, short what, void *arg)
{
	ca_t *ca = arg;
	store_conn_t *c;
	err_t err;

	(void)fd;
	(void)what;
	if ((c = store_reader(ca->d->store, &err)) == NULL || crl_refresh(ca, c, &err) == -1)
		log_warnx("CRL refresh failed: %s", err.msg);
}

static void
crl_http(struct evhttp_request *req, void *arg)
{
	ca_t *ca = arg;
	uint8_t *copy = NULL;
	size_t len = 0;

	pthread_mutex_lock(&ca->crl_mu);
	if (ca->crl_der != NULL && (copy = malloc(ca->crl_len)) != NULL) {
		memcpy(copy, ca->crl_der, ca->crl_len);
		len = ca->crl_len;
	}
	pthread_mutex_unlock(&ca->crl_mu);
	if (copy == NULL) {
		httpd_reply(req, 503, "Service Unavailable", "text/plain", "no CRL\n", 7);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "max-age=60");
	httpd_reply(req, 200, "OK", "application/pkix-crl", copy, len);
	free(copy);
}

int
crl_start(ca_t *ca, err_t *err)
{
	struct timeval tv = {(time_t)ca->conf->crl_refresh_s, 0};
	store_conn_t *c;

	if (httpd_route(ca->d, "/crl", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, 0, crl_http, ca, err) ==
	    -1)
		return -1;
	if (!ca->ready)
		return 0;
	ca->crl_number = crl_last_number(ca->d->conf.state_dir);
	if ((c = store_reader(ca->d->store, err)) == NULL || crl_refresh(ca, c, err) == -1)
		return -1;
	if ((ca->crl_timer = event_new(ca->d->base, -1, EV_PERSIST, crl_tick, ca)) == NULL ||
	    event_add(ca->crl_timer, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the CRL timer");
	return 0;
}

void
crl_stop(ca_t *ca)
{
	if (ca->crl_timer != NULL)
		event_free(ca->crl_timer);
	ca->crl_timer = NULL;
}
