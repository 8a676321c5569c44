/* keymgmtd: key management platform: import, register, bind, push to app platforms. */
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km.h"
#include "log.h"
#include "x509.h"

km_conf_t km_conf;

static const char *const km_client_auth_choices[] = {"none", "optional", "require", NULL};

#define OFF(f) offsetof(km_conf_t, f)
static const cfg_opt_t km_opts[] = {
    {"platforms_file", CFG_STR, "", 0, 0, NULL, OFF(platforms_file),
     "JSON file of the app platforms: {app_id: {address, ca, cert}}; empty: none"},
    {"sync_window_s", CFG_INT, "300", 1, 86400, NULL, OFF(sync_window_s),
     "a key sync's timestamp may be this far from now (EXPIRED beyond)"},
    {"import.cert", CFG_STR, "", 0, 0, NULL, OFF(import_cert),
     "PEM certificate key files are encrypted to (CMS); empty: no CMS imports"},
    {"import.key", CFG_STR, "", 0, 0, NULL, OFF(import_key), "PEM private key of import.cert"},
    {"push.window", CFG_INT, "256", 1, OUTBOX_WINDOW_MAX, NULL, OFF(push_window),
     "pushes in flight at once"},
    {"push.max_tries", CFG_INT, "10", 1, 1000, NULL, OFF(push_max_tries),
     "delivery attempts before a push is failed"},
    {"push.backoff_min_ms", CFG_INT, "1000", 1, 3600000, NULL, OFF(push_backoff_min_ms),
     "first retry delay of a push"},
    {"push.backoff_max_ms", CFG_INT, "300000", 1, 86400000, NULL, OFF(push_backoff_max_ms),
     "longest retry delay of a push"},
    {"push.timeout_ms", CFG_INT, "10000", 10, 600000, NULL, OFF(push_timeout_ms),
     "a platform must acknowledge a push within this"},
    {"push.poll_ms", CFG_INT, "1000", 10, 60000, NULL, OFF(push_poll_ms),
     "how often due pushes are looked for (a bind also looks at once)"},
    {"push.batch", CFG_INT, "64", 1, KM_BATCH_MAX, NULL, OFF(push_batch),
     "keys of one platform sent in one KEY_PUSH_BATCH (one envelope, one acknowledgement)"},
    {"http_tls", CFG_BOOL, "false", 0, 0, NULL, OFF(http_tls),
     "the HTTP listener speaks HTTPS (tls.cert, tls.key): needed for Kannel's callback"},
    {"http_client_auth", CFG_STR, "require", 0, 0, km_client_auth_choices, OFF(http_client_auth),
     "HTTPS client certificates against tls.ca: none, optional or require (the Kannel route "
     "always wants role sms-gw)"},
    LOCKOUT_OPTS(OFF(auth)),
};

static const char km_schema[] =
    "CREATE TABLE keys("
    " key_id TEXT PRIMARY KEY,"
    " sealed BLOB NOT NULL,"
    " terminal_id TEXT, app_hint TEXT,"
    " imported_at INTEGER NOT NULL);"
    "CREATE INDEX keys_terminal ON keys(terminal_id);"
    "CREATE TABLE services("
    " mdn TEXT NOT NULL, app_id TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(mdn, app_id));"
    "CREATE TABLE bindings("
    " key_id TEXT NOT NULL, app_id TEXT NOT NULL, mdn TEXT NOT NULL,"
    " push_id INTEGER NOT NULL, bound_at INTEGER NOT NULL,"
    " PRIMARY KEY(key_id, app_id));"
    "CREATE INDEX bindings_mdn ON bindings(mdn);"
    "CREATE INDEX bindings_push ON bindings(push_id);"
    /* accepted key sync MACs until their timestamp leaves the window */
    "CREATE TABLE sync_macs(mac BLOB PRIMARY KEY, expires INTEGER NOT NULL);"
    "CREATE INDEX sync_macs_expires ON sync_macs(expires);";
