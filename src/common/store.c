#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define STMT_CACHE 72 /* a daemon's statements, plus the writer's 6 below */
#define BATCH_MAX  512

struct store_conn {
	sqlite3 *db;
	size_t nstmt;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
	store_conn_t *next; /* reader list */
};

struct store_job {
	store_write_fn fn;
	store_done_fn done;
	void *arg;
	mbox_t *mb;
	err_t err;
	/* store_write_sync waits on this, under the store's mutex */
	int sync_done;
	int dropped; /* ended the whole transaction: not run again */
	struct store_job *next;
};

struct store {
	char *path;
	store_conn_t *writer;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv_job, cv_done;
	struct store_job *head, *tail;
	uint32_t queued;
	int closing;
	pthread_key_t reader_key;
	store_conn_t *readers;
	/* stats, read by other threads with relaxed atomics */
	uint64_t commits, writes, failed;
	hist_t commit_hist;
};

sqlite3 *
store_conn_db(store_conn_t *c)
{
	return c->db;
}

int
store_err(store_conn_t *c, const char *what, err_t *err)
{
	return err_set(err, STB_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(c->db));
}

sqlite3_stmt *
store_stmt(store_conn_t *c, const char *sql, err_t *err)
{
	sqlite3_stmt *st;

	for (size_t i = 0; i < c->nstmt; i++)
		if (c->cache[i].sql == sql) {
			st = c->cache[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		store_err(c, "prepare", err);
		return NULL;
	}
	if (c->nstmt < STMT_CACHE) {
		c->cache[c->nstmt].sql = sql;
		c->cache[c->nstmt].st = st;
		c->nstmt++;
		return st;
	}
	/* a full cache means a caller builds SQL at run time: refuse loudly */
	sqlite3_finalize(st);
	err_set(err, STB_INTERNAL, "store: statement cache full");
	return NULL;
}

int
store_exec(store_conn_t *c, const char *sql, err_t *err)
{
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
static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT job";
static const char sql_release[] = "RELEASE job";
static const char sql_rollback_to[] = "ROLLBACK TO job";

static int
store_run(store_conn_t *c, const char *sql, err_t *err)
{
	sqlite3_stmt *st = store_stmt(c, sql, err);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c, sql, err);
	return 0;
}

static store_conn_t *
conn_open(const char *path, int flags, err_t *err)
{
	store_conn_t *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err_set(err, STB_INTERNAL, "store: %s: %s", path,
		        c->db ? sqlite3_errmsg(c->db) : "cannot open");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 5000);
	if (store_exec(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;", err) == -1) {
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

static void
conn_close(store_conn_t *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nstmt; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close(c->db);
	free(c);
}

static int
store_migrate(store_conn_t *c, const char *const *migrations, int n, err_t *err)
{
	sqlite3_stmt *st;
	int version, rc;

	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return store_err(c, "user_version", err);
	rc = sqlite3_step(st);
	version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return store_err(c, "user_version", err);
	if (version > n)
		return err_set(err, STB_INTERNAL,
		               "store: schema version %d is newer than this build knows (%d)",
		               version, n);
	for (int v = version; v < n; v++) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version=%d;", v + 1);
		if (store_exec(c, "BEGIN IMMEDIATE", err) == -1)
			return -1;
		if (store_exec(c, migrations[v], err) == -1 || store_exec(c, bump, err) == -1) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			store_exec(c, "ROLLBACK", NULL);
			return err_set(err, STB_INTERNAL, "migration %d: %s", v + 1, why);
		}
		if (store_exec(c, "COMMIT", err) == -1)
			return -1;
		log_info("store: schema migrated to version %d", v + 1);
	}
	return 0;
}

static void
job_finish(void *arg)
{
	struct store_job *j = arg;

	j->done(j->arg, &j->err);
	free(j);
}

/* One transaction over the batch, a savepoint per job.  A job whose
 * failure ends the whole transaction (RAISE(ROLLBACK), disk full) took the
 * others' work with it: it keeps its error and the rest run again. */
static int
store_try_batch(store_t *s, struct store_job *batch, err_t *cerr)
{
	struct store_job *j;

	if (store_run(s->writer, sql_begin, cerr) == -1)
		return -1;
	for (j = batch; j != NULL; j = j->next) {
		if (j->dropped)
			continue;
		err_clear(&j->err);
		if (store_run(s->writer, sql_savepoint, &j->err) == -1)
			continue;
		if (j->fn(s->writer, j->arg, &j->err) == 0) {
			store_run(s->writer, sql_release, NULL);
			continue;
		}
		if (j->err.status == STB_OK)
			err_set(&j->err, STB_INTERNAL, "store write failed");
		if (sqlite3_get_autocommit(store_conn_db(s->writer))) {
			j->dropped = 1;
			return 1; /* run the batch again without j */
		}
		store_run(s->writer, sql_rollback_to, NULL);
		store_run(s->writer, sql_release, NULL);
	}
	if (store_run(s->writer, sql_commit, cerr) == -1) {
		store_run(s->writer, sql_rollback, NULL);
		return -1;
	}
	return 0;
}

static void
store_run_batch(store_t *s, struct store_job *batch)
{
	struct store_job *j, *next;
	uint64_t t0 = now_ns();
	int rc;
	err_t cerr;
	size_t n = 0, nfail = 0;

	err_clear(&cerr);
	while ((rc = store_try_batch(s, batch, &cerr)) == 1)
		;
	if (rc == -1)
		log_warnx("store: group commit failed: %s", cerr.msg);
	else {
		ctr_add(&s->commits, 1);
		hist_observe(&s->commit_hist, (now_ns() - t0) / 1000);
	}
	for (j = batch; j != NULL; j = j->next) {
		if (rc == -1)
			j->err = cerr;
		n++;
		if (j->err.status != STB_OK)
			nfail++;
	}
	/* counters first: a completion may read them */
	ctr_add(&s->writes, n - nfail);
	ctr_add(&s->failed, nfail);
	for (j = batch; j != NULL; j = next) {
		next = j->next;
		if (j->mb == NULL) { /* store_write_sync */
			pthread_mutex_lock(&s->mu);
			j->sync_done = 1;
			pthread_cond_broadcast(&s->cv_done);
			pthread_mutex_unlock(&s->mu);
		} else if (mbox_post(j->mb, job_finish, j) == -1) {
			log_warnx("store: cannot hand a completion back; request dropped");
			free(j);
		}
	}
}

static void *
store_writer_main(void *arg)
{
	store_t *s = arg;

	for (;;) {
		struct store_job *batch, *last;
		size_t n = 1;

		pthread_mutex_lock(&s->mu);
		while (s->head == NULL && !s->closing)
			pthread_cond_wait(&s->cv_job, &s->mu);
		if (s->head == NULL) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		batch = last = s->head;
		while (last->next != NULL && n < BATCH_MAX) {
			last = last->next;
			n++;
		}
		s->head = last->next;
		if (s->head == NULL)
			s->tail = NULL;
		last->next = NULL;
		__atomic_fetch_sub(&s->queued, (uint32_t)n, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&s->mu);
		store_run_batch(s, batch);
	}
}

store_t *
store_open(const char *path, const char *const *migrations, int nmigrations, err_t *err)
{
	store_t *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_job, NULL);
	pthread_cond_init(&s->cv_done, NULL);
	pthread_key_create(&s->reader_key, NULL);
	s->writer = conn_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
	if (s->writer == NULL)
		goto fail;
	if (store_exec(s->writer, "PRAGMA journal_mode=WAL", err) == -1 ||
	    store_migrate(s->writer, migrations, nmigrations, err) == -1)
		goto fail;
	if (pthread_create(&s->thread, NULL, store_writer_main, s) != 0) {
		err_set(err, STB_INTERNAL, "store: cannot start the writer thread");
		goto fail;
	}
	return s;
fail:
	conn_close(s->writer);
	pthread_key_delete(s->reader_key);
	free(s->path);
	free(s);
	return NULL;
}

