/* Helpers shared by the unit tests (prefix tu_): include this for cmocka. */
#ifndef STB_TESTUTIL_H
#define STB_TESTUTIL_H

/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/types.h>
#include <pthread.h>

struct event;
struct event_base;

#define TU_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- temporary directories ---- */

#define TU_DIR_MAX 64

/* The directory tu_setup_dir() made. */
extern char tu_dir[TU_DIR_MAX];

/* Makes a fresh directory $TMPDIR/stb-<program>-XXXXXX (/tmp without
 * TMPDIR) and writes its path to dir; 0, or -1 when it cannot. */
int tu_mkdtemp(char *dir, size_t size);

/* Removes path and all below it, not following links; 0 or -1. */
int tu_rmtree(const char *path);

/* cmocka setup and teardown: tu_mkdtemp() into tu_dir, tu_rmtree() of it. */
int tu_setup_dir(void **state);
int tu_teardown_dir(void **state);

/* ---- event loops ---- */

/* A timer that stops a loop that hangs: when it fires it sets fired and
 * breaks the loop of its base. */
typedef struct tu_guard {
	struct event *ev;
	int fired;
} tu_guard_t;

/* Arms g to fire after sec seconds on base; g must stay put until freed. */
void tu_guard_start(tu_guard_t *g, struct event_base *base, int sec);
void tu_guard_free(tu_guard_t *g);

/* An event loop on a thread of its own, with a mailbox for posting work
 * to it (mbox.h), as the daemons' worker loops have. */
struct mbox;
typedef struct tu_loop {
	struct event_base *base;
	struct mbox *mb;
	pthread_t th;
} tu_loop_t;

void tu_loop_start(tu_loop_t *l);
/* Breaks the loop from inside, joins the thread, frees both. */
void tu_loop_stop(tu_loop_t *l);

/* A thread body: runs the loop of base (a struct event_base *) until it is
 * broken, even with no event pending. */
void *tu_loop_main(void *base);

/* ---- test PKI (OpenSSL) ---- */

/* A certificate for a test PKI: subject CN cn, public key of key, valid
 * from now + nb_off to now + na_off seconds, a random positive serial,
 * signed with SHA-256 by issuer_key under issuer (self-signed when issuer
 * is NULL; then issuer_key is key).  exts: NULL-terminated "name=value"
 * pairs as in openssl.cnf, e.g. "basicConstraints=critical,CA:TRUE",
 * "extendedKeyUsage=OCSPSigning", "subjectAltName=URI:urn:x".  Fails the
 * test on any error. */
X509 *tu_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long nb_off,
              long na_off, const char *const *exts);
/* A fresh P-256 key; fails the test on error. */
EVP_PKEY *tu_p256(void);
/* Writes x (PEM) or key (PEM, unencrypted PKCS#8) to path; fails the test
 * on error. */
void tu_write_cert(const char *path, X509 *x);
void tu_write_key(const char *path, EVP_PKEY *key);

/* dir/name into out (cap bytes); out. */
const char *tu_pki_path(char *out, size_t cap, const char *dir, const char *name);
/* The throwaway CA of the TLS tests (tu_cert underneath): writes dir/ca.crt
 * (self-signed P-256) and keeps the CA for tu_pki_leaf; 0, or fails the
 * test. */
int tu_pki_ca(const char *dir);
/* Writes dir/name.crt and dir/name.key, a leaf of the tu_pki_ca CA for
 * localhost and 127.0.0.1, with urn:stbcred:role:<role> in its SAN (no URI
 * when role is NULL); 0, or fails the test. */
int tu_pki_leaf(const char *dir, const char *name, const char *role);
/* Forgets the CA. */
void tu_pki_free(void);

/* ---- the store under test: SQLite, or PostgreSQL on the .pg runs ---- */
#include "store.h"
#define TU_WHERE_MAX 192
/* STORE_PG on the unit.<name>.pg runs (STB_TEST_STORE=postgresql, the
 * pg_server fixture's address in the file STB_PG_ENV names), else
 * STORE_SQLITE. */
enum store_backend tu_store_backend(void);
/* Where a fresh store named name lives, into out: SQLite's file dir/name;
 * on PostgreSQL the DSN of a database made here, empty, and dropped at
 * exit.  The same out opens the same store again.  Fails the test on error. */
const char *tu_store_where(char *out, size_t size, const char *dir, const char *name);
/* store_open_be on the backend under test, with migs (SQLite DDL) or
 * migs_pg (PostgreSQL DDL). */
store_t *tu_store_open(const char *where, const char *const *migs, const char *const *migs_pg,
                       int n, err_t *err);
/* The schema version the store recorded (SQLite's user_version, the
 * PostgreSQL backend's stb_migrations); -1 on error. */
long long tu_store_version(store_t *s);
/* 1 when a table named name exists in the store, 0 when not, -1 on error. */
int tu_store_has_table(store_t *s, const char *name);
#endif
