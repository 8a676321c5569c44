/* media-gw: media system front door: gates STB logins through ca-authd. */
#include <event2/util.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "gw.h"
#include "log.h"
#include "netaddr.h"
#include "sealed.h"

#define TOKEN_KEEP_S 86400 /* expired tokens stay a day, then go */

static gw_conf_t gw_conf;

#define OFF(f) offsetof(gw_conf_t, f)
static const cfg_opt_t gw_opts[] = {
    {"login_ttl_s", CFG_INT, "60", 1, 3600, NULL, OFF(login_ttl_s),
     "a login session (its nonce) must be finished within this"},
    {"token_ttl_s", CFG_INT, "3600", 60, 2592000, NULL, OFF(token_ttl_s),
     "access token lifetime (never past the certificate's notAfter)"},
    {"max_sessions", CFG_INT, "100000", 16, 10000000, NULL, OFF(max_sessions),
     "login sessions open at once; LOGIN_START is RATE_LIMITED beyond"},
    {"sessions_per_device", CFG_INT, "4", 1, 1024, NULL, OFF(sessions_per_device),
     "login sessions open for one device ID; a new LOGIN_START replaces its oldest"},
    {"sessions_per_source", CFG_INT, "256", 1, 10000000, NULL, OFF(sessions_per_source),
     "login sessions open from one source address; LOGIN_START is RATE_LIMITED beyond"},
    {"ca.addr", CFG_STR, "127.0.0.1:7101", 0, 0, NULL, OFF(ca_addr),
     "ca-authd, host:port (mutual TLS 1.3 with this daemon's certificate)"},
    {"ca.timeout_ms", CFG_INT, "3000", 10, 60000, NULL, OFF(ca_timeout_ms),
     "CA_VERIFY_KEYINFO deadline; past it the login is refused UNAVAILABLE"},
};

static const char *const gw_migrations[] = {
    "CREATE TABLE subscribers("
    " device_id TEXT PRIMARY KEY,"
    " cert_id TEXT NOT NULL,"
    " active INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE tokens("
    " hash BLOB PRIMARY KEY,"
    " device_id TEXT NOT NULL, cert_id TEXT NOT NULL, serial BLOB,"
    " issued INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX tokens_expires ON tokens(expires);",
    /* each login session's single use, for every instance (sid.c) */
    "CREATE TABLE login_used(sid BLOB PRIMARY KEY, expires INTEGER NOT NULL);"
    "CREATE INDEX login_used_expires ON login_used(expires);",
};
/* The same steps in PostgreSQL DDL (store.h). */
static const char *const gw_migrations_pg[] = {
    "CREATE TABLE subscribers("
    " device_id TEXT PRIMARY KEY,"
    " cert_id TEXT NOT NULL,"
    " active BIGINT NOT NULL,"
    " updated BIGINT NOT NULL);"
    "CREATE TABLE tokens("
    " hash BYTEA PRIMARY KEY,"
    " device_id TEXT NOT NULL, cert_id TEXT NOT NULL, serial BYTEA,"
    " issued BIGINT NOT NULL, expires BIGINT NOT NULL);"
    "CREATE INDEX tokens_expires ON tokens(expires);",
    "CREATE TABLE login_used(sid BYTEA PRIMARY KEY, expires BIGINT NOT NULL);"
    "CREATE INDEX login_used_expires ON login_used(expires);",
};

/* The last reference. */
static void
gw_destroy(void *arg)
{
	gw_t *gw = arg;

	gw_sess_free(gw->sess);
	EVP_MD_free(gw->sha256);
	OPENSSL_cleanse(gw->sid_key, sizeof(gw->sid_key));
	free(gw);
}

void
gw_actor(srv_req_t *r, char *out, size_t cap)
{
	snprintf(out, cap, "%s@%s", srv_conn_subject(r->conn), srv_conn_peer(r->conn));
}

/* ---- housekeeping: forget old sessions, delete long-expired tokens ---- */

