/*
 * store_pg: the PostgreSQL backend of store.h, over libpq.  Each connection
 * runs with synchronous_commit=on (a COMMIT returns once the WAL is on
 * disk); readers with default_transaction_read_only.  Statements are
 * prepared on first run with the types of their first binds ("?N" rewritten
 * to "$N" outside literals and quoted names), cached per connection, and
 * run with binary parameters and results.  Migrations are rows of
 * stb_migrations, applied under an advisory lock so that several instances
 * starting at once apply each one once.  A lost connection is made again
 * with backoff: by the writer before a batch, by a reader before a
 * statement; what was queued meanwhile is answered UNAVAILABLE.  The DSN
 * may hold a password: it is never logged or put in an error.
 */
#include <libpq-fe.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "log.h"
#include "metrics.h"
#include "store_be.h"

#define STMT_CACHE     72 /* a daemon's statements */
#define PARAMS_MAX     32 /* ?1 .. ?32 in one statement */
#define SQL_SHOWN      48 /* how much of a failing statement an error quotes */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000
/* pg_advisory_xact_lock key of migrations ("stbm") */
#define MIGRATE_LOCK 0x7374626d

/* type OIDs (server/catalog/pg_type_d.h, stable) */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_FLOAT8  701
#define OID_VARCHAR 1043
#define OID_NUMERIC 1700

enum pg_kind { PK_NULL, PK_INT, PK_TEXT, PK_BLOB };

struct pg_conn;

typedef struct pg_stmt {
	store_stmt_t base;
	struct pg_conn *conn;
	const char *sql; /* the cache key: the caller's string */
	char *pgsql;     /* with $N */
	char name[16];
	uint64_t gen; /* connection generation it was prepared in; 0 never */
	int nparams;
	Oid types[PARAMS_MAX]; /* the server's, after prepare */
	enum pg_kind kind[PARAMS_MAX];
	/* the kind of the bind call, a NULL's too (store_bind_str(st, i, NULL)
	 * is a text NULL): the type "?N IS NULL OR x = ?N" is prepared with */
	enum pg_kind hint[PARAMS_MAX];
	int64_t ival[PARAMS_MAX];
	const char *pval[PARAMS_MAX];
	size_t plen[PARAMS_MAX];
	int bind_fail; /* first failed bind since store_stmt, or 0 */
	PGresult *res;
	int row, nrows;
	int64_t changes;
} pg_stmt_t;

typedef struct pg_conn {
	store_conn_t base;
	PGconn *pg;
	char *dsn;
	enum store_be_mode mode;
	uint64_t gen; /* bumped by every connect */
	uint64_t next_try_ns;
	unsigned backoff_ms;
	uint32_t up; /* atomics: read by store_get_stats */
	uint64_t reconnects;
	size_t nstmt;
	pg_stmt_t cache[STMT_CACHE];
} pg_conn_t;

static void
pg_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs (IF NOT EXISTS) are not news */
}

/* libpq's message without its trailing newline. */
static const char *
pg_msg(const char *m, char *buf, size_t cap)
{
	size_t n;

	snprintf(buf, cap, "%s", m != NULL && *m != '\0' ? m : "unknown error");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* the primary message only: DETAIL may quote the row ("Key (mac)=(...)") */
static const char *
pg_res_msg(const PGresult *r)
{
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	return m != NULL ? m : PQresStatus(PQresultStatus(r));
}

static int
conn_down(pg_conn_t *c, err_t *err)
{
	char m[256];

	__atomic_store_n(&c->up, 0, __ATOMIC_RELAXED);
	return err_set(err, STB_UNAVAILABLE, "store: PostgreSQL: %s",
	               pg_msg(PQerrorMessage(c->pg), m, sizeof(m)));
}

static int
conn_bad(const pg_conn_t *c)
{
	return c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK;
}

/* One command, no rows wanted (session setup, transaction control, DDL). */
static int
pg_run(pg_conn_t *c, const char *sql, err_t *err)
{
	PGresult *r = PQexec(c->pg, sql);
	ExecStatusType st = PQresultStatus(r);
	char m[256];
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (conn_bad(c))
			rc = conn_down(c, err);
		else
			rc = err_set(err, STB_INTERNAL, "store: %s (in \"%.*s\")",
			             pg_msg(pg_res_msg(r), m, sizeof(m)), SQL_SHOWN, sql);
	}
	PQclear(r);
	return rc;
}

