/* store: the backend-neutral half of store.h: the writer thread and its
 * group commits, the per-thread readers, the stats, and the statement calls
 * handed to the connection's backend (store_be.h). */
#include "store.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_be.h"

#define BATCH_MAX 512

/* A thread's read connection, on the store's list so that close finds it. */
struct store_reader {
	store_conn_t *c;
	struct store_reader *next;
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
	const store_be_ops_t *ops;
	char *path; /* the SQLite file or the DSN */
	store_conn_t *writer;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv_job, cv_done;
	struct store_job *head, *tail;
	uint32_t queued;
	int closing;
	pthread_key_t reader_key;
	struct store_reader *readers;
	/* stats, read by other threads with relaxed atomics */
	uint64_t commits, writes, failed;
	hist_t commit_hist;
};

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

	if (s->ops->txn(s->writer, STORE_TXN_BEGIN, cerr) == -1)
		return -1;
	for (j = batch; j != NULL; j = j->next) {
		if (j->dropped)
			continue;
		err_clear(&j->err);
		if (s->ops->txn(s->writer, STORE_TXN_SAVEPOINT, &j->err) == -1)
			continue;
		/* a job that returns 0 when its savepoint cannot be released
		 * (PostgreSQL, after a failed statement it ignored: the
		 * transaction takes nothing more) fails alone like any other */
		if (j->fn(s->writer, j->arg, &j->err) == 0 &&
		    s->ops->txn(s->writer, STORE_TXN_RELEASE, &j->err) == 0)
			continue;
		if (j->err.status == STB_OK)
			err_set(&j->err, STB_INTERNAL, "store write failed");
		if (s->ops->txn_gone(s->writer)) {
			j->dropped = 1;
			return 1; /* run the batch again without j */
		}
		s->ops->txn(s->writer, STORE_TXN_ROLLBACK_TO, NULL);
		s->ops->txn(s->writer, STORE_TXN_RELEASE, NULL);
	}
	if (s->ops->txn(s->writer, STORE_TXN_COMMIT, cerr) == -1) {
		s->ops->txn(s->writer, STORE_TXN_ROLLBACK, NULL);
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

int
store_backend_parse(const char *name)
{
	if (strcmp(name, "sqlite") == 0)
		return STORE_SQLITE;
	if (strcmp(name, "postgresql") == 0)
		return STORE_PG;
	return -1;
}

store_t *
store_open(const char *path, const char *const *migrations, int nmigrations, err_t *err)
{
	return store_open_be(STORE_SQLITE, path, migrations, nmigrations, err);
}

enum store_backend
store_get_backend(const store_t *s)
{
	return s->ops->backend;
}

store_t *
store_open_be(enum store_backend be, const char *path, const char *const *migrations,
              int nmigrations, err_t *err)
{
	store_t *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	s->ops = be == STORE_PG ? &store_pg_ops : &store_sqlite_ops;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_job, NULL);
	pthread_cond_init(&s->cv_done, NULL);
	pthread_key_create(&s->reader_key, NULL);
	s->writer = s->ops->open(path, STORE_BE_WRITER, err);
	if (s->writer == NULL || s->ops->migrate(s->writer, migrations, nmigrations, err) == -1)
		goto fail;
	if (pthread_create(&s->thread, NULL, store_writer_main, s) != 0) {
		err_set(err, STB_INTERNAL, "store: cannot start the writer thread");
		goto fail;
	}
	return s;
fail:
	if (s->writer != NULL)
		s->ops->close(s->writer);
	if (s->path != NULL)
		OPENSSL_cleanse(s->path, strlen(s->path)); /* a DSN may hold a password */
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
	struct store_reader *r;

	if (c != NULL)
		return c;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if ((r->c = s->ops->open(s->path, STORE_BE_READER, err)) == NULL) {
		free(r);
		return NULL;
	}
	if (pthread_setspecific(s->reader_key, r->c) != 0) {
		s->ops->close(r->c);
		free(r);
		err_set(err, STB_INTERNAL, "store: cannot keep the thread's reader");
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	r->next = s->readers;
	s->readers = r;
	pthread_mutex_unlock(&s->mu);
	return r->c;
}

void
store_close(store_t *s)
{
	struct store_reader *r, *next;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_cond_signal(&s->cv_job);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	for (r = s->readers; r != NULL; r = next) {
		next = r->next;
		s->ops->close(r->c);
		free(r);
	}
	s->ops->close(s->writer);
	OPENSSL_cleanse(s->path, strlen(s->path));
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
	s->ops->conn_stats(s->writer, &st->connected, &st->reconnects);
}

/* store.h's statement calls: to the connection's backend */
int
store_exec(store_conn_t *c, const char *sql, err_t *err)
{
	return c->ops->exec(c, sql, err);
}

store_stmt_t *
store_stmt(store_conn_t *c, const char *sql, err_t *err)
{
	return c->ops->stmt(c, sql, err);
}

int
store_bind_int64(store_stmt_t *st, int i, int64_t v)
{
	return st->ops->bind_int64(st, i, v);
}

int
store_bind_text(store_stmt_t *st, int i, const char *p, size_t len)
{
	return st->ops->bind_text(st, i, p, len);
}

int
store_bind_str(store_stmt_t *st, int i, const char *p)
{
	return st->ops->bind_text(st, i, p, p != NULL ? strlen(p) : 0);
}

int
store_bind_blob(store_stmt_t *st, int i, const void *p, size_t len)
{
	return st->ops->bind_blob(st, i, p, len);
}

int
store_bind_null(store_stmt_t *st, int i)
{
	return st->ops->bind_null(st, i);
}

int
store_step(store_stmt_t *st, err_t *err)
{
	return st->ops->step(st, err);
}

void
store_reset(store_stmt_t *st)
{
	st->ops->reset(st);
}

int64_t
store_changes(const store_stmt_t *st)
{
	return st->ops->changes(st);
}

int
store_col_count(const store_stmt_t *st)
{
	return st->ops->col_count(st);
}

int
store_col_is_null(store_stmt_t *st, int i)
{
	return st->ops->col_is_null(st, i);
}

int64_t
store_col_int64(store_stmt_t *st, int i)
{
	return st->ops->col_int64(st, i);
}

const char *
store_col_text(store_stmt_t *st, int i, size_t *len)
{
	return st->ops->col_text(st, i, len);
}

const void *
store_col_blob(store_stmt_t *st, int i, size_t *len)
{
	return st->ops->col_blob(st, i, len);
}
