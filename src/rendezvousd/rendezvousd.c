/* rendezvousd: device registry, per-session random codes and peer addresses. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "rdv.h"
#include "tlv.h"

#define LIST_BYTES   60000 /* stays under a client's default max_frame */
#define SESSIONS_MAX 1000
#define SESSION_KEEP 86400 /* expired sessions stay a day for the admin view */

static rdv_conf_t rdv_conf;

#define OFF(f) offsetof(rdv_conf_t, f)
static const cfg_opt_t rdv_opts[] = {
    {"overlay_pool", CFG_STR, "10.77.0.0/16", 0, 0, NULL, OFF(overlay_pool),
     "IPv4 CIDR block overlay addresses are drawn from"},
    {"lease_s", CFG_INT, "86400", 1, 31536000, NULL, OFF(lease_s),
     "an overlay address is released after this long without contact"},
    {"session_ttl_s", CFG_INT, "60", 1, 86400, NULL, OFF(session_ttl_s),
     "a session offer must be used within this"},
    {"connect_timeout_ms", CFG_INT, "3000", 10, 60000, NULL, OFF(connect_timeout_ms),
     "CONNECT_REQ: how long the target has to answer a heartbeat"},
    {"heartbeat_interval_ms", CFG_INT, "30000", 100, 3600000, NULL, OFF(hb_interval_ms),
     "the server heartbeats each control channel this often"},
    {"heartbeat_miss_max", CFG_INT, "3", 1, 100, NULL, OFF(hb_miss_max),
     "unanswered heartbeats before a control channel is closed"},
    {"kdf.scrypt_n", CFG_INT, "16384", 2, 1048576, NULL, OFF(kdf_n),
     "scrypt N for new registrations (a power of two)"},
    {"kdf.scrypt_r", CFG_INT, "8", 1, 16, NULL, OFF(kdf_r), "scrypt r for new registrations"},
    {"kdf.scrypt_p", CFG_INT, "1", 1, 4, NULL, OFF(kdf_p), "scrypt p for new registrations"},
    {"kdf.threads", CFG_INT, "2", 1, 64, NULL, OFF(kdf_threads),
     "threads that derive password keys off the event loops"},
    LOCKOUT_OPTS(OFF(auth)),
    {"connect.per_minute", CFG_INT, "60", 1, 6000000, NULL, OFF(connect_per_minute),
     "RDV_CONNECT_REQs a device may send per minute, sustained (RATE_LIMITED beyond)"},
    {"connect.burst", CFG_INT, "8", 1, 100000, NULL, OFF(connect_burst),
     "RDV_CONNECT_REQs a device may send at once before connect.per_minute applies"},
    {"connect.max_offers_per_pair", CFG_INT, "8", 1, 1024, NULL, OFF(connect_per_pair),
     "unexpired session offers one caller may hold at one target"},
    {"connect.max_offers_per_caller", CFG_INT, "32", 1, 1024, NULL, OFF(connect_per_caller),
     "unexpired session offers one caller may hold in all"},
    {"connect.max_offers_per_target", CFG_INT, "128", 1, 1024, NULL, OFF(connect_per_target),
     "unexpired session offers a target may hold from all callers"},
    {"cluster.self", CFG_STR, "", 0, 0, NULL, OFF(cluster_self),
     "this instance's IP:port as the other instances on the same database reach it "
     "(\"\": a single instance)"},
    {"cluster.lease_s", CFG_INT, "15", 2, 3600, NULL, OFF(cluster_lease_s),
     "the others forward offers to this instance until this long after its last renewal"},
};

