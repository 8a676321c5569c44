/* Unit tests for refusal: anonymous refusals counted per source and
 * action, summarised once per take, memory bounded under a flood of
 * sources, metrics totals, and the flush into a real audit chain. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refusal.h"
#include "testutil.h"

static const char *const migs[] = {audit_schema};
static const char *const migs_pg[] = {audit_schema_pg};
static const uint8_t key[AUDIT_KEY_LEN] = {1, 2, 3};

static const refusal_sum_t *
find(const refusal_sum_t *v, size_t n, const char *source, const char *action)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].source, source) == 0 && strcmp(v[i].action, action) == 0)
			return &v[i];
	return NULL;
}

static uint64_t
reason_n(const refusal_sum_t *s, const char *reason)
{
	for (int i = 0; i < s->nreasons; i++)
		if (strcmp(s->reasons[i].reason, reason) == 0)
			return s->reasons[i].n;
	return 0;
}

static void
test_count_and_take(void **state)
{
	refusal_t *r = refusal_new(16, NULL);
	refusal_sum_t *v;
	const refusal_sum_t *s;
	size_t n;
	char line[512];

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < 4100; i++)
		refusal_count(r, "127.0.0.1:5000", "login_start", "NOT_FOUND", "nobody");
	for (int i = 0; i < 23; i++)
		refusal_count(r, "127.0.0.1:5001", "login_start", "FORBIDDEN", "stb-s");
	refusal_count(r, "10.0.0.9:1", "login_start", "NOT_FOUND", NULL);
	refusal_count(r, "127.0.0.1:5000", "login_finish", "REPLAY", "stb-1");
	assert_int_equal(refusal_sources(r), 3);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_non_null(s = find(v, n, "127.0.0.1", "login_start"));
	assert_int_equal(s->total, 4123);
	assert_int_equal(reason_n(s, "NOT_FOUND"), 4100);
	assert_int_equal(reason_n(s, "FORBIDDEN"), 23);
	assert_string_equal(s->sample, "stb-s");
	refusal_format(s, s->since + 60, line, sizeof(line));
	assert_string_equal(line, "refused 4123 login_start from 127.0.0.1 in the last 60 s: "
	                          "4100 NOT_FOUND, 23 FORBIDDEN (last: stb-s)");
	assert_non_null(s = find(v, n, "10.0.0.9", "login_start"));
	refusal_format(s, s->since, line, sizeof(line));
	assert_string_equal(line,
	                    "refused 1 login_start from 10.0.0.9 in the last 0 s: 1 NOT_FOUND");
	assert_non_null(find(v, n, "127.0.0.1", "login_finish"));
	free(v);
	/* the take starts a new interval */
	assert_int_equal(refusal_sources(r), 0);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	/* a cut line stays a string */
	refusal_count(r, "127.0.0.1:1", "login_start", "NOT_FOUND", NULL);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	refusal_format(&v[0], v[0].since, line, 10);
	assert_string_equal(line, "refused 1");
	free(v);
	refusal_free(r);
}

/* More reasons than slots: the rest are "other". */
static void
test_reasons_bounded(void **state)
{
	static const char *const reasons[] = {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"};
	refusal_t *r = refusal_new(4, NULL);
	refusal_sum_t *v;
	size_t n;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(reasons); i++)
		refusal_count(r, "1.2.3.4:1", "x", reasons[i], NULL);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].total, 10);
	assert_int_equal(v[0].nreasons, REFUSAL_REASONS);
	assert_int_equal(reason_n(&v[0], "A"), 1);
	assert_int_equal(reason_n(&v[0], "other"), 10 - (REFUSAL_REASONS - 1));
	free(v);
	refusal_free(r);
}

/* 100,000 sources: max_sources entries plus one pooled "*", every refusal
 * counted. */
