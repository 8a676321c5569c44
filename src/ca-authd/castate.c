/* ca: the running CA's shared state: set up, reference counted, torn down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"

void
ca_destroy(void *ca)
{
	ca_teardown(ca);
	free(ca);
}

/* The configured URL, or one on the HTTP listener when that is a
 * reachable address (not a wildcard). */
static void
ca_url(const char *conf_url, const char *http_listen, const char *path, char out[CA_URL_MAX])
{
	out[0] = '\0';
	if (*conf_url != '\0') {
		snprintf(out, CA_URL_MAX, "%s", conf_url);
		return;
	}
	if (*http_listen == '\0' || strncmp(http_listen, "0.0.0.0:", 8) == 0 ||
	    strncmp(http_listen, "[::]:", 5) == 0)
		return;
	snprintf(out, CA_URL_MAX, "http://%s%s", http_listen, path);
}

static int
ca_revoked_add(const certdb_row_t *r, void *arg)
{
	return revset_add(arg, r->serial, r->serial_len);
}

int
ca_load_revoked(ca_t *ca, store_conn_t *c, err_t *err)
{
	/* every revoked row: a revoked certificate stays refused after expiry */
	if (certdb_revoked(c, INT64_MIN, ca_revoked_add, ca->revoked, err) == -1)
		return -1;
	if (revset_count(ca->revoked) > 0)
		log_info("%zu revoked certificate(s)", revset_count(ca->revoked));
	return 0;
}

int
ca_setup(ca_t *ca, daemon_t *d, const ca_conf_t *conf, err_t *err)
{
	store_conn_t *c;
	int present;

	ca->d = d;
	ca->conf = conf;
	pthread_mutex_init(&ca->crl_mu, NULL);
	if (profile_load(conf, ca->prof, err) == -1)
		return -1;
	if ((ca->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return err_set(err, STB_INTERNAL, "SHA-256 is not available");
	if ((ca->revoked = revset_new()) == NULL ||
	    (ca->kcache = kcache_new((size_t)conf->keyinfo_cache)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	ca_url(conf->ocsp_url, d->conf.http_listen, "/ocsp", ca->ocsp_url);
	ca_url(conf->crl_url, d->conf.http_listen, "/crl", ca->crl_url);
	if ((present = pki_present(d->conf.state_dir, err)) == -1)
		return -1;
	if (present == 0) {
		if ((d->signer != NULL
		         ? pki_load_signer(d->signer, d->conf.state_dir, &ca->pki, err)
		         : pki_load(d->kek, d->conf.state_dir, &ca->pki, err)) == -1)
			return -1;
		ca->ready = 1;
	}
	if ((c = store_reader(d->store, err)) == NULL || ca_load_revoked(ca, c, err) == -1)
		return -1;
	return 0;
}

void
ca_teardown(ca_t *ca)
{
	ocache_free(ca);
	pki_clear(&ca->pki);
	EVP_MD_free(ca->sha256);
	ca->sha256 = NULL;
	revset_free(ca->revoked);
	ca->revoked = NULL;
	kcache_free(ca->kcache);
	ca->kcache = NULL;
	free(ca->crl_der);
	ca->crl_der = NULL;
	if (ca->d != NULL)
		pthread_mutex_destroy(&ca->crl_mu);
}
