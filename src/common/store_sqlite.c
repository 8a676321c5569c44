/*
 * store_sqlite: the SQLite backend of store.h.  WAL, synchronous=FULL,
 * foreign keys on, migrations by PRAGMA user_version; statements prepared
 * persistent and cached per connection.  The only file besides store_be.h's
 * users that knows SQLite.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmode.h"
#include "log.h"
#include "store_be.h"

#define STMT_CACHE 72 /* a daemon's statements, plus the writer's 6 below */
#define SQL_SHOWN  48 /* how much of a failing statement an error quotes */

struct store_stmt {
	sqlite3_stmt *st;
	const char *sql; /* the cache key: the caller's string */
	int64_t changes;
	int bind_rc; /* first failed bind since store_stmt, or SQLITE_OK */
	int bind_ix;
};

struct store_conn {
	sqlite3 *db;
	size_t nstmt;
	struct store_stmt cache[STMT_CACHE];
};

static int
conn_err(store_conn_t *c, const char *what, err_t *err)
{
	return err_set(err, STB_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(c->db));
}

store_stmt_t *
store_stmt(store_conn_t *c, const char *sql, err_t *err)
{
	struct store_stmt *s;
	sqlite3_stmt *st;

	for (size_t i = 0; i < c->nstmt; i++) {
		s = &c->cache[i];
		if (s->sql == sql) {
			sqlite3_reset(s->st);
			sqlite3_clear_bindings(s->st);
			s->bind_rc = SQLITE_OK;
			s->changes = 0;
			return s;
		}
	}
	if (c->nstmt == STMT_CACHE) {
		/* a full cache means a caller builds SQL at run time: refuse
		 * loudly */
		err_set(err, STB_INTERNAL, "store: statement cache full");
		return NULL;
	}
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		conn_err(c, "prepare", err);
		return NULL;
	}
	if (st == NULL) { /* only a comment or white space */
		err_set(err, STB_INTERNAL, "store: prepare: no statement in \"%.*s\"", SQL_SHOWN,
		        sql);
		return NULL;
	}
	s = &c->cache[c->nstmt++];
	memset(s, 0, sizeof(*s));
	s->st = st;
	s->sql = sql;
	return s;
}

static int
bind_done(store_stmt_t *s, int i, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	if (s->bind_rc == SQLITE_OK) {
		s->bind_rc = rc;
		s->bind_ix = i;
	}
	return -1;
}

int
store_bind_int64(store_stmt_t *s, int i, int64_t v)
{
	return bind_done(s, i, sqlite3_bind_int64(s->st, i, v));
}

int
store_bind_text(store_stmt_t *s, int i, const char *p, size_t len)
{
	if (p == NULL)
		return bind_done(s, i, sqlite3_bind_null(s->st, i));
	return bind_done(s, i, sqlite3_bind_text64(s->st, i, p, len, SQLITE_STATIC, SQLITE_UTF8));
}

int
store_bind_str(store_stmt_t *s, int i, const char *p)
{
	return store_bind_text(s, i, p, p != NULL ? strlen(p) : 0);
}

int
store_bind_blob(store_stmt_t *s, int i, const void *p, size_t len)
{
	if (p == NULL)
		return bind_done(s, i, sqlite3_bind_null(s->st, i));
	return bind_done(s, i, sqlite3_bind_blob64(s->st, i, p, len, SQLITE_STATIC));
}

int
store_bind_null(store_stmt_t *s, int i)
{
	return bind_done(s, i, sqlite3_bind_null(s->st, i));
}

/* The error of a failed step, then the statement reset so that it holds
 * nothing (the message is read first: a reset may replace it). */
static int
step_fail(store_stmt_t *s, err_t *err)
{
	sqlite3 *db = sqlite3_db_handle(s->st);
	int xrc = sqlite3_extended_errcode(db);

	err_set(err, STB_INTERNAL, "store: %s (in \"%.*s\")", sqlite3_errmsg(db), SQL_SHOWN,
	        s->sql);
	sqlite3_reset(s->st);
	if (xrc == SQLITE_CONSTRAINT_UNIQUE || xrc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return STORE_UNIQUE;
	return STORE_ERROR;
}

int
store_step(store_stmt_t *s, err_t *err)
{
	int rc;

	if (s->bind_rc != SQLITE_OK) {
		err_set(err, STB_INTERNAL, "store: bind ?%d: %s (in \"%.*s\")", s->bind_ix,
		        sqlite3_errstr(s->bind_rc), SQL_SHOWN, s->sql);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s->st);
	if (rc == SQLITE_ROW)
		return STORE_ROW;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes64(sqlite3_db_handle(s->st));
		return STORE_DONE;
	}
	return step_fail(s, err);
}

void
store_reset(store_stmt_t *s)
{
	sqlite3_reset(s->st);
}

int64_t
store_changes(const store_stmt_t *s)
{
	return s->changes;
}

int
store_col_count(const store_stmt_t *s)
{
	return sqlite3_data_count(s->st);
}

/* SQLite leaves a read without a row or past the last column undefined:
 * such reads are NULL here. */
static int
col_ok(store_stmt_t *s, int i)
{
	return i >= 0 && i < sqlite3_data_count(s->st);
}

