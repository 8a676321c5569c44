/*
 * store_sqlite: the SQLite backend of store.h.  WAL, synchronous=FULL,
 * foreign keys on, migrations by PRAGMA user_version; statements prepared
 * persistent and cached per connection.  The only file that knows SQLite;
 * store.c reaches it through store_sqlite_ops.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmode.h"
#include "log.h"
#include "store_be.h"
#include "store_walbuf.h"

#define STMT_CACHE 72 /* a daemon's statements, plus the writer's 6 below */
#define SQL_SHOWN  48 /* how much of a failing statement an error quotes */

typedef struct sq_stmt {
	store_stmt_t base;
	sqlite3_stmt *st;
	const char *sql; /* the cache key: the caller's string */
	int64_t changes;
	int bind_rc; /* first failed bind since store_stmt, or SQLITE_OK */
	int bind_ix;
} sq_stmt_t;

typedef struct sq_conn {
	store_conn_t base;
	sqlite3 *db;
	size_t nstmt;
	sq_stmt_t cache[STMT_CACHE];
} sq_conn_t;

static int
conn_err(sq_conn_t *c, const char *what, err_t *err)
{
	return err_set(err, STB_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(c->db));
}

static store_stmt_t *
sq_stmt(store_conn_t *bc, const char *sql, err_t *err)
{
	sq_conn_t *c = (sq_conn_t *)bc;
	sq_stmt_t *s;
	sqlite3_stmt *st;

	for (size_t i = 0; i < c->nstmt; i++) {
		s = &c->cache[i];
		if (s->sql == sql) {
			sqlite3_reset(s->st);
			sqlite3_clear_bindings(s->st);
			s->bind_rc = SQLITE_OK;
			s->changes = 0;
			return &s->base;
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
	s->base.ops = &store_sqlite_ops;
	s->st = st;
	s->sql = sql;
	return &s->base;
}

static int
bind_done(sq_stmt_t *s, int i, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	if (s->bind_rc == SQLITE_OK) {
		s->bind_rc = rc;
		s->bind_ix = i;
	}
	return -1;
}

static int
sq_bind_int64(store_stmt_t *bs, int i, int64_t v)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	return bind_done(s, i, sqlite3_bind_int64(s->st, i, v));
}

static int
sq_bind_text(store_stmt_t *bs, int i, const char *p, size_t len)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	if (p == NULL)
		return bind_done(s, i, sqlite3_bind_null(s->st, i));
	return bind_done(s, i, sqlite3_bind_text64(s->st, i, p, len, SQLITE_STATIC, SQLITE_UTF8));
}

static int
sq_bind_blob(store_stmt_t *bs, int i, const void *p, size_t len)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	if (p == NULL)
		return bind_done(s, i, sqlite3_bind_null(s->st, i));
	return bind_done(s, i, sqlite3_bind_blob64(s->st, i, p, len, SQLITE_STATIC));
}

static int
sq_bind_null(store_stmt_t *bs, int i)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	return bind_done(s, i, sqlite3_bind_null(s->st, i));
}

/* The error of a failed step, then the statement reset so that it holds
 * nothing (the message is read first: a reset may replace it). */
static int
step_fail(sq_stmt_t *s, err_t *err)
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

static int
sq_step(store_stmt_t *bs, err_t *err)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
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

static void
sq_reset(store_stmt_t *bs)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	sqlite3_reset(s->st);
}

static int64_t
sq_changes(const store_stmt_t *bs)
{
	const sq_stmt_t *s = (const sq_stmt_t *)bs;
	return s->changes;
}

static int
sq_col_count(const store_stmt_t *bs)
{
	const sq_stmt_t *s = (const sq_stmt_t *)bs;
	return sqlite3_data_count(s->st);
}

/* SQLite leaves a read without a row or past the last column undefined:
 * such reads are NULL here. */
static int
col_ok(sq_stmt_t *s, int i)
{
	return i >= 0 && i < sqlite3_data_count(s->st);
}

static int
sq_col_is_null(store_stmt_t *bs, int i)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	return !col_ok(s, i) || sqlite3_column_type(s->st, i) == SQLITE_NULL;
}

static int64_t
sq_col_int64(store_stmt_t *bs, int i)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
	return col_ok(s, i) ? sqlite3_column_int64(s->st, i) : 0;
}

static const char *
sq_col_text(store_stmt_t *bs, int i, size_t *len)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
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

