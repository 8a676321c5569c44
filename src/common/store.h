/*
 * store: SQLite per daemon.  WAL, synchronous=FULL, migrations by
 * PRAGMA user_version.  All writes go through one writer thread that batches
 * the jobs queued by every loop into one transaction (group commit); a job's
 * completion runs on the submitter's loop only after the commit is durable.
 * Reads use a connection per thread.  Statements are cached per connection.
 *
 * The interface hides SQLite handles behind store_conn_t so another backend
 * can stand behind it later.
 */
#ifndef STB_STORE_H
#define STB_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "err.h"
#include "mbox.h"
#include "metrics.h"

typedef struct store store_t;
typedef struct store_conn store_conn_t;

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
} store_stats_t;

/* migrations[i] takes user_version i to i+1. */
store_t *store_open(const char *path, const char *const *migrations, int nmigrations, err_t *err);
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

sqlite3 *store_conn_db(store_conn_t *c);
/* Cached prepared statement, reset and unbound; NULL with err on error. */
sqlite3_stmt *store_stmt(store_conn_t *c, const char *sql, err_t *err);
/* Executes SQL with no results (DDL). */
int store_exec(store_conn_t *c, const char *sql, err_t *err);
/* err from the connection's last SQLite error, with a context word. */
int store_err(store_conn_t *c, const char *what, err_t *err);

#endif
