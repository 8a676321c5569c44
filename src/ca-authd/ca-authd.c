/*
 * ca-authd: certificate authority: issue, validate, revoke, CRL, OCSP.
 *
 *   ca-authd [-dt] [-c file]            run (or check the configuration)
 *   ca-authd init [-c file]             make the root, issuing CA and responder
 *   ca-authd issue-service [-c file] --name N --role R ...   a service certificate
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"

/* Profiles and URLs; runs for -t too. */
static int
ca_check(err_t *err)
{
	ca_profile_t prof[CA_NPROFILES];

	if (conf_ca.ocsp_cache_refresh_s >= conf_ca.ocsp_validity_s)
		return err_set(err, STB_BAD_REQUEST,
		               "ocsp.cache_refresh_s must be below ocsp.validity_s");
	return profile_load(&conf_ca, prof, err);
}

static int
ca_init(daemon_t *d, err_t *err)
{
	ca_t *ca;

	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	lifecycle_init(&ca->lc, ca_destroy, ca);
	d->priv = ca;
	if (ca_setup(ca, d, &conf_ca, err) == -1)
		return -1;
	if (!ca->ready)
		log_warnx("no CA in %s: run 'ca-authd init -c FILE'; CA requests are refused "
		          "with UNAVAILABLE until then",
		          d->conf.state_dir);
	if (*d->conf.http_listen == '\0')
		log_warnx("http_listen is empty: OCSP and the CRL are not served");
	if (ca->ocsp_url[0] == '\0' || ca->crl_url[0] == '\0')
		log_warnx("no ocsp.url or crl.url (http_listen is a wildcard or empty): issued "
		          "certificates will not say where to check them");
	if (crl_start(ca, err) == -1 || ocache_start(ca, err) == -1 || ocsp_start(ca, err) == -1 ||
	    revpoll_start(ca, err) == -1)
		return -1;
	/* the keys are the signer's: the network process needs the KEK no more */
	if (d->signer != NULL) {
		sealed_kek_free(d->kek);
		d->kek = NULL;
	}
	issue_register(ca);
	revoke_register(ca);
	keyinfo_register(ca);
	return 0;
}

/* Deferred answers may still complete after this (srv_free): each holds
 * its own reference. */
static void
ca_fini(daemon_t *d)
{
	ca_t *ca = d->priv;

	if (ca == NULL)
		return;
	revpoll_stop(ca);
	crl_stop(ca);
	ocache_stop(ca);
	lifecycle_stop(&ca->lc);
	ca_unref(ca);
}

static int
ca_metrics(daemon_t *d, buf_t *out)
{
	return d->priv == NULL ? 0 : ocache_metrics(d->priv, out);
}

static const daemon_def_t ca_authd_def = {
    .name = "ca-authd",
    .role = STB_R_CA_AUTHD,
    .listen = "127.0.0.1:7101",
    .http_listen = "127.0.0.1:9101",
    .client_auth = "require",
    .opts = conf_opts,
    .nopts = CONF_NOPTS,
    .conf = &conf_ca,
    .migrations = certdb_migrations,
    .nmigrations = CERTDB_NMIGRATIONS,
    .pg_migrations = certdb_migrations_pg,
    .npg_migrations = CERTDB_NMIGRATIONS,
    .check = ca_check,
    .init = ca_init,
    .fini = ca_fini,
    .metrics = ca_metrics,
    .signer = 1,
};

int
main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "init") == 0 || strcmp(argv[1], "issue-service") == 0))
		return cli_main(argc - 1, argv + 1, &ca_authd_def);
	return daemon_main(argc, argv, &ca_authd_def);
}
