/* Unit tests for store: migrations, the group-commit writer and readers.
 * unit.store runs them on SQLite, unit.store.pg on PostgreSQL (the
 * pg_server fixture); where the backends differ (durability settings, the
 * backend's own error messages, a bad file path) each case says so. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

static const char *const migs[] = {
    "CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT NOT NULL);",
    "CREATE TABLE runs(n INTEGER NOT NULL); INSERT INTO runs VALUES(1);",
};

static const char sql_put[] = "INSERT INTO kv(k, v) VALUES(?1, ?2)";

struct fixture {
	char dir[TU_DIR_MAX];
	char db[TU_WHERE_MAX];
};

/* what the backend under test says: SQLite's words or PostgreSQL's */
static const char *
be_says(const char *sqlite, const char *pg)
{
	return tu_store_backend() == STORE_PG ? pg : sqlite;
}

static int
setup(void **state)
{
	static struct fixture fx;

	if (tu_mkdtemp(fx.dir, sizeof(fx.dir)) != 0)
		return -1;
	tu_store_where(fx.db, sizeof(fx.db), fx.dir, "test.sqlite");
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_rmtree(fx->dir);
}

static store_t *
open_ok(const char *db, int nmig)
{
	err_t err;
	store_t *s;

	err_clear(&err);
	s = tu_store_open(db, migs, migs, nmig, &err);
	if (s == NULL)
		fail_msg("store_open: %s", err.msg);
	return s;
}

/* The statement sql (a literal: the cache is keyed by its address) on
 * this thread's reader. */
static store_stmt_t *
reader_stmt(store_t *s, const char *sql)
{
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;

	assert_non_null(c = store_reader(s, &err));
	if ((st = store_stmt(c, sql, &err)) == NULL)
		fail_msg("%s: %s", sql, err.msg);
	return st;
}

/* One integer from the first row of st; -1 when no row. */
static long long
stmt_int(store_stmt_t *st)
{
	long long v = -1;
	err_t err;

	if (store_step(st, &err) == STORE_ROW)
		v = store_col_int64(st, 0);
	store_reset(st);
	return v;
}

/* One integer from a query on this thread's reader; -1 when no row. */
static long long
query_int(store_t *s, const char *sql)
{
	return stmt_int(reader_stmt(s, sql));
}

/* The text of the first row of a query on this thread's reader. */
static void
query_text(store_t *s, const char *sql, char *out, size_t size)
{
	store_stmt_t *st = reader_stmt(s, sql);
	err_t err;

	assert_int_equal(store_step(st, &err), STORE_ROW);
	snprintf(out, size, "%s", store_col_text(st, 0, NULL));
	store_reset(st);
}

/* Opens db: both migrations ran, and each only once. */
static void
assert_fully_migrated(const char *db)
{
	store_t *s = open_ok(db, 2);

	assert_int_equal(tu_store_version(s), 2);
	assert_int_equal(query_int(s, "SELECT count(*) FROM runs"), 1);
	store_close(s);
}

static int
has_key(store_t *s, const char *k)
{
	store_stmt_t *st = reader_stmt(s, "SELECT count(*) FROM kv WHERE k = ?1");

	assert_int_equal(store_bind_str(st, 1, k), 0);
	return stmt_int(st) == 1;
}

static int
put_row(store_conn_t *c, const char *k, const char *v, err_t *err)
{
	store_stmt_t *st = store_stmt(c, sql_put, err);

	if (st == NULL)
		return -1;
	store_bind_str(st, 1, k);
	store_bind_str(st, 2, v);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

/* ---- migrations ---- */

static void
test_open_migrates_once(void **state)
{
	struct fixture *fx = *state;
	store_t *s;
	char mode[16] = "";

	s = open_ok(fx->db, 2);
	assert_int_equal(tu_store_version(s), 2);
	assert_int_equal(query_int(s, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(query_int(s, "SELECT count(*) FROM kv"), 0);
	if (tu_store_backend() == STORE_PG) {
		/* PostgreSQL: an answer only after a durable COMMIT */
		query_text(s, "SELECT current_setting('synchronous_commit')", mode, sizeof(mode));
		assert_string_equal(mode, "on");
	} else {
		/* DESIGN 2: WAL and synchronous=FULL */
		assert_int_equal(query_int(s, "PRAGMA synchronous"), 2);
		query_text(s, "PRAGMA journal_mode", mode, sizeof(mode));
		assert_string_equal(mode, "wal");
	}
	store_close(s);

	/* reopening does not run the migrations again */
	assert_fully_migrated(fx->db);
}

static void
test_user_version_advances(void **state)
{
	struct fixture *fx = *state;
	store_t *s;

	s = open_ok(fx->db, 1);
	assert_int_equal(tu_store_version(s), 1);
	assert_int_equal(tu_store_has_table(s, "runs"), 0);
	assert_int_equal(tu_store_has_table(s, "kv"), 1);
	store_close(s);
	assert_fully_migrated(fx->db);
}

static void
test_newer_schema_refused(void **state)
{
	struct fixture *fx = *state;
	store_t *s;
	err_t err;

	store_close(open_ok(fx->db, 2));
	err_clear(&err);
	s = tu_store_open(fx->db, migs, migs, 1, &err);
	assert_null(s);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "newer"));
	assert_non_null(strstr(err.msg, "2"));
	/* the refused open left the database alone */
	s = open_ok(fx->db, 2);
	assert_int_equal(tu_store_version(s), 2);
	store_close(s);
}

static void
test_failed_migration_rolls_back(void **state)
{
	static const char *const bad[] = {
	    "CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT NOT NULL);",
	    "CREATE TABLE half(x INTEGER); THIS IS NOT SQL;",
	};
	struct fixture *fx = *state;
	store_t *s;
	err_t err;

	err_clear(&err);
	assert_null(tu_store_open(fx->db, bad, bad, 2, &err));
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "migration 2"));
	/* migration 1 stays committed, nothing of migration 2 does */
	s = open_ok(fx->db, 1);
	assert_int_equal(tu_store_version(s), 1);
	assert_int_equal(tu_store_has_table(s, "half"), 0);
	store_close(s);
}