/* Connects (again): the session's settings, and every cached statement to be
 * prepared anew. */
static int
pg_connect(pg_conn_t *c, err_t *err)
{
	/* keywords before dbname are defaults the DSN may override */
	static const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
	                                   NULL};
	const char *vals[] = {"5", "stbcred", c->dsn, NULL};
	const char *setup = c->mode == STORE_BE_WRITER
	                        ? "SET synchronous_commit = on; SET client_min_messages = warning"
	                        : "SET synchronous_commit = on; SET client_min_messages = warning;"
	                          " SET default_transaction_read_only = on";

	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (PQstatus(c->pg) != CONNECTION_OK)
		return conn_down(c, err);
	PQsetNoticeProcessor(c->pg, pg_quiet, NULL);
	if (pg_run(c, setup, err) == -1)
		return -1;
	c->gen++;
	c->backoff_ms = 0;
	__atomic_store_n(&c->up, 1, __ATOMIC_RELAXED);
	return 0;
}

/* A lost connection made again, at most once per backoff interval. */
static int
pg_ensure(pg_conn_t *c, err_t *err)
{
	uint64_t now = now_ns();

	if (!conn_bad(c))
		return 0;
	__atomic_store_n(&c->up, 0, __ATOMIC_RELAXED);
	if (now < c->next_try_ns)
		return err_set(err, STB_UNAVAILABLE, "store: PostgreSQL unreachable; retrying");
	if (pg_connect(c, err) == 0) {
		__atomic_fetch_add(&c->reconnects, 1, __ATOMIC_RELAXED);
		log_info("store: PostgreSQL connection made again");
		return 0;
	}
	c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	c->next_try_ns = now + (uint64_t)c->backoff_ms * 1000000u;
	return -1;
}

/* "?N" to "$N" outside '...' literals, "..." names and comments; the
 * highest N into *np.  NULL on a bare "?" or N out of range. */
static char *
pg_rewrite(const char *sql, int *np, err_t *err)
{
	size_t n = strlen(sql);
	char *out = malloc(n + 1);
	size_t o = 0;
	int maxn = 0;

	if (out == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		char ch = sql[i];
		if (ch == '\'' || ch == '"') {
			size_t j = i + 1;
			while (j < n && sql[j] != ch)
				j++;
			j = j < n ? j + 1 : n; /* '' inside a literal: two literals, same bytes */
			memcpy(out + o, sql + i, j - i);
			o += j - i;
			i = j;
		} else if (ch == '-' && i + 1 < n && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				out[o++] = sql[i++];
		} else if (ch == '?') {
			long v = 0;
			size_t j = i + 1;
			while (j < n && sql[j] >= '0' && sql[j] <= '9' && v <= PARAMS_MAX)
				v = v * 10 + (sql[j++] - '0');
			if (j == i + 1 || v < 1 || v > PARAMS_MAX) {
				free(out);
				err_set(err, STB_INTERNAL, "store: parameter %s in \"%.*s\"",
				        j == i + 1 ? "without a number" : "out of range", SQL_SHOWN,
				        sql);
				return NULL;
			}
			out[o++] = '$';
			memcpy(out + o, sql + i + 1, j - i - 1);
			o += j - i - 1;
			if (v > maxn)
				maxn = (int)v;
			i = j;
		} else
			out[o++] = sql[i++];
	}
	out[o] = '\0';
	*np = maxn;
	return out;
}

/* 1 when sql holds only blanks, ";" and comments: SQLite refuses it at
 * prepare, and so does this backend, rather than at the first step. */
static int
sql_is_empty(const char *sql)
{
	const char *p = sql;

	while (*p != '\0') {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';') {
			p++;
		} else if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			if (e == NULL)
				return 0; /* unterminated: the server says so */
			p = e + 2;
		} else {
			return 0;
		}
	}
	return 1;
}

