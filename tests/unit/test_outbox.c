/* Unit tests for outbox: a real store in a temporary directory, the worker
 * on this thread's loop, a fake peer as the send callback and a clock the
 * tests move.  Each test checks the state left in the store. */
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "testutil.h"

#define T0       1700000000000LL /* the fake clock's start, unix ms */
#define SENT_MAX 256

/* ---- the fake peer ---- */

enum peer_mode { PEER_ACK, PEER_FAIL, PEER_HOLD };

struct sent {
	int64_t id;
	int64_t tries;
	char dest[OUTBOX_DEST_MAX + 1];
	char ref[OUTBOX_REF_MAX + 1];
	uint16_t msg_type;
	char body[64];
	outbox_result_fn done;
	void *done_arg;
	int answered;
};

struct peer {
	enum peer_mode mode;
	int fail_status;
	const char *fail_dest; /* non-NULL: only this dest fails, the others are acked */
	int big_ack;           /* acks one byte more than OUTBOX_ACK_MAX */
	struct sent sent[SENT_MAX];
	int n;
	int outstanding, max_outstanding;
};

static struct peer peer;
static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void
peer_answer(struct sent *s, int status)
{
	char ack[32];
	err_t res;

	assert_false(s->answered);
	s->answered = 1;
	peer.outstanding--;
	if (status == STB_OK && peer.big_ack) {
		char *big = calloc(1, OUTBOX_ACK_MAX + 1);

		assert_non_null(big);
		err_clear(&res);
		s->done(s->done_arg, &res, big, OUTBOX_ACK_MAX + 1);
		free(big);
	} else if (status == STB_OK) {
		err_clear(&res);
		snprintf(ack, sizeof(ack), "ack-%lld", (long long)s->id);
		s->done(s->done_arg, &res, ack, strlen(ack));
	} else {
		err_set(&res, status, "peer says no");
		s->done(s->done_arg, &res, NULL, 0);
	}
}

static void
peer_send(void *arg, const outbox_item_t *it, outbox_result_fn done, void *done_arg)
{
	struct sent *s;

	(void)arg;
	assert_true(peer.n < SENT_MAX);
	s = &peer.sent[peer.n++];
	memset(s, 0, sizeof(*s));
	s->id = it->id;
	s->tries = it->tries;
	s->msg_type = it->msg_type;
	snprintf(s->dest, sizeof(s->dest), "%s", it->dest);
	snprintf(s->ref, sizeof(s->ref), "%s", it->ref);
	assert_true(it->body_len < sizeof(s->body));
	memcpy(s->body, it->body, it->body_len);
	s->done = done;
	s->done_arg = done_arg;
	if (++peer.outstanding > peer.max_outstanding)
		peer.max_outstanding = peer.outstanding;
	if (peer.mode == PEER_HOLD)
		return;
	if (peer.mode == PEER_FAIL &&
	    (peer.fail_dest == NULL || strcmp(it->dest, peer.fail_dest) == 0))
		peer_answer(s, peer.fail_status);
	else
		peer_answer(s, STB_OK);
}

/* How many times row id was sent. */
static int
peer_count(int64_t id)
{
	int n = 0;

	for (int i = 0; i < peer.n; i++)
		n += peer.sent[i].id == id;
	return n;
}

/* ---- the environment: store, loop, outbox ---- */

struct env {
	char db[TU_WHERE_MAX];
	store_t *s;
	struct event_base *base;
	mbox_t *mb;
	outbox_t *ob;
	outbox_conf_t conf;
};

static struct env env;

static void
env_store_open(void)
{
	const char *const migs[] = {outbox_schema};
	const char *const migs_pg[] = {outbox_schema_pg};
	err_t err;

	err_clear(&err);
	if ((env.s = tu_store_open(env.db, migs, migs_pg, 1, &err)) == NULL)
		fail_msg("store_open: %s", err.msg);
}

static void
env_outbox_new(void)
{
	err_t err;

	err_clear(&err);
	if ((env.ob = outbox_new(env.s, env.base, env.mb, &env.conf, &err)) == NULL)
		fail_msg("outbox_new: %s", err.msg);
}

static void
env_start(void)
{
	err_t err;

	env_outbox_new();
	assert_int_equal(outbox_start(env.ob, &err), 0);
}