static void
test_open_bad_path(void **state)
{
	struct fixture *fx = *state;
	char path[TU_WHERE_MAX + 32];
	err_t err;

	err_clear(&err);
	if (tu_store_backend() == STORE_PG) {
		/* PostgreSQL: a database that does not exist (libpq takes the
		 * last dbname) is a server not there for us, UNAVAILABLE; the DSN
		 * itself is never in the message */
		snprintf(path, sizeof(path), "%s dbname=tu_no_such_db", fx->db);
		assert_null(tu_store_open(path, migs, migs, 2, &err));
		assert_int_equal(err.status, STB_UNAVAILABLE);
		assert_non_null(strstr(err.msg, "tu_no_such_db"));
		assert_null(strstr(err.msg, "host="));
		return;
	}
	snprintf(path, sizeof(path), "%s/no/such/dir/db.sqlite", fx->dir);
	assert_null(store_open(path, migs, 2, &err));
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, path));
}

/* ---- synchronous writes ---- */

struct put {
	const char *k, *v;
	int fail_status; /* after the insert: 0, or a status to fail with */
	int fail_silent; /* 1: fail without setting err; 2: end the whole
	                  * transaction (SQLite: INSERT OR ROLLBACK on a taken
	                  * key; PostgreSQL: a ROLLBACK); 3: ignore a failed
	                  * statement and return 0 */
};

static int
job_put(store_conn_t *c, void *arg, err_t *err)
{
	struct put *p = arg;

	if (put_row(c, p->k, p->v, err) == -1)
		return -1;
	if (p->fail_status)
		return err_set(err, p->fail_status, "refusing %s", p->k);
	if (p->fail_silent == 3) {
		(void)put_row(c, "a", "again", err); /* taken: fails, ignored */
		err_clear(err);
		return 0;
	}
	if (p->fail_silent == 2 && tu_store_backend() == STORE_PG) {
		if (store_exec(c, "ROLLBACK", err) == -1)
			return -1;
		return err_set(err, STB_INTERNAL, "ended the transaction");
	}
	if (p->fail_silent == 2) {
		if (store_exec(c, "INSERT OR ROLLBACK INTO kv(k, v) VALUES('a', 'again')", err) ==
		    0)
			fail_msg("INSERT OR ROLLBACK on a taken key succeeded");
		return -1;
	}
	if (p->fail_silent)
		return -1;
	return 0;
}

static void
test_write_sync_commits(void **state)
{
	struct fixture *fx = *state;
	struct put p = {"alpha", "1", 0, 0};
	store_t *s = open_ok(fx->db, 2);
	char v[16];
	err_t err;

	err_clear(&err);
	assert_int_equal(store_write_sync(s, job_put, &p, &err), 0);
	query_text(s, "SELECT v FROM kv WHERE k = 'alpha'", v, sizeof(v));
	assert_string_equal(v, "1");
	store_close(s);

	/* durable: a new store on the same file sees it */
	s = open_ok(fx->db, 2);
	assert_true(has_key(s, "alpha"));
	store_close(s);
}

