/*
 * daemon: what every stbcred daemon does around its flow.  A daemon's
 * main() fills a daemon_def_t and calls daemon_main(), which parses the
 * command line, loads the config (-t checks it), loads the KEK, opens the
 * store, starts the TLS server and the HTTP listener, registers the common
 * handlers (PING, admin) and the daemon's own, and runs until SIGTERM.
 */
#ifndef STB_DAEMON_H
#define STB_DAEMON_H

#include <event2/event.h>
#include <stdint.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "refusal.h"
#include "sealed.h"
#include "server.h"
#include "store.h"
#include "tls.h"

#define STBCRED_VERSION "0.1.0"

typedef struct daemon daemon_t;
struct evhttp_request;
struct cJSON;

/* A daemon's own route on its HTTP listener (httpd.c). */
typedef void (*httpd_route_fn)(struct evhttp_request *req, void *arg);
#define HTTPD_ROUTES_MAX 8
typedef struct httpd_route {
	char prefix[64]; /* "/ocsp": the path itself and every path below "/ocsp/" */
	int methods;     /* EVHTTP_REQ_GET | EVHTTP_REQ_POST ... */
	size_t max_body; /* largest request body accepted */
	httpd_route_fn fn;
	void *arg;
} httpd_route_t;

typedef struct daemon_def {
	const char *name;        /* "ca-authd" */
	uint32_t role;           /* its own role bit */
	const char *listen;      /* default listen address */
	const char *http_listen; /* default metrics address */
	const char *client_auth; /* "require" or "optional" */
	const cfg_opt_t *opts;   /* the daemon's own options */
	size_t nopts;
	void *conf;                    /* struct those options fill */
	const char *const *migrations; /* SQLite DDL */
	int nmigrations;
	const char *const *pg_migrations; /* the same steps in PostgreSQL DDL */
	int npg_migrations;
	/* checks the daemon's own options (also for -t); may be NULL */
	int (*check)(err_t *err);
	/* registers handlers; runs after the store is open */
	int (*init)(daemon_t *d, err_t *err);
	void (*fini)(daemon_t *d);
	/* starts a signer process (signer.h) before any socket opens */
	int signer;
	/* appends the daemon's own lines to /metrics (Prometheus text); may be NULL */
	int (*metrics)(daemon_t *d, buf_t *out);
} daemon_def_t;

/* Options every daemon has. */
typedef struct daemon_conf {
	char *listen;
	long long workers;
	long long max_connections;
	long long max_frame;
	long long max_inflight;
	long long handshake_timeout_ms;
	long long idle_timeout_ms;
	long long frame_timeout_ms;
	long long drain_timeout_ms;
	char *client_auth;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_min_version;
	int tls_session_tickets;
	long long tls_ticket_lifetime_s;
	char *state_dir;
	char *store_backend;
	char *store_dsn; /* may hold a password: never logged */
	char *kek_file;
	char *http_listen;
	/* connection caps and the request deadline (connguard.h, httpd.c) */
	long long max_per_source;
	long long http_max_connections;
	long long http_max_per_source;
	long long http_request_timeout_ms;
	int log_json;
	int log_debug;
	long long refusal_interval_s;
	long long refusal_max_sources;
	long long audit_verify_jobs;
	long long health_interval_ms;
} daemon_conf_t;

/* Listeners: the top-level listen, client_auth and tls.* keys are the first
 * ("default"); the optional `listeners` array adds more, each with its own
 * address, certificate, client-auth mode, accepted roles and messages. */
#define DAEMON_LISTENERS_MAX 4
typedef struct daemon_lconf {
	char *name;
	char *listen;
	char *client_auth; /* require, optional, none */
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_min_version;
	char *roles;    /* role names, comma-separated; "": every role */
	char *messages; /* message names, comma-separated; "": all of the first's */
	int session_tickets;
} daemon_lconf_t;

typedef struct daemon_listener {
	daemon_lconf_t conf; /* the first's points into daemon_conf_t */
	cfg_table_t tab;
	uint32_t accept_roles; /* 0: every role */
	int serve_all;
	uint8_t serve[MSG_IX_COUNT];
	tls_holder_t tls; /* its context, swapped on SIGHUP */
	srv_t *srv;
} daemon_listener_t;

struct daemon {
	const daemon_def_t *def;
	const char *conf_file;
	daemon_conf_t conf;
	cfg_table_t tabs[2];
	cfg_opt_t *common_opts; /* with this daemon's defaults */
	char *defaults[8];      /* strings those defaults point at */
	struct event_base *base;
	sealed_kek_t *kek;
	uint8_t audit_key[AUDIT_KEY_LEN];
	store_t *store;
	tls_holder_t client_tls; /* this daemon as a client of its peers (peer_conf_t.tls) */
	srv_t *srv;              /* the first listener's: listeners[0].srv */
	daemon_listener_t listeners[DAEMON_LISTENERS_MAX];
	int nlisteners;
	cfg_opt_t *listener_opts; /* with the top-level tls.* as defaults */
	struct evhttp *http;
	struct httpd_guard *http_guard; /* its connections, caps and deadlines */
	/* HTTPS on the HTTP listener: a daemon's init sets these from its own
	 * options; httpd_start makes the context once (tls.cert, tls.key and,
	 * for client certificates, tls.ca) */
	int http_tls;
	int http_client_auth; /* TLS_CLIENT_AUTH_* */
	SSL_CTX *http_ssl;
	httpd_route_t routes[HTTPD_ROUTES_MAX];
	int nroutes;
	struct event *sig_term, *sig_int, *sig_hup, *watchdog;
	time_t started;
	int draining;
	refusal_t *refusals;         /* anonymous refusals, summarised (refusal.h) */
	struct workpool *admin_jobs; /* ADMIN_AUDIT_VERIFY off the loops (admin.c) */
	void *priv;                  /* the daemon's own state */
	struct signer *signer;       /* when def->signer */
	struct health *health;       /* probes for /healthz, /readyz (health.h) */
};

