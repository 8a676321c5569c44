/* Helpers shared by the unit tests: temporary directories, event loops,
 * a test PKI. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbox.h"
#include "testutil.h"

char tu_dir[TU_DIR_MAX];

int
tu_mkdtemp(char *dir, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(dir, size, "%s/stb-%s-XXXXXX", tmp ? tmp : "/tmp",
	                 program_invocation_short_name);

	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
tu_rmtree(const char *path)
{
	return nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
tu_setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(tu_dir, sizeof(tu_dir));
}

int
tu_teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tu_dir);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	tu_guard_t *g = arg;

	(void)fd;
	(void)what;
	g->fired = 1;
	event_base_loopbreak(event_get_base(g->ev));
}

void
tu_guard_start(tu_guard_t *g, struct event_base *base, int sec)
{
	struct timeval tv = {sec, 0};

	g->fired = 0;
	assert_non_null(g->ev = event_new(base, -1, 0, on_guard, g));
	assert_int_equal(event_add(g->ev, &tv), 0);
}

void
tu_guard_free(tu_guard_t *g)
{
	event_free(g->ev);
}

void *
tu_loop_main(void *base)
{
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* ---- test PKI ---- */

EVP_PKEY *
tu_p256(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void
tu_cert_ext(X509 *x, X509 *issuer, const char *pair)
{
	char name[64];
	const char *eq = strchr(pair, '=');
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	assert_non_null(eq);
	assert_true((size_t)(eq - pair) < sizeof(name));
	memcpy(name, pair, (size_t)(eq - pair));
	name[eq - pair] = '\0';
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf(NULL, &ctx, name, eq + 1);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

X509 *
tu_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long nb_off, long na_off,
        const char *const *exts)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn;

	assert_non_null(x);
	assert_non_null(name);
	assert_int_equal(RAND_bytes(serial, sizeof(serial)), 1);
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	assert_non_null(bn);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn, -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb_off));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na_off));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	for (size_t i = 0; exts != NULL && exts[i] != NULL; i++)
		tu_cert_ext(x, issuer, exts[i]);
	assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

void
tu_write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
}

void
tu_write_key(const char *path, EVP_PKEY *key)
{
	/* 0600: daemons refuse a key others can read */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
}

/* ---- the TLS tests' CA and role certificates ---- */

static EVP_PKEY *pki_key;
static X509 *pki_ca;

const char *
tu_pki_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
	return out;
}

int
tu_pki_ca(const char *dir)
{
	static const char *const exts[] = {"basicConstraints=critical,CA:TRUE",
	                                   "keyUsage=critical,keyCertSign,cRLSign",
	                                   "subjectKeyIdentifier=hash", NULL};
	char path[512];

	tu_pki_free();
	pki_key = tu_p256();
	pki_ca = tu_cert("test CA", pki_key, NULL, NULL, -3600, 86400, exts);
	tu_write_cert(tu_pki_path(path, sizeof(path), dir, "ca.crt"), pki_ca);
	return 0;
}

int
tu_pki_leaf(const char *dir, const char *name, const char *role)
{
	char san[256], file[128], path[512];
	const char *const exts[] = {"basicConstraints=CA:FALSE", san,
	                            "authorityKeyIdentifier=keyid", NULL};
	EVP_PKEY *key;
	X509 *x;
	int n;

	assert_non_null(pki_ca);
	n = snprintf(san, sizeof(san), "subjectAltName=DNS:localhost,IP:127.0.0.1%s%s",
	             role != NULL ? ",URI:urn:stbcred:role:" : "", role != NULL ? role : "");
	assert_true(n > 0 && (size_t)n < sizeof(san));
	key = tu_p256();
	x = tu_cert(name, key, pki_ca, pki_key, -3600, 86400, exts);
	snprintf(file, sizeof(file), "%s.crt", name);
	tu_write_cert(tu_pki_path(path, sizeof(path), dir, file), x);
	snprintf(file, sizeof(file), "%s.key", name);
	tu_write_key(tu_pki_path(path, sizeof(path), dir, file), key);
	X509_free(x);
	EVP_PKEY_free(key);
	return 0;
}

void
tu_pki_free(void)
{
	X509_free(pki_ca);
	EVP_PKEY_free(pki_key);
	pki_ca = NULL;
	pki_key = NULL;
}

void
tu_loop_start(tu_loop_t *l)
{
	assert_non_null(l->base = event_base_new());
	assert_non_null(l->mb = mbox_new(l->base));
	assert_int_equal(pthread_create(&l->th, NULL, tu_loop_main, l->base), 0);
}

static void
tu_loop_break(void *arg)
{
	event_base_loopbreak(arg);
}

void
tu_loop_stop(tu_loop_t *l)
{
	mbox_post(l->mb, tu_loop_break, l->base);
	pthread_join(l->th, NULL);
	mbox_free(l->mb);
	event_base_free(l->base);
}

/* ---- the store under test ---- */

