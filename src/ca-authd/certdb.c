/* certdb: every certificate the CA issued, as rows of its store. */
#include <stdio.h>
#include <string.h>

#include "ca.h"

const char *const certdb_migrations[CERTDB_NMIGRATIONS] = {
    "CREATE TABLE certs("
    " serial BLOB PRIMARY KEY,"
    " device_id TEXT, cert_id TEXT,"
    " subject TEXT NOT NULL,"
    " profile TEXT NOT NULL,"
    " not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " der BLOB NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'good' CHECK(state IN ('good', 'revoked')),"
    " revoked_at INTEGER, reason INTEGER,"
    " issued_at INTEGER NOT NULL,"
    " requester TEXT NOT NULL);"
    "CREATE INDEX certs_device ON certs(device_id, issued_at);"
    "CREATE INDEX certs_issued ON certs(issued_at);"
    "CREATE INDEX certs_revoked ON certs(not_after) WHERE state = 'revoked';",
    /* several instances on one database (revpoll.c, crl.c): every revocation
     * in order of a counter drawn under its row lock, and the CRL number */
    "CREATE TABLE revocations(id INTEGER PRIMARY KEY, serial BLOB NOT NULL,"
    " at INTEGER NOT NULL);"
    "CREATE TABLE ca_counters(name TEXT PRIMARY KEY, n INTEGER NOT NULL);"
    "INSERT INTO ca_counters(name, n) VALUES('revocation', 0), ('crl', 0);",
};
/* The same steps in PostgreSQL DDL (store.h). */
const char *const certdb_migrations_pg[CERTDB_NMIGRATIONS] = {
    "CREATE TABLE certs("
    " rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE," /* the list order's tie-break, as SQLite's
                                                          */
    " serial BYTEA PRIMARY KEY,"
    " device_id TEXT, cert_id TEXT,"
    " subject TEXT NOT NULL,"
    " profile TEXT NOT NULL,"
    " not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,"
    " der BYTEA NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'good' CHECK(state IN ('good', 'revoked')),"
    " revoked_at BIGINT, reason BIGINT,"
    " issued_at BIGINT NOT NULL,"
    " requester TEXT NOT NULL);"
    "CREATE INDEX certs_device ON certs(device_id, issued_at);"
    "CREATE INDEX certs_issued ON certs(issued_at);"
    "CREATE INDEX certs_revoked ON certs(not_after) WHERE state = 'revoked';",
    "CREATE TABLE revocations(id BIGINT PRIMARY KEY, serial BYTEA NOT NULL,"
    " at BIGINT NOT NULL);"
    "CREATE TABLE ca_counters(name TEXT PRIMARY KEY, n BIGINT NOT NULL);"
    "INSERT INTO ca_counters(name, n) VALUES('revocation', 0), ('crl', 0);",
};

#define COLS                                                                                       \
	"serial, device_id, cert_id, subject, profile, not_before, not_after, state, "             \
	"revoked_at, reason, issued_at, requester, der"

static void
bind_opt_text(store_stmt_t *st, int i, const char *s)
{
	store_bind_str(st, i, s == NULL || *s == '\0' ? NULL : s);
}

int
certdb_insert(store_conn_t *c, const certdb_row_t *r, err_t *err)
{
	store_stmt_t *st =
	    store_stmt(c,
	               "INSERT INTO certs(serial, device_id, cert_id, subject, profile, "
	               "not_before, not_after, der, issued_at, requester) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	               err);

	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, r->serial, r->serial_len);
	bind_opt_text(st, 2, r->device_id);
	bind_opt_text(st, 3, r->cert_id);
	store_bind_str(st, 4, r->subject);
	store_bind_str(st, 5, r->profile);
	store_bind_int64(st, 6, r->not_before);
	store_bind_int64(st, 7, r->not_after);
	store_bind_blob(st, 8, r->der, r->der_len);
	store_bind_int64(st, 9, r->issued_at);
	store_bind_str(st, 10, r->requester);
	switch (store_step(st, err)) {
	case STORE_DONE:
		return 0;
	case STORE_UNIQUE: /* the serial is the only unique key of certs */
		return err_set(err, STB_CONFLICT, "serial drawn twice; ask again");
	default:
		return -1;
	}
}

