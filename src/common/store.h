/*
 * store: the daemons' database, behind an interface that names no backend.
 * Two backends: SQLite (store_sqlite.c, the embedded default): WAL,
 * synchronous=FULL, migrations by PRAGMA user_version; and PostgreSQL
 * (store_pg.c, libpq): synchronous_commit=on, migrations recorded in the
 * table stb_migrations.  All writes go through one writer
 * thread that batches the jobs queued by every loop into one transaction
 * (group commit); a job's completion runs on the submitter's loop only after
 * the commit is durable.  Reads use a connection per thread.  Statements are
 * prepared once and cached per connection.
 *
 * Daemon code talks to the store only through this header, so a PostgreSQL
 * backend can stand behind it without touching a daemon: a backend is one
 * file (store_<name>.c) that implements the statement calls below and the
 * internal store_be.h (connections, migrations, transaction control) that
 * store.c's writer and readers use.  The rules that keep daemon SQL
 * portable:
 *
 *  - Parameters are numbered, "?1" .. "?N", never a bare "?" or ":name",
 *    and without gaps (PostgreSQL must see every $n).  SQLite takes them as
 *    they are; a PostgreSQL backend rewrites "?N" to "$N" outside string
 *    literals when it prepares the statement.  The same number may appear
 *    more than once.  Each parameter is bound with one type (int64, text,
 *    blob, or NULL) at a call site, so that a backend with typed parameters
 *    may prepare with the types of the first binds.
 *  - Upserts are "INSERT ... ON CONFLICT (cols) DO NOTHING / DO UPDATE SET
 *    x = excluded.x" (both backends), never INSERT OR IGNORE / OR REPLACE.
 *  - Portable functions only: COALESCE (not IFNULL), count(*), lower(), ...;
 *    blobs are hex-encoded in C, not with hex().  A comparison returned as
 *    a column is wrapped in CASE WHEN ... THEN 1 ELSE 0 END (PostgreSQL
 *    would return a boolean).  An unbounded LIMIT is bound as INT64_MAX,
 *    not as -1.
 *  - Each column is read with the type it is stored as: INTEGER columns
 *    with store_col_int64, TEXT with store_col_text, BLOB with
 *    store_col_blob.  Conversions between them are backend-specific.
 *
 * What stays per backend, on purpose:
 *  - Schema DDL: daemon_def_t carries one migration list per backend
 *    (SQLite: BLOB, INTEGER; PostgreSQL: BYTEA, BIGINT, identity columns),
 *    kept next to each other; audit_schema has audit_schema_pg.
 *  - store_exec takes backend SQL as it is (DDL, several statements).
 *  - Lists order ties by their table's key, never by SQLite's rowid.
 */
#ifndef STB_STORE_H
#define STB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mbox.h"
#include "metrics.h"

typedef struct store store_t;
typedef struct store_conn store_conn_t;
/* A prepared statement, owned by its connection's cache: never freed by
 * the caller, valid while the connection is. */
typedef struct store_stmt store_stmt_t;

/* store_step results; the negative ones are errors.  On STORE_ERROR and
 * STORE_UNIQUE err holds STB_INTERNAL and the backend's message (with the
 * start of the statement's SQL); STORE_UNIQUE says a UNIQUE or
 * PRIMARY KEY constraint refused the row (SQLite's CONSTRAINT_UNIQUE and
 * _PRIMARYKEY, PostgreSQL's SQLSTATE 23505), which a caller may answer as
 * STB_CONFLICT.  Other constraint failures (NOT NULL, CHECK, FOREIGN KEY)
 * are STORE_ERROR. */
#define STORE_ROW    1
#define STORE_DONE   0
#define STORE_ERROR  (-1)
#define STORE_UNIQUE (-2)

/* Runs in the writer thread inside the batch transaction (under its own
 * savepoint: a failing job rolls back alone).  0 or -1 with err. */
typedef int (*store_write_fn)(store_conn_t *c, void *arg, err_t *err);
/* Runs on the submitter's loop after commit; err->status is STB_OK or why
 * the write did not happen. */
typedef void (*store_done_fn)(void *arg, const err_t *err);

typedef struct store_stats {
	uint64_t commits;
	uint64_t writes;
	uint64_t failed;
	uint32_t queued;
	hist_t commit_latency;
	/* the writer's connection: 1 up, 0 down (PostgreSQL; SQLite is always
	 * up), and how often it was made again after a loss */
	uint32_t connected;
	uint64_t reconnects;
} store_stats_t;

