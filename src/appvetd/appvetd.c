/* appvetd: app IDs, vetting, QR security flags, download checks. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "av.h"
#include "log.h"
#include "peerpool.h"

static av_conf_t av_conf;

#define OFF(f) offsetof(av_conf_t, f)
static const cfg_opt_t av_opts[] = {
    {"roles", CFG_STR, "operator,vetter", 0, 0, NULL, OFF(roles),
     "the sides this process runs: operator, vetter, or both (comma-separated)"},
    {"submit.max_size", CFG_INT, "209715200", 1024, 4294967296LL, NULL, OFF(max_size),
     "largest package accepted, bytes (200 MiB)"},
    {"submit.session_ttl_s", CFG_INT, "3600", 10, 604800, NULL, OFF(session_ttl_s),
     "an upload session idle this long is dropped with its bytes"},
    {"submit.max_sessions", CFG_INT, "64", 1, 1024, NULL, OFF(max_sessions),
     "upload sessions open at once (RATE_LIMITED beyond)"},
    {"publish.validity_s", CFG_INT, "31536000", 60, 315360000, NULL, OFF(validity_s),
     "a published QR payload is valid this long unless APP_PUBLISH asks for less"},
    {"publish.max_validity_s", CFG_INT, "63072000", 60, 315360000, NULL, OFF(max_validity_s),
     "the longest validity APP_PUBLISH may ask for"},
    {"index.validity_s", CFG_INT, "86400", 60, 31536000, NULL, OFF(index_validity_s),
     "an exported index snapshot expires after this (re-signed at half of it)"},
    {"check.cache_size", CFG_INT, "16384", 0, 10000000, NULL, OFF(check_cache_size),
     "verified QR payloads remembered (by SHA-256), so a payload many TVs check is verified "
     "once; 0: every APP_CHECK verifies"},
    {"vet.threads", CFG_INT, "2", 1, 16, NULL, OFF(vet_threads),
     "threads that analyse packages off the event loops"},
    {"vet.queue", CFG_INT, "64", 1, 4096, NULL, OFF(vet_queue),
     "vetting jobs that may wait (RATE_LIMITED beyond)"},
    {"vet.peer", CFG_STR, "", 0, 0, NULL, OFF(vet_peer),
     "an operator-only appvetd: the vetter listener of the appvetd that vets (host:port)"},
    {"vet.peer_timeout_ms", CFG_INT, "10000", 100, 600000, NULL, OFF(vet_peer_timeout_ms),
     "a request to vet.peer (the upload steps; APP_VET itself may take 10 minutes)"},
    {"vet.key", CFG_STR, "", 0, 0, NULL, OFF(vetter_key),
     "vetter's P-256 key (PEM) that signs verdicts; empty: tls.key"},
    {"vet.cert", CFG_STR, "", 0, 0, NULL, OFF(vetter_cert),
     "its certificate (PEM); empty: tls.cert; with vet.peer, the remote vetter's (pinned)"},
    {"vet.blocklist", CFG_STR, "", 0, 0, NULL, OFF(blocklist),
     "file of blocked SHA-256s (package or DEX), one hex digest a line; empty: none; "
     "re-read by APP_REVET"},
    {"vet.dangerous_permissions", CFG_STR, "", 0, 0, NULL, OFF(dangerous_permissions),
     "comma-separated permissions that make an app UNSAFE; empty: Android's dangerous ones"},
    {"vet.clamav_db", CFG_STR, "", 0, 0, NULL, OFF(clamav_db),
     "ClamAV database directory or file; empty: no virus scan"},
    {"vet.max_entries", CFG_INT, "65535", 1, 1000000, NULL, OFF(max_entries),
     "ZIP entries a package may have"},
    {"vet.max_uncompressed", CFG_INT, "1073741824", 1024, 17179869184LL, NULL,
     OFF(max_uncompressed), "bytes all entries may expand to (zip bombs)"},
    {"vet.max_ratio", CFG_INT, "100", 2, 100000, NULL, OFF(max_ratio),
     "uncompressed/compressed ratio an entry may have"},
};

static const char *const av_migrations[] = {
    "CREATE TABLE keys("
    " name TEXT PRIMARY KEY, blob BLOB NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE apps("
    " id1 TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
    " sha256 BLOB NOT NULL, size INTEGER NOT NULL,"
    " submitted INTEGER NOT NULL, submitter TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " id2 TEXT, flag INTEGER, vet_time INTEGER, verdict_sig BLOB,"
    " findings TEXT, report TEXT, warning TEXT,"
    " id3 TEXT UNIQUE, pub_flag INTEGER, published INTEGER, expires INTEGER, payload TEXT,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX apps_submitted ON apps(submitted);"
    "CREATE TABLE verdicts("
    " id2 TEXT PRIMARY KEY, id1 TEXT NOT NULL, flag INTEGER NOT NULL,"
    " vet_time INTEGER NOT NULL, verdict_sig BLOB NOT NULL, findings TEXT NOT NULL);"
    "CREATE INDEX verdicts_id1 ON verdicts(id1);",
};
/* The same steps in PostgreSQL DDL (store.h). */
static const char *const av_migrations_pg[] = {
    "CREATE TABLE keys("
    " name TEXT PRIMARY KEY, blob BYTEA NOT NULL, created BIGINT NOT NULL);"
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v BIGINT NOT NULL);"
    "CREATE TABLE apps("
    " rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE," /* the list order's tie-break, as SQLite's
                                                          */
    " id1 TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
    " sha256 BYTEA NOT NULL, size BIGINT NOT NULL,"
    " submitted BIGINT NOT NULL, submitter TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " id2 TEXT, flag BIGINT, vet_time BIGINT, verdict_sig BYTEA,"
    " findings TEXT, report TEXT, warning TEXT,"
    " id3 TEXT UNIQUE, pub_flag BIGINT, published BIGINT, expires BIGINT, payload TEXT,"
    " revoked BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX apps_submitted ON apps(submitted);"
    "CREATE TABLE verdicts("
    " id2 TEXT PRIMARY KEY, id1 TEXT NOT NULL, flag BIGINT NOT NULL,"
    " vet_time BIGINT NOT NULL, verdict_sig BYTEA NOT NULL, findings TEXT NOT NULL);"
    "CREATE INDEX verdicts_id1 ON verdicts(id1);",
};