static store_stmt_t *
pg_stmt(store_conn_t *bc, const char *sql, err_t *err)
{
	pg_conn_t *c = (pg_conn_t *)bc;
	pg_stmt_t *s;

	/* a reader outside any transaction may connect again; the writer
	 * does so only before a batch (pg_txn) */
	if (c->mode == STORE_BE_READER && pg_ensure(c, err) == -1)
		return NULL;
	for (size_t i = 0; i < c->nstmt; i++) {
		s = &c->cache[i];
		if (s->sql == sql) {
			PQclear(s->res);
			s->res = NULL;
			s->row = -1;
			s->bind_fail = 0;
			s->changes = 0;
			for (int k = 0; k < PARAMS_MAX; k++)
				s->kind[k] = s->hint[k] = PK_NULL;
			return &s->base;
		}
	}
	if (c->nstmt == STMT_CACHE) {
		err_set(err, STB_INTERNAL, "store: statement cache full");
		return NULL;
	}
	if (sql_is_empty(sql)) {
		err_set(err, STB_INTERNAL, "store: prepare: no statement in \"%.*s\"", SQL_SHOWN,
		        sql);
		return NULL;
	}
	s = &c->cache[c->nstmt];
	memset(s, 0, sizeof(*s));
	if ((s->pgsql = pg_rewrite(sql, &s->nparams, err)) == NULL)
		return NULL;
	c->nstmt++;
	s->base.ops = &store_pg_ops;
	s->conn = c;
	s->sql = sql;
	s->row = -1;
	snprintf(s->name, sizeof(s->name), "s%zu", c->nstmt);
	return &s->base;
}

static int
bind_at(pg_stmt_t *s, int i)
{
	if (i < 1 || i > s->nparams) {
		if (s->bind_fail == 0)
			s->bind_fail = i == 0 ? -1 : i;
		return -1;
	}
	return 0;
}

static int
pg_bind_int64(store_stmt_t *bs, int i, int64_t v)
{
	pg_stmt_t *s = (pg_stmt_t *)bs;

	if (bind_at(s, i) == -1)
		return -1;
	s->kind[i - 1] = PK_INT;
	s->hint[i - 1] = PK_INT;
	s->ival[i - 1] = v;
	return 0;
}

static int
bind_bytes(pg_stmt_t *s, int i, enum pg_kind k, const void *p, size_t len)
{
	if (bind_at(s, i) == -1)
		return -1;
	if (len > INT_MAX) {
		if (s->bind_fail == 0)
			s->bind_fail = i;
		return -1;
	}
	s->kind[i - 1] = p == NULL ? PK_NULL : k;
	s->hint[i - 1] = k;
	s->pval[i - 1] = p;
	s->plen[i - 1] = len;
	return 0;
}

static int
pg_bind_text(store_stmt_t *bs, int i, const char *p, size_t len)
{
	return bind_bytes((pg_stmt_t *)bs, i, PK_TEXT, p, len);
}

static int
pg_bind_blob(store_stmt_t *bs, int i, const void *p, size_t len)
{
	static const uint8_t empty[1];

	/* a zero-length blob is a value, not NULL */
	return bind_bytes((pg_stmt_t *)bs, i, PK_BLOB, p != NULL && len == 0 ? empty : p, len);
}

static int
pg_bind_null(store_stmt_t *bs, int i)
{
	return bind_bytes((pg_stmt_t *)bs, i, PK_NULL, NULL, 0);
}

static int
stmt_fail(pg_stmt_t *s, PGresult *r, err_t *err)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	int unique = state != NULL && strcmp(state, "23505") == 0;
	char m[256];

	if (conn_bad(s->conn))
		conn_down(s->conn, err);
	else
		err_set(
		    err, STB_INTERNAL, "store: %s (in \"%.*s\")",
		    pg_msg(r != NULL ? pg_res_msg(r) : PQerrorMessage(s->conn->pg), m, sizeof(m)),
		    SQL_SHOWN, s->sql);
	PQclear(r);
	return unique ? STORE_UNIQUE : STORE_ERROR;
}

/* Parse on the server with the types of the first binds (a NULL bound as
 * text or blob is of that type; store_bind_null: the server infers it),
 * then the types it settled on. */
static int
stmt_prepare(pg_stmt_t *s, err_t *err)
{
	static const Oid by_kind[] = {
	    [PK_NULL] = 0, [PK_INT] = OID_INT8, [PK_TEXT] = OID_TEXT, [PK_BLOB] = OID_BYTEA};
	Oid types[PARAMS_MAX];
	PGresult *r;

	for (int k = 0; k < s->nparams; k++)
		types[k] = by_kind[s->kind[k] != PK_NULL ? s->kind[k] : s->hint[k]];
	r = PQprepare(s->conn->pg, s->name, s->pgsql, s->nparams, types);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return stmt_fail(s, r, err);
	PQclear(r);
	r = PQdescribePrepared(s->conn->pg, s->name);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return stmt_fail(s, r, err);
	for (int k = 0; k < s->nparams && k < PQnparams(r); k++)
		s->types[k] = PQparamtype(r, k);
	PQclear(r);
	s->gen = s->conn->gen;
	return 0;
}