static int
setup(void **state)
{
	if (tu_setup_dir(state) != 0)
		return -1;
	memset(&env, 0, sizeof(env));
	memset(&peer, 0, sizeof(peer));
	fake_now = T0;
	tu_store_where(env.db, sizeof(env.db), tu_dir, "outbox.sqlite");
	env_store_open();
	if ((env.base = event_base_new()) == NULL || (env.mb = mbox_new(env.base)) == NULL)
		return -1;
	env.conf.name = "test";
	env.conf.window = 4;
	env.conf.max_tries = 5;
	env.conf.backoff_min_ms = 100;
	env.conf.backoff_max_ms = 250;
	env.conf.lease_ms = 5000;
	env.conf.poll_ms = 10;
	env.conf.send = peer_send;
	env.conf.clock = fake_clock;
	return 0;
}

static int
teardown(void **state)
{
	/* the order a daemon uses: outbox, store (flushes), then the loop */
	if (env.ob != NULL) {
		outbox_stop(env.ob, 2000);
		outbox_free(env.ob);
	}
	store_close(env.s);
	for (int i = 0; i < peer.n; i++) /* answers after the end are dropped */
		if (!peer.sent[i].answered)
			peer_answer(&peer.sent[i], STB_UNAVAILABLE);
	mbox_free(env.mb);
	event_base_free(env.base);
	return tu_teardown_dir(state);
}

/* Runs the loop until cond holds (10 s at most), then asserts it. */
#define RUN_UNTIL(cond)                                                                            \
	do {                                                                                       \
		tu_guard_t g_;                                                                     \
		tu_guard_start(&g_, env.base, 10);                                                 \
		while (!(cond) && !g_.fired)                                                       \
			event_base_loop(env.base, EVLOOP_ONCE);                                    \
		tu_guard_free(&g_);                                                                \
		assert_true(cond);                                                                 \
	} while (0)

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Runs the loop for ms milliseconds (several polls at poll_ms 10). */
static void
run_for(int ms)
{
	struct timeval tv = {0, ms * 1000};
	int fired = 0;
	struct event *ev = evtimer_new(env.base, on_timer, &fired);

	assert_non_null(ev);
	assert_int_equal(evtimer_add(ev, &tv), 0);
	while (!fired)
		event_base_loop(env.base, EVLOOP_ONCE);
	event_free(ev);
}

static uint64_t
stat_recorded(void)
{
	outbox_stats_t st;

	outbox_get_stats(env.ob, &st);
	return st.delivered + st.retried + st.failed;
}

/* ---- writing rows ---- */

struct enq {
	const char *dest, *ref, *body;
	int64_t now;
	int64_t id;
	int fail; /* the job fails after the enqueue: its transaction rolls back */
};

static int
enq_write(store_conn_t *c, void *arg, err_t *err)
{
	struct enq *q = arg;
	buf_t b;
	int rc;

	buf_init(&b, 1024);
	buf_append(&b, q->body, strlen(q->body));
	rc = outbox_enqueue(env.ob, c, q->dest, 0x0601, &b, q->ref, q->now, &q->id, err);
	buf_free(&b);
	if (rc == 0 && q->fail)
		return err_set(err, STB_CONFLICT, "the state change was refused");
	return rc;
}

static int64_t
enqueue_at(const char *dest, const char *ref, const char *body, int64_t now)
{
	struct enq q = {dest, ref, body, now, 0, 0};
	err_t err;

	if (store_write_sync(env.s, enq_write, &q, &err) == -1)
		fail_msg("enqueue: %s", err.msg);
	assert_true(q.id > 0);
	return q.id;
}

static int64_t
enqueue(const char *dest, const char *ref, const char *body)
{
	return enqueue_at(dest, ref, body, fake_now);
}

struct retry {
	int64_t id;
};

static int
retry_write(store_conn_t *c, void *arg, err_t *err)
{
	return outbox_retry(env.ob, c, ((struct retry *)arg)->id, fake_now, err);
}

static int
retry_sync(int64_t id, err_t *err)
{
	struct retry r = {id};

	return store_write_sync(env.s, retry_write, &r, err);
}

/* ---- reading rows ---- */