/* "operator,vetter" into the two switches; -1 for anything else. */
static int
roles_parse(const char *s, int *op, int *vet)
{
	char buf[64], *save = NULL, *t;

	*op = *vet = 0;
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	for (t = strtok_r(buf, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		if (strcmp(t, "operator") == 0)
			*op = 1;
		else if (strcmp(t, "vetter") == 0)
			*vet = 1;
		else
			return -1;
	}
	return *op || *vet ? 0 : -1;
}

static int
av_check_conf(err_t *err)
{
	int op, vet;

	if (roles_parse(av_conf.roles, &op, &vet) == -1)
		return err_set(err, STB_BAD_REQUEST,
		               "roles: '%s' is not a list of operator and vetter", av_conf.roles);
	if (op && !vet && (av_conf.vet_peer[0] == '\0' || av_conf.vetter_cert[0] == '\0'))
		return err_set(
		    err, STB_BAD_REQUEST,
		    "roles: an operator-only appvetd needs vet.peer (the vetter's address) "
		    "and vet.cert (its certificate)");
	if (vet && av_conf.vet_peer[0] != '\0')
		return err_set(err, STB_BAD_REQUEST,
		               "vet.peer: only an operator-only appvetd (roles: operator) has one");
	if (av_conf.validity_s > av_conf.max_validity_s)
		return err_set(err, STB_BAD_REQUEST,
		               "publish.validity_s exceeds publish.max_validity_s");
	return 0;
}

static int
mkdir_0700(const char *path, err_t *err)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return err_set(err, STB_INTERNAL, "cannot make %s: %s", path, strerror(errno));
	return 0;
}