static const char *const rdv_migrations[] = {
    "CREATE TABLE devices("
    " device_id TEXT PRIMARY KEY,"
    " provisioned_at INTEGER NOT NULL,"
    " username TEXT, cred BLOB, salt BLOB, kdf_n INTEGER, kdf_r INTEGER, kdf_p INTEGER,"
    " overlay_ix INTEGER UNIQUE, endpoint TEXT,"
    " last_seen INTEGER NOT NULL DEFAULT 0,"
    " fail_count INTEGER NOT NULL DEFAULT 0,"
    " locked_until INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE sessions("
    " session_id BLOB PRIMARY KEY,"
    " caller_id TEXT NOT NULL, target_id TEXT NOT NULL,"
    " issued INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_issued ON sessions(issued);",
    /* REGISTER lockouts move to lockout.h's table, so an existing state
     * dir keeps them; devices.fail_count and locked_until stay, unused
     * (zeroed: dropping a column needs SQLite 3.35).  A lock's failures
     * are forgotten lockout_max_s after it ends; a count below the
     * threshold dates from the last registration, the last time known.
     * (Since issue 9 lockout.h no longer locks devices and ignores these
     * rows: only trusted pairs are written there.) */
    LOCKOUT_SCHEMA
    "INSERT INTO lockouts(key, failures, last_fail, locked_until)"
    " SELECT device_id, fail_count,"
    " CASE WHEN locked_until > last_seen THEN locked_until ELSE last_seen END, locked_until"
    " FROM devices WHERE fail_count > 0;"
    "UPDATE devices SET fail_count=0, locked_until=0;",
    /* one-time enrolment codes (enrol.h), as verifiers; a row goes when
     * its device enrols.  Devices provisioned before, never registered,
     * need provisioning again for a code. */
    "CREATE TABLE IF NOT EXISTS enrolments("
    " device_id TEXT PRIMARY KEY,"
    " verifier BLOB NOT NULL,"
    " issued INTEGER NOT NULL);",
    /* several instances (cluster.c): who holds a device's control
     * channel, and each instance's lease */
    "ALTER TABLE devices ADD COLUMN holder TEXT;"
    "CREATE TABLE rdv_instances("
    " addr TEXT PRIMARY KEY,"
    " lease_until INTEGER NOT NULL);",
};
/* The same steps in PostgreSQL DDL (store.h). */
static const char *const rdv_migrations_pg[] = {
    "CREATE TABLE devices("
    " device_id TEXT PRIMARY KEY,"
    " provisioned_at BIGINT NOT NULL,"
    " username TEXT, cred BYTEA, salt BYTEA, kdf_n BIGINT, kdf_r BIGINT, kdf_p BIGINT,"
    " overlay_ix BIGINT UNIQUE, endpoint TEXT,"
    " last_seen BIGINT NOT NULL DEFAULT 0,"
    " fail_count BIGINT NOT NULL DEFAULT 0,"
    " locked_until BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE sessions("
    " rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE," /* the list order's tie-break, as SQLite's
                                                          */
    " session_id BYTEA PRIMARY KEY,"
    " caller_id TEXT NOT NULL, target_id TEXT NOT NULL,"
    " issued BIGINT NOT NULL, expires BIGINT NOT NULL,"
    " used BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_issued ON sessions(issued);",
    /* lockout.h's table, as in SQLite's step 2 */
    LOCKOUT_SCHEMA_PG
    "INSERT INTO lockouts(key, failures, last_fail, locked_until)"
    " SELECT device_id, fail_count,"
    " CASE WHEN locked_until > last_seen THEN locked_until ELSE last_seen END, locked_until"
    " FROM devices WHERE fail_count > 0;"
    "UPDATE devices SET fail_count=0, locked_until=0;",
    /* enrol.h's codes */
    "CREATE TABLE IF NOT EXISTS enrolments("
    " device_id TEXT PRIMARY KEY,"
    " verifier BYTEA NOT NULL,"
    " issued BIGINT NOT NULL);",
    /* cluster.c's holders and leases */
    "ALTER TABLE devices ADD COLUMN holder TEXT;"
    "CREATE TABLE rdv_instances("
    " addr TEXT PRIMARY KEY,"
    " lease_until BIGINT NOT NULL);",
};

/* The last reference. */
static void
rdv_destroy(void *arg)
{
	rdv_t *rdv = arg;

	connreg_free(rdv->reg);
	lockout_free(rdv->lk);
	rdv_climit_free(rdv->cl);
	free(rdv);
}

/* ---- admin ---- */

struct adm {
	rdv_t *rdv;
	srv_req_t *r;
	int provision;
	int reissued; /* provisioned before, never enrolled: a new code */
	char device_id[RDV_ID_CAP];
	char actor[160];
	char code[RDV_ENROL_CODE_CAP]; /* shown once, in the answer */
	uint8_t verifier[RDV_ENROL_VERIFIER_LEN];
};