/* An int64 for a parameter of type t: binary when t is an integer the value
 * fits, else the decimal text (numeric, float). */
static int
param_int(pg_stmt_t *s, int k, Oid t, uint8_t buf[24], const char **v, int *len, int *fmt)
{
	int64_t x = s->ival[k];

	*v = (const char *)buf;
	*fmt = 1;
	switch (t) {
	case OID_INT8:
		store_be64(buf, (uint64_t)x);
		*len = 8;
		return 0;
	case OID_INT4:
		if (x < INT32_MIN || x > INT32_MAX)
			return -1;
		store_be32(buf, (uint32_t)(int32_t)x);
		*len = 4;
		return 0;
	case OID_INT2:
		if (x < INT16_MIN || x > INT16_MAX)
			return -1;
		store_be16(buf, (uint16_t)(int16_t)x);
		*len = 2;
		return 0;
	case OID_BOOL:
		buf[0] = x != 0;
		*len = 1;
		return 0;
	default:
		*len = snprintf((char *)buf, 24, "%lld", (long long)x);
		*fmt = 0;
		return 0;
	}
}

static int
stmt_exec(pg_stmt_t *s, err_t *err)
{
	uint8_t ibuf[PARAMS_MAX][24];
	const char *vals[PARAMS_MAX];
	int lens[PARAMS_MAX], fmts[PARAMS_MAX];
	ExecStatusType st;
	PGresult *r;

	if (s->gen != s->conn->gen && stmt_prepare(s, err) == -1)
		return -1;
	for (int k = 0; k < s->nparams; k++) {
		Oid t = s->types[k];
		fmts[k] = 1;
		switch (s->kind[k]) {
		case PK_NULL:
			vals[k] = NULL;
			lens[k] = 0;
			break;
		case PK_INT:
			if (param_int(s, k, t, ibuf[k], &vals[k], &lens[k], &fmts[k]) == -1)
				return err_set(err, STB_INTERNAL,
				               "store: bind ?%d: out of range (in \"%.*s\")", k + 1,
				               SQL_SHOWN, s->sql);
			break;
		case PK_TEXT:
		case PK_BLOB:
			if (s->kind[k] == PK_TEXT ? t == OID_BYTEA : t != OID_BYTEA)
				return err_set(err, STB_INTERNAL,
				               "store: bind ?%d: %s for a parameter of type %u (in "
				               "\"%.*s\")",
				               k + 1, s->kind[k] == PK_TEXT ? "text" : "a blob", t,
				               SQL_SHOWN, s->sql);
			vals[k] = s->pval[k];
			lens[k] = (int)s->plen[k];
			break;
		}
	}
	r = PQexecPrepared(s->conn->pg, s->name, s->nparams, vals, lens, fmts, 1);
	st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return stmt_fail(s, r, err);
	s->res = r;
	s->nrows = st == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	s->row = -1;
	return 0;
}

static int
pg_step(store_stmt_t *bs, err_t *err)
{
	pg_stmt_t *s = (pg_stmt_t *)bs;
	int rc;

	if (s->bind_fail != 0) {
		err_set(err, STB_INTERNAL, "store: bind ?%d: no such parameter (in \"%.*s\")",
		        s->bind_fail, SQL_SHOWN, s->sql);
		return STORE_ERROR;
	}
	if (s->res == NULL && (rc = stmt_exec(s, err)) != 0)
		return rc;
	if (++s->row < s->nrows)
		return STORE_ROW;
	/* at its end: the rows changed, and the next step runs it again */
	s->changes =
	    strncmp(PQcmdStatus(s->res), "SELECT", 6) == 0 ? 0 : atoll(PQcmdTuples(s->res));
	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
	return STORE_DONE;
}

static void
pg_reset(store_stmt_t *bs)
{
	pg_stmt_t *s = (pg_stmt_t *)bs;

	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
}

