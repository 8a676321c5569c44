#include "dlisten.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "proto.h"
#include "refusal.h"

const char *const dlisten_client_auth_choices[] = {"require", "optional", "none", NULL};
const char *const dlisten_tls_version_choices[] = {"1.2", "1.3", NULL};

/* One entry of the `listeners` array.  tls.* default to the top-level
 * values (filled in by dlisten_tables). */
#define LOFF(f) offsetof(daemon_lconf_t, f)
static const cfg_opt_t listener_opts[] = {
    {"name", CFG_STR, "", 0, 0, NULL, LOFF(name), "the listener's name, for logs and metrics"},
    {"listen", CFG_STR, "", 0, 0, NULL, LOFF(listen), "TLS listen address, host:port"},
    {"client_auth", CFG_STR, "require", 0, 0, dlisten_client_auth_choices, LOFF(client_auth),
     "client certificates: require, optional or none"},
    {"tls.cert", CFG_STR, "", 0, 0, NULL, LOFF(tls_cert), "certificate chain, PEM"},
    {"tls.key", CFG_STR, "", 0, 0, NULL, LOFF(tls_key), "private key, PEM"},
    {"tls.ca", CFG_STR, "", 0, 0, NULL, LOFF(tls_ca), "trust anchors for clients, PEM"},
    {"tls.min_version", CFG_STR, "", 0, 0, dlisten_tls_version_choices, LOFF(tls_min_version),
     "lowest TLS version accepted"},
    {"tls.session_tickets", CFG_BOOL, "", 0, 0, NULL, LOFF(session_tickets),
     "issue TLS 1.3 session tickets (resumption)"},
    {"roles", CFG_STR, "", 0, 0, NULL, LOFF(roles),
     "peer roles served, comma-separated (others are FORBIDDEN); empty: every role"},
    {"messages", CFG_STR, "", 0, 0, NULL, LOFF(messages),
     "messages served, comma-separated; empty: all the first listener serves"},
};
#define NLISTENER         (sizeof(listener_opts) / sizeof(listener_opts[0]))
#define LISTENER_NAME_MAX 32

/* The keys of a `listeners` entry, indented apart from the top-level keys. */
void
dlisten_help(void)
{
	static const char *const tn[] = {"string", "integer", "boolean", "string"};

	printf("listeners: up to %d more listeners, an array of objects with:\n",
	       DAEMON_LISTENERS_MAX - 1);
	for (size_t i = 0; i < NLISTENER; i++) {
		const cfg_opt_t *o = &listener_opts[i];
		printf("    %-26s %-8s default %s\n        %s\n", o->name, tn[o->type],
		       strncmp(o->name, "tls.", 4) == 0 ? "the top-level one"
		       : *o->def != '\0'                ? o->def
		                                        : "\"\"",
		       o->help);
	}
}

/* The listener table with this daemon's top-level tls.* as defaults (after
 * the top-level keys are loaded). */
static int
dlisten_tables(daemon_t *d)
{
	free(d->listener_opts);
	if ((d->listener_opts = malloc(sizeof(listener_opts))) == NULL)
		return -1;
	memcpy(d->listener_opts, listener_opts, sizeof(listener_opts));
	for (size_t i = 0; i < NLISTENER; i++) {
		cfg_opt_t *o = &d->listener_opts[i];
		if (strcmp(o->name, "tls.cert") == 0)
			o->def = d->conf.tls_cert;
		else if (strcmp(o->name, "tls.key") == 0)
			o->def = d->conf.tls_key;
		else if (strcmp(o->name, "tls.ca") == 0)
			o->def = d->conf.tls_ca;
		else if (strcmp(o->name, "tls.min_version") == 0)
			o->def = d->conf.tls_min_version;
		else if (strcmp(o->name, "tls.session_tickets") == 0)
			o->def = d->conf.tls_session_tickets ? "true" : "false";
	}
	return 0;
}

/* The first listener is the top-level keys. */
static void
dlisten_first(daemon_t *d)
{
	daemon_listener_t *l = &d->listeners[0];

	l->conf = (daemon_lconf_t){"default",
	                           d->conf.listen,
	                           d->conf.client_auth,
	                           d->conf.tls_cert,
	                           d->conf.tls_key,
	                           d->conf.tls_ca,
	                           d->conf.tls_min_version,
	                           "",
	                           "",
	                           d->conf.tls_session_tickets};
	l->accept_roles = 0;
	l->serve_all = 1;
	if (d->nlisteners < 1)
		d->nlisteners = 1;
}