/* The same in PostgreSQL DDL (store.h). */
static const char km_schema_pg[] =
    "CREATE TABLE keys("
    " key_id TEXT PRIMARY KEY,"
    " sealed BYTEA NOT NULL,"
    " terminal_id TEXT, app_hint TEXT,"
    " imported_at BIGINT NOT NULL);"
    "CREATE INDEX keys_terminal ON keys(terminal_id);"
    "CREATE TABLE services("
    " mdn TEXT NOT NULL, app_id TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " PRIMARY KEY(mdn, app_id));"
    "CREATE TABLE bindings("
    " key_id TEXT NOT NULL, app_id TEXT NOT NULL, mdn TEXT NOT NULL,"
    " push_id BIGINT NOT NULL, bound_at BIGINT NOT NULL,"
    " PRIMARY KEY(key_id, app_id));"
    "CREATE INDEX bindings_mdn ON bindings(mdn);"
    "CREATE INDEX bindings_push ON bindings(push_id);"
    /* accepted key sync MACs until their timestamp leaves the window */
    "CREATE TABLE sync_macs(mac BYTEA PRIMARY KEY, expires BIGINT NOT NULL);"
    "CREATE INDEX sync_macs_expires ON sync_macs(expires);";

static const char *const km_migrations[] = {km_schema, outbox_schema, LOCKOUT_SCHEMA};
static const char *const km_migrations_pg[] = {km_schema_pg, outbox_schema_pg, LOCKOUT_SCHEMA_PG};

int64_t
km_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
km_actor(srv_req_t *r, char *out, size_t cap)
{
	snprintf(out, cap, "%s@%s", srv_conn_subject(r->conn), srv_conn_peer(r->conn));
	return out;
}

const km_platform_t *
km_platform(const km_t *km, const char *app_id)
{
	for (int i = 0; i < km->nplat; i++)
		if (strcmp(km->plat[i].app_id, app_id) == 0)
			return &km->plat[i];
	return NULL;
}

/* ---- platforms_file ---- */

static int
km_plat_str(const cJSON *o, const char *key, char *dst, size_t cap, const char *src, err_t *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s.%s: a non-empty string is required", src,
		               key);
	if (strlen(v->valuestring) >= cap)
		return err_set(err, STB_BAD_REQUEST, "%s.%s: longer than %zu", src, key, cap - 1);
	snprintf(dst, cap, "%s", v->valuestring);
	return 0;
}

static X509 *
km_read_cert(const char *path, err_t *err)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		err_set(err, STB_NOT_FOUND, "%s: cannot open", path);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		err_set_ossl(err, STB_BAD_REQUEST, "%s: not a PEM certificate", path);
	return x;
}