int
store_col_is_null(store_stmt_t *s, int i)
{
	return !col_ok(s, i) || sqlite3_column_type(s->st, i) == SQLITE_NULL;
}

int64_t
store_col_int64(store_stmt_t *s, int i)
{
	return col_ok(s, i) ? sqlite3_column_int64(s->st, i) : 0;
}

const char *
store_col_text(store_stmt_t *s, int i, size_t *len)
{
	/* text first, then its length: the documented order */
	const unsigned char *t = col_ok(s, i) ? sqlite3_column_text(s->st, i) : NULL;
	int n = t != NULL ? sqlite3_column_bytes(s->st, i) : 0;

	if (t == NULL) { /* NULL, a bad index, or no memory to convert */
		t = (const unsigned char *)"";
		n = 0;
	}
	if (len != NULL)
		*len = (size_t)n;
	return (const char *)t;
}

const void *
store_col_blob(store_stmt_t *s, int i, size_t *len)
{
	static const uint8_t empty[1];
	const void *p = col_ok(s, i) ? sqlite3_column_blob(s->st, i) : NULL;
	int n = p != NULL ? sqlite3_column_bytes(s->st, i) : 0;

	if (p == NULL) { /* NULL, a zero-length blob, or a bad index */
		p = empty;
		n = 0;
	}
	if (len != NULL)
		*len = (size_t)n;
	return p;
}

int
store_exec(store_conn_t *c, const char *sql, err_t *err)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, STB_INTERNAL, "store: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The writer's transaction control, run once per job and batch: prepared
 * once and kept, as sqlite3_exec would parse the text every time. */
static const char *const sql_txn[] = {
    [STORE_TXN_BEGIN] = "BEGIN IMMEDIATE", [STORE_TXN_COMMIT] = "COMMIT",
    [STORE_TXN_ROLLBACK] = "ROLLBACK",     [STORE_TXN_SAVEPOINT] = "SAVEPOINT job",
    [STORE_TXN_RELEASE] = "RELEASE job",   [STORE_TXN_ROLLBACK_TO] = "ROLLBACK TO job",
};

int
store_be_txn(store_conn_t *c, enum store_be_txn what, err_t *err)
{
	store_stmt_t *s = store_stmt(c, sql_txn[what], err);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s->st);
	sqlite3_reset(s->st);
	if (rc != SQLITE_DONE)
		return conn_err(c, sql_txn[what], err);
	return 0;
}

int
store_be_txn_gone(store_conn_t *c)
{
	return sqlite3_get_autocommit(c->db);
}

/* The database 0600 (made if missing), its -wal and -shm 0600 if present. */
static int
store_private_files(const char *path, err_t *err)
{
	static const char *const sfx[] = {"-wal", "-shm"};
	char p[PATH_MAX];

	if (fmode_private_file(path, 1, err) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		int n = snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		if (n < 0 || (size_t)n >= sizeof(p))
			return err_set(err, STB_BAD_REQUEST, "store: %s: path too long", path);
		if (fmode_private_file(p, 0, err) == -1)
			return -1;
	}
	return 0;
}

store_conn_t *
store_be_open(const char *path, enum store_be_mode mode, err_t *err)
{
	store_conn_t *c = calloc(1, sizeof(*c));
	int flags = mode == STORE_BE_WRITER ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
	                                    : SQLITE_OPEN_READONLY;

	if (c == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	/* SQLite creates files 0644 less the umask, and its -wal and -shm
	 * with the database's own mode: a database made 0600 first keeps all
	 * three private (fmode.h) */
	if (mode == STORE_BE_WRITER && store_private_files(path, err) == -1) {
		free(c);
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err_set(err, STB_INTERNAL, "store: %s: %s", path,
		        c->db ? sqlite3_errmsg(c->db) : "cannot open");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 5000);
	if (store_exec(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;", err) == -1 ||
	    (mode == STORE_BE_WRITER && store_exec(c, "PRAGMA journal_mode=WAL", err) == -1)) {
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

void
store_be_close(store_conn_t *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nstmt; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close(c->db);
	free(c);
}

static int
user_version(store_conn_t *c)
{
	sqlite3_stmt *st;
	int version = -1;

	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

int
store_be_migrate(store_conn_t *c, const char *const *migrations, int n, err_t *err)
{
	int version = user_version(c);

	if (version < 0)
		return conn_err(c, "user_version", err);
	if (version > n)
		return err_set(err, STB_INTERNAL,
		               "store: schema version %d is newer than this build knows (%d)",
		               version, n);
	for (int v = version; v < n; v++) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version=%d;", v + 1);
		if (store_exec(c, "BEGIN IMMEDIATE", err) == -1)
			return -1;
		if (store_exec(c, migrations[v], err) == -1 || store_exec(c, bump, err) == -1) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			store_exec(c, "ROLLBACK", NULL);
			return err_set(err, STB_INTERNAL, "migration %d: %s", v + 1, why);
		}
		if (store_exec(c, "COMMIT", err) == -1)
			return -1;
		log_info("store: schema migrated to version %d", v + 1);
	}
	return 0;
}