enum store_backend {
	STORE_SQLITE,
	STORE_PG,
};

/* migrations[i] takes the schema from version i to i+1 (backend DDL, see
 * above).  store_open is SQLite's file at path; store_open_be names the
 * backend, and where is the SQLite file or the PostgreSQL DSN (libpq's
 * "host=... dbname=..." or a postgresql:// URI; it may hold a password and
 * is never logged). */
store_t *store_open(const char *path, const char *const *migrations, int nmigrations, err_t *err);
store_t *store_open_be(enum store_backend be, const char *where, const char *const *migrations,
                       int nmigrations, err_t *err);
enum store_backend store_get_backend(const store_t *s);
/* "sqlite" or "postgresql" to enum store_backend; -1 for anything else. */
int store_backend_parse(const char *name);
/* Queues a write; done runs through mb.  -1 when the store is closing. */
int store_write(store_t *s, mbox_t *mb, store_write_fn fn, store_done_fn done, void *arg,
                err_t *err);
/* Queues a write and waits for its commit (threads without a loop). */
int store_write_sync(store_t *s, store_write_fn fn, void *arg, err_t *err);
/* The calling thread's read connection. */
store_conn_t *store_reader(store_t *s, err_t *err);
/* Finishes queued writes, stops the writer, closes every connection. */
void store_close(store_t *s);
void store_get_stats(store_t *s, store_stats_t *st);

/* Executes backend SQL with no results (DDL, several statements). */
int store_exec(store_conn_t *c, const char *sql, err_t *err);

/*
 * Statements.  sql must be a string that lives as long as the connection
 * (a literal or a static array): the cache is keyed by its address, so SQL
 * built at run time would fill it, and that is refused.  store_stmt hands
 * back the cached statement reset and with every parameter unbound (NULL);
 * NULL with err on error.  The hot path allocates nothing and copies
 * nothing: bound text and blobs are referenced, not copied, and must stay
 * valid and unchanged until the statement is stepped to its end, reset or
 * bound again.
 */
store_stmt_t *store_stmt(store_conn_t *c, const char *sql, err_t *err);

/* Binds parameter ?i (1-based).  A failed bind (no such parameter, too
 * large) returns -1 and is also remembered: the next store_step reports it
 * as STORE_ERROR without running the statement, so callers may leave the
 * binds unchecked. */
int store_bind_int64(store_stmt_t *st, int i, int64_t v);
/* len bytes of s (which need not be NUL-terminated); s == NULL binds NULL. */
int store_bind_text(store_stmt_t *st, int i, const char *s, size_t len);
/* A NUL-terminated s; NULL binds NULL. */
int store_bind_str(store_stmt_t *st, int i, const char *s);
/* len bytes of p (zero bytes, embedded NULs allowed); p == NULL binds NULL. */
int store_bind_blob(store_stmt_t *st, int i, const void *p, size_t len);
int store_bind_null(store_stmt_t *st, int i);

/* Runs the statement to its next row: STORE_ROW, STORE_DONE, or
 * STORE_ERROR / STORE_UNIQUE with err set (see above). */
int store_step(store_stmt_t *st, err_t *err);
/* Ends the current run (releases what a half-read query holds); the
 * bindings stay.  Cheap, and safe on a statement already at its end. */
void store_reset(store_stmt_t *st);
/* Rows inserted, updated or deleted by the statement's last run that
 * reached STORE_DONE (0 for a statement fresh from store_stmt). */
int64_t store_changes(const store_stmt_t *st);

/* Columns of the current row (after STORE_ROW), 0-based.  Text and blob
 * pointers stay valid until the next step or reset of the statement.  A
 * NULL reads as 0, as "" (text, NUL-terminated) or as an empty blob (a
 * non-NULL pointer), each with *len 0; store_col_is_null tells it apart.
 * len may be NULL.  Text is always NUL-terminated at [*len].
 * store_col_count is the current row's number of columns, 0 without a row. */
int store_col_count(const store_stmt_t *st);
int store_col_is_null(store_stmt_t *st, int i);
int64_t store_col_int64(store_stmt_t *st, int i);
const char *store_col_text(store_stmt_t *st, int i, size_t *len);
const void *store_col_blob(store_stmt_t *st, int i, size_t *len);

#endif