int
km_platforms_load(const char *file, km_platform_t *plat, int *n, err_t *err)
{
	FILE *f;
	char *text;
	size_t len;
	cJSON *root, *it;
	int rc = -1;

	*n = 0;
	if (file == NULL || *file == '\0')
		return 0;
	if ((f = fopen(file, "r")) == NULL)
		return err_set(err, STB_NOT_FOUND, "platforms_file %s: cannot open", file);
	if ((text = malloc(1024 * 1024 + 1)) == NULL) {
		fclose(f);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	len = fread(text, 1, 1024 * 1024 + 1, f);
	fclose(f);
	if (len > 1024 * 1024) {
		free(text);
		return err_set(err, STB_TOO_LARGE, "%s: larger than 1 MiB", file);
	}
	text[len] = '\0';
	root = cJSON_ParseWithOpts(text, NULL, 1);
	free(text);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(err, STB_BAD_REQUEST, "%s: must be a JSON object {app_id: {...}}",
		               file);
	}
	cJSON_ArrayForEach(it, root)
	{
		km_platform_t *p = &plat[*n];
		char src[600];
		const cJSON *k;
		X509 *x;

		snprintf(src, sizeof src, "%s: %.300s", file, it->string);
		if (*n >= KM_PLATFORMS_MAX) {
			err_set(err, STB_BAD_REQUEST, "%s: at most %d platforms", file,
			        KM_PLATFORMS_MAX);
			goto out;
		}
		if (strlen(it->string) > STB_ID_MAX ||
		    !proto_id_valid((const uint8_t *)it->string, strlen(it->string))) {
			err_set(err, STB_BAD_REQUEST, "%s: the app_id is not an identifier", src);
			goto out;
		}
		if (!cJSON_IsObject(it)) {
			err_set(err, STB_BAD_REQUEST, "%s: must be an object", src);
			goto out;
		}
		cJSON_ArrayForEach(k, it) if (strcmp(k->string, "address") != 0 &&
		                              strcmp(k->string, "ca") != 0 &&
		                              strcmp(k->string, "cert") != 0)
		{
			err_set(err, STB_BAD_REQUEST, "%s: unknown key '%s'", src, k->string);
			goto out;
		}
		memset(p, 0, sizeof *p);
		snprintf(p->app_id, sizeof p->app_id, "%s", it->string);
		if (km_plat_str(it, "address", p->address, sizeof p->address, src, err) == -1 ||
		    km_plat_str(it, "ca", p->ca, sizeof p->ca, src, err) == -1 ||
		    km_plat_str(it, "cert", p->cert, sizeof p->cert, src, err) == -1)
			goto out;
		if ((x = km_read_cert(p->cert, err)) == NULL)
			goto out;
		X509_free(x); /* read again at start; here only checked */
		(*n)++;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static int
km_check(err_t *err)
{
	static km_platform_t plat[KM_PLATFORMS_MAX];
	int n;

	if (km_conf.push_backoff_min_ms > km_conf.push_backoff_max_ms)
		return err_set(err, STB_BAD_REQUEST,
		               "push.backoff_min_ms exceeds push.backoff_max_ms");
	if ((*km_conf.import_cert == '\0') != (*km_conf.import_key == '\0'))
		return err_set(err, STB_BAD_REQUEST, "import.cert and import.key go together");
	if (km_platforms_load(km_conf.platforms_file, plat, &n, err) == -1)
		return -1;
	return lockout_conf_check(&km_conf.auth, err);
}

/* ---- lifecycle ---- */

static int
km_import_identity(km_t *km, err_t *err)
{
	FILE *f;

	if (*km_conf.import_cert == '\0')
		return 0;
	if ((km->imp_cert = km_read_cert(km_conf.import_cert, err)) == NULL)
		return -1;
	if ((f = fopen(km_conf.import_key, "r")) == NULL)
		return err_set(err, STB_NOT_FOUND, "import.key %s: cannot open",
		               km_conf.import_key);
	km->imp_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (km->imp_key == NULL)
		return err_set_ossl(err, STB_BAD_REQUEST, "import.key %s: not a PEM private key",
		                    km_conf.import_key);
	if (X509_check_private_key(km->imp_cert, km->imp_key) != 1)
		return err_set_ossl(err, STB_BAD_REQUEST, "import.key does not match import.cert");
	return 0;
}

static int
km_platforms_start(km_t *km, err_t *err)
{
	if (km_platforms_load(km_conf.platforms_file, km->plat, &km->nplat, err) == -1)
		return -1;
	for (int i = 0; i < km->nplat; i++) {
		km_platform_t *p = &km->plat[i];
		tls_conf_t tc = {.cert = km->d->conf.tls_cert,
		                 .key = km->d->conf.tls_key,
		                 .ca = p->ca,
		                 .tls13_only = 1};
		peerpool_conf_t pc = {.name = p->app_id,
		                      .addr = p->address,
		                      .expect_roles = STB_R_APP_PLATFORM,
		                      .timeout_ms = (int)km_conf.push_timeout_ms,
		                      .backoff_min_ms = 100,
		                      .backoff_max_ms = 5000,
		                      .tls = &p->tls};
		SSL_CTX *ctx;

		if ((p->enc_cert = km_read_cert(p->cert, err)) == NULL)
			return -1;
		if ((ctx = tls_client_ctx_new(&tc, err)) == NULL)
			return -1;
		tls_holder_init(&p->tls, ctx);
		if ((p->pool = peerpool_new(&pc, err)) == NULL)
			return -1;
	}
	return 0;
}

static int
km_metrics(daemon_t *d, buf_t *out)
{
	return km_push_metrics(d->priv, out);
}

static void
km_flush_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	km_push_flush(arg);
}

static int
km_init(daemon_t *d, err_t *err)
{
	km_t *km;
	store_conn_t *c;
	outbox_conf_t oc = {0};

	if ((km = calloc(1, sizeof(*km))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	km->d = d;
	km->conf = &km_conf;
	d->priv = km;
	d->http_tls = km_conf.http_tls;
	d->http_client_auth =
	    strcmp(km_conf.http_client_auth, "require") == 0    ? TLS_CLIENT_AUTH_REQUIRE
	    : strcmp(km_conf.http_client_auth, "optional") == 0 ? TLS_CLIENT_AUTH_OPTIONAL
	                                                        : TLS_CLIENT_AUTH_NONE;
	if (km_import_identity(km, err) == -1 || km_platforms_start(km, err) == -1)
		return -1;
	if ((km->lk = lockout_new(&km_conf.auth, err)) == NULL ||
	    (c = store_reader(d->store, err)) == NULL ||
	    lockout_load(km->lk, c, (int64_t)time(NULL), err) == -1)
		return -1;
	if ((km->main_mb = mbox_new(d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((km->flush_ev = event_new(d->base, -1, 0, km_flush_fire, km)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	buf_init(&km->dummy_sealed, 256);
	if (RAND_bytes(km->dummy_key, sizeof km->dummy_key) != 1 ||
	    sealed_seal(d->kek, "", 0, km->dummy_key, sizeof km->dummy_key, &km->dummy_sealed,
	                err) == -1)
		return err_set(err, STB_INTERNAL, "cannot make the unknown key_id's dummy key");
	oc.name = "key_push";
	oc.window = (int)km_conf.push_window;
	oc.max_tries = (int)km_conf.push_max_tries;
	oc.backoff_min_ms = (int)km_conf.push_backoff_min_ms;
	oc.backoff_max_ms = (int)km_conf.push_backoff_max_ms;
	oc.lease_ms = (int)km_conf.push_timeout_ms * 2 + 1000;
	oc.poll_ms = (int)km_conf.push_poll_ms;
	oc.send = km_push_send;
	oc.send_arg = km;
	oc.recorded = km_push_recorded;
	oc.recorded_arg = km;
	if ((km->ob = outbox_new(d->store, d->base, km->main_mb, &oc, err)) == NULL ||
	    outbox_start(km->ob, err) == -1)
		return -1;
	km_import_register(d);
	km_sync_register(d);
	km_admin_register(d);
	return km_http_register(d, err);
}

static void
km_fini(daemon_t *d)
{
	km_t *km = d->priv;

	if (km == NULL)
		return;
	outbox_stop(km->ob, 2000);
	outbox_free(km->ob);
	if (km->flush_ev != NULL)
		event_free(km->flush_ev);
	OPENSSL_cleanse(km->dummy_key, sizeof km->dummy_key);
	buf_free(&km->dummy_sealed);
	for (int i = 0; i < km->nplat; i++) {
		peerpool_free(km->plat[i].pool);
		X509_free(km->plat[i].enc_cert);
		if (km->plat[i].tls.ctx != NULL)
			tls_holder_destroy(&km->plat[i].tls);
	}
	lockout_free(km->lk);
	X509_free(km->imp_cert);
	EVP_PKEY_free(km->imp_key);
	if (km->main_mb != NULL)
		mbox_free(km->main_mb);
	free(km);
	d->priv = NULL;
}

static const daemon_def_t keymgmtd_def = {
    .name = "keymgmtd",
    .role = STB_R_KEYMGMTD,
    .listen = "127.0.0.1:7105",
    .http_listen = "127.0.0.1:9105",
    .client_auth = "optional",
    .opts = km_opts,
    .nopts = sizeof(km_opts) / sizeof(km_opts[0]),
    .conf = &km_conf,
    .migrations = km_migrations,
    .nmigrations = sizeof(km_migrations) / sizeof(km_migrations[0]),
    .pg_migrations = km_migrations_pg,
    .npg_migrations = sizeof(km_migrations_pg) / sizeof(km_migrations_pg[0]),
    .check = km_check,
    .init = km_init,
    .fini = km_fini,
    .metrics = km_metrics,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &keymgmtd_def);
}
