#include "daemon.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/thread.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlisten.h"
#include "fmode.h"
#include "health.h"
#include "log.h"
#include "sdnotify.h"
#include "signer.h"
#include "tlv.h"

/* HKDF label of the audit chain key under the KEK. */
#define DAEMON_AUDIT_LABEL "stbcred audit chain v1"

static const char *const store_backend_choices[] = {"sqlite", "postgresql", NULL};

#define OFF(f) offsetof(daemon_conf_t, f)
#define I64    ((long long)1 << 62)
static const cfg_opt_t common_opts[] = {
    {"listen", CFG_STR, "", 0, 0, NULL, OFF(listen), "TLS listen address, host:port"},
    {"workers", CFG_INT, "0", 0, 64, NULL, OFF(workers), "worker event loops; 0 = one per core"},
    {"max_connections", CFG_INT, "20000", 1, 1000000, NULL, OFF(max_connections),
     "connections accepted at once"},
    {"max_frame", CFG_INT, "65536", 1024, 16777216, NULL, OFF(max_frame),
     "largest frame body accepted, bytes"},
    {"max_inflight", CFG_INT, "64", 1, 4096, NULL, OFF(max_inflight),
     "requests in progress per connection before reading pauses"},
    {"handshake_timeout_ms", CFG_INT, "10000", 100, 600000, NULL, OFF(handshake_timeout_ms),
     "TLS handshake deadline"},
    {"idle_timeout_ms", CFG_INT, "300000", 100, 86400000, NULL, OFF(idle_timeout_ms),
     "close a connection silent this long"},
    {"frame_timeout_ms", CFG_INT, "10000", 100, 600000, NULL, OFF(frame_timeout_ms),
     "a frame once started must arrive within this"},
    {"drain_timeout_ms", CFG_INT, "10000", 0, 600000, NULL, OFF(drain_timeout_ms),
     "on SIGTERM, wait this long for in-flight requests"},
    {"client_auth", CFG_STR, "", 0, 0, dlisten_client_auth_choices, OFF(client_auth),
     "client certificates: require (daemons, admin), optional (STB-facing) or none"},
    {"tls.cert", CFG_STR, "", 0, 0, NULL, OFF(tls_cert), "service certificate chain, PEM"},
    {"tls.key", CFG_STR, "", 0, 0, NULL, OFF(tls_key), "service private key, PEM"},
    {"tls.ca", CFG_STR, "", 0, 0, NULL, OFF(tls_ca), "trust anchors for peers, PEM"},
    {"tls.min_version", CFG_STR, "1.2", 0, 0, dlisten_tls_version_choices, OFF(tls_min_version),
     "lowest TLS version accepted (1.3 for daemon-only listeners)"},
    {"tls.session_tickets", CFG_BOOL, "true", 0, 0, NULL, OFF(tls_session_tickets),
     "issue TLS 1.3 session tickets so clients resume instead of a full handshake"},
    {"tls.ticket_lifetime_s", CFG_INT, "7200", 60, 604800, NULL, OFF(tls_ticket_lifetime_s),
     "a session ticket resumes this long; the daemon's ticket keys rotate as often"},
    {"state_dir", CFG_STR, "", 0, 0, NULL, OFF(state_dir), "directory for the database"},
    {"store.backend", CFG_STR, "sqlite", 0, 0, store_backend_choices, OFF(store_backend),
     "the database: sqlite (a file in state_dir) or postgresql (store.dsn)"},
    {"store.dsn", CFG_SECRET, "", 0, 0, NULL, OFF(store_dsn),
     "PostgreSQL connection string (libpq keywords or a postgresql:// URI; sslmode for TLS); "
     "one database or schema per daemon"},
    {"kek_file", CFG_STR, "", 0, 0, NULL, OFF(kek_file),
     "key-encryption key (0600); $CREDENTIALS_DIRECTORY/kek wins"},
    {"http_listen", CFG_STR, "", 0, 0, NULL, OFF(http_listen),
     "/healthz and /metrics address; empty disables"},
    {"max_connections_per_source", CFG_INT, "256", 0, 1000000, NULL, OFF(max_per_source),
     "TLS connections from one address (IPv6: one /64) at once; 0 = no cap"},
    {"http.max_connections", CFG_INT, "512", 1, 100000, NULL, OFF(http_max_connections),
     "connections on the HTTP listener at once"},
    {"http.max_connections_per_source", CFG_INT, "16", 0, 100000, NULL, OFF(http_max_per_source),
     "HTTP connections from one address at once; 0 = no cap"},
    {"http.request_timeout_ms", CFG_INT, "10000", 100, 600000, NULL, OFF(http_request_timeout_ms),
     "an HTTP request, head and body, must arrive within this of the connection or the last "
     "answer"},
    {"log.json", CFG_BOOL, "false", 0, 0, NULL, OFF(log_json), "log JSON lines"},
    {"log.debug", CFG_BOOL, "false", 0, 0, NULL, OFF(log_debug), "log debug events"},
    {"health.interval_ms", CFG_INT, "5000", 100, 600000, NULL, OFF(health_interval_ms),
     "how often the store and every peer are probed for /readyz and stbcred_dependency_up"},
    {"refusals.interval_s", CFG_INT, "60", 1, 3600, NULL, OFF(refusal_interval_s),
     "refusals of unauthenticated clients: one summary line and audit row per source this often"},
    {"refusals.max_sources", CFG_INT, "1024", 1, 1000000, NULL, OFF(refusal_max_sources),
     "source addresses summarised apart per interval; the rest are pooled as \"*\""},
    {"audit.verify_jobs", CFG_INT, "2", 1, 16, NULL, OFF(audit_verify_jobs),
     "ADMIN_AUDIT_VERIFY walks at once (off the loops); more are RATE_LIMITED"},
};
#define NCOMMON (sizeof(common_opts) / sizeof(common_opts[0]))