static int
av_init(daemon_t *d, err_t *err)
{
	av_t *av;
	apk_conf_t ac;
	upload_conf_t uc;

	if ((av = calloc(1, sizeof(*av))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	av->d = d;
	av->conf = &av_conf;
	d->priv = av;
	pthread_rwlock_init(&av->ix_lock, NULL);
	roles_parse(av_conf.roles, &av->operator_role, &av->vetter_role);
	snprintf(av->spool, sizeof(av->spool), "%s/spool", d->conf.state_dir);
	snprintf(av->pkgdir, sizeof(av->pkgdir), "%s/packages", d->conf.state_dir);
	if (mkdir_0700(av->spool, err) == -1 || mkdir_0700(av->pkgdir, err) == -1)
		return -1;
	uc = (upload_conf_t){av->spool, (uint64_t)av_conf.max_size, av_conf.session_ttl_s,
	                     (size_t)av_conf.max_sessions};
	if ((av->up = upload_new(&uc, err)) == NULL)
		return -1;
	if (av_keys_load(av, err) == -1)
		return -1;
	apk_conf_default(&ac);
	ac.max_entries = (uint64_t)av_conf.max_entries;
	ac.max_total_uncompressed = (uint64_t)av_conf.max_uncompressed;
	ac.max_ratio = (uint32_t)av_conf.max_ratio;
	ac.blocklist_path = av_conf.blocklist[0] ? av_conf.blocklist : NULL;
	ac.dangerous_permissions =
	    av_conf.dangerous_permissions[0] ? av_conf.dangerous_permissions : NULL;
	ac.clamav_db = av_conf.clamav_db[0] ? av_conf.clamav_db : NULL;
	if (av->vetter_role && (av->apk = apk_ctx_new(&ac, err)) == NULL)
		return -1;
	if (av_conf.vet_peer[0] != '\0') {
		peerpool_conf_t pc = {.name = "vetter",
		                      .addr = av_conf.vet_peer,
		                      .expect_roles = STB_R_APPVETD,
		                      .max_frame = (uint32_t)d->conf.max_frame,
		                      .backoff_min_ms = 200,
		                      .backoff_max_ms = 5000,
		                      .timeout_ms = (int)av_conf.vet_peer_timeout_ms,
		                      .tls = &d->client_tls};
		if ((av->peer = peerpool_new(&pc, err)) == NULL)
			return -1;
	}
	if ((av->vet = workpool_new("vet", (int)av_conf.vet_threads, (size_t)av_conf.vet_queue,
	                            err)) == NULL)
		return -1;
	if (av->operator_role &&
	    ((av->reader = apppay_reader_new(av->op_key, av->pay_key, err)) == NULL ||
	     av_index_reload(av, err) == -1 || av_check_start(av, err) == -1))
		return -1;
	if (av_metrics_register(av, err) == -1)
		return -1;
	av_submit_register(d);
	av_vet_register(d);
	av_publish_register(d);
	av_check_register(d);
	if (av->operator_role && av_vet_resume(av, err) == -1)
		return -1;
	log_info("appvetd: %s%s%s, %zu published app(s)", av->operator_role ? "operator" : "",
	         av->operator_role && av->vetter_role ? " and " : "",
	         av->vetter_role ? "vetter" : "", av->nix);
	return 0;
}

static void
av_fini(daemon_t *d)
{
	av_t *av = d->priv;

	if (av == NULL)
		return;
	/* runs queued vetting jobs; their answers go back to the loops */
	workpool_free(av->vet);
	/* fails what is still on its way to the vetter (UNAVAILABLE) */
	peerpool_free(av->peer);
	mbox_free(av->main_mb); /* runs the start-up jobs' completions */
	upload_free(av->up);
	apk_ctx_free(av->apk);
	av_index_free(av);
	av_check_free(av);
	apppay_reader_free(av->reader);
	av_keys_free(av);
	pthread_rwlock_destroy(&av->ix_lock);
	free(av);
	d->priv = NULL;
}

static const daemon_def_t appvetd_def = {
    .name = "appvetd",
    .role = STB_R_APPVETD,
    .listen = "127.0.0.1:7107",
    .http_listen = "127.0.0.1:9107",
    .client_auth = "optional",
    .opts = av_opts,
    .nopts = sizeof(av_opts) / sizeof(av_opts[0]),
    .conf = &av_conf,
    .migrations = av_migrations,
    .nmigrations = sizeof(av_migrations) / sizeof(av_migrations[0]),
    .pg_migrations = av_migrations_pg,
    .npg_migrations = sizeof(av_migrations_pg) / sizeof(av_migrations_pg[0]),
    .check = av_check_conf,
    .init = av_init,
    .fini = av_fini,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &appvetd_def);
}