static int
sweep_write(store_conn_t *c, void *arg, err_t *err)
{
	store_stmt_t *st = store_stmt(c, "DELETE FROM tokens WHERE expires < ?1", err);
	int64_t now = (int64_t)time(NULL);

	(void)arg;
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now - TOKEN_KEEP_S);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	/* past its expiry a session id is refused EXPIRED: its use need not stay */
	if ((st = store_stmt(c, "DELETE FROM login_used WHERE expires < ?1", err)) == NULL)
		return -1;
	store_bind_int64(st, 1, now);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	gw_t *gw = arg;
	err_t err;

	(void)fd;
	(void)what;
	/* open sessions leave at their expiry; spent ones are remembered one
	 * TTL more so a replay hears REPLAY, not NOT_FOUND */
	gw_sess_sweep(gw->sess, (int64_t)time(NULL));
	/* on the main loop, which only accepts: a short wait is fine */
	if (++gw->ticks % 60 == 0 && store_write_sync(gw->d->store, sweep_write, NULL, &err) == -1)
		log_warnx("token cleanup: %s", err.msg);
}

/* ---- lifecycle ---- */

static int
gw_check(err_t *err)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	err_t e;

	if (netaddr_resolve(gw_conf.ca_addr, &ss, &sl, &e) == -1)
		return err_set(err, STB_BAD_REQUEST, "ca.addr: %s", e.msg);
	if (gw_conf.token_ttl_s < gw_conf.login_ttl_s)
		return err_set(err, STB_BAD_REQUEST,
		               "token_ttl_s (%lld) must be at least login_ttl_s (%lld)",
		               gw_conf.token_ttl_s, gw_conf.login_ttl_s);
	return 0;
}

static int
gw_init(daemon_t *d, err_t *err)
{
	struct timeval tv = {1, 0};
	gw_sess_limits_t lim = {.max = (size_t)gw_conf.max_sessions,
	                        .per_device = (size_t)gw_conf.sessions_per_device,
	                        .per_source = (size_t)gw_conf.sessions_per_source,
	                        .ttl_s = gw_conf.login_ttl_s};
	gw_t *gw;

	if ((gw = calloc(1, sizeof(*gw))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	gw->d = d;
	gw->conf = &gw_conf;
	lifecycle_init(&gw->lc, gw_destroy, gw);
	d->priv = gw;
	if ((gw->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return err_set(err, STB_INTERNAL, "cannot fetch SHA-256");
	/* every instance holds the KEK, so each can check the others' sessions */
	if (sealed_derive(d->kek, "media-gw login session", gw->sid_key, err) == -1)
		return -1;
	lim.mint = gw_sid_mint;
	lim.mint_arg = gw;
	if ((gw->sess = gw_sess_new(&lim, err)) == NULL)
		return -1;
	gw->ca = gw_ca_new(gw_conf.ca_addr, &d->client_tls, err);
	if (gw->ca == NULL || daemon_watch_peer(d, "ca-authd", gw->ca, err) == -1)
		return -1;
	if ((gw->sweep = event_new(d->base, -1, EV_PERSIST, sweep_tick, gw)) == NULL ||
	    event_add(gw->sweep, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the session sweeper");
	gw_sub_register(d);
	gw_subadmin_register(d);
	gw_login_register(d);
	gw_token_register(d);
	return 0;
}

/* Runs after the drain, with the worker loops still alive: each loop lets
 * go of its ca-authd peer; jobs still queued hold their own reference. */
static void
gw_fini(daemon_t *d)
{
	gw_t *gw = d->priv;

	if (gw == NULL)
		return;
	if (gw->sweep != NULL)
		event_free(gw->sweep);
	gw->sweep = NULL;
	lifecycle_stop(&gw->lc);
	gw_ca_free(gw->ca);
	gw->ca = NULL;
	gw_unref(gw);
}

static const daemon_def_t media_gw_def = {
    .name = "media-gw",
    .role = STB_R_MEDIA_GW,
    .listen = "127.0.0.1:7103",
    .http_listen = "127.0.0.1:9103",
    .client_auth = "optional",
    .opts = gw_opts,
    .nopts = sizeof(gw_opts) / sizeof(gw_opts[0]),
    .conf = &gw_conf,
    .migrations = gw_migrations,
    .nmigrations = sizeof(gw_migrations) / sizeof(gw_migrations[0]),
    .pg_migrations = gw_migrations_pg,
    .npg_migrations = sizeof(gw_migrations_pg) / sizeof(gw_migrations_pg[0]),
    .check = gw_check,
    .init = gw_init,
    .fini = gw_fini,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &media_gw_def);
}