/* Each name of a comma-separated list through fn; -1 (err set) at the
 * first fn refuses. */
static int
dlisten_each_name(const char *list, const char *src, const char *key,
                  int (*fn)(daemon_listener_t *l, const char *name, size_t len),
                  daemon_listener_t *l, err_t *err)
{
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		const char *q = p;
		size_t n = len;
		while (n > 0 && *q == ' ')
			q++, n--;
		while (n > 0 && q[n - 1] == ' ')
			n--;
		if (n == 0 || fn(l, q, n) == -1)
			return err_set(err, STB_BAD_REQUEST, "%s: %s: '%.*s' is not known", src,
			               key, (int)(n > 64 ? 64 : n), q);
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int
dlisten_add_role(daemon_listener_t *l, const char *name, size_t len)
{
	uint32_t bit = proto_role_by_name(name, len);

	if (bit == 0)
		return -1;
	l->accept_roles |= bit;
	return 0;
}

static int
dlisten_add_message(daemon_listener_t *l, const char *name, size_t len)
{
	for (int m = 0; m < MSG_IX_COUNT; m++)
		if (strlen(proto_msgs[m].name) == len &&
		    memcmp(proto_msgs[m].name, name, len) == 0) {
			l->serve[m] = 1;
			return 0;
		}
	return -1;
}

static int
dlisten_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LISTENER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return 0;
	return 1;
}

