/* cert-proxyd: certificate proxy: holds STB certificates and keys, serves login key info. */
#include <event2/util.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cp.h"
#include "log.h"
#include "netaddr.h"

static cp_conf_t cp_conf;

#define OFF(f) offsetof(cp_conf_t, f)
static const cfg_opt_t cp_opts[] = {
    {"ca.addr", CFG_STR, "127.0.0.1:7101", 0, 0, NULL, OFF(ca_addr),
     "ca-authd address, host:port (mutual TLS 1.3 with this daemon's certificate)"},
    {"ca.timeout_ms", CFG_INT, "10000", 100, 600000, NULL, OFF(ca_timeout_ms),
     "deadline of one request to ca-authd"},
    {"issue.profile", CFG_STR, "stb-media", 0, 0, NULL, OFF(profile),
     "ca-authd profile STB certificates are issued under"},
    {"issue.validity_s", CFG_INT, "0", 0, 315360000, NULL, OFF(validity_s),
     "validity asked for, seconds (capped by the profile); 0 = the profile's"},
    {"issue.max_inflight", CFG_INT, "1024", 1, 100000, NULL, OFF(issue_max_inflight),
     "certificates being issued at once; more fetches get UNAVAILABLE"},
    {"issue.max_per_device", CFG_INT, "16", 1, 100000, NULL, OFF(issue_max_per_device),
     "certificates one STB may hold; a fetch of one more gets CONFLICT"},
    LOCKOUT_OPTS(OFF(auth)),
    {"auth.challenge_ttl_s", CFG_INT, "30", 1, 3600, NULL, OFF(auth_challenge_ttl_s),
     "an AUTH_BEGIN challenge must be answered within this"},
    {"scan.interval_s", CFG_INT, "3600", 1, 604800, NULL, OFF(scan_interval_s),
     "the validity scanner runs this often"},
    {"scan.renew_before_s", CFG_INT, "604800", 0, 31536000, NULL, OFF(scan_renew_before_s),
     "a certificate is renewed this long before it expires"},
    {"scan.check_revocation", CFG_BOOL, "true", 0, 0, NULL, OFF(scan_check_revocation),
     "the scanner asks ca-authd (CA_STATUS) whether each certificate is still good"},
    {"scan.ca_window", CFG_INT, "16", 1, 1024, NULL, OFF(scan_ca_window),
     "CA_STATUS requests the scanner keeps in flight"},
    {"key_cache.max_entries", CFG_INT, "10000", 0, 10000000, NULL, OFF(key_cache_max),
     "parsed certificate keys kept in memory; 0 disables the cache"},
};

static const char *const cp_migrations[] = {
    "CREATE TABLE stbs("
    " device_id TEXT PRIMARY KEY,"
    " secret BLOB NOT NULL," /* sealed, AAD "stb:" device_id */
    " enabled INTEGER NOT NULL,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE certs("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " cert_der BLOB NOT NULL,"
    " key_sealed BLOB NOT NULL," /* AAD "key:" cert_id ":" serial hex */
    " serial BLOB NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " issued_at INTEGER NOT NULL,"
    " revoked_at INTEGER, revoke_reason INTEGER);"
    "CREATE INDEX certs_device ON certs(device_id);"
    "CREATE TABLE pending("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " reason INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX pending_device ON pending(device_id);",
    /* lockout.h's table: the trusted (device, source) pairs */
    LOCKOUT_SCHEMA,
    /* the cert_ids each STB may hold, imported with it; the certificates
     * already stored stay with their holders */
    "CREATE TABLE stb_certs("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL);"
    "CREATE INDEX stb_certs_device ON stb_certs(device_id);"
    "INSERT INTO stb_certs(cert_id, device_id) SELECT cert_id, device_id FROM certs;",
    /* several instances on one database: one timer scan at a time (scanner.c) */
    "CREATE TABLE scan_lease(id INTEGER PRIMARY KEY, holder TEXT NOT NULL,"
    " until INTEGER NOT NULL);"
    "INSERT INTO scan_lease(id, holder, until) VALUES(1, '', 0);",
};
/* The same steps in PostgreSQL DDL (store.h). */
static const char *const cp_migrations_pg[] = {
    "CREATE TABLE stbs("
    " device_id TEXT PRIMARY KEY,"
    " secret BYTEA NOT NULL," /* sealed, AAD "stb:" device_id */
    " enabled BIGINT NOT NULL,"
    " created BIGINT NOT NULL, updated BIGINT NOT NULL);"
    "CREATE TABLE certs("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " cert_der BYTEA NOT NULL,"
    " key_sealed BYTEA NOT NULL," /* AAD "key:" cert_id ":" serial hex */
    " serial BYTEA NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " state BIGINT NOT NULL DEFAULT 0,"
    " issued_at BIGINT NOT NULL,"
    " revoked_at BIGINT, revoke_reason BIGINT);"
    "CREATE INDEX certs_device ON certs(device_id);"
    "CREATE TABLE pending("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " reason BIGINT NOT NULL,"
    " created BIGINT NOT NULL);"
    "CREATE INDEX pending_device ON pending(device_id);",
    /* lockout.h's table: the trusted (device, source) pairs */
    LOCKOUT_SCHEMA_PG,
    /* the cert_ids each STB may hold, imported with it; the certificates
     * already stored stay with their holders */
    "CREATE TABLE stb_certs("
    " cert_id TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL);"
    "CREATE INDEX stb_certs_device ON stb_certs(device_id);"
    "INSERT INTO stb_certs(cert_id, device_id) SELECT cert_id, device_id FROM certs;",
    "CREATE TABLE scan_lease(id BIGINT PRIMARY KEY, holder TEXT NOT NULL,"
    " until BIGINT NOT NULL);"
    "INSERT INTO scan_lease(id, holder, until) VALUES(1, '', 0);",
};