static int
store_enqueue(store_t *s, struct store_job *j, err_t *err)
{
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		return err_set(err, STB_UNAVAILABLE, "store is shutting down");
	}
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	__atomic_fetch_add(&s->queued, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&s->cv_job);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int
store_write(store_t *s, mbox_t *mb, store_write_fn fn, store_done_fn done, void *arg, err_t *err)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	j->mb = mb;
	if (store_enqueue(s, j, err) == -1) {
		free(j);
		return -1;
	}
	return 0;
}

int
store_write_sync(store_t *s, store_write_fn fn, void *arg, err_t *err)
{
	struct store_job *j = calloc(1, sizeof(*j));
	int rc;

	if (j == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	j->fn = fn;
	j->arg = arg;
	if (store_enqueue(s, j, err) == -1) {
		free(j);
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	while (!j->sync_done)
		pthread_cond_wait(&s->cv_done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	rc = j->err.status == STB_OK ? 0 : -1;
	if (rc == -1 && err != NULL)
		*err = j->err;
	free(j);
	return rc;
}

store_conn_t *
store_reader(store_t *s, err_t *err)
{
	store_conn_t *c = pthread_getspecific(s->reader_key);

	if (c != NULL)
		return c;
	if ((c = conn_open(s->path, SQLITE_OPEN_READONLY, err)) == NULL)
		return NULL;
	pthread_setspecific(s->reader_key, c);
	pthread_mutex_lock(&s->mu);
	c->next = s->readers;
	s->readers = c;
	pthread_mutex_unlock(&s->mu);
	return c;
}

void
store_close(store_t *s)
{
	store_conn_t *c, *next;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_cond_signal(&s->cv_job);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	for (c = s->readers; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	conn_close(s->writer);
	pthread_key_delete(s->reader_key);
	pthread_cond_destroy(&s->cv_job);
	pthread_cond_destroy(&s->cv_done);
	pthread_mutex_destroy(&s->mu);
	free(s->path);
	free(s);
}

void
store_get_stats(store_t *s, store_stats_t *st)
{
	memset(st, 0, sizeof(*st));
	st->commits = ctr_get(&s->commits);
	st->writes = ctr_get(&s->writes);
	st->failed = ctr_get(&s->failed);
	st->queued = __atomic_load_n(&s->queued, __ATOMIC_RELAXED);
	hist_merge(&st->commit_latency, &s->commit_hist);
}