static const void *
sq_col_blob(store_stmt_t *bs, int i, size_t *len)
{
	sq_stmt_t *s = (sq_stmt_t *)bs;
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

static int
sq_exec(store_conn_t *bc, const char *sql, err_t *err)
{
	sq_conn_t *c = (sq_conn_t *)bc;
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

static int
sq_txn(store_conn_t *bc, enum store_be_txn what, err_t *err)
{
	sq_conn_t *c = (sq_conn_t *)bc;
	sq_stmt_t *s = (sq_stmt_t *)sq_stmt(bc, sql_txn[what], err);
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s->st);
	sqlite3_reset(s->st);
	if (rc != SQLITE_DONE)
		return conn_err(c, sql_txn[what], err);
	return 0;
}

static int
sq_txn_gone(store_conn_t *bc)
{
	sq_conn_t *c = (sq_conn_t *)bc;
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

/* string_agg(text, sep), PostgreSQL's and SQLite 3.44's, for the SQLite
 * before it: daemon SQL stays portable (store.h). */
static void
sq_agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sqlite3_str **acc = sqlite3_aggregate_context(ctx, sizeof(*acc));
	const char *v = (const char *)sqlite3_value_text(argv[0]);

	(void)argc;
	if (acc == NULL || v == NULL)
		return;
	if (*acc == NULL)
		*acc = sqlite3_str_new(sqlite3_context_db_handle(ctx));
	else
		sqlite3_str_appendall(*acc, (const char *)sqlite3_value_text(argv[1]));
	sqlite3_str_appendall(*acc, v);
}

static void
sq_agg_final(sqlite3_context *ctx)
{
	sqlite3_str **acc = sqlite3_aggregate_context(ctx, 0);
	int n;
	char *t;

	if (acc == NULL || *acc == NULL)
		return; /* no rows: NULL, as PostgreSQL */
	n = sqlite3_str_length(*acc);
	t = sqlite3_str_finish(*acc);
	if (t == NULL)
		sqlite3_result_error_nomem(ctx);
	else
		sqlite3_result_text(ctx, t, n, sqlite3_free);
}

static store_conn_t *
sq_open(const char *path, enum store_be_mode mode, err_t *err)
{
	sq_conn_t *c = calloc(1, sizeof(*c));
	int flags = mode == STORE_BE_WRITER ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
	                                    : SQLITE_OPEN_READONLY;
	const char *vfs;

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
	if (store_walbuf_vfs(&vfs, err) == -1) {
		free(c);
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
		err_set(err, STB_INTERNAL, "store: %s: %s", path,
		        c->db ? sqlite3_errmsg(c->db) : "cannot open");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	c->base.ops = &store_sqlite_ops;
	sqlite3_busy_timeout(c->db, 5000);
	if (sqlite3_libversion_number() < 3044000 &&
	    sqlite3_create_function(c->db, "string_agg", 2, SQLITE_UTF8, NULL, NULL, sq_agg_step,
	                            sq_agg_final) != SQLITE_OK) {
		conn_err(c, "string_agg", err);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	/* temp_store=MEMORY: each job's savepoint journal would otherwise spill
	 * to a temporary file past 64 KiB of a batch, a pwrite per page */
	if (sq_exec(&c->base,
	            "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;",
	            err) == -1 ||
	    (mode == STORE_BE_WRITER && sq_exec(&c->base, "PRAGMA journal_mode=WAL", err) == -1)) {
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return &c->base;
}

static void
sq_close(store_conn_t *bc)
{
	sq_conn_t *c = (sq_conn_t *)bc;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nstmt; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close(c->db);
	free(c);
}

static int
user_version(sq_conn_t *c)
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

static int
sq_migrate(store_conn_t *bc, const char *const *migrations, int n, err_t *err)
{
	sq_conn_t *c = (sq_conn_t *)bc;
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
		if (sq_exec(&c->base, "BEGIN IMMEDIATE", err) == -1)
			return -1;
		if (sq_exec(&c->base, migrations[v], err) == -1 ||
		    sq_exec(&c->base, bump, err) == -1) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			sq_exec(&c->base, "ROLLBACK", NULL);
			return err_set(err, STB_INTERNAL, "migration %d: %s", v + 1, why);
		}
		if (sq_exec(&c->base, "COMMIT", err) == -1)
			return -1;
		log_info("store: schema migrated to version %d", v + 1);
	}
	return 0;
}

static void
sq_conn_stats(store_conn_t *bc, uint32_t *up, uint64_t *reconnects)
{
	(void)bc;
	*up = 1; /* a file: nothing to lose */
	*reconnects = 0;
}

const store_be_ops_t store_sqlite_ops = {
    .backend = STORE_SQLITE,
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .txn = sq_txn,
    .txn_gone = sq_txn_gone,
    .conn_stats = sq_conn_stats,
    .exec = sq_exec,
    .stmt = sq_stmt,
    .bind_int64 = sq_bind_int64,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .reset = sq_reset,
    .changes = sq_changes,
    .col_count = sq_col_count,
    .col_is_null = sq_col_is_null,
    .col_int64 = sq_col_int64,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
};