static void
test_sources_bounded(void **state)
{
	refusal_t *r = refusal_new(64, NULL);
	refusal_sum_t *v;
	uint64_t total = 0;
	size_t n;
	char peer[64];
	buf_t m;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		snprintf(peer, sizeof(peer), "10.%d.%d.%d:1", i >> 16, (i >> 8) & 255, i & 255);
		refusal_count(r, peer, "login_start", "NOT_FOUND", NULL);
	}
	/* a source already counted stays apart */
	refusal_count(r, "10.0.0.0:2", "login_start", "NOT_FOUND", NULL);
	assert_int_equal(refusal_sources(r), 65);
	buf_init(&m, 8192);
	assert_int_equal(refusal_write_metrics(r, &m), 0);
	assert_non_null(strstr((char *)m.data, "stbcred_refusals_total{action=\"login_start\","
	                                       "reason=\"NOT_FOUND\"} 100001\n"));
	assert_non_null(strstr((char *)m.data, "stbcred_refusals_pooled_total 99936\n"));
	assert_non_null(strstr((char *)m.data, "stbcred_refusal_sources 65\n"));
	buf_free(&m);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	assert_int_equal(n, 65);
	for (size_t i = 0; i < n; i++)
		total += v[i].total;
	assert_int_equal(total, 100001);
	assert_int_equal(find(v, n, "*", "login_start")->total, 99936);
	assert_int_equal(find(v, n, "10.0.0.0", "login_start")->total, 2);
	free(v);
	refusal_free(r);
}

struct counter {
	refusal_t *r;
	int id;
};

static void *
count_main(void *arg)
{
	struct counter *c = arg;
	char peer[32];

	snprintf(peer, sizeof(peer), "10.0.0.%d:1", c->id);
	for (int i = 0; i < 20000; i++)
		refusal_count(c->r, peer, "login_start", i % 2 ? "NOT_FOUND" : "FORBIDDEN", NULL);
	return NULL;
}

static void
test_threads(void **state)
{
	refusal_t *r = refusal_new(16, NULL);
	struct counter c[4];
	pthread_t th[4];
	refusal_sum_t *v;
	size_t n;

	(void)state;
	for (int i = 0; i < 4; i++) {
		c[i] = (struct counter){r, i};
		assert_int_equal(pthread_create(&th[i], NULL, count_main, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(refusal_take(r, &v, &n, NULL), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].total, 20000);
		assert_int_equal(reason_n(&v[i], "NOT_FOUND"), 10000);
	}
	free(v);
	refusal_free(r);
}

/* A flush: one audit row per source and action, in one write; nothing
 * when nothing was refused. */
static int
count_rows(store_conn_t *c, void *arg, err_t *err)
{
	store_stmt_t *st = store_stmt(c, "SELECT count(*), max(detail) FROM audit", err);

	if (st == NULL || store_step(st, err) != STORE_ROW)
		return -1;
	((int64_t *)arg)[0] = store_col_int64(st, 0);
	store_reset(st);
	return 0;
}

static void
test_flush(void **state)
{
	refusal_t *r = refusal_new(16, NULL);
	char path[256];
	store_t *s;
	int64_t rows = 0;
	uint64_t cnt, bad;
	uint8_t head[AUDIT_MAC_LEN];
	store_conn_t *c;
	err_t err;

	(void)state;
	tu_store_where(path, sizeof(path), tu_dir, "refusal.sqlite");
	assert_non_null(s = tu_store_open(path, migs, migs_pg, 1, &err));
	assert_int_equal(refusal_flush(r, s, key, &err), 0);
	assert_int_equal(store_write_sync(s, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 0);
	for (int i = 0; i < 5000; i++)
		refusal_count(r, "127.0.0.1:9", "login_start", "NOT_FOUND", "nobody");
	refusal_count(r, "127.0.0.2:9", "login_finish", "NOT_FOUND", NULL);
	assert_int_equal(refusal_flush(r, s, key, &err), 0);
	assert_int_equal(store_write_sync(s, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 2);
	assert_int_equal(refusal_flush(r, s, key, &err), 0);
	assert_int_equal(store_write_sync(s, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 2);
	assert_non_null(c = store_reader(s, &err));
	assert_int_equal(audit_verify(c, key, &cnt, &bad, head, &err), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(bad, 0);
	store_close(s);
	refusal_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_and_take),
	    cmocka_unit_test(test_reasons_bounded),
	    cmocka_unit_test(test_sources_bounded),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test_setup_teardown(test_flush, tu_setup_dir, tu_teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