static void
test_write_sync_failures(void **state)
{
	static const struct {
		const char *name;
		struct put p;
		int want;
		const char *word;
	} cases[] = {
	    {"job fails with its own status",
	     {"beta", "1", STB_CONFLICT, 0},
	     STB_CONFLICT,
	     "refusing beta"},
	    {"job fails without a status",
	     {"gamma", "1", 0, 1},
	     STB_INTERNAL,
	     "store write failed"},
	    {"constraint violation", {"dup", "2", 0, 0}, STB_INTERNAL, NULL},
	};
	struct fixture *fx = *state;
	struct put dup = {"dup", "1", 0, 0};
	store_t *s = open_ok(fx->db, 2);
	err_t err;

	assert_int_equal(store_write_sync(s, job_put, &dup, &err), 0);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct put p = cases[i].p;
		err_clear(&err);
		if (store_write_sync(s, job_put, &p, &err) != -1)
			fail_msg("%s: succeeded", cases[i].name);
		const char *word = cases[i].word ? cases[i].word : be_says("UNIQUE", "unique");
		if (err.status != cases[i].want || strstr(err.msg, word) == NULL)
			fail_msg("%s: status %d \"%s\"", cases[i].name, err.status, err.msg);
	}
	/* the failed jobs' inserts are gone, the earlier row is intact */
	assert_false(has_key(s, "beta"));
	assert_false(has_key(s, "gamma"));
	assert_int_equal(query_int(s, "SELECT count(*) FROM kv"), 1);
	assert_int_equal(query_int(s, "SELECT v FROM kv WHERE k = 'dup'"), 1);
	store_close(s);
}

/* The writer adds a batch to writes/failed only after it has handed out the
 * completions, so a caller may look a moment too early: give the counters
 * up to five seconds to reach at least the wanted values. */
static void
stats_settle(store_t *s, store_stats_t *st, uint64_t writes, uint64_t failed)
{
	for (int i = 0; i < 500; i++) {
		store_get_stats(s, st);
		if (st->writes >= writes && st->failed >= failed)
			return;
		usleep(10000);
	}
}

static void
test_stats_count_commits_and_writes(void **state)
{
	struct fixture *fx = *state;
	struct put ok1 = {"a", "1", 0, 0}, ok2 = {"b", "1", 0, 0},
	           bad = {"c", "1", STB_CONFLICT, 0};
	store_t *s = open_ok(fx->db, 2);
	store_stats_t st;
	err_t err;

	store_get_stats(s, &st);
	assert_int_equal(st.commits, 0);
	assert_int_equal(st.writes, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(store_write_sync(s, job_put, &ok1, &err), 0);
	assert_int_equal(store_write_sync(s, job_put, &bad, &err), -1);
	assert_int_equal(store_write_sync(s, job_put, &ok2, &err), 0);
	stats_settle(s, &st, 2, 1);
	/* each sync write is its own group commit, the failed job's too */
	assert_int_equal(st.commits, 3);
	assert_int_equal(st.writes, 2);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.commit_latency.count, 3);
	store_close(s);
}

/* ---- batches from an event loop ---- */

#define NJOBS    5 /* the gate job, then four in one batch */
#define WAIT_SEC 20

struct batch;

struct row_job {
	struct batch *b;
	struct put put;
	int gate;
	int done;
	err_t err;
	pthread_t thread;
};

struct batch {
	store_t *s;
	struct event_base *base;
	mbox_t *mb;
	pthread_t loop_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int gate_started, gate_open, gate_timeout;
	int submit_failed;
	struct row_job jobs[NJOBS];
	int ndone;
	tu_guard_t guard;
};

/* Sets one of the gate flags of b and wakes its waiters. */
static void
gate_set(struct batch *b, int *flag)
{
	pthread_mutex_lock(&b->mu);
	*flag = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* Waits up to WAIT_SEC for one of the gate flags of b; notes a timeout. */
static void
gate_wait(struct batch *b, const int *flag)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_SEC;
	pthread_mutex_lock(&b->mu);
	while (!*flag)
		if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT) {
			b->gate_timeout = 1;
			break;
		}
	pthread_mutex_unlock(&b->mu);
}

static int
job_row(store_conn_t *c, void *arg, err_t *err)
{
	struct row_job *j = arg;
	struct batch *b = j->b;

	if (j->gate) {
		gate_set(b, &b->gate_started);
		gate_wait(b, &b->gate_open);
	}
	return job_put(c, &j->put, err);
}

static void
done_row(void *arg, const err_t *err)
{
	struct row_job *j = arg;

	j->done++;
	j->err = *err;
	j->thread = pthread_self();
	if (++j->b->ndone == NJOBS)
		event_base_loopbreak(j->b->base);
}

/* Runs on the loop: the gate job first, the rest while it blocks the writer. */
static void
submit(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;
	err_t err;

	(void)fd;
	(void)what;
	if (store_write(b->s, b->mb, job_row, done_row, &b->jobs[0], &err) == -1)
		b->submit_failed = 1;
	gate_wait(b, &b->gate_started);
	for (int i = 1; i < NJOBS; i++)
		if (store_write(b->s, b->mb, job_row, done_row, &b->jobs[i], &err) == -1)
			b->submit_failed = 1;
	gate_set(b, &b->gate_open);
}