struct row {
	int found;
	char state[16];
	int64_t tries, next_at, lease_until, created_at, delivered_at;
	int delivered_null, error_null, ack_null;
	char last_error[ERR_MSG_MAX + 64];
	char ack[64];
};

static const char sql_row[] =
    "SELECT state, tries, next_at, lease_until, created_at, delivered_at, last_error, ack"
    " FROM outbox WHERE id = ?1";

static struct row
row_get(int64_t id)
{
	struct row r;
	store_conn_t *c;
	store_stmt_t *st;
	size_t len;
	const void *p;
	err_t err;

	memset(&r, 0, sizeof(r));
	assert_non_null(c = store_reader(env.s, &err));
	assert_non_null(st = store_stmt(c, sql_row, &err));
	store_bind_int64(st, 1, id);
	if (store_step(st, &err) == STORE_ROW) {
		r.found = 1;
		snprintf(r.state, sizeof(r.state), "%s", store_col_text(st, 0, NULL));
		r.tries = store_col_int64(st, 1);
		r.next_at = store_col_int64(st, 2);
		r.lease_until = store_col_int64(st, 3);
		r.created_at = store_col_int64(st, 4);
		r.delivered_null = store_col_is_null(st, 5);
		r.delivered_at = store_col_int64(st, 5);
		r.error_null = store_col_is_null(st, 6);
		snprintf(r.last_error, sizeof(r.last_error), "%s", store_col_text(st, 6, NULL));
		r.ack_null = store_col_is_null(st, 7);
		p = store_col_blob(st, 7, &len);
		assert_true(len < sizeof(r.ack));
		memcpy(r.ack, p, len);
	}
	store_reset(st);
	return r;
}

static int64_t
query_int(const char *sql)
{
	store_conn_t *c;
	store_stmt_t *st;
	int64_t v = -1;
	err_t err;

	assert_non_null(c = store_reader(env.s, &err));
	assert_non_null(st = store_stmt(c, sql, &err));
	if (store_step(st, &err) == STORE_ROW)
		v = store_col_int64(st, 0);
	store_reset(st);
	return v;
}

static void
assert_counts(const char *dest, int64_t p, int64_t d, int64_t f)
{
	int64_t np = -1, nd = -1, nf = -1;
	store_conn_t *c;
	err_t err;

	assert_non_null(c = store_reader(env.s, &err));
	assert_int_equal(outbox_counts(env.ob, c, dest, &np, &nd, &nf, &err), 0);
	assert_int_equal(np, p);
	assert_int_equal(nd, d);
	assert_int_equal(nf, f);
}

/* ---- tests ---- */

/* A row enqueued by a job that fails is rolled back with it: never sent. */
static void
test_rollback_never_delivered(void **state)
{
	struct enq q = {"app-a", "bind-1", "lost", T0, 0, 1};
	int64_t good;
	err_t err;

	(void)state;
	assert_int_equal(store_write_sync(env.s, enq_write, &q, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	good = enqueue("app-a", "bind-2", "kept");
	env_start();
	RUN_UNTIL(stat_recorded() == 1);
	fake_now += 60000;
	outbox_kick(env.ob);
	run_for(50);
	assert_int_equal(peer.n, 1);
	assert_int_equal(peer.sent[0].id, good);
	assert_string_equal(peer.sent[0].body, "kept");
	/* (the rolled-back id may be handed out again: it never existed) */
	assert_int_equal(query_int("SELECT count(*) FROM outbox"), 1);
	assert_int_equal(query_int("SELECT count(*) FROM outbox WHERE ref = 'bind-1'"), 0);
	assert_counts(NULL, 0, 1, 0);
}

/* Delivered rows keep the peer's ack, when and how often they went. */
static void
test_delivered_records_ack(void **state)
{
	int64_t a, b;
	struct row r;
	char want[32];
	outbox_stats_t st;

	(void)state;
	a = enqueue("app-a", "bind-1", "one");
	b = enqueue("app-b", NULL, "two");
	fake_now += 7;
	env_start();
	RUN_UNTIL(stat_recorded() == 2);
	assert_int_equal(peer.n, 2);
	assert_int_equal(peer.sent[0].id, a); /* due first, sent first */
	assert_string_equal(peer.sent[0].dest, "app-a");
	assert_string_equal(peer.sent[0].ref, "bind-1");
	assert_string_equal(peer.sent[0].body, "one");
	assert_int_equal(peer.sent[0].msg_type, 0x0601);
	assert_int_equal(peer.sent[0].tries, 0);
	assert_string_equal(peer.sent[1].ref, "");
	for (int64_t id = a; id <= b; id++) {
		r = row_get(id);
		assert_string_equal(r.state, "delivered");
		assert_int_equal(r.tries, 1);
		assert_int_equal(r.created_at, T0);
		assert_false(r.delivered_null);
		assert_int_equal(r.delivered_at, T0 + 7);
		assert_int_equal(r.lease_until, 0);
		assert_true(r.error_null);
		snprintf(want, sizeof(want), "ack-%lld", (long long)id);
		assert_string_equal(r.ack, want);
	}
	outbox_get_stats(env.ob, &st);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.claimed, 2);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.retried + st.failed, 0);
}