static int64_t
pg_changes(const store_stmt_t *bs)
{
	return ((const pg_stmt_t *)bs)->changes;
}

static int
pg_col_count(const store_stmt_t *bs)
{
	const pg_stmt_t *s = (const pg_stmt_t *)bs;

	return s->res != NULL && s->row >= 0 && s->row < s->nrows ? PQnfields(s->res) : 0;
}

static int
col_ok(pg_stmt_t *s, int i)
{
	return i >= 0 && i < pg_col_count(&s->base) && !PQgetisnull(s->res, s->row, i);
}

static int
pg_col_is_null(store_stmt_t *bs, int i)
{
	return !col_ok((pg_stmt_t *)bs, i);
}

/* numeric's binary form: ndigits, weight, sign, dscale, then base-10000
 * digits; the integer part (sum() of BIGINT is numeric). */
static int64_t
numeric_int64(const uint8_t *p, int len)
{
	int nd, weight, sign;
	int64_t v = 0;

	if (len < 8)
		return 0;
	nd = (int)load_be16(p);
	weight = (int16_t)load_be16(p + 2);
	sign = (int)load_be16(p + 4);
	for (int k = 0; k <= weight; k++) {
		int d = k < nd && 8 + 2 * k + 2 <= len ? (int)load_be16(p + 8 + 2 * k) : 0;
		v = v * 10000 + d;
	}
	return sign == 0x4000 ? -v : v;
}

static int64_t
pg_col_int64(store_stmt_t *bs, int i)
{
	pg_stmt_t *s = (pg_stmt_t *)bs;
	const uint8_t *p;
	int len;
	double d;

	if (!col_ok(s, i))
		return 0;
	p = (const uint8_t *)PQgetvalue(s->res, s->row, i);
	len = PQgetlength(s->res, s->row, i);
	switch (PQftype(s->res, i)) {
	case OID_INT8:
		return len == 8 ? (int64_t)load_be64(p) : 0;
	case OID_INT4:
		return len == 4 ? (int32_t)load_be32(p) : 0;
	case OID_INT2:
		return len == 2 ? (int16_t)load_be16(p) : 0;
	case OID_BOOL:
		return len == 1 && p[0] != 0;
	case OID_NUMERIC:
		return numeric_int64(p, len);
	case OID_FLOAT8:
		if (len != 8)
			return 0;
		{
			uint64_t u = load_be64(p);
			memcpy(&d, &u, sizeof(d));
		}
		return (int64_t)d;
	case OID_TEXT:
	case OID_VARCHAR:
		return strtoll((const char *)p, NULL, 10);
	default:
		return 0;
	}
}

static const char *
pg_col_text(store_stmt_t *bs, int i, size_t *len)
{
	pg_stmt_t *s = (pg_stmt_t *)bs;
	const char *t = "";
	size_t n = 0;

	/* libpq ends every value with a NUL, binary ones too */
	if (col_ok(s, i)) {
		t = PQgetvalue(s->res, s->row, i);
		n = (size_t)PQgetlength(s->res, s->row, i);
	}
	if (len != NULL)
		*len = n;
	return t;
}

static const void *
pg_col_blob(store_stmt_t *bs, int i, size_t *len)
{
	size_t n;
	const char *p = pg_col_text(bs, i, &n);

	if (len != NULL)
		*len = n;
	return p;
}

static int
pg_exec(store_conn_t *bc, const char *sql, err_t *err)
{
	return pg_run((pg_conn_t *)bc, sql, err);
}

static const char *const sql_txn[] = {
    [STORE_TXN_BEGIN] = "BEGIN",         [STORE_TXN_COMMIT] = "COMMIT",
    [STORE_TXN_ROLLBACK] = "ROLLBACK",   [STORE_TXN_SAVEPOINT] = "SAVEPOINT job",
    [STORE_TXN_RELEASE] = "RELEASE job", [STORE_TXN_ROLLBACK_TO] = "ROLLBACK TO job",
};

static int
pg_txn(store_conn_t *bc, enum store_be_txn what, err_t *err)
{
	pg_conn_t *c = (pg_conn_t *)bc;

	if (what == STORE_TXN_BEGIN && pg_ensure(c, err) == -1)
		return -1;
	if (what == STORE_TXN_COMMIT) {
		/* COMMIT of a failed transaction answers ROLLBACK, not an error */
		PGresult *r = PQexec(c->pg, "COMMIT");
		int ok =
		    PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
		char m[256];
		PQclear(r);
		if (ok)
			return 0;
		if (conn_bad(c))
			return conn_down(c, err);
		return err_set(err, STB_INTERNAL, "store: COMMIT: %s",
		               pg_msg(PQerrorMessage(c->pg), m, sizeof(m)));
	}
	return pg_run(c, sql_txn[what], err);
}