static void
run_batch(void **state, const struct put *puts, int want_status, const char *want_msg)
{
	struct fixture *fx = *state;
	struct timeval now = {0, 0};
	store_stats_t before, after;
	struct batch b;

	memset(&b, 0, sizeof(b));
	b.s = open_ok(fx->db, 2);
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	for (int i = 0; i < NJOBS; i++) {
		b.jobs[i].b = &b;
		b.jobs[i].put = puts[i];
		b.jobs[i].gate = i == 0;
	}
	assert_non_null(b.base = event_base_new());
	assert_non_null(b.mb = mbox_new(b.base));
	tu_guard_start(&b.guard, b.base, WAIT_SEC * 2);
	assert_int_equal(event_base_once(b.base, -1, EV_TIMEOUT, submit, &b, &now), 0);
	store_get_stats(b.s, &before);

	assert_int_equal(pthread_create(&b.loop_thread, NULL, tu_loop_main, b.base), 0);
	pthread_join(b.loop_thread, NULL);

	assert_false(b.guard.fired);
	assert_false(b.gate_timeout);
	assert_false(b.submit_failed);
	for (int i = 0; i < NJOBS; i++) {
		const struct row_job *j = &b.jobs[i];
		if (j->done != 1)
			fail_msg("job %s: done ran %d times", j->put.k, j->done);
		/* completions run on the loop that submitted */
		if (!pthread_equal(j->thread, b.loop_thread))
			fail_msg("job %s: done ran on another thread", j->put.k);
		if (j->put.fail_status || j->put.fail_silent) {
			assert_int_equal(j->err.status, want_status);
			if (strstr(j->err.msg, want_msg) == NULL)
				fail_msg("job %s: error '%s' lacks '%s'", j->put.k, j->err.msg,
				         want_msg);
			assert_false(has_key(b.s, j->put.k));
		} else {
			if (j->err.status != STB_OK)
				fail_msg("job %s: %s", j->put.k, j->err.msg);
			assert_true(has_key(b.s, j->put.k));
		}
	}
	/* the gate's batch and one batch for the four others */
	stats_settle(b.s, &after, before.writes + 4, before.failed + 1);
	assert_int_equal(after.commits - before.commits, 2);
	assert_int_equal(after.writes - before.writes, 4);
	assert_int_equal(after.failed - before.failed, 1);
	assert_int_equal(after.queued, 0);

	store_close(b.s);
	mbox_free(b.mb);
	tu_guard_free(&b.guard);
	event_base_free(b.base);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mu);
}

static void
test_batch_failing_job_rolls_back_alone(void **state)
{
	static const struct put puts[NJOBS] = {
	    {"gate", "1", 0, 0}, {"a", "1", 0, 0}, {"b", "1", STB_CONFLICT, 0},
	    {"c", "1", 0, 0},    {"d", "1", 0, 0},
	};

	run_batch(state, puts, STB_CONFLICT, "refusing b");
}

/* A job that ends the whole transaction takes the others' work with it;
 * they must run again and commit, and only that job fails. */
static void
test_batch_job_ending_transaction_fails_alone(void **state)
{
	static const struct put puts[NJOBS] = {
	    {"gate", "1", 0, 0}, {"a", "1", 0, 0}, {"b", "1", 0, 2},
	    {"c", "1", 0, 0},    {"d", "1", 0, 0},
	};

	run_batch(state, puts, STB_INTERNAL,
	          be_says("UNIQUE constraint failed", "ended the transaction"));
}

/* A job that ignores its statement's failure and returns 0: on PostgreSQL
 * the transaction takes nothing more after a failed statement, so that job
 * fails alone (its RELEASE fails) and the others commit.  SQLite goes on
 * after a failed statement: there the job succeeds (not run). */
static void
test_batch_job_ignoring_failed_statement_fails_alone(void **state)
{
	static const struct put puts[NJOBS] = {
	    {"gate", "1", 0, 0}, {"a", "1", 0, 0}, {"b", "1", 0, 3},
	    {"c", "1", 0, 0},    {"d", "1", 0, 0},
	};

	if (tu_store_backend() != STORE_PG)
		skip();
	run_batch(state, puts, STB_INTERNAL, "aborted");
}

struct counted {
	int done, ok;
};

static void
done_count(void *arg, const err_t *err)
{
	struct counted *c = arg;

	c->done++;
	c->ok += err->status == STB_OK;
}

static int
job_numbered(store_conn_t *c, void *arg, err_t *err)
{
	static const char sql[] = "INSERT INTO runs(n) VALUES(?1)";
	store_stmt_t *st = store_stmt(c, sql, err);

	(void)arg;
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, 2);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void
test_close_finishes_queued_writes(void **state)
{
	struct fixture *fx = *state;
	struct event_base *base;
	struct counted cnt = {0, 0};
	store_t *s = open_ok(fx->db, 2);
	mbox_t *mb;
	err_t err;

	assert_non_null(base = event_base_new());
	assert_non_null(mb = mbox_new(base));
	for (int i = 0; i < 50; i++)
		assert_int_equal(store_write(s, mb, job_numbered, done_count, &cnt, &err), 0);
	store_close(s);
	/* the loop never ran: completions wait in the mbox until it is freed */
	assert_int_equal(cnt.done, 0);
	mbox_free(mb);
	assert_int_equal(cnt.done, 50);
	assert_int_equal(cnt.ok, 50);
	event_base_free(base);

	s = open_ok(fx->db, 2);
	assert_int_equal(query_int(s, "SELECT count(*) FROM runs WHERE n = 2"), 50);
	store_close(s);
}