/* The recorded hook: per row, in the record write, with the new state. */
static int rec_n, rec_delivered, rec_pending;

static int
recorded_hook(void *arg, store_conn_t *c, const outbox_item_t *it, int state, const char *error,
              err_t *err)
{
	(void)arg;
	(void)err;
	assert_non_null(c);
	assert_true(it->id > 0);
	rec_n++;
	if (state == OUTBOX_DELIVERED) {
		assert_null(error);
		rec_delivered++;
	} else if (state == OUTBOX_PENDING) {
		assert_non_null(error);
		rec_pending++;
	}
	return 0;
}

/* Results reported in one turn (a batch's acknowledgement) are recorded in
 * one store write, the hook called for each row inside it. */
static void
test_one_turn_one_record_write(void **state)
{
	store_stats_t before, after;

	(void)state;
	rec_n = rec_delivered = rec_pending = 0;
	for (int i = 0; i < 4; i++)
		enqueue("app-a", NULL, "k");
	env.conf.recorded = recorded_hook;
	env.conf.window = 8;      /* not full: no claim when a slot frees */
	env.conf.poll_ms = 60000; /* nor from the poll */
	peer.mode = PEER_HOLD;
	env_start();
	RUN_UNTIL(peer.n == 4);
	run_for(30); /* the claim's own write is done */
	store_get_stats(env.s, &before);
	for (int i = 0; i < 3; i++)
		peer_answer(&peer.sent[i], STB_OK);
	peer_answer(&peer.sent[3], STB_UNAVAILABLE);
	RUN_UNTIL(stat_recorded() == 4);
	store_get_stats(env.s, &after);
	assert_int_equal(after.writes - before.writes, 1);
	assert_int_equal(rec_n, 4);
	assert_int_equal(rec_delivered, 3);
	assert_int_equal(rec_pending, 1);
	assert_string_equal(row_get(peer.sent[0].id).state, "delivered");
	assert_string_equal(row_get(peer.sent[3].id).state, "pending");
}

/* An ack above OUTBOX_ACK_MAX: delivered all the same, the ack not kept,
 * and the row says so. */
static void
test_big_ack_not_kept(void **state)
{
	int64_t id;
	struct row r;
	char want[64];

	(void)state;
	peer.big_ack = 1;
	id = enqueue("app-a", "bind-1", "one");
	env_start();
	RUN_UNTIL(stat_recorded() == 1);
	r = row_get(id);
	assert_string_equal(r.state, "delivered");
	assert_true(r.ack_null);
	snprintf(want, sizeof(want), "ack of %d bytes not kept", OUTBOX_ACK_MAX + 1);
	assert_string_equal(r.last_error, want);
}

/* A peer that stays down: each retry waits a delay within the jitter
 * bounds, whose ceiling grows, and is not tried before it is due; after
 * max_tries the row is failed with the last error. */