int daemon_main(int argc, char **argv, const daemon_def_t *def);
/* The listener of that name ("default" is the first), for a daemon's init
 * to register handlers on (srv_handle); NULL when there is none.  After
 * init, every other listener also gets the first's handlers for the
 * messages its configuration lets it serve, where it has none of its own. */
srv_t *daemon_listener(daemon_t *d, const char *name);
/* For a daemon's offline subcommands (ca-authd init): loads def's
 * configuration from conf_file (NULL: defaults), runs its checks, loads the
 * KEK and opens the store with the audit table, as a start would, but
 * listens on nothing.  Undo with daemon_offline_close(), also after -1. */
int daemon_offline_open(daemon_t *d, const daemon_def_t *def, const char *conf_file, err_t *err);
void daemon_offline_close(daemon_t *d);
/* The configuration check of -t on a JSON text instead of a file (name:
 * the source in messages), for tests and tests/fuzz/fuzz_config.c: def's
 * tables with its defaults, the text, the addresses, def's checks.  Undo
 * with daemon_conf_release(), also after -1. */
int daemon_conf_text(daemon_t *d, const daemon_def_t *def, const char *text, const char *name,
                     err_t *err);
void daemon_conf_release(daemon_t *d);

/* Common handlers (admin.c); admin_stop ends their jobs (the worker
 * loops must still run). */
int admin_register(daemon_t *d, err_t *err);
void admin_stop(daemon_t *d);
/* Counts a refusal of an unauthenticated client's request in the daemon's
 * summaries (refusal_count): no log line, no write of its own. */
void daemon_refused(daemon_t *d, srv_req_t *r, const char *action, const char *reason,
                    const char *sample);
/* A peer this daemon needs: PINGed every health.interval_ms through its
 * pool on the main loop; /readyz is 503 while it does not answer.  From
 * init. */
struct peerpool;
int daemon_watch_peer(daemon_t *d, const char *name, struct peerpool *pp, err_t *err);
/* Appends to the audit chain from a store write function. */
int daemon_audit(daemon_t *d, store_conn_t *c, const char *event, const char *actor,
                 const char *detail, uint64_t *seq, err_t *err);
/* daemon_audit() with the detail formatted printf-style (cut at
 * AUDIT_FIELD_MAX), for a store write function that needs no seq. */
int daemon_auditf(daemon_t *d, store_conn_t *c, err_t *err, const char *event, const char *actor,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* For a handler whose answer waits for a store write: defers r (into
 * *deferred) and queues fn (in the writer), then done (on r's loop), both
 * with arg.  -1 when either step fails: r is answered then, and arg stays
 * the caller's to free. */
int daemon_write_deferred(daemon_t *d, srv_req_t *r, store_write_fn fn, store_done_fn done,
                          void *arg, srv_req_t **deferred);
/* Appends o, printed as JSON, as one string TLV of type tlv to a list
 * answer b, and frees o.  -1 when o would take b past budget bytes (a
 * full page simply ends) or does not print. */
int daemon_entry_put(buf_t *b, uint16_t tlv, struct cJSON *o, size_t budget);
/* For an admin "show": sql (?1 bound to id) on a reader of d's store,
 * stepped to its row; store_reset it when done.  *c gets the reader, for
 * further queries.  NULL when there is no row or the store fails: r is
 * answered then (NOT_FOUND "no <what> <id>", or the store's error). */
store_stmt_t *daemon_row_by_id(srv_req_t *r, daemon_t *d, const char *sql, const char *what,
                               const char *id, store_conn_t **c);
/* One row of a list query as a JSON object. */
typedef struct cJSON *(*daemon_row_fn)(store_stmt_t *st, void *arg);
/* Answers an admin list: sql's rows (?1 bound to limit, ?2 to text unless
 * NULL) through row as repeated tlv entries, as many as fit in budget
 * bytes; a full page simply ends. */
void daemon_list_reply(srv_req_t *r, daemon_t *d, const char *sql, int64_t limit, const char *text,
                       uint16_t tlv, size_t budget, daemon_row_fn row, void *arg);
/* The HTTP listener (httpd.c). */
int httpd_start(daemon_t *d, err_t *err);
void httpd_stop(daemon_t *d);
/* Adds a route before httpd_start (from the daemon's init); handlers run
 * on the main loop and answer before they return (the connection's
 * deadline starts again once they have).  A request with another method
 * gets 405. */
int httpd_route(daemon_t *d, const char *prefix, int methods, size_t max_body, httpd_route_fn fn,
                void *arg, err_t *err);
/* The roles of an HTTPS client's certificate (STB_R_ANONYMOUS without
 * one, or on plain HTTP), for a route that serves only some roles. */
uint32_t httpd_peer_roles(struct evhttp_request *req);
/* The client's "ip:port" into out. */
void httpd_peer_addr(struct evhttp_request *req, char *out, size_t cap);
/* Sends a complete answer. */
void httpd_reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                 const void *body, size_t len);

#endif
