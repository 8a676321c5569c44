/*
 * store_be: what store.c (the writer thread, group commit, readers) needs
 * from a backend, and the table through which store.h's statement calls
 * reach the backend of a connection.  Two backends are linked in:
 * store_sqlite.c and store_pg.c.  Not for daemon code, which uses store.h
 * only.
 */
#ifndef STB_STORE_BE_H
#define STB_STORE_BE_H

#include "store.h"

enum store_be_mode {
	STORE_BE_WRITER, /* read-write, creates the database */
	STORE_BE_READER, /* read-only */
};

/* Transaction control the writer runs once per batch and per job. */
enum store_be_txn {
	STORE_TXN_BEGIN,
	STORE_TXN_COMMIT,
	STORE_TXN_ROLLBACK,
	STORE_TXN_SAVEPOINT,
	STORE_TXN_RELEASE,
	STORE_TXN_ROLLBACK_TO,
};

typedef struct store_be_ops {
	enum store_backend backend;
	/* where: the SQLite file or the PostgreSQL DSN */
	store_conn_t *(*open)(const char *where, enum store_be_mode mode, err_t *err);
	void (*close)(store_conn_t *c);
	/* Brings the writer's schema to n (journal mode, versioning). */
	int (*migrate)(store_conn_t *c, const char *const *migrations, int n, err_t *err);
	int (*txn)(store_conn_t *c, enum store_be_txn what, err_t *err);
	/* 1 when no transaction is open any more (a job's failure ended it). */
	int (*txn_gone)(store_conn_t *c);
	/* the connection's state for store_get_stats, from any thread */
	void (*conn_stats)(store_conn_t *c, uint32_t *up, uint64_t *reconnects);
	/* store.h's calls, one for one */
	int (*exec)(store_conn_t *c, const char *sql, err_t *err);
	store_stmt_t *(*stmt)(store_conn_t *c, const char *sql, err_t *err);
	int (*bind_int64)(store_stmt_t *st, int i, int64_t v);
	int (*bind_text)(store_stmt_t *st, int i, const char *s, size_t len);
	int (*bind_blob)(store_stmt_t *st, int i, const void *p, size_t len);
	int (*bind_null)(store_stmt_t *st, int i);
	int (*step)(store_stmt_t *st, err_t *err);
	void (*reset)(store_stmt_t *st);
	int64_t (*changes)(const store_stmt_t *st);
	int (*col_count)(const store_stmt_t *st);
	int (*col_is_null)(store_stmt_t *st, int i);
	int64_t (*col_int64)(store_stmt_t *st, int i);
	const char *(*col_text)(store_stmt_t *st, int i, size_t *len);
	const void *(*col_blob)(store_stmt_t *st, int i, size_t *len);
} store_be_ops_t;

/* The first member of every backend's connection and statement. */
struct store_conn {
	const store_be_ops_t *ops;
};
struct store_stmt {
	const store_be_ops_t *ops;
};

extern const store_be_ops_t store_sqlite_ops;
extern const store_be_ops_t store_pg_ops;

#endif