/* The last reference. */
static void
cp_destroy(void *arg)
{
	cp_t *cp = arg;

	cp_kc_free(cp->kc);
	cp_flight_free(cp->flight);
	lockout_free(cp->lk);
	EVP_MD_free(cp->sha256);
	connreg_free(cp->online);
	OPENSSL_cleanse(cp, sizeof(*cp));
	free(cp);
}

void
cp_actor(srv_conn_t *c, const char *who, char out[CP_ACTOR_CAP])
{
	snprintf(out, CP_ACTOR_CAP, "%s@%s", who != NULL ? who : srv_conn_subject(c),
	         srv_conn_peer(c));
}

/* ---- lifecycle ---- */

/* What the option table's bounds cannot say; runs for -t too. */
static int
cp_check(err_t *err)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	err_t e;

	if (netaddr_resolve(cp_conf.ca_addr, &ss, &sl, &e) == -1)
		return err_set(err, STB_BAD_REQUEST, "ca.addr: %s", e.msg);
	if (strlen(cp_conf.profile) > 64 ||
	    !proto_id_valid((const uint8_t *)cp_conf.profile, strlen(cp_conf.profile)))
		return err_set(err, STB_BAD_REQUEST,
		               "issue.profile: '%s' is not an identifier of 1..64 characters",
		               cp_conf.profile);
	return lockout_conf_check(&cp_conf.auth, err);
}

static int
cp_dummy_secret(cp_t *cp, err_t *err)
{
	uint8_t secret[32];
	buf_t b;
	int rc = 0;

	buf_init(&b, sizeof(cp->dummy));
	if (RAND_bytes(secret, sizeof(secret)) != 1)
		rc = err_set(err, STB_INTERNAL, "RAND_bytes failed");
	else if (cp_secret_seal(cp, CP_DUMMY_LABEL, secret, sizeof(secret), &b, err) == 0) {
		memcpy(cp->dummy, b.data, b.len);
		cp->dummy_len = b.len;
	} else
		rc = -1;
	OPENSSL_cleanse(secret, sizeof(secret));
	buf_wipe(&b);
	return rc;
}

static int
cp_init(daemon_t *d, err_t *err)
{
	store_conn_t *rd;
	cp_t *cp;

	if ((cp = calloc(1, sizeof(*cp))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	cp->d = d;
	cp->conf = &cp_conf;
	lifecycle_init(&cp->lc, cp_destroy, cp);
	d->priv = cp;
	if ((cp->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return err_set(err, STB_INTERNAL, "SHA-256 is not available");
	if ((cp->lk = lockout_new(&cp_conf.auth, err)) == NULL ||
	    (rd = store_reader(d->store, err)) == NULL ||
	    lockout_load(cp->lk, rd, (int64_t)time(NULL), err) == -1)
		return -1;
	cp->flight = cp_flight_new((size_t)cp_conf.issue_max_inflight);
	cp->kc = cp_kc_new((size_t)cp_conf.key_cache_max);
	if ((cp->online = connreg_new(0, err)) == NULL || cp_ca_init(cp, err) == -1)
		return -1;
	if (cp->flight == NULL || cp->kc == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (cp_dummy_secret(cp, err) == -1)
		return -1;
	/* secrets and keys are the signer's now: drop the KEK here */
	if (d->signer != NULL) {
		sealed_kek_free(d->kek);
		d->kek = NULL;
	}
	cp_auth_register(d);
	cp_keyinfo_register(d);
	cp_admin_register(d);
	cp_stb_register(d);
	return cp_scanner_start(cp, err);
}

/* Deferred answers and store completions may still run after this: each
 * holds its own reference, and the last one frees. */
static void
cp_fini(daemon_t *d)
{
	cp_t *cp = d->priv;

	if (cp == NULL)
		return;
	lifecycle_stop(&cp->lc);
	cp_scanner_stop(cp);
	cp_ca_fini(cp);
	d->priv = NULL;
	cp_unref(cp);
}

static const daemon_def_t cert_proxyd_def = {
    .name = "cert-proxyd",
    .role = STB_R_CERT_PROXYD,
    .listen = "127.0.0.1:7102",
    .http_listen = "127.0.0.1:9102",
    .client_auth = "optional",
    .opts = cp_opts,
    .nopts = sizeof(cp_opts) / sizeof(cp_opts[0]),
    .conf = &cp_conf,
    .migrations = cp_migrations,
    .nmigrations = sizeof(cp_migrations) / sizeof(cp_migrations[0]),
    .pg_migrations = cp_migrations_pg,
    .npg_migrations = sizeof(cp_migrations_pg) / sizeof(cp_migrations_pg[0]),
    .check = cp_check,
    .init = cp_init,
    .fini = cp_fini,
    .signer = 1,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &cert_proxyd_def);
}