/* ---- statements and readers ---- */

static const char sql_echo[] = "SELECT ?1";

static void
test_stmt_cache_resets_and_unbinds(void **state)
{
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	store_stmt_t *st1, *st2;
	store_conn_t *c;
	err_t err;

	assert_non_null(c = store_reader(s, &err));
	assert_non_null(st1 = store_stmt(c, sql_echo, &err));
	assert_int_equal(store_bind_int64(st1, 1, 42), 0);
	assert_int_equal(store_step(st1, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st1, 0), 42);
	/* left mid-step and bound: the cache hands it back reset and unbound */
	assert_non_null(st2 = store_stmt(c, sql_echo, &err));
	assert_ptr_equal(st1, st2);
	assert_int_equal(store_step(st2, &err), STORE_ROW);
	assert_true(store_col_is_null(st2, 0));
	store_reset(st2);

	err_clear(&err);
	if (tu_store_backend() == STORE_PG) {
		/* PostgreSQL prepares at the first step, with the types of the
		 * first binds (store_pg.c): the step fails */
		assert_non_null(st1 = store_stmt(c, "SELEKT nonsense", &err));
		assert_int_equal(store_step(st1, &err), STORE_ERROR);
		assert_int_equal(err.status, STB_INTERNAL);
		assert_non_null(strstr(err.msg, "syntax error"));
	} else {
		assert_null(store_stmt(c, "SELEKT nonsense", &err));
		assert_int_equal(err.status, STB_INTERNAL);
		assert_non_null(strstr(err.msg, "prepare"));
	}
	store_close(s);
}

/* ---- the statement API: binds, columns, results ---- */

static const char sql_t_ddl[] = "CREATE TABLE IF NOT EXISTS t(i INTEGER, s TEXT, b BLOB, z)";
static const char sql_t_put[] = "INSERT INTO t(i, s, b, z) VALUES(?1, ?2, ?3, ?4)";
static const char sql_t_get[] = "SELECT i, s, b, z FROM t ORDER BY rowid";
/* PostgreSQL: typed columns, and the insertion order kept in n */
static const char sql_t_ddl_pg[] =
    "CREATE TABLE IF NOT EXISTS t(n BIGSERIAL, i BIGINT, s TEXT, b BYTEA, z BIGINT)";
static const char sql_t_get_pg[] = "SELECT i, s, b, z FROM t ORDER BY n";
static const char sql_t_touch[] = "UPDATE t SET i = i WHERE i IS NOT NULL";
static const uint8_t blob_nul[] = {0x00, 'a', 0x00, 0xff, 0x00};

/* Three rows: values (text bound by length, a blob of NULs), empty text
 * and blob, then NULLs through NULL pointers. */
static int
job_types(store_conn_t *c, void *arg, err_t *err)
{
	store_stmt_t *st;

	(void)arg;
	if (store_exec(c, be_says(sql_t_ddl, sql_t_ddl_pg), err) == -1 ||
	    (st = store_stmt(c, sql_t_put, err)) == NULL)
		return -1;
	if (store_bind_int64(st, 1, INT64_MIN) == -1 ||
	    store_bind_text(st, 2, "hello, world", 5) == -1 ||
	    store_bind_blob(st, 3, blob_nul, sizeof(blob_nul)) == -1 ||
	    store_bind_null(st, 4) == -1)
		return err_set(err, STB_INTERNAL, "a bind failed");
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (store_changes(st) != 1)
		return err_set(err, STB_INTERNAL, "insert changed %lld",
		               (long long)store_changes(st));
	/* the same statement back from the cache, ?4 left unbound */
	if ((st = store_stmt(c, sql_t_put, err)) == NULL)
		return -1;
	if (store_changes(st) != 0)
		return err_set(err, STB_INTERNAL, "a fetched statement has changes");
	store_bind_int64(st, 1, INT64_MAX);
	store_bind_text(st, 2, "", 0);
	store_bind_blob(st, 3, blob_nul, 0);
	if (store_step(st, err) != STORE_DONE || (st = store_stmt(c, sql_t_put, err)) == NULL)
		return -1;
	store_bind_null(st, 1);
	store_bind_str(st, 2, NULL);
	store_bind_blob(st, 3, NULL, 5);
	store_bind_int64(st, 4, 7);
	if (store_step(st, err) != STORE_DONE || (st = store_stmt(c, sql_t_touch, err)) == NULL ||
	    store_step(st, err) != STORE_DONE)
		return -1;
	if (store_changes(st) != 2)
		return err_set(err, STB_INTERNAL, "update changed %lld",
		               (long long)store_changes(st));
	return 0;
}