/* What the table cannot say about entry i (1 and up). */
static int
dlisten_check(daemon_t *d, int i, const char *src, err_t *err)
{
	daemon_listener_t *l = &d->listeners[i];
	struct sockaddr_storage ss;
	int sl = sizeof(ss);

	if (!dlisten_name_valid(l->conf.name))
		return err_set(err, STB_BAD_REQUEST,
		               "%s: name: '%s' must be 1 to %d of a-z, 0-9, - and _", src,
		               l->conf.name, LISTENER_NAME_MAX);
	for (int j = 0; j < i; j++)
		if (strcmp(d->listeners[j].conf.name, l->conf.name) == 0)
			return err_set(err, STB_BAD_REQUEST, "%s: name: '%s' is taken%s", src,
			               l->conf.name, j == 0 ? " (by the top-level listener)" : "");
	if (*l->conf.listen == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s: listen is required", src);
	if (srv_parse_addr(l->conf.listen, &ss, &sl) == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: listen: '%s' is not IP:port", src,
		               l->conf.listen);
	for (int j = 0; j < i; j++)
		if (strcmp(d->listeners[j].conf.listen, l->conf.listen) == 0)
			return err_set(err, STB_BAD_REQUEST, "%s: listen: %s is used twice", src,
			               l->conf.listen);
	if (*l->conf.tls_cert == '\0' || *l->conf.tls_key == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s: tls.cert and tls.key are required", src);
	if (strcmp(l->conf.client_auth, "none") != 0 && *l->conf.tls_ca == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s: client_auth %s needs tls.ca", src,
		               l->conf.client_auth);
	l->accept_roles = 0;
	memset(l->serve, 0, sizeof(l->serve));
	if (dlisten_each_name(l->conf.roles, src, "roles", dlisten_add_role, l, err) == -1 ||
	    dlisten_each_name(l->conf.messages, src, "messages", dlisten_add_message, l, err) == -1)
		return -1;
	l->serve_all = *l->conf.messages == '\0';
	return 0;
}

/* The `listeners` array: entries after the first listener. */
static int
dlisten_entries(daemon_t *d, const cJSON *arr, const char *file, err_t *err)
{
	const cJSON *it;
	int i = 0;

	if (!cJSON_IsArray(arr))
		return err_set(err, STB_BAD_REQUEST, "%s: listeners must be an array of objects",
		               file);
	if (cJSON_GetArraySize(arr) > DAEMON_LISTENERS_MAX - 1)
		return err_set(err, STB_BAD_REQUEST,
		               "%s: listeners: at most %d entries (the top-level listen is the "
		               "first of %d listeners)",
		               file, DAEMON_LISTENERS_MAX - 1, DAEMON_LISTENERS_MAX);
	if (dlisten_tables(d) == -1)
		return err_set(err, STB_INTERNAL, "out of memory");
	cJSON_ArrayForEach(it, arr)
	{
		daemon_listener_t *l = &d->listeners[1 + i];
		char src[4200];
		char *text;
		int rc;

		snprintf(src, sizeof(src), "%s: listeners[%d]", file, i);
		if (!cJSON_IsObject(it))
			return err_set(err, STB_BAD_REQUEST, "%s must be an object", src);
		if ((text = cJSON_PrintUnformatted(it)) == NULL)
			return err_set(err, STB_INTERNAL, "out of memory");
		l->tab = (cfg_table_t){d->listener_opts, NLISTENER, &l->conf};
		d->nlisteners = 2 + i; /* its strings are freed with the rest */
		rc = cfg_load_text(&l->tab, 1, text, src, err);
		free(text);
		if (rc == -1 || dlisten_check(d, 1 + i, src, err) == -1)
			return -1;
		i++;
	}
	return 0;
}

/* The file's text (read once: it may be a pipe); NULL with err set when it
 * is too large, NULL with err clear when it cannot be opened (cfg_load then
 * says why, as it always has). */
static char *
dlisten_read_file(const char *file, err_t *err)
{
	FILE *f = fopen(file, "r");
	size_t cap = 1024 * 1024, n;
	char *text;

	err_clear(err);
	if (f == NULL)
		return NULL;
	if ((text = malloc(cap + 1)) == NULL) {
		fclose(f);
		err_set(err, STB_INTERNAL, "%s: out of memory", file);
		return NULL;
	}
	n = fread(text, 1, cap + 1, f);
	fclose(f);
	if (n > cap) {
		free(text);
		err_set(err, STB_TOO_LARGE, "%s: larger than %zu bytes", file, cap);
		return NULL;
	}
	text[n] = '\0';
	return text;
}

/* The top-level keys through the tables, as before; a `listeners` array is
 * taken out first and loaded entry by entry. */
int
dlisten_load_text(daemon_t *d, const char *text, const char *name, err_t *err)
{
	char *rest = NULL;
	cJSON *root, *arr = NULL;
	int rc;

	root = text != NULL ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;
	if (cJSON_IsObject(root))
		arr = cJSON_DetachItemFromObjectCaseSensitive(root, "listeners");
	if (arr != NULL && cJSON_GetObjectItemCaseSensitive(root, "listeners") != NULL) {
		cJSON_Delete(root);
		cJSON_Delete(arr);
		return err_set(err, STB_BAD_REQUEST, "%s: key 'listeners' appears twice", name);
	}
	if (arr == NULL) {
		/* syntax errors too: cfg_load_text says on which line */
		rc = cfg_load_text(d->tabs, 2, text, name, err);
	} else if ((rest = cJSON_PrintUnformatted(root)) == NULL) {
		rc = err_set(err, STB_INTERNAL, "out of memory");
	} else {
		rc = cfg_load_text(d->tabs, 2, rest, name, err);
		free(rest);
	}
	cJSON_Delete(root);
	if (rc == 0) {
		dlisten_first(d);
		if (arr != NULL)
			rc = dlisten_entries(d, arr, name, err);
	}
	cJSON_Delete(arr);
	return rc;
}

int
dlisten_load(daemon_t *d, err_t *err)
{
	const char *file = d->conf_file;
	char *text = NULL;
	int rc;

	if (file != NULL && (text = dlisten_read_file(file, err)) == NULL)
		return err->status != STB_OK ? -1 : cfg_load(d->tabs, 2, file, err);
	rc = dlisten_load_text(d, text, file != NULL ? file : "default", err);
	free(text);
	return rc;
}

static int
dlisten_client_auth_mode(const char *v)
{
	if (strcmp(v, "require") == 0)
		return TLS_CLIENT_AUTH_REQUIRE;
	return strcmp(v, "none") == 0 ? TLS_CLIENT_AUTH_NONE : TLS_CLIENT_AUTH_OPTIONAL;
}

int
dlisten_tls_ctx(const daemon_t *d, const daemon_listener_t *l, SSL_CTX **out, err_t *err)
{
	const daemon_lconf_t *lc = &l->conf;
	tls_conf_t tc = {.cert = lc->tls_cert,
	                 .key = lc->tls_key,
	                 .ca = lc->tls_ca,
	                 .client_auth = dlisten_client_auth_mode(lc->client_auth),
	                 .tls13_only = strcmp(lc->tls_min_version, "1.3") == 0,
	                 .session_tickets = lc->session_tickets,
	                 .ticket_lifetime_s = (long)d->conf.tls_ticket_lifetime_s};

	*out = tls_server_ctx_new(&tc, err);
	if (*out == NULL && strcmp(lc->name, "default") != 0) {
		char m[sizeof(err->msg)];
		snprintf(m, sizeof(m), "%s", err->msg);
		err_set(err, err->status, "listener %s: %s", lc->name, m);
	}
	return *out == NULL ? -1 : 0;
}

static srv_conf_t
dlisten_srv_conf(const daemon_t *d, const daemon_listener_t *l)
{
	return (srv_conf_t){l->conf.listen,
	                    (int)d->conf.workers,
	                    (uint32_t)d->conf.max_frame,
	                    (uint32_t)d->conf.max_inflight,
	                    (uint32_t)d->conf.max_connections,
	                    (int)d->conf.handshake_timeout_ms,
	                    (int)d->conf.idle_timeout_ms,
	                    (int)d->conf.frame_timeout_ms,
	                    l->conf.name,
	                    l->accept_roles,
	                    (uint32_t)d->conf.max_per_source};
}

/* A client certificate a listener refused: counted in the refusal
 * summaries with its fingerprint (one line per source per interval). */
static void
dlisten_tls_refused(srv_conn_t *c, const char *reason, const char *fingerprint, void *ctx)
{
	daemon_t *d = ctx;

	if (d->refusals != NULL)
		refusal_count(d->refusals, srv_conn_peer(c), "tls_client_cert", reason,
		              fingerprint);
}

/* Every listener's context and server; the first's srv_new makes the
 * workers the others attach to. */
int
dlisten_new(daemon_t *d, err_t *err)
{
	for (int i = 0; i < d->nlisteners; i++) {
		daemon_listener_t *l = &d->listeners[i];
		srv_conf_t sc = dlisten_srv_conf(d, l);
		SSL_CTX *ctx;

		if (dlisten_tls_ctx(d, l, &ctx, err) == -1)
			return -1;
		tls_holder_init(&l->tls, ctx);
		l->srv = i == 0 ? srv_new(&sc, &l->tls, d, err)
		                : srv_attach(d->srv, &sc, &l->tls, d, err);
		if (l->srv == NULL)
			return -1;
		if (i == 0)
			d->srv = l->srv;
	}
	return 0;
}

srv_t *
daemon_listener(daemon_t *d, const char *name)
{
	for (int i = 0; i < d->nlisteners; i++)
		if (strcmp(d->listeners[i].conf.name, name) == 0)
			return d->listeners[i].srv;
	return NULL;
}

int
dlisten_start(daemon_t *d, err_t *err)
{
	for (int i = 1; i < d->nlisteners; i++) {
		daemon_listener_t *l = &d->listeners[i];
		srv_inherit(l->srv, d->srv, l->serve_all ? NULL : l->serve);
	}
	for (int i = 0; i < d->nlisteners; i++)
		srv_on_tls_refused(d->listeners[i].srv, dlisten_tls_refused);
	for (int i = 0; i < d->nlisteners; i++)
		if (srv_start(d->listeners[i].srv, d->base, err) == -1)
			return -1;
	return 0;
}

void
dlisten_log(const daemon_t *d)
{
	for (int i = 1; i < d->nlisteners; i++)
		log_info("listener %s on %s (client_auth %s)", d->listeners[i].conf.name,
		         srv_bound(d->listeners[i].srv), d->listeners[i].conf.client_auth);
}

int
dlisten_reload(daemon_t *d)
{
	int failed = 0;

	for (int i = 0; i < d->nlisteners; i++) {
		daemon_listener_t *l = &d->listeners[i];
		SSL_CTX *ctx;
		err_t err;

		if (l->srv == NULL)
			continue;
		if (dlisten_tls_ctx(d, l, &ctx, &err) == -1) {
			log_warnx("reload: keeping the old certificates: %s", err.msg);
			failed++;
			continue;
		}
		tls_holder_swap(&l->tls, ctx);
	}
	return failed;
}

void
dlisten_free(daemon_t *d)
{
	srv_free(d->srv); /* and the listeners attached to it */
	d->srv = NULL;
	for (int i = 0; i < d->nlisteners; i++) {
		d->listeners[i].srv = NULL;
		if (d->listeners[i].tls.ctx != NULL)
			tls_holder_destroy(&d->listeners[i].tls);
	}
}

void
dlisten_conf_free(daemon_t *d)
{
	for (int i = 1; i < d->nlisteners; i++)
		cfg_free(&d->listeners[i].tab, 1);
	d->nlisteners = 0;
	free(d->listener_opts);
	d->listener_opts = NULL;
}