static void
test_backoff_then_failed(void **state)
{
	enum { NROWS = 6, TRIES = 4 };
	int64_t ids[NROWS];
	outbox_stats_t st;
	struct row r;

	(void)state;
	peer.mode = PEER_FAIL;
	peer.fail_status = STB_UNAVAILABLE;
	env.conf.max_tries = TRIES;
	env.conf.window = NROWS;
	for (int i = 0; i < NROWS; i++)
		ids[i] = enqueue("app-a", "bind", "x");
	env_start();
	for (int k = 1; k <= TRIES; k++) {
		int64_t hi = 100LL << (k - 1), lo_at = INT64_MAX, hi_at = 0;

		if (hi > 250)
			hi = 250;
		RUN_UNTIL(stat_recorded() == (uint64_t)(NROWS * k));
		assert_int_equal(peer.n, NROWS * k);
		for (int i = 0; i < NROWS; i++) {
			r = row_get(ids[i]);
			assert_int_equal(r.tries, k);
			assert_int_equal(peer_count(ids[i]), k);
			assert_string_equal(r.last_error, "UNAVAILABLE: peer says no");
			if (k == TRIES) {
				assert_string_equal(r.state, "failed");
				continue;
			}
			assert_string_equal(r.state, "pending");
			assert_int_equal(r.lease_until, 0);
			assert_in_range(r.next_at - fake_now, 100, hi);
			lo_at = r.next_at < lo_at ? r.next_at : lo_at;
			hi_at = r.next_at > hi_at ? r.next_at : hi_at;
		}
		if (k == TRIES)
			break;
		/* not before it is due */
		fake_now = lo_at - 1;
		outbox_kick(env.ob);
		run_for(40);
		assert_int_equal(peer.n, NROWS * k);
		fake_now = hi_at;
		outbox_kick(env.ob);
	}
	run_for(40);
	assert_int_equal(peer.n, NROWS * TRIES);
	outbox_get_stats(env.ob, &st);
	assert_int_equal(st.retried, NROWS * (TRIES - 1));
	assert_int_equal(st.failed, NROWS);
	assert_int_equal(st.delivered, 0);
	assert_counts(NULL, 0, 0, NROWS);
}

/* The rule for permanent refusals: these statuses fail the row at once;
 * others are retried. */
static void
test_permanent_fails_at_once(void **state)
{
	static const struct {
		int status;
		const char *state;
	} cases[] = {
	    {STB_BAD_REQUEST, "failed"}, {STB_FORBIDDEN, "failed"},     {STB_CONFLICT, "failed"},
	    {STB_UNSUPPORTED, "failed"}, {STB_TOO_LARGE, "failed"},     {STB_TIMEOUT, "pending"},
	    {STB_INTERNAL, "pending"},   {STB_RATE_LIMITED, "pending"},
	};
	char want[64];
	struct row r;

	(void)state;
	peer.mode = PEER_FAIL;
	env_start();
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		int64_t id;
		uint64_t before = stat_recorded();

		peer.fail_status = cases[i].status;
		id = enqueue("app-a", "bind", "x");
		outbox_kick(env.ob);
		RUN_UNTIL(stat_recorded() == before + 1);
		r = row_get(id);
		assert_string_equal(r.state, cases[i].state);
		assert_int_equal(r.tries, 1);
		snprintf(want, sizeof(want), "%s: peer says no", stb_status_name(cases[i].status));
		assert_string_equal(r.last_error, want);
		assert_int_equal(outbox_status_permanent(cases[i].status),
		                 strcmp(cases[i].state, "failed") == 0);
	}
	assert_false(outbox_status_permanent(STB_UNAVAILABLE));
	assert_counts(NULL, 3, 0, 5);
}

/* No more than window sends at once, and a row in flight is not sent
 * again even when its lease has expired. */
static void
test_window_bounds_in_flight(void **state)
{
	enum { NROWS = 7, WINDOW = 3 };
	int64_t ids[NROWS];
	outbox_stats_t st;

	(void)state;
	peer.mode = PEER_HOLD;
	env.conf.window = WINDOW;
	env.conf.lease_ms = 1000;
	for (int i = 0; i < NROWS; i++)
		ids[i] = enqueue("app-a", "bind", "x");
	env_start();
	RUN_UNTIL(peer.n == WINDOW);
	run_for(40);
	assert_int_equal(peer.n, WINDOW);
	assert_int_equal(query_int("SELECT count(*) FROM outbox WHERE lease_until = 1700000001000"),
	                 WINDOW);
	outbox_get_stats(env.ob, &st);
	assert_int_equal(st.in_flight, WINDOW);
	/* leases run out while the sends are still out */
	fake_now += 2000;
	outbox_kick(env.ob);
	run_for(40);
	assert_int_equal(peer.n, WINDOW);
	/* each answer frees one slot */
	for (int i = 0; i < NROWS; i++) {
		peer_answer(&peer.sent[i], STB_OK);
		RUN_UNTIL(peer.n == (i + 1 + WINDOW < NROWS ? i + 1 + WINDOW : NROWS));
	}
	RUN_UNTIL(stat_recorded() == NROWS);
	assert_int_equal(peer.max_outstanding, WINDOW);
	for (int i = 0; i < NROWS; i++) {
		assert_int_equal(peer_count(ids[i]), 1);
		assert_string_equal(row_get(ids[i]).state, "delivered");
	}
	assert_counts(NULL, 0, NROWS, 0);
}