static void
adm_free(struct adm *a)
{
	rdv_t *rdv = a->rdv;

	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	rdv_unref(rdv);
}

/* A device is provisioned once; until it enrols, provisioning it again
 * replaces its enrolment code (a lost one), after that it is a CONFLICT. */
static int
adm_provision_write(struct adm *a, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	int rc;

	st = store_stmt(c, "SELECT cred IS NOT NULL FROM devices WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if ((rc = store_step(st, err)) == STORE_ROW && store_col_int64(st, 0) != 0) {
		store_reset(st);
		return err_set(err, STB_CONFLICT,
		               "device %s is already provisioned and enrolled (deprovision it to "
		               "enrol it again)",
		               a->device_id);
	}
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE)
		return -1;
	a->reissued = rc == STORE_ROW;
	if (!a->reissued) {
		st = store_stmt(c, "INSERT INTO devices(device_id, provisioned_at) VALUES(?1, ?2)",
		                err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, a->device_id);
		store_bind_int64(st, 2, (int64_t)time(NULL));
		if (store_step(st, err) != STORE_DONE)
			return -1;
	}
	st = store_stmt(c,
	                "INSERT INTO enrolments(device_id, verifier, issued) VALUES(?1, ?2, ?3) "
	                "ON CONFLICT (device_id) DO UPDATE SET verifier = excluded.verifier, "
	                "issued = excluded.issued",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	store_bind_blob(st, 2, a->verifier, sizeof(a->verifier));
	store_bind_int64(st, 3, (int64_t)time(NULL));
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(a->rdv->d, c, err, a->reissued ? "enrol_reissue" : "provision",
	                     a->actor, "device=%s", a->device_id);
}