enum store_backend
tu_store_backend(void)
{
	const char *b = getenv("STB_TEST_STORE");

	return b != NULL && strcmp(b, "postgresql") == 0 ? STORE_PG : STORE_SQLITE;
}

/* The databases tu_store_where made, dropped at exit. */
#define TU_PG_DBS_MAX 256
static char tu_pg_dbs[TU_PG_DBS_MAX][48];
static int tu_pg_ndbs;
static char tu_pg_port[16];

/* The fixture's port from the STB_PG_ENV file (STB_PG_PORT=...). */
static const char *
tu_pg_server_port(void)
{
	const char *f = getenv("STB_PG_ENV");
	char line[256];
	FILE *fp;

	if (tu_pg_port[0] != '\0')
		return tu_pg_port;
	if (f == NULL || (fp = fopen(f, "r")) == NULL)
		fail_msg("STB_PG_ENV: no env file of the pg_server fixture (%s)", f ? f : "unset");
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "STB_PG_PORT=", 12) == 0)
			snprintf(tu_pg_port, sizeof(tu_pg_port), "%.*s",
			         (int)strcspn(line + 12, "\n"), line + 12);
	fclose(fp);
	if (tu_pg_port[0] == '\0')
		fail_msg("%s: no STB_PG_PORT", f);
	return tu_pg_port;
}

/* Runs sql on the server's postgres database; 0, or -1 with the reason
 * printed. */
static int
tu_pg_admin(const char *sql)
{
	char dsn[128];
	PGconn *pg;
	PGresult *r;
	int rc = -1;

	snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%s user=stbtest dbname=postgres",
	         tu_pg_server_port());
	pg = PQconnectdb(dsn);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "tu: %s: %s", dsn, PQerrorMessage(pg));
	} else {
		r = PQexec(pg, sql);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			rc = 0;
		else
			fprintf(stderr, "tu: %s: %s", sql, PQerrorMessage(pg));
		PQclear(r);
	}
	PQfinish(pg);
	return rc;
}

static void
tu_pg_drop_all(void)
{
	char sql[96];

	for (int i = 0; i < tu_pg_ndbs; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %.47s WITH (FORCE)",
		         tu_pg_dbs[i]);
		(void)tu_pg_admin(sql);
	}
	tu_pg_ndbs = 0;
}

const char *
tu_store_where(char *out, size_t size, const char *dir, const char *name)
{
	char sql[96];
	char *db;

	if (tu_store_backend() == STORE_SQLITE) {
		if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size)
			fail_msg("tu_store_where: %s/%s too long", dir, name);
		return out;
	}
	if (tu_pg_ndbs == TU_PG_DBS_MAX)
		fail_msg("tu_store_where: more than %d databases", TU_PG_DBS_MAX);
	if (tu_pg_ndbs == 0)
		atexit(tu_pg_drop_all);
	db = tu_pg_dbs[tu_pg_ndbs];
	snprintf(db, sizeof(tu_pg_dbs[0]), "tu_%ld_%d", (long)getpid(), tu_pg_ndbs);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %.47s", db);
	if (tu_pg_admin(sql) != 0)
		fail_msg("tu_store_where: cannot create database %s", db);
	tu_pg_ndbs++;
	if ((size_t)snprintf(out, size, "host=127.0.0.1 port=%s user=stbtest dbname=%s",
	                     tu_pg_server_port(), db) >= size)
		fail_msg("tu_store_where: DSN too long");
	return out;
}

store_t *
tu_store_open(const char *where, const char *const *migs, const char *const *migs_pg, int n,
              err_t *err)
{
	enum store_backend be = tu_store_backend();

	return store_open_be(be, where, be == STORE_PG ? migs_pg : migs, n, err);
}

/* One integer from the first row of sql (a literal) on this thread's
 * reader, with text parameter 1 bound to p when not NULL; -1 on error. */
static long long
tu_store_int(store_t *s, const char *sql, const char *p)
{
	store_conn_t *c;
	store_stmt_t *st;
	long long v = -1;
	err_t err;

	if ((c = store_reader(s, &err)) == NULL || (st = store_stmt(c, sql, &err)) == NULL)
		return -1;
	if (p != NULL)
		store_bind_str(st, 1, p);
	if (store_step(st, &err) == STORE_ROW)
		v = store_col_int64(st, 0);
	store_reset(st);
	return v;
}

long long
tu_store_version(store_t *s)
{
	if (store_get_backend(s) == STORE_PG)
		return tu_store_int(s, "SELECT COALESCE(max(version), 0) FROM stb_migrations",
		                    NULL);
	return tu_store_int(s, "PRAGMA user_version", NULL);
}

int
tu_store_has_table(store_t *s, const char *name)
{
	long long n;

	if (store_get_backend(s) == STORE_PG)
		n = tu_store_int(s,
		                 "SELECT count(*) FROM information_schema.tables"
		                 " WHERE table_schema = current_schema() AND table_name = ?1",
		                 name);
	else
		n = tu_store_int(
		    s, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1", name);
	return n < 0 ? -1 : n > 0;
}