/* Stopped and closed mid-flight, then reopened: what was pending goes at
 * once, what was claimed when its lease expires, each exactly once more;
 * results that arrive after the stop are dropped. */
static void
test_restart(void **state)
{
	int64_t a, b, c;
	struct row r;
	err_t err;

	(void)state;
	peer.mode = PEER_HOLD;
	env.conf.window = 2;
	a = enqueue("app-a", "bind-a", "a");
	b = enqueue("app-a", "bind-b", "b");
	c = enqueue("app-a", "bind-c", "c");
	env_start();
	RUN_UNTIL(peer.n == 2);
	outbox_stop(env.ob, 50); /* the sends do not answer: the wait ends */
	outbox_free(env.ob);
	env.ob = NULL;
	store_close(env.s);
	peer_answer(&peer.sent[0], STB_OK); /* too late: dropped */
	peer_answer(&peer.sent[1], STB_UNAVAILABLE);

	env_store_open();
	r = row_get(a);
	assert_string_equal(r.state, "pending");
	assert_int_equal(r.tries, 0);
	assert_int_equal(r.lease_until, T0 + 5000);
	assert_int_equal(row_get(b).lease_until, T0 + 5000);
	assert_int_equal(row_get(c).lease_until, 0);

	peer.mode = PEER_ACK;
	env_start();
	RUN_UNTIL(peer.n == 3);
	assert_int_equal(peer.sent[2].id, c);
	run_for(40);
	assert_int_equal(peer.n, 3); /* a and b are leased still */
	fake_now = T0 + 4999;
	outbox_kick(env.ob);
	run_for(40);
	assert_int_equal(peer.n, 3);
	fake_now = T0 + 5000;
	outbox_kick(env.ob);
	RUN_UNTIL(stat_recorded() == 3);
	fake_now += 600000;
	outbox_kick(env.ob);
	run_for(40);
	assert_int_equal(peer.n, 5);
	assert_int_equal(peer_count(a), 2);
	assert_int_equal(peer_count(b), 2);
	assert_int_equal(peer_count(c), 1);
	for (int64_t id = a; id <= c; id++) {
		r = row_get(id);
		assert_string_equal(r.state, "delivered");
		assert_int_equal(r.tries, 1); /* the dropped results never counted */
	}
	assert_counts(NULL, 0, 3, 0);
	/* outbox_start twice is refused */
	assert_int_equal(outbox_start(env.ob, &err), -1);
}

struct late {
	struct event *ev;
	int idx;
};

static void
late_answer(evutil_socket_t fd, short what, void *arg)
{
	struct late *l = arg;

	(void)fd;
	(void)what;
	peer_answer(&peer.sent[l->idx], STB_OK);
}

/* outbox_stop waits for a send that answers while it waits, and records
 * it; it claims nothing new meanwhile. */
static void
test_stop_waits_for_in_flight(void **state)
{
	struct timeval tv = {0, 30000};
	struct late l = {NULL, 0};
	int64_t a, b;

	(void)state;
	peer.mode = PEER_HOLD;
	env.conf.window = 1;
	a = enqueue("app-a", "bind-a", "a");
	b = enqueue("app-a", "bind-b", "b");
	env_start();
	RUN_UNTIL(peer.n == 1);
	assert_non_null(l.ev = evtimer_new(env.base, late_answer, &l));
	assert_int_equal(evtimer_add(l.ev, &tv), 0);
	outbox_stop(env.ob, 5000);
	event_free(l.ev);
	assert_int_equal(peer.n, 1);
	assert_string_equal(row_get(a).state, "delivered");
	assert_string_equal(row_get(b).state, "pending");
	assert_int_equal(row_get(b).lease_until, 0);
}