/* Asked for (-h), to stdout; after a usage error, to stderr. */
static void
usage(const daemon_def_t *def, FILE *to)
{
	fprintf(to,
	        "usage: %s [-dt] [-c file]\n"
	        "  -c, --config file  configuration (JSON); defaults apply without one\n"
	        "  -t, --check        check the configuration and the files it names, and exit\n"
	        "  -d, --debug        log debug events\n"
	        "  -H, --help-config  list every configuration key with its default\n"
	        "  -V, --version      print the version\n"
	        "  -h, --help         print this help\n"
	        "exit status: 0 ok, 1 configuration or start-up error, 2 usage error\n",
	        def->name);
}

static const struct option daemon_long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"check", no_argument, NULL, 't'},
    {"debug", no_argument, NULL, 'd'},
    {"help-config", no_argument, NULL, 'H'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int set_default(daemon_t *d, int slot, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
set_default(daemon_t *d, int slot, const char *key, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) == -1)
		v = NULL;
	va_end(ap);
	if (v == NULL)
		return -1;
	d->defaults[slot] = v;
	for (size_t i = 0; i < NCOMMON; i++)
		if (strcmp(d->common_opts[i].name, key) == 0)
			d->common_opts[i].def = v;
	return 0;
}

/* The common table with this daemon's defaults filled in. */
static int
daemon_tables(daemon_t *d)
{
	const daemon_def_t *def = d->def;

	if ((d->common_opts = malloc(sizeof(common_opts))) == NULL)
		return -1;
	memcpy(d->common_opts, common_opts, sizeof(common_opts));
	if (set_default(d, 0, "listen", "%s", def->listen) == -1 ||
	    set_default(d, 1, "client_auth", "%s", def->client_auth) == -1 ||
	    set_default(d, 2, "tls.cert", "/etc/stbcred/pki/%s.crt", def->name) == -1 ||
	    set_default(d, 3, "tls.key", "/etc/stbcred/pki/%s.key", def->name) == -1 ||
	    set_default(d, 4, "tls.ca", "/etc/stbcred/pki/ca.crt") == -1 ||
	    set_default(d, 5, "state_dir", "/var/lib/stbcred/%s", def->name) == -1 ||
	    set_default(d, 6, "kek_file", "/etc/stbcred/%s.kek", def->name) == -1 ||
	    set_default(d, 7, "http_listen", "%s", def->http_listen) == -1)
		return -1;
	d->tabs[0] = (cfg_table_t){d->common_opts, NCOMMON, &d->conf};
	d->tabs[1] = (cfg_table_t){def->opts, def->nopts, def->conf};
	return 0;
}