static int
pg_txn_gone(store_conn_t *bc)
{
	pg_conn_t *c = (pg_conn_t *)bc;
	PGTransactionStatusType t = conn_bad(c) ? PQTRANS_UNKNOWN : PQtransactionStatus(c->pg);

	return t == PQTRANS_IDLE || t == PQTRANS_UNKNOWN;
}

static void
pg_conn_stats(store_conn_t *bc, uint32_t *up, uint64_t *reconnects)
{
	pg_conn_t *c = (pg_conn_t *)bc;

	*up = __atomic_load_n(&c->up, __ATOMIC_RELAXED);
	*reconnects = __atomic_load_n(&c->reconnects, __ATOMIC_RELAXED);
}

static void
pg_close(store_conn_t *bc)
{
	pg_conn_t *c = (pg_conn_t *)bc;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nstmt; i++) {
		PQclear(c->cache[i].res);
		free(c->cache[i].pgsql);
	}
	if (c->pg != NULL)
		PQfinish(c->pg);
	if (c->dsn != NULL) {
		OPENSSL_cleanse(c->dsn, strlen(c->dsn));
		free(c->dsn);
	}
	free(c);
}

static store_conn_t *
pg_open(const char *dsn, enum store_be_mode mode, err_t *err)
{
	pg_conn_t *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->dsn = strdup(dsn)) == NULL) {
		free(c);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	c->base.ops = &store_pg_ops;
	c->mode = mode;
	if (pg_connect(c, err) == -1) {
		pg_close(&c->base);
		return NULL;
	}
	return &c->base;
}

/* The version applied, under the migration lock of the open transaction. */
static int
migrated_version(pg_conn_t *c, err_t *err)
{
	char m[256];
	PGresult *r = PQexec(c->pg, "SELECT COALESCE(max(version), 0) FROM stb_migrations");
	int v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	else
		err_set(err, STB_INTERNAL, "store: stb_migrations: %s",
		        pg_msg(pg_res_msg(r), m, sizeof(m)));
	PQclear(r);
	return v;
}

static int
pg_migrate(store_conn_t *bc, const char *const *migrations, int n, err_t *err)
{
	pg_conn_t *c = (pg_conn_t *)bc;
	char lock[256];

	snprintf(lock, sizeof(lock),
	         "BEGIN; SELECT pg_advisory_xact_lock(%d);"
	         " CREATE TABLE IF NOT EXISTS stb_migrations("
	         "version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
	         MIGRATE_LOCK);
	for (;;) {
		char bump[96];
		int v;

		if (pg_run(c, lock, err) == -1)
			goto fail;
		if ((v = migrated_version(c, err)) == -1)
			goto fail;
		if (v > n) {
			pg_run(c, "ROLLBACK", NULL);
			return err_set(
			    err, STB_INTERNAL,
			    "store: schema version %d is newer than this build knows (%d)", v, n);
		}
		if (v == n)
			return pg_run(c, "COMMIT", err);
		snprintf(bump, sizeof(bump), "INSERT INTO stb_migrations(version) VALUES(%d)",
		         v + 1);
		if (pg_run(c, migrations[v], err) == -1 || pg_run(c, bump, err) == -1) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			pg_run(c, "ROLLBACK", NULL);
			return err_set(err, STB_INTERNAL, "migration %d: %s", v + 1, why);
		}
		if (pg_run(c, "COMMIT", err) == -1)
			return -1;
		log_info("store: schema migrated to version %d", v + 1);
	}
fail:
	pg_run(c, "ROLLBACK", NULL);
	return -1;
}

const store_be_ops_t store_pg_ops = {
    .backend = STORE_PG,
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .txn = pg_txn,
    .txn_gone = pg_txn_gone,
    .conn_stats = pg_conn_stats,
    .exec = pg_exec,
    .stmt = pg_stmt,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .changes = pg_changes,
    .col_count = pg_col_count,
    .col_is_null = pg_col_is_null,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
};