static void
assert_null_col(store_stmt_t *st, int i)
{
	size_t len = 99;
	const char *t;
	const void *b;

	assert_true(store_col_is_null(st, i));
	assert_int_equal(store_col_int64(st, i), 0);
	t = store_col_text(st, i, &len);
	assert_non_null(t);
	assert_string_equal(t, "");
	assert_int_equal(len, 0);
	len = 99;
	b = store_col_blob(st, i, &len);
	assert_non_null(b);
	assert_int_equal(len, 0);
}

static void
test_stmt_types_round_trip(void **state)
{
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	store_stmt_t *st;
	const char *t;
	const void *b;
	size_t len;
	err_t err;

	err_clear(&err);
	if (store_write_sync(s, job_types, NULL, &err) == -1)
		fail_msg("job_types: %s", err.msg);
	st = reader_stmt(s, tu_store_backend() == STORE_PG ? sql_t_get_pg : sql_t_get);

	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_count(st), 4);
	assert_false(store_col_is_null(st, 0));
	assert_true(store_col_int64(st, 0) == INT64_MIN);
	t = store_col_text(st, 1, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(t, "hello", 5);
	assert_int_equal(t[5], '\0'); /* text is NUL-terminated at len */
	b = store_col_blob(st, 2, &len);
	assert_int_equal(len, sizeof(blob_nul));
	assert_memory_equal(b, blob_nul, sizeof(blob_nul));
	assert_null_col(st, 3);

	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_true(store_col_int64(st, 0) == INT64_MAX);
	/* empty text and an empty blob are values, not NULL */
	assert_false(store_col_is_null(st, 1));
	assert_string_equal(store_col_text(st, 1, &len), "");
	assert_int_equal(len, 0);
	assert_false(store_col_is_null(st, 2));
	assert_non_null(store_col_blob(st, 2, &len));
	assert_int_equal(len, 0);
	assert_null_col(st, 3); /* left unbound */

	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_null_col(st, 0);
	assert_null_col(st, 1);
	assert_null_col(st, 2);
	assert_int_equal(store_col_int64(st, 3), 7);

	assert_int_equal(store_step(st, &err), STORE_DONE);
	/* no row: no columns, and reads are NULL; so is a bad index */
	assert_int_equal(store_col_count(st), 0);
	assert_null_col(st, 0);
	store_reset(st);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_null_col(st, 4);
	assert_null_col(st, -1);
	store_reset(st);
	store_close(s);
}

struct unique_res {
	int rc_pk, rc_unique, rc_notnull;
	err_t pk, unique, notnull;
};

static const char sql_uq_ddl[] = "CREATE TABLE IF NOT EXISTS uq(a TEXT UNIQUE)";
static const char sql_uq_put[] = "INSERT INTO uq(a) VALUES(?1)";

/* A taken primary key, a taken UNIQUE column and a NOT NULL column given
 * NULL; the job itself succeeds, so the first rows commit. */
static int
job_unique(store_conn_t *c, void *arg, err_t *err)
{
	struct unique_res *u = arg;
	store_stmt_t *st;

	if (put_row(c, "u1", "1", err) == -1 || (st = store_stmt(c, sql_put, err)) == NULL)
		return -1;
	store_bind_str(st, 1, "u1");
	store_bind_str(st, 2, "2");
	u->rc_pk = store_step(st, &u->pk);
	if ((st = store_stmt(c, sql_put, err)) == NULL)
		return -1;
	store_bind_str(st, 1, "u2");
	store_bind_null(st, 2);
	u->rc_notnull = store_step(st, &u->notnull);
	if (store_exec(c, sql_uq_ddl, err) == -1)
		return -1;
	for (int i = 0; i < 2; i++) {
		if ((st = store_stmt(c, sql_uq_put, err)) == NULL)
			return -1;
		store_bind_str(st, 1, "same");
		u->rc_unique = store_step(st, &u->unique);
	}
	return 0;
}

/* PostgreSQL: after a failed statement a transaction takes no more (until
 * the job's savepoint is rolled back), so each refusal is a job of its own
 * that fails, as the daemons' jobs do after STORE_UNIQUE. */
struct unique_one {
	struct unique_res *u;
	int which; /* 0 primary key, 1 NOT NULL, 2 UNIQUE */
};

static int
job_unique_one(store_conn_t *c, void *arg, err_t *err)
{
	struct unique_one *o = arg;
	store_stmt_t *st;

	if (o->which == 2) {
		if ((st = store_stmt(c, sql_uq_put, err)) == NULL)
			return -1;
		store_bind_str(st, 1, "same");
		o->u->rc_unique = store_step(st, &o->u->unique);
		return -1;
	}
	if ((st = store_stmt(c, sql_put, err)) == NULL)
		return -1;
	store_bind_str(st, 1, o->which == 0 ? "u1" : "u2");
	if (o->which == 0) {
		store_bind_str(st, 2, "2");
		o->u->rc_pk = store_step(st, &o->u->pk);
	} else {
		store_bind_null(st, 2);
		o->u->rc_notnull = store_step(st, &o->u->notnull);
	}
	return -1;
}