/* An operator puts a failed row back; it goes again with fresh tries. */
static void
test_retry(void **state)
{
	int64_t id, other;
	struct row r;
	err_t err;

	(void)state;
	peer.mode = PEER_FAIL;
	peer.fail_status = STB_FORBIDDEN;
	id = enqueue("app-a", "bind", "x");
	other = enqueue_at("app-a", "later", "y", T0 + 3600000);
	env_start();
	RUN_UNTIL(stat_recorded() == 1);
	assert_string_equal(row_get(id).state, "failed");

	assert_int_equal(retry_sync(other, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	assert_int_equal(retry_sync(id + 100, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);

	fake_now += 1000;
	peer.mode = PEER_HOLD;
	assert_int_equal(retry_sync(id, &err), 0);
	r = row_get(id);
	assert_string_equal(r.state, "pending");
	assert_int_equal(r.tries, 0);
	assert_int_equal(r.next_at, T0 + 1000);
	outbox_kick(env.ob);
	RUN_UNTIL(peer.n == 2);
	assert_int_equal(peer.sent[1].id, id);
	assert_int_equal(peer.sent[1].tries, 0);
	peer_answer(&peer.sent[1], STB_OK);
	RUN_UNTIL(stat_recorded() == 2);
	r = row_get(id);
	assert_string_equal(r.state, "delivered");
	assert_int_equal(r.tries, 1);
	assert_string_equal(r.last_error, "FORBIDDEN: peer says no"); /* the history stays */
	assert_int_equal(retry_sync(id, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
}

/* Counts per destination, the admin list, the metrics text. */
static void
test_counts_list_metrics(void **state)
{
	store_conn_t *c;
	store_stmt_t *st;
	cJSON *o;
	char *txt;
	buf_t m;
	err_t err;
	int64_t fid;
	int n = 0;

	(void)state;
	peer.mode = PEER_FAIL;
	peer.fail_status = STB_FORBIDDEN;
	peer.fail_dest = "app-b";
	enqueue("app-a", "bind-1", "1");
	enqueue("app-a", "bind-2", "2");
	fid = enqueue("app-b", "bind-3", "3");
	enqueue_at("app-a", "bind-4", "4", T0 + 3600000); /* not due */
	env_start();
	RUN_UNTIL(stat_recorded() == 3);
	assert_counts(NULL, 1, 2, 1);
	assert_counts("app-a", 1, 2, 0);
	assert_counts("app-b", 0, 0, 1);
	assert_counts("app-z", 0, 0, 0);

	assert_non_null(c = store_reader(env.s, &err));
	assert_non_null(st = store_stmt(c, outbox_list_sql, &err));
	store_bind_int64(st, 1, 10);
	store_bind_str(st, 2, "failed");
	while (store_step(st, &err) == STORE_ROW) {
		assert_non_null(o = outbox_list_row(st, NULL));
		assert_non_null(txt = cJSON_PrintUnformatted(o));
		assert_int_equal(cJSON_GetObjectItem(o, "id")->valuedouble, (double)fid);
		assert_string_equal(cJSON_GetObjectItem(o, "dest")->valuestring, "app-b");
		assert_string_equal(cJSON_GetObjectItem(o, "ref")->valuestring, "bind-3");
		assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "failed");
		assert_int_equal(cJSON_GetObjectItem(o, "tries")->valuedouble, 1);
		assert_string_equal(cJSON_GetObjectItem(o, "last_error")->valuestring,
		                    "FORBIDDEN: peer says no");
		assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "delivered_at")));
		assert_int_equal(cJSON_GetObjectItem(o, "created_at")->valuedouble, (double)T0);
		assert_non_null(cJSON_GetObjectItem(o, "next_at"));
		free(txt);
		cJSON_Delete(o);
		n++;
	}
	store_reset(st);
	assert_int_equal(n, 1);
	store_bind_int64(st, 1, 10);
	store_bind_str(st, 2, "delivered");
	for (n = 0; store_step(st, &err) == STORE_ROW; n++) {
		assert_non_null(o = outbox_list_row(st, NULL));
		assert_false(cJSON_IsNull(cJSON_GetObjectItem(o, "delivered_at")));
		cJSON_Delete(o);
	}
	store_reset(st);
	assert_int_equal(n, 2);

	buf_init(&m, 4096);
	assert_int_equal(outbox_metrics(env.ob, &m), 0);
	assert_int_equal(buf_append(&m, "", 1), 0);
	assert_non_null(
	    strstr((char *)m.data, "stbcred_outbox_delivered_total{outbox=\"test\"} 2\n"));
	assert_non_null(strstr((char *)m.data, "stbcred_outbox_failed_total{outbox=\"test\"} 1\n"));
	assert_non_null(
	    strstr((char *)m.data, "stbcred_outbox_retried_total{outbox=\"test\"} 0\n"));
	assert_non_null(strstr((char *)m.data, "stbcred_outbox_in_flight{outbox=\"test\"} 0\n"));
	buf_free(&m);

	assert_string_equal(outbox_state_name(OUTBOX_FAILED), "failed");
	assert_string_equal(outbox_state_name(7), "unknown");
	assert_int_equal(outbox_state_parse("delivered"), OUTBOX_DELIVERED);
	assert_int_equal(outbox_state_parse("gone"), -1);
}

struct bad_enq {
	const char *dest, *ref;
	size_t body_len;
	size_t body_max;
	int status;
};

static int
bad_enq_write(store_conn_t *c, void *arg, err_t *err)
{
	struct bad_enq *q = arg;
	buf_t b;
	int rc;

	buf_init(&b, q->body_max);
	if (q->body_len > 0) {
		assert_int_equal(buf_reserve(&b, q->body_len), 0);
		memset(b.data, 'x', q->body_len);
		b.len = q->body_len;
	}
	rc = outbox_enqueue(NULL, c, q->dest, 1, &b, q->ref, fake_now, NULL, err);
	buf_free(&b);
	return rc;
}

/* Bounds: a refused enqueue writes nothing; an empty body is a body. */
static void
test_enqueue_bounds(void **state)
{
	char longname[OUTBOX_DEST_MAX + 2];
	struct bad_enq cases[] = {
	    {NULL, NULL, 1, 16, STB_BAD_REQUEST},
	    {"", NULL, 1, 16, STB_BAD_REQUEST},
	    {longname, NULL, 1, 16, STB_BAD_REQUEST},
	    {"app-a", longname, 1, 16, STB_BAD_REQUEST},
	    {"app-a", NULL, OUTBOX_BODY_MAX + 1, OUTBOX_BODY_MAX + 1, STB_TOO_LARGE},
	    {"app-a", NULL, OUTBOX_BODY_MAX, OUTBOX_BODY_MAX, STB_OK},
	    {"app-a", NULL, 0, 16, STB_OK},
	};
	outbox_conf_t bad;
	err_t err;

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		int rc = store_write_sync(env.s, bad_enq_write, &cases[i], &err);
		assert_int_equal(rc, cases[i].status == STB_OK ? 0 : -1);
		if (rc == -1)
			assert_int_equal(err.status, cases[i].status);
	}
	assert_int_equal(query_int("SELECT count(*) FROM outbox"), 2);
	assert_int_equal(query_int("SELECT count(*) FROM outbox WHERE length(body) = 0"), 1);

	bad = env.conf;
	bad.window = OUTBOX_WINDOW_MAX + 1;
	assert_null(outbox_new(env.s, env.base, env.mb, &bad, &err));
	bad = env.conf;
	bad.backoff_max_ms = 50; /* below the minimum */
	assert_null(outbox_new(env.s, env.base, env.mb, &bad, &err));
	bad = env.conf;
	bad.send = NULL;
	assert_null(outbox_new(env.s, env.base, env.mb, &bad, &err));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_rollback_never_delivered),  T(test_delivered_records_ack),
	    T(test_one_turn_one_record_write), T(test_big_ack_not_kept),
	    T(test_backoff_then_failed),       T(test_permanent_fails_at_once),
	    T(test_window_bounds_in_flight),   T(test_restart),
	    T(test_stop_waits_for_in_flight),  T(test_retry),
	    T(test_counts_list_metrics),       T(test_enqueue_bounds),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