int
certdb_revoke(store_conn_t *c, const uint8_t *serial, size_t len, int64_t at, int reason,
              err_t *err)
{
	certdb_row_t r;
	store_stmt_t *st;
	int64_t id;
	int rc;

	if ((rc = certdb_get(c, serial, len, &r, NULL, err)) == -1)
		return -1;
	if (rc == 1)
		return err_set(err, STB_NOT_FOUND, "no certificate with this serial");
	if (r.revoked)
		return err_set(err, STB_CONFLICT, "already revoked at %lld",
		               (long long)r.revoked_at);
	st = store_stmt(c,
	                "UPDATE certs SET state = 'revoked', revoked_at = ?2, reason = ?3 "
	                "WHERE serial = ?1 AND state = 'good'",
	                err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, serial, len);
	store_bind_int64(st, 2, at);
	store_bind_int64(st, 3, reason);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	/* another instance revoked it between the read and the update */
	if (store_changes(st) != 1)
		return err_set(err, STB_CONFLICT, "already revoked");
	if (certdb_counter_next(c, "revocation", 0, &id, err) == -1 ||
	    (st = store_stmt(c, "INSERT INTO revocations(id, serial, at) VALUES(?1, ?2, ?3)",
	                     err)) == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	store_bind_blob(st, 2, serial, len);
	store_bind_int64(st, 3, at);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

int
certdb_counter_next(store_conn_t *c, const char *name, int64_t floor, int64_t *out, err_t *err)
{
	/* the row lock (PostgreSQL) orders the instances until COMMIT */
	store_stmt_t *st = store_stmt(c,
	                              "UPDATE ca_counters SET n = CASE WHEN n + 1 > ?2 THEN n + 1 "
	                              "ELSE ?2 END WHERE name = ?1 RETURNING n",
	                              err);
	int rc;

	if (st == NULL)
		return -1;
	store_bind_str(st, 1, name);
	store_bind_int64(st, 2, floor);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc < 0 ? -1 : err_set(err, STB_INTERNAL, "no counter %s", name);
	}
	*out = store_col_int64(st, 0);
	store_reset(st);
	return 0;
}

static void
col_text(store_stmt_t *st, int i, char *out, size_t cap)
{
	snprintf(out, cap, "%s", store_col_text(st, i, NULL));
}

static void
row_read(store_stmt_t *st, certdb_row_t *r)
{
	size_t sl;
	const void *serial = store_col_blob(st, 0, &sl);

	memset(r, 0, sizeof(*r));
	r->serial_len = sl <= CA_SERIAL_MAX ? sl : 0;
	if (r->serial_len)
		memcpy(r->serial, serial, r->serial_len);
	col_text(st, 1, r->device_id, sizeof(r->device_id));
	col_text(st, 2, r->cert_id, sizeof(r->cert_id));
	col_text(st, 3, r->subject, sizeof(r->subject));
	col_text(st, 4, r->profile, sizeof(r->profile));
	r->not_before = store_col_int64(st, 5);
	r->not_after = store_col_int64(st, 6);
	r->revoked = strcmp(store_col_text(st, 7, NULL), "revoked") == 0;
	r->revoked_at = store_col_int64(st, 8);
	r->reason = (int)store_col_int64(st, 9);
	r->issued_at = store_col_int64(st, 10);
	col_text(st, 11, r->requester, sizeof(r->requester));
}

int
certdb_get(store_conn_t *c, const uint8_t *serial, size_t len, certdb_row_t *r,
           uint8_t der_sha256[32], err_t *err)
{
	store_stmt_t *st = store_stmt(c, "SELECT " COLS " FROM certs WHERE serial = ?1", err);
	int rc;

	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, serial, len);
	rc = store_step(st, err);
	if (rc == STORE_ROW) {
		size_t dl;
		const void *der = store_col_blob(st, 12, &dl);
		row_read(st, r);
		if (der_sha256 != NULL &&
		    EVP_Digest(der, dl, der_sha256, NULL, EVP_sha256(), NULL) != 1) {
			store_reset(st);
			return err_set(err, STB_INTERNAL, "SHA-256 failed");
		}
	}
	store_reset(st);
	if (rc == STORE_DONE)
		return 1;
	if (rc != STORE_ROW)
		return -1;
	return 0;
}

static int
certdb_walk(store_stmt_t *st, int (*fn)(const certdb_row_t *r, void *arg), void *arg, err_t *err)
{
	certdb_row_t r;
	int rc;

	while ((rc = store_step(st, err)) == STORE_ROW) {
		row_read(st, &r);
		if (fn(&r, arg) == -1) {
			rc = STORE_DONE;
			break;
		}
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	return 0;
}

int
certdb_revoked(store_conn_t *c, int64_t since, int (*fn)(const certdb_row_t *r, void *arg),
               void *arg, err_t *err)
{
	store_stmt_t *st = store_stmt(c,
	                              "SELECT " COLS " FROM certs WHERE state = 'revoked' "
	                              "AND not_after >= ?1 ORDER BY revoked_at, serial",
	                              err);

	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, since);
	return certdb_walk(st, fn, arg, err);
}

int
certdb_list(store_conn_t *c, const char *device_id, uint32_t limit,
            int (*fn)(const certdb_row_t *r, void *arg), void *arg, err_t *err)
{
	store_stmt_t *st;

	/* the limit is ?1 in both: no gaps in the parameter numbers */
	if (device_id != NULL)
		st = store_stmt(c,
		                "SELECT " COLS " FROM certs WHERE device_id = ?2 "
		                "ORDER BY issued_at DESC, rowid DESC LIMIT ?1",
		                err);
	else
		st = store_stmt(c,
		                "SELECT " COLS " FROM certs ORDER BY issued_at DESC, rowid DESC "
		                "LIMIT ?1",
		                err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, limit);
	if (device_id != NULL)
		store_bind_str(st, 2, device_id);
	return certdb_walk(st, fn, arg, err);
}

int
certdb_state(const certdb_row_t *r, int64_t now)
{
	if (r->revoked)
		return CERT_REVOKED;
	if (now >= r->not_after)
		return CERT_EXPIRED;
	return CERT_GOOD;
}

const char *
certdb_state_name(int state)
{
	static const char *const names[] = {"good", "revoked", "unknown", "expired"};

	return state >= 0 && state <= CERT_EXPIRED ? names[state] : "?";
}
