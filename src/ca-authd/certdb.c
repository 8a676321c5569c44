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
};

#define COLS                                                                                       \
	"serial, device_id, cert_id, subject, profile, not_before, not_after, state, "             \
	"revoked_at, reason, issued_at, requester, der"

static void
bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || *s == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int
certdb_insert(store_conn_t *c, const certdb_row_t *r, err_t *err)
{
	sqlite3_stmt *st =
	    store_stmt(c,
	               "INSERT INTO certs(serial, device_id, cert_id, subject, profile, "
	               "not_before, not_after, der, issued_at, requester) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	               err);

	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, r->serial, (int)r->serial_len, SQLITE_STATIC);
	bind_opt_text(st, 2, r->device_id);
	bind_opt_text(st, 3, r->cert_id);
	sqlite3_bind_text(st, 4, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->not_before);
	sqlite3_bind_int64(st, 7, r->not_after);
	sqlite3_bind_blob(st, 8, r->der, (int)r->der_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, r->issued_at);
	sqlite3_bind_text(st, 10, r->requester, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		int rc = sqlite3_extended_errcode(store_conn_db(c));
		sqlite3_reset(st);
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return err_set(err, STB_CONFLICT, "serial drawn twice; ask again");
		return store_err(c, "certificate insert", err);
	}
	sqlite3_reset(st);
	return 0;
}

int
certdb_revoke(store_conn_t *c, const uint8_t *serial, size_t len, int64_t at, int reason,
              err_t *err)
{
	certdb_row_t r;
	sqlite3_stmt *st;
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
	sqlite3_bind_blob(st, 1, serial, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_int(st, 3, reason);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c, "revoke", err);
	return 0;
}

static void
col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void
row_read(sqlite3_stmt *st, certdb_row_t *r)
{
	int sl = sqlite3_column_bytes(st, 0);

	memset(r, 0, sizeof(*r));
	r->serial_len = sl > 0 && sl <= CA_SERIAL_MAX ? (size_t)sl : 0;
	if (r->serial_len)
		memcpy(r->serial, sqlite3_column_blob(st, 0), r->serial_len);
	col_text(st, 1, r->device_id, sizeof(r->device_id));
	col_text(st, 2, r->cert_id, sizeof(r->cert_id));
	col_text(st, 3, r->subject, sizeof(r->subject));
	col_text(st, 4, r->profile, sizeof(r->profile));
	r->not_before = sqlite3_column_int64(st, 5);
	r->not_after = sqlite3_column_int64(st, 6);
	r->revoked = strcmp((const char *)sqlite3_column_text(st, 7), "revoked") == 0;
	r->revoked_at = sqlite3_column_int64(st, 8);
	r->reason = sqlite3_column_int(st, 9);
	r->issued_at = sqlite3_column_int64(st, 10);
	col_text(st, 11, r->requester, sizeof(r->requester));
}

int
certdb_get(store_conn_t *c, const uint8_t *serial, size_t len, certdb_row_t *r,
           uint8_t der_sha256[32], err_t *err)
{
	sqlite3_stmt *st = store_stmt(c, "SELECT " COLS " FROM certs WHERE serial = ?1", err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, serial, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_read(st, r);
		if (der_sha256 != NULL &&
		    EVP_Digest(sqlite3_column_blob(st, 12), (size_t)sqlite3_column_bytes(st, 12),
		               der_sha256, NULL, EVP_sha256(), NULL) != 1) {
			sqlite3_reset(st);
			return err_set(err, STB_INTERNAL, "SHA-256 failed");
		}
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return store_err(c, "certificate lookup", err);
	return 0;
}

static int
certdb_walk(store_conn_t *c, sqlite3_stmt *st, int (*fn)(const certdb_row_t *r, void *arg),
            void *arg, err_t *err)
{
	certdb_row_t r;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_read(st, &r);
		if (fn(&r, arg) == -1) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c, "certificate walk", err);
	return 0;
}

int
certdb_revoked(store_conn_t *c, int64_t since, int (*fn)(const certdb_row_t *r, void *arg),
               void *arg, err_t *err)
{
	sqlite3_stmt *st = store_stmt(c,
	                              "SELECT " COLS " FROM certs WHERE state = 'revoked' "
	                              "AND not_after >= ?1 ORDER BY revoked_at, serial",
	                              err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	return certdb_walk(c, st, fn, arg, err);
}

int
certdb_list(store_conn_t *c, const char *device_id, uint32_t limit,
            int (*fn)(const certdb_row_t *r, void *arg), void *arg, err_t *err)
{
	sqlite3_stmt *st;

	if (device_id != NULL)
		st = store_stmt(c,
		                "SELECT " COLS " FROM certs WHERE device_id = ?1 "
		                "ORDER BY issued_at DESC, rowid DESC LIMIT ?2",
		                err);
	else
		st = store_stmt(c,
		                "SELECT " COLS " FROM certs ORDER BY issued_at DESC, rowid DESC "
		                "LIMIT ?2",
		                err);
	if (st == NULL)
		return -1;
	if (device_id != NULL)
		sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit);
	return certdb_walk(c, st, fn, arg, err);
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