static int
job_unique_setup(store_conn_t *c, void *arg, err_t *err)
{
	store_stmt_t *st;

	(void)arg;
	if (put_row(c, "u1", "1", err) == -1 || store_exec(c, sql_uq_ddl, err) == -1 ||
	    (st = store_stmt(c, sql_uq_put, err)) == NULL)
		return -1;
	store_bind_str(st, 1, "same");
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void
test_stmt_unique_violation(void **state)
{
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	struct unique_res u;
	err_t err;

	memset(&u, 0, sizeof(u));
	err_clear(&err);
	if (tu_store_backend() == STORE_PG) {
		if (store_write_sync(s, job_unique_setup, NULL, &err) == -1)
			fail_msg("job_unique_setup: %s", err.msg);
		for (int i = 0; i < 3; i++) {
			struct unique_one o = {&u, i};
			assert_int_equal(store_write_sync(s, job_unique_one, &o, &err), -1);
		}
	} else if (store_write_sync(s, job_unique, &u, &err) == -1) {
		fail_msg("job_unique: %s", err.msg);
	}
	/* UNIQUE and PRIMARY KEY: STORE_UNIQUE, err INTERNAL with the reason
	 * and the statement */
	assert_int_equal(u.rc_pk, STORE_UNIQUE);
	assert_int_equal(u.pk.status, STB_INTERNAL);
	assert_non_null(strstr(u.pk.msg, be_says("UNIQUE constraint failed: kv.k", "kv_pkey")));
	assert_non_null(strstr(u.pk.msg, "INSERT INTO kv"));
	assert_int_equal(u.rc_unique, STORE_UNIQUE);
	assert_int_equal(u.unique.status, STB_INTERNAL);
	assert_non_null(strstr(u.unique.msg, be_says("uq.a", "uq_a_key")));
	/* other constraints are plain errors */
	assert_int_equal(u.rc_notnull, STORE_ERROR);
	assert_int_equal(u.notnull.status, STB_INTERNAL);
	assert_non_null(strstr(u.notnull.msg, be_says("NOT NULL", "not-null")));
	/* the refused statements changed nothing, the job (SQLite) or the one
	 * before them (PostgreSQL) committed */
	assert_int_equal(query_int(s, "SELECT count(*) FROM kv"), 1);
	assert_int_equal(query_int(s, "SELECT v FROM kv WHERE k = 'u1'"), 1);
	assert_int_equal(query_int(s, "SELECT count(*) FROM uq"), 1);
	store_close(s);
}

static const char sql_abs[] = "SELECT abs(?1)";
static const char sql_two_rows[] = "SELECT 1 UNION ALL SELECT 2 ORDER BY 1";

static void
test_stmt_errors(void **state)
{
	static char many[80][24]; /* distinct addresses: one cache entry each */
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	store_stmt_t *st;
	store_conn_t *c;
	err_t err;
	int i;

	/* an error while running: the backend's message and the statement */
	st = reader_stmt(s, sql_abs);
	store_bind_int64(st, 1, INT64_MIN);
	err_clear(&err);
	assert_int_equal(store_step(st, &err), STORE_ERROR);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, be_says("integer overflow", "out of range")));
	assert_non_null(strstr(err.msg, "SELECT abs(?1)"));
	/* the failed statement is usable again */
	st = reader_stmt(s, sql_abs);
	store_bind_int64(st, 1, -3);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st, 0), 3);
	store_reset(st);

	/* a bind to a parameter the statement lacks fails, and so does the
	 * step after it, without running; a fresh fetch forgets it */
	st = reader_stmt(s, sql_echo);
	assert_int_equal(store_bind_int64(st, 2, 1), -1);
	assert_int_equal(store_bind_int64(st, 1, 5), 0);
	err_clear(&err);
	assert_int_equal(store_step(st, &err), STORE_ERROR);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "bind ?2"));
	st = reader_stmt(s, sql_echo);
	store_bind_int64(st, 1, 5);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st, 0), 5);
	store_reset(st);

	/* no statement at all */
	assert_non_null(c = store_reader(s, &err));
	err_clear(&err);
	assert_null(store_stmt(c, "  -- nothing\n ", &err));
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "no statement"));

	/* SQL built at run time fills the cache: refused, not evicted */
	err_clear(&err);
	for (i = 0; i < (int)TU_NELEM(many); i++) {
		snprintf(many[i], sizeof(many[i]), "SELECT %d", i);
		if (store_stmt(c, many[i], &err) == NULL)
			break;
	}
	assert_true(i < (int)TU_NELEM(many));
	assert_non_null(strstr(err.msg, "cache full"));
	/* what is cached still works */
	st = reader_stmt(s, sql_abs);
	store_bind_int64(st, 1, 2);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	store_reset(st);
	store_close(s);
}