/* Addresses are checked with the config, so -t catches them. */
static int
daemon_check_addrs(daemon_t *d, err_t *err)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);

	if (srv_parse_addr(d->conf.listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "listen: '%s' is not IP:port", d->conf.listen);
	sl = sizeof(ss);
	if (*d->conf.http_listen != '\0' && srv_parse_addr(d->conf.http_listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "http_listen: '%s' is not IP:port",
		               d->conf.http_listen);
	if (store_backend_parse(d->conf.store_backend) == STORE_PG) {
		if (*d->conf.store_dsn == '\0')
			return err_set(err, STB_BAD_REQUEST,
			               "store.dsn: needed by store.backend "
			               "postgresql");
		if (d->def->pg_migrations == NULL)
			return err_set(err, STB_BAD_REQUEST,
			               "store.backend: %s has no PostgreSQL schema", d->def->name);
	}
	return 0;
}

/* The same certificate and trust anchors, for calls to other daemons
 * (mutual TLS 1.3). */
static int
daemon_client_ctx(daemon_t *d, SSL_CTX **out, err_t *err)
{
	tls_conf_t tc = {.cert = d->conf.tls_cert,
	                 .key = d->conf.tls_key,
	                 .ca = d->conf.tls_ca,
	                 .client_auth = TLS_CLIENT_AUTH_NONE,
	                 .tls13_only = 1};

	*out = tls_client_ctx_new(&tc, err);
	return *out == NULL ? -1 : 0;
}

/* -t opens what a start will: every listener's certificate, key and trust
 * anchors, the identity for calls to peers, and the KEK, so a unit's
 * ExecStartPre= catches a missing or mismatched file before the start. */
static int
daemon_check_files(daemon_t *d, err_t *err)
{
	sealed_kek_t *kek = NULL;
	SSL_CTX *ctx;

	for (int i = 0; i < d->nlisteners; i++) {
		if (dlisten_tls_ctx(d, &d->listeners[i], &ctx, err) == -1)
			return -1;
		SSL_CTX_free(ctx);
	}
	if (daemon_client_ctx(d, &ctx, err) == -1)
		return -1;
	SSL_CTX_free(ctx);
	if (sealed_kek_load(d->conf.kek_file, "kek", &kek, err) == -1)
		return -1;
	sealed_kek_free(kek);
	return 0;
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	daemon_t *d = arg;

	(void)what;
	if (d->draining)
		return;
	d->draining = 1;
	log_info("signal %d: draining", (int)sig);
	sdnotify_send("STOPPING=1");
	event_base_loopexit(d->base, NULL);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	daemon_t *d = arg;
	SSL_CTX *ctx;
	err_t err;
	int failed;

	(void)sig;
	(void)what;
	sdnotify_send("RELOADING=1");
	/* Only the TLS material reloads: the rest needs a restart. */
	failed = dlisten_reload(d);
	if (failed == d->nlisteners) {
		/* the listener's own files are broken: so is the client identity */
	} else if (daemon_client_ctx(d, &ctx, &err) == -1) {
		log_warnx("reload: listeners reloaded, but calls to peers keep the old "
		          "certificates: %s",
		          err.msg);
	} else {
		tls_holder_swap(&d->client_tls, ctx);
		if (failed == 0)
			log_info("reload: TLS certificates and trust anchors reloaded (the "
			         "listener%s, and new connections to peers)",
			         d->nlisteners > 1 ? "s" : "");
		else
			log_info("reload: TLS certificates and trust anchors reloaded for %d of "
			         "%d listeners, and new connections to peers",
			         d->nlisteners - failed, d->nlisteners);
	}
	sdnotify_send("READY=1");
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sdnotify_send("WATCHDOG=1");
}

static int
daemon_signals(daemon_t *d)
{
	uint64_t wd = sdnotify_watchdog_usec();

	signal(SIGPIPE, SIG_IGN);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	if (d->sig_term == NULL || d->sig_int == NULL || d->sig_hup == NULL ||
	    evsignal_add(d->sig_term, NULL) == -1 || evsignal_add(d->sig_int, NULL) == -1 ||
	    evsignal_add(d->sig_hup, NULL) == -1)
		return -1;
	if (wd > 0) {
		struct timeval tv = {(time_t)(wd / 2000000), (suseconds_t)(wd / 2 % 1000000)};
		d->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
		if (d->watchdog == NULL || event_add(d->watchdog, &tv) == -1)
			return -1;
	}
	return 0;
}

static int
daemon_open_store(daemon_t *d, err_t *err)
{
	char path[4096];
	int n;

	/* made 0700; one that others may enter is refused, not used */
	if (fmode_private_dir(d->conf.state_dir, "state_dir", err) == -1)
		return -1;
	if (store_backend_parse(d->conf.store_backend) == STORE_PG) {
		d->store = store_open_be(STORE_PG, d->conf.store_dsn, d->def->pg_migrations,
		                         d->def->npg_migrations, err);
		return d->store != NULL ? 0 : -1;
	}
	n = snprintf(path, sizeof(path), "%s/%s.db", d->conf.state_dir, d->def->name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return err_set(err, STB_BAD_REQUEST, "state_dir path too long");
	if ((d->store = store_open(path, d->def->migrations, d->def->nmigrations, err)) == NULL)
		return -1;
	return 0;
}

int
daemon_audit(daemon_t *d, store_conn_t *c, const char *event, const char *actor, const char *detail,
             uint64_t *seq, err_t *err)
{
	return audit_append(c, d->audit_key, event, actor, detail, seq, err);
}

int
daemon_auditf(daemon_t *d, store_conn_t *c, err_t *err, const char *event, const char *actor,
              const char *fmt, ...)
{
	char detail[AUDIT_FIELD_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return daemon_audit(d, c, event, actor, detail, NULL, err);
}

void
daemon_refused(daemon_t *d, srv_req_t *r, const char *action, const char *reason,
               const char *sample)
{
	if (d->refusals != NULL)
		refusal_count(d->refusals, srv_conn_peer(r->conn), action, reason, sample);
}

int
daemon_watch_peer(daemon_t *d, const char *name, peerpool_t *pp, err_t *err)
{
	return health_watch_peer(d->health, name, pp, err);
}

int
daemon_write_deferred(daemon_t *d, srv_req_t *r, store_write_fn fn, store_done_fn done, void *arg,
                      srv_req_t **deferred)
{
	err_t err;

	if ((*deferred = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return -1;
	}
	if (store_write(d->store, srv_req_mbox(r), fn, done, arg, &err) == -1) {
		srv_reply_errt(*deferred, &err);
		return -1;
	}
	return 0;
}

int
daemon_entry_put(buf_t *b, uint16_t tlv, cJSON *o, size_t budget)
{
	char *s = cJSON_PrintUnformatted(o);
	int rc = -1;

	cJSON_Delete(o);
	if (s != NULL && b->len + strlen(s) + STB_TLV_HDR_LEN <= budget)
		rc = tlv_put_str(b, tlv, s);
	free(s);
	return rc;
}

store_stmt_t *
daemon_row_by_id(srv_req_t *r, daemon_t *d, const char *sql, const char *what, const char *id,
                 store_conn_t **c)
{
	store_stmt_t *st;
	err_t err;
	int rc;

	if ((*c = store_reader(d->store, &err)) == NULL ||
	    (st = store_stmt(*c, sql, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return NULL;
	}
	store_bind_str(st, 1, id);
	if ((rc = store_step(st, &err)) != STORE_ROW) {
		store_reset(st);
		if (rc == STORE_DONE)
			srv_reply_err(r, STB_NOT_FOUND, "no %s %s", what, id);
		else
			srv_reply_errt(r, &err);
		return NULL;
	}
	return st;
}

void
daemon_list_reply(srv_req_t *r, daemon_t *d, const char *sql, int64_t limit, const char *text,
                  uint16_t tlv, size_t budget, daemon_row_fn row, void *arg)
{
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	buf_t *b;
	int rc;

	if ((c = store_reader(d->store, &err)) == NULL || (st = store_stmt(c, sql, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_int64(st, 1, limit);
	if (text != NULL)
		store_bind_str(st, 2, text);
	if ((rc = store_step(st, &err)) != STORE_ROW && rc != STORE_DONE) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	for (; rc == STORE_ROW; rc = store_step(st, &err))
		if (daemon_entry_put(b, tlv, row(st, arg), budget) == -1)
			break;
	store_reset(st);
	srv_reply_end(r);
}

/* The audit table is every daemon's, outside the daemon's own versioning. */
static int
audit_schema_write(store_conn_t *c, void *arg, err_t *err)
{
	daemon_t *d = arg;

	return store_exec(
	    c, store_get_backend(d->store) == STORE_PG ? audit_schema_pg : audit_schema, err);
}

/* The KEK, the audit chain key under it, and the store with the audit
 * table: what a start and an offline subcommand both need. */
static int
daemon_open_state(daemon_t *d, err_t *err)
{
	if (sealed_kek_load(d->conf.kek_file, "kek", &d->kek, err) == -1 ||
	    sealed_derive(d->kek, DAEMON_AUDIT_LABEL, d->audit_key, err) == -1)
		return -1;
	if (daemon_open_store(d, err) == -1 ||
	    store_write_sync(d->store, audit_schema_write, d, err) == -1)
		return -1;
	return 0;
}

/* One channel per worker loop and two for the main loop and the writer. */
static int
daemon_start_signer(daemon_t *d, err_t *err)
{
	long n = d->conf.workers > 0 ? (long)d->conf.workers : sysconf(_SC_NPROCESSORS_ONLN);

	if (!d->def->signer)
		return 0;
	n = n < 1 ? 3 : n + 2;
	return signer_start(d->def->name, NULL, d->conf.kek_file,
	                    n > SIGNER_CHANNELS_MAX ? SIGNER_CHANNELS_MAX : (int)n, &d->signer,
	                    err);
}

static int
daemon_start(daemon_t *d, err_t *err)
{
	SSL_CTX *ctx;

	if (daemon_open_state(d, err) == -1 || daemon_start_signer(d, err) == -1 ||
	    dlisten_new(d, err) == -1)
		return -1;
	if (daemon_client_ctx(d, &ctx, err) == -1)
		return -1;
	tls_holder_init(&d->client_tls, ctx);
	if ((d->refusals = refusal_new((size_t)d->conf.refusal_max_sources, err)) == NULL ||
	    refusal_arm(d->refusals, d->base, d->conf.refusal_interval_s, d->store, d->audit_key,
	                err) == -1 ||
	    admin_register(d, err) == -1)
		return -1;
	if ((d->health = health_new(d->base, d->store, (int)d->conf.health_interval_ms, err)) ==
	    NULL)
		return -1;
	if (d->def->init != NULL && d->def->init(d, err) == -1)
		return -1;
	if (health_start(d->health, err) == -1 || dlisten_start(d, err) == -1)
		return -1;
	if (httpd_start(d, err) == -1)
		return -1;
	if (daemon_signals(d) == -1)
		return err_set(err, STB_INTERNAL, "cannot install signal handlers");
	return 0;
}

/* What daemon_tables and cfg_load allocated. */
static void
daemon_conf_free(daemon_t *d)
{
	dlisten_conf_free(d);
	cfg_free(d->tabs, 2);
	free(d->common_opts);
	d->common_opts = NULL;
	for (size_t i = 0; i < sizeof(d->defaults) / sizeof(d->defaults[0]); i++) {
		free(d->defaults[i]);
		d->defaults[i] = NULL;
	}
}

static void
daemon_stop(daemon_t *d)
{
	err_t err;

	health_stop(d->health);
	if (d->srv != NULL)
		srv_drain(d->srv, (int)d->conf.drain_timeout_ms);
	httpd_stop(d);
	if (d->def->fini != NULL)
		d->def->fini(d);
	admin_stop(d);
	if (d->refusals != NULL && d->store != NULL &&
	    refusal_flush(d->refusals, d->store, d->audit_key, &err) == -1)
		log_warnx("refusal summary not recorded: %s", err.msg);
	refusal_free(d->refusals);
	d->refusals = NULL;
	/* the writer flushes before workers go: completions still find their loop */
	store_close(d->store);
	health_free(d->health); /* after the store: its last probe's answer */
	d->health = NULL;
	dlisten_free(d);
	signer_free(d->signer);
	d->signer = NULL;
	if (d->client_tls.ctx != NULL)
		tls_holder_destroy(&d->client_tls);
	sealed_kek_free(d->kek);
	OPENSSL_cleanse(d->audit_key, sizeof(d->audit_key));
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->sig_hup)
		event_free(d->sig_hup);
	if (d->watchdog)
		event_free(d->watchdog);
	if (d->base)
		event_base_free(d->base);
	daemon_conf_free(d);
}

/* Each connection holds a descriptor: lift the soft limit toward the hard
 * one so max_connections can be reached (systemd units set LimitNOFILE). */
static void
daemon_raise_nofile(const daemon_t *d)
{
	/* + the HTTP listener's, and room beyond max_connections (SRV_ACCEPT_SLACK) */
	rlim_t want = (rlim_t)(d->conf.max_connections + d->conf.http_max_connections) + 320;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < want)
		log_warnx("open files limited to %llu: max_connections %lld cannot be reached",
		          (unsigned long long)rl.rlim_cur, (long long)d->conf.max_connections);
}

int
daemon_offline_open(daemon_t *d, const daemon_def_t *def, const char *conf_file, err_t *err)
{
	memset(d, 0, sizeof(*d));
	d->def = def;
	d->conf_file = conf_file;
	if (daemon_tables(d) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (dlisten_load(d, err) == -1)
		return -1;
	if (def->check != NULL && def->check(err) == -1)
		return -1;
	return daemon_open_state(d, err);
}

void
daemon_offline_close(daemon_t *d)
{
	store_close(d->store);
	d->store = NULL;
	sealed_kek_free(d->kek);
	d->kek = NULL;
	OPENSSL_cleanse(d->audit_key, sizeof(d->audit_key));
	daemon_conf_free(d);
}

int
daemon_conf_text(daemon_t *d, const daemon_def_t *def, const char *text, const char *name,
                 err_t *err)
{
	memset(d, 0, sizeof(*d));
	d->def = def;
	if (daemon_tables(d) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (dlisten_load_text(d, text, name, err) == -1 || daemon_check_addrs(d, err) == -1)
		return -1;
	return def->check != NULL ? def->check(err) : 0;
}

void
daemon_conf_release(daemon_t *d)
{
	daemon_conf_free(d);
}

int
daemon_main(int argc, char **argv, const daemon_def_t *def)
{
	daemon_t d;
	int ch, check = 0, debug = 0, help_config = 0;
	err_t err;

	if (argc >= 2 && strcmp(argv[1], SIGNER_ARGV) == 0)
		return signer_main(argc, argv);
	memset(&d, 0, sizeof(d));
	d.def = def;
	while ((ch = getopt_long(argc, argv, "c:dtHVh", daemon_long_opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.conf_file = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 't':
			check = 1;
			break;
		case 'H':
			help_config = 1;
			break;
		case 'V':
			printf("%s %s\n", def->name, STBCRED_VERSION);
			return 0;
		case 'h':
			usage(def, stdout);
			return 0;
		default:
			usage(def, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(def, stderr);
		return 2;
	}
	log_init(def->name, 0, debug);
	if (daemon_tables(&d) == -1)
		fatalx("out of memory");
	if (help_config) {
		cfg_print_help(d.tabs, 2);
		dlisten_help();
		daemon_conf_free(&d);
		return 0;
	}
	if (dlisten_load(&d, &err) == -1) {
		fprintf(stderr, "%s: %s\n", def->name, err.msg);
		daemon_conf_free(&d);
		return 1;
	}
	if (daemon_check_addrs(&d, &err) == -1 || (def->check != NULL && def->check(&err) == -1)) {
		fprintf(stderr, "%s: %s: %s\n", def->name, d.conf_file ? d.conf_file : "default",
		        err.msg);
		daemon_conf_free(&d);
		return 1;
	}
	if (check && daemon_check_files(&d, &err) == -1) {
		fprintf(stderr, "%s: %s: %s\n", def->name, d.conf_file ? d.conf_file : "default",
		        err.msg);
		daemon_conf_free(&d);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", d.conf_file ? d.conf_file : "(defaults)");
		daemon_conf_free(&d);
		return 0;
	}
	log_init(def->name, d.conf.log_json, debug || d.conf.log_debug);
	daemon_raise_nofile(&d);
	if (evthread_use_pthreads() == -1 || (d.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	d.started = time(NULL);
	if (daemon_start(&d, &err) == -1) {
		log_errx("cannot start: %s", err.msg);
		daemon_stop(&d);
		return 1;
	}
	log_info("%s %s listening on %s with %d workers", def->name, STBCRED_VERSION,
	         srv_bound(d.srv), srv_nworkers(d.srv));
	dlisten_log(&d);
	sdnotify_send("READY=1");
	event_base_dispatch(d.base);
	log_info("stopping");
	daemon_stop(&d);
	log_info("stopped");
	return 0;
}