static int
adm_write(store_conn_t *c, void *arg, err_t *err)
{
	struct adm *a = arg;
	store_stmt_t *st;

	if (a->provision)
		return adm_provision_write(a, c, err);
	st = store_stmt(c, "DELETE FROM devices WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (store_changes(st) == 0)
		return err_set(err, STB_NOT_FOUND, "device %s is not provisioned", a->device_id);
	st = store_stmt(c, "DELETE FROM enrolments WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(a->rdv->d, c, err, "deprovision", a->actor, "device=%s", a->device_id);
}

static void
adm_done(void *arg, const err_t *err)
{
	struct adm *a = arg;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(a->r, err);
	else if (a->provision) {
		b = srv_reply_begin(a->r);
		tlv_put_str(b, STB_TLV_RDV_ENROL_CODE, a->code);
		srv_reply_end(a->r);
	} else {
		/* a removed device loses its control channel at once */
		rdv_registry_kick(rdv_registry_take(a->rdv, a->device_id, 0));
		srv_reply_ok(a->r);
	}
	adm_free(a);
}

static void
adm_provision(srv_req_t *r, const msg_t *m, void *ctx, int provision)
{
	daemon_t *d = ctx;
	struct adm *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->rdv = d->priv;
	rdv_ref(a->rdv);
	a->provision = provision;
	msg_get_str(m, TLV_IX_RDV_DEVICE_ID, a->device_id, sizeof(a->device_id));
	snprintf(a->actor, sizeof(a->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	if (provision && rdv_enrol_draw(a->device_id, a->code, a->verifier) == -1) {
		srv_reply_err(r, STB_INTERNAL, "cannot draw an enrolment code");
		adm_free(a);
		return;
	}
	if (daemon_write_deferred(d, r, adm_write, adm_done, a, &a->r) == -1)
		adm_free(a);
}

static void
rdv_provision(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_provision(r, m, ctx, 1);
}

static void
rdv_deprovision(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_provision(r, m, ctx, 0);
}

static void
rdv_list_online(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	buf_t *b = srv_reply_begin(r);

	(void)m;
	rdv_registry_list(d->priv, b, LIST_BYTES); /* a full page simply ends */
	srv_reply_end(r);
}

static cJSON *
session_json(store_stmt_t *st, void *arg)
{
	const int64_t *now = arg;
	cJSON *o = cJSON_CreateObject();
	int64_t exp = store_col_int64(st, 4);
	char hex[2 * RDV_SID_LEN + 1] = "";
	size_t len;
	const void *sid = store_col_blob(st, 0, &len);

	if (len <= RDV_SID_LEN)
		hex_encode(sid, len, hex);
	cJSON_AddStringToObject(o, "session_id", hex);
	cJSON_AddStringToObject(o, "caller_id", store_col_text(st, 1, NULL));
	cJSON_AddStringToObject(o, "target_id", store_col_text(st, 2, NULL));
	cJSON_AddNumberToObject(o, "issued", (double)store_col_int64(st, 3));
	cJSON_AddNumberToObject(o, "expires", (double)exp);
	cJSON_AddStringToObject(o, "state",
	                        (int)store_col_int64(st, 5) ? "used"
	                        : exp <= *now               ? "expired"
	                                                    : "offered");
	return o;
}

static void
rdv_list_sessions(srv_req_t *r, const msg_t *m, void *ctx)
{
	uint32_t limit = 100;
	int64_t now = (int64_t)time(NULL);

	msg_get_u32(m, TLV_IX_AUDIT_LIMIT, &limit);
	if (limit == 0 || limit > SESSIONS_MAX)
		limit = SESSIONS_MAX;
	daemon_list_reply(r, ctx,
	                  "SELECT session_id, caller_id, target_id, issued, expires, used "
	                  "FROM sessions ORDER BY issued DESC, rowid DESC LIMIT ?1",
	                  limit, NULL, STB_TLV_RDV_SESSION_ENTRY, LIST_BYTES, session_json, &now);
}

/* ---- leases: refresh online devices, release silent ones ---- */

struct sweep {
	rdv_t *rdv;
	char (*ids)[RDV_ID_CAP];
	size_t n;
};

static int
sweep_write(store_conn_t *c, void *arg, err_t *err)
{
	struct sweep *w = arg;
	int64_t now = (int64_t)time(NULL);
	store_stmt_t *st;

	for (size_t i = 0; i < w->n; i++) {
		st = store_stmt(c, "UPDATE devices SET last_seen=?2 WHERE device_id=?1", err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, w->ids[i]);
		store_bind_int64(st, 2, now);
		if (store_step(st, err) != STORE_DONE)
			return -1;
	}
	st = store_stmt(c,
	                "UPDATE devices SET overlay_ix=NULL WHERE overlay_ix IS NOT NULL "
	                "AND last_seen < ?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now - w->rdv->conf->lease_s);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (store_changes(st) > 0)
		log_info("released %lld overlay address(es) after the lease",
		         (long long)store_changes(st));
	st = store_stmt(c, "DELETE FROM sessions WHERE expires < ?1", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now - SESSION_KEEP);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return 0;
}

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	rdv_t *rdv = arg;
	struct sweep w = {rdv, NULL, 0};
	err_t err;

	(void)fd;
	(void)what;
	if ((w.ids = rdv_registry_ids(rdv, &w.n)) == NULL)
		return;
	/* on the main loop, which only accepts: a short wait is fine */
	if (store_write_sync(rdv->d->store, sweep_write, &w, &err) == -1)
		log_warnx("lease sweep: %s", err.msg);
	free(w.ids);
	rdv_climit_prune(rdv->cl, rdv_now_ms());
}

/* ---- lifecycle ---- */

/* What the option table's bounds cannot say; runs for -t too. */
static int
rdv_check(err_t *err)
{
	rdv_pool_t pool;

	if (!rdv_kdf_params_ok((uint64_t)rdv_conf.kdf_n, (uint32_t)rdv_conf.kdf_r,
	                       (uint32_t)rdv_conf.kdf_p))
		return err_set(err, STB_BAD_REQUEST,
		               "kdf: scrypt_n must be a power of two and 128*r*N at most 256 MiB");
	if (rdv_pool_parse(rdv_conf.overlay_pool, &pool) == -1)
		return err_set(err, STB_BAD_REQUEST,
		               "overlay_pool: '%s' is not an IPv4 CIDR block /8../30",
		               rdv_conf.overlay_pool);
	if (rdv_conf.connect_per_pair > rdv_conf.connect_per_caller)
		return err_set(err, STB_BAD_REQUEST,
		               "connect.max_offers_per_pair exceeds connect.max_offers_per_caller");
	if (rdv_conf.cluster_self[0] != '\0' && !rdv_cluster_addr_ok(rdv_conf.cluster_self))
		return err_set(err, STB_BAD_REQUEST,
		               "cluster.self: '%.64s' is not an IP address and port (host:port, "
		               "[v6]:port)",
		               rdv_conf.cluster_self);
	return lockout_conf_check(&rdv_conf.auth, err);
}

static int
rdv_init(daemon_t *d, err_t *err)
{
	rdv_climit_conf_t cc = {rdv_conf.connect_per_minute, rdv_conf.connect_burst,
	                        rdv_conf.connect_per_pair, rdv_conf.connect_per_caller,
	                        rdv_conf.connect_per_target};
	rdv_t *rdv;
	long long period;
	struct timeval tv;
	store_conn_t *c;

	if ((rdv = calloc(1, sizeof(*rdv))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (rdv_pool_parse(rdv_conf.overlay_pool, &rdv->pool) == -1) { /* checked already */
		free(rdv);
		return err_set(err, STB_BAD_REQUEST, "overlay_pool: '%s' is not valid",
		               rdv_conf.overlay_pool);
	}
	rdv->d = d;
	rdv->conf = &rdv_conf;
	lifecycle_init(&rdv->lc, rdv_destroy, rdv);
	d->priv = rdv;
	period = rdv_conf.lease_s / 4;
	period = period < 1 ? 1 : period > 60 ? 60 : period;
	tv = (struct timeval){(time_t)period, 0};
	if ((rdv->reg = connreg_new(1, err)) == NULL ||
	    (rdv->cl = rdv_climit_new(&cc, RDV_CLIMIT_MAX, err)) == NULL)
		return -1;
	if ((rdv->lk = lockout_new(&rdv_conf.auth, err)) == NULL ||
	    (c = store_reader(d->store, err)) == NULL ||
	    lockout_load(rdv->lk, c, (int64_t)time(NULL), err) == -1)
		return -1;
	if ((rdv->kdf = workpool_new("kdf", (int)rdv_conf.kdf_threads,
	                             (size_t)rdv_conf.kdf_threads * RDV_KDF_QUEUE_PER_THREAD,
	                             err)) == NULL)
		return -1;
	if ((rdv->sweep = event_new(d->base, -1, EV_PERSIST, sweep_tick, rdv)) == NULL ||
	    event_add(rdv->sweep, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the lease timer");
	if (rdv_cluster_init(rdv, err) == -1)
		return -1;
	rdv_device_register(d);
	rdv_connect_register(d);
	srv_handle(d->srv, MSG_IX_RDV_PROVISION, rdv_provision);
	srv_handle(d->srv, MSG_IX_RDV_DEPROVISION, rdv_deprovision);
	srv_handle(d->srv, MSG_IX_RDV_LIST_ONLINE, rdv_list_online);
	srv_handle(d->srv, MSG_IX_RDV_LIST_SESSIONS, rdv_list_sessions);
	return 0;
}

/* Connections may still close after this (srv_free): each holds its own
 * reference, and the last one frees the registry. */
static void
rdv_fini(daemon_t *d)
{
	rdv_t *rdv = d->priv;

	if (rdv == NULL)
		return;
	if (rdv->sweep != NULL)
		event_free(rdv->sweep);
	rdv->sweep = NULL;
	rdv_cluster_fini(rdv);
	lifecycle_stop(&rdv->lc);
	/* finishes queued derivations; their answers go back to the loops */
	workpool_free(rdv->kdf);
	rdv->kdf = NULL;
	rdv_unref(rdv);
}

static const daemon_def_t rendezvousd_def = {
    .name = "rendezvousd",
    .role = STB_R_RENDEZVOUSD,
    .listen = "127.0.0.1:7104",
    .http_listen = "127.0.0.1:9104",
    .client_auth = "optional",
    .opts = rdv_opts,
    .nopts = sizeof(rdv_opts) / sizeof(rdv_opts[0]),
    .conf = &rdv_conf,
    .migrations = rdv_migrations,
    .nmigrations = sizeof(rdv_migrations) / sizeof(rdv_migrations[0]),
    .pg_migrations = rdv_migrations_pg,
    .npg_migrations = sizeof(rdv_migrations_pg) / sizeof(rdv_migrations_pg[0]),
    .check = rdv_check,
    .init = rdv_init,
    .fini = rdv_fini,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &rendezvousd_def);
}
