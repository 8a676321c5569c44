/*
 * store_be: what store.c (the writer thread, group commit, readers) needs
 * from a backend.  One backend is linked in: store_sqlite.c today.  Not for
 * daemon code, which uses store.h only.
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

store_conn_t *store_be_open(const char *path, enum store_be_mode mode, err_t *err);
void store_be_close(store_conn_t *c);
/* Brings the writer's schema to nmigrations (journal mode, versioning). */
int store_be_migrate(store_conn_t *c, const char *const *migrations, int n, err_t *err);
int store_be_txn(store_conn_t *c, enum store_be_txn what, err_t *err);
/* 1 when no transaction is open any more (a job's failure ended it). */
int store_be_txn_gone(store_conn_t *c);

#endif