static void
test_stmt_cache_and_reset_restart(void **state)
{
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	store_stmt_t *st;
	err_t err;

	/* half read, then fetched again: from the first row */
	st = reader_stmt(s, sql_two_rows);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st, 0), 1);
	assert_ptr_equal(reader_stmt(s, sql_two_rows), st);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st, 0), 1);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_int_equal(store_col_int64(st, 0), 2);
	assert_int_equal(store_step(st, &err), STORE_DONE);

	/* store_reset restarts and keeps the bindings */
	st = reader_stmt(s, sql_echo);
	store_bind_str(st, 1, "kept");
	assert_int_equal(store_step(st, &err), STORE_ROW);
	store_reset(st);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	assert_string_equal(store_col_text(st, 0, NULL), "kept");
	store_reset(st);
	store_close(s);
}

/* An optional filter, "?1 IS NULL OR k = ?1", run first with a text NULL:
 * PostgreSQL prepares at that first run and must learn ?1's type from the
 * bind call, not from the NULL (it cannot infer it from the SQL). */
static const char sql_opt_filter[] = "SELECT count(*) FROM kv WHERE (?1 IS NULL OR k = ?1)";

static void
test_stmt_null_text_param_first(void **state)
{
	struct fixture *fx = *state;
	struct put a = {"a", "1", 0, 0}, b = {"b", "2", 0, 0};
	store_t *s = open_ok(fx->db, 2);
	store_stmt_t *st;
	err_t err;

	assert_int_equal(store_write_sync(s, job_put, &a, &err), 0);
	assert_int_equal(store_write_sync(s, job_put, &b, &err), 0);
	st = reader_stmt(s, sql_opt_filter);
	store_bind_str(st, 1, NULL);
	err_clear(&err);
	if (store_step(st, &err) != STORE_ROW)
		fail_msg("a text NULL first: %s", err.msg);
	assert_int_equal(store_col_int64(st, 0), 2);
	store_reset(st);
	st = reader_stmt(s, sql_opt_filter);
	store_bind_str(st, 1, "b");
	assert_int_equal(stmt_int(st), 1);
	store_close(s);
}

struct cached {
	store_stmt_t *first, *second;
};

static int
job_cache(store_conn_t *c, void *arg, err_t *err)
{
	struct cached *k = arg;

	k->first = store_stmt(c, sql_put, err);
	k->second = store_stmt(c, sql_put, err);
	return k->first == NULL ? -1 : 0;
}

static void
test_writer_stmt_cache(void **state)
{
	struct fixture *fx = *state;
	struct cached k = {NULL, NULL};
	store_t *s = open_ok(fx->db, 2);
	err_t err;

	assert_int_equal(store_write_sync(s, job_cache, &k, &err), 0);
	assert_non_null(k.first);
	assert_ptr_equal(k.first, k.second);
	store_close(s);
}

struct reader_arg {
	store_t *s;
	store_conn_t *c;
};

static void *
reader_main(void *arg)
{
	struct reader_arg *r = arg;
	err_t err;

	r->c = store_reader(r->s, &err);
	return NULL;
}

static void
test_reader_per_thread_and_read_only(void **state)
{
	struct fixture *fx = *state;
	store_t *s = open_ok(fx->db, 2);
	struct reader_arg r = {s, NULL};
	store_conn_t *c1, *c2;
	pthread_t t;
	err_t err;

	assert_non_null(c1 = store_reader(s, &err));
	assert_non_null(c2 = store_reader(s, &err));
	assert_ptr_equal(c1, c2);
	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	pthread_join(t, NULL);
	assert_non_null(r.c);
	assert_ptr_not_equal(r.c, c1);
	/* readers cannot write */
	err_clear(&err);
	assert_int_equal(store_exec(c1, "INSERT INTO kv VALUES('x', 'y')", &err), -1);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, be_says("readonly", "read-only")));
	assert_false(has_key(s, "x"));
	store_close(s);
}

static int
group_setup(void **state)
{
	(void)state;
	return evthread_use_pthreads();
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_open_migrates_once),
	    T(test_user_version_advances),
	    T(test_newer_schema_refused),
	    T(test_failed_migration_rolls_back),
	    T(test_open_bad_path),
	    T(test_write_sync_commits),
	    T(test_write_sync_failures),
	    T(test_stats_count_commits_and_writes),
	    T(test_batch_failing_job_rolls_back_alone),
	    T(test_batch_job_ending_transaction_fails_alone),
	    T(test_batch_job_ignoring_failed_statement_fails_alone),
	    T(test_close_finishes_queued_writes),
	    T(test_stmt_cache_resets_and_unbinds),
	    T(test_writer_stmt_cache),
	    T(test_stmt_types_round_trip),
	    T(test_stmt_unique_violation),
	    T(test_stmt_errors),
	    T(test_stmt_cache_and_reset_restart),
	    T(test_stmt_null_text_param_first),
	    T(test_reader_per_thread_and_read_only),
	};

	return cmocka_run_group_tests_name("store", tests, group_setup, NULL);
}
