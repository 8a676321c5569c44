/* Unit tests for audit: the hash-chained security log. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "testutil.h"

#define NREC 5

static const char *const migs[] = {audit_schema};
static const char *const migs_pg[] = {audit_schema_pg};

static const uint8_t key[AUDIT_KEY_LEN] = {
    0x6b, 0x65, 0x79, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x74, 0x68, 0x65, 0x20, 0x61, 0x75, 0x64, 0x69,
    0x74, 0x20, 0x63, 0x68, 0x61, 0x69, 0x6e, 0x20, 0x69, 0x6e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x73};

static int ndb;

/* A store on a fresh database file. */
static store_t *
fresh_store(void)
{
	char path[TU_WHERE_MAX], name[32];
	store_t *s;
	err_t err;

	snprintf(name, sizeof(name), "audit-%d.sqlite", ndb++);
	tu_store_where(path, sizeof(path), tu_dir, name);
	if ((s = tu_store_open(path, migs, migs_pg, 1, &err)) == NULL)
		fail_msg("store_open: %s", err.msg);
	return s;
}

struct append {
	const uint8_t *key;
	const char *event, *actor, *detail;
	uint64_t seq;
};

static int
job_append(store_conn_t *c, void *arg, err_t *err)
{
	struct append *a = arg;

	return audit_append(c, a->key, a->event, a->actor, a->detail, &a->seq, err);
}

static int
job_exec(store_conn_t *c, void *arg, err_t *err)
{
	return store_exec(c, arg, err);
}

static void
raw_sql(store_t *s, const char *sql)
{
	err_t err;

	if (store_write_sync(s, job_exec, (void *)sql, &err) != 0)
		fail_msg("%s: %s", sql, err.msg);
}

/* The actor and detail of record i as append_n() writes them. */
static void
rec_fields(int i, char actor[32], char detail[64])
{
	snprintf(actor, 32, "dev-%d", i);
	snprintf(detail, 64, "{\"attempt\":%d}", i);
}

/* Appends records 1..n: event "login.granted", actor "dev-<i>". */
static void
append_n(store_t *s, int n)
{
	for (int i = 1; i <= n; i++) {
		char actor[32], detail[64];
		struct append a = {key, "login.granted", actor, detail, 0};
		err_t err;
		rec_fields(i, actor, detail);
		if (store_write_sync(s, job_append, &a, &err) != 0)
			fail_msg("append %d: %s", i, err.msg);
		assert_int_equal(a.seq, i);
	}
}

static store_conn_t *
reader(store_t *s)
{
	store_conn_t *c;
	err_t err;

	if ((c = store_reader(s, &err)) == NULL)
		fail_msg("store_reader: %s", err.msg);
	return c;
}

/* The stored mac of row seq. */
static void
row_mac(store_t *s, uint64_t seq, uint8_t mac[AUDIT_MAC_LEN])
{
	static const char sql[] = "SELECT mac FROM audit WHERE seq = ?1";
	store_stmt_t *st;
	const void *p;
	size_t len;
	err_t err;

	assert_non_null(st = store_stmt(reader(s), sql, &err));
	assert_int_equal(store_bind_int64(st, 1, (int64_t)seq), 0);
	assert_int_equal(store_step(st, &err), STORE_ROW);
	p = store_col_blob(st, 0, &len);
	assert_int_equal(len, AUDIT_MAC_LEN);
	memcpy(mac, p, AUDIT_MAC_LEN);
	store_reset(st);
}

static void
verify(store_t *s, const uint8_t *k, uint64_t *count, uint64_t *bad, uint8_t head[32])
{
	err_t err;

	*count = 12345;
	*bad = 12345;
	if (audit_verify(reader(s), k, count, bad, head, &err) != 0)
		fail_msg("audit_verify: %s", err.msg);
}

/* Verifies with the right key: an unbroken chain of want records. */
static void
verify_intact(store_t *s, uint64_t want, uint8_t head[AUDIT_MAC_LEN])
{
	uint64_t count, bad;

	verify(s, key, &count, &bad, head);
	assert_int_equal(count, want);
	assert_int_equal(bad, 0);
}

static void
test_verify_intact_chain(void **state)
{
	uint8_t head[AUDIT_MAC_LEN], last[AUDIT_MAC_LEN], first[AUDIT_MAC_LEN];
	store_t *s = fresh_store();

	(void)state;
	append_n(s, NREC);
	verify_intact(s, NREC, head);
	row_mac(s, NREC, last);
	assert_memory_equal(head, last, AUDIT_MAC_LEN);
	/* macs chain: no two rows share one */
	row_mac(s, 1, first);
	assert_memory_not_equal(first, last, AUDIT_MAC_LEN);
	store_close(s);
}

static void
test_verify_empty_log(void **state)
{
	static const uint8_t zero[AUDIT_MAC_LEN] = {0};
	uint8_t head[AUDIT_MAC_LEN];
	store_t *s = fresh_store();

	(void)state;
	memset(head, 0xee, sizeof(head));
	verify_intact(s, 0, head);
	assert_memory_equal(head, zero, AUDIT_MAC_LEN);
	store_close(s);
}

static void
test_tampering_detected(void **state)
{
	static const struct {
		const char *name;
		const char *sql;
		uint64_t bad_seq;
		const char *sql_pg; /* PostgreSQL's spelling, when it differs */
	} cases[] = {
	    {"detail edited", "UPDATE audit SET detail = '{\"attempt\":99}' WHERE seq = 3", 3,
	     NULL},
	    {"actor edited", "UPDATE audit SET actor = 'mallory' WHERE seq = 1", 1, NULL},
	    {"event edited", "UPDATE audit SET event = 'login.denied' WHERE seq = 2", 2, NULL},
	    {"timestamp moved", "UPDATE audit SET ts = ts + 1 WHERE seq = 5", 5, NULL},
	    {"mac zeroed", "UPDATE audit SET mac = zeroblob(32) WHERE seq = 4", 4,
	     "UPDATE audit SET mac = decode(repeat('00', 32), 'hex') WHERE seq = 4"},
	    {"mac shortened", "UPDATE audit SET mac = x'00' WHERE seq = 2", 2,
	     "UPDATE audit SET mac = '\\x00'::bytea WHERE seq = 2"},
	    {"middle row deleted", "DELETE FROM audit WHERE seq = 3", 3, NULL},
	    {"first row deleted", "DELETE FROM audit WHERE seq = 1", 1, NULL},
	    {"two rows deleted", "DELETE FROM audit WHERE seq IN (2, 3)", 2, NULL},
	    {"rows renumbered over a gap",
	     "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3", 3,
	     NULL},
	    {"row forged at the end",
	     "INSERT INTO audit VALUES(6, 0, 'key.import', 'admin', '{}', zeroblob(32))", 6,
	     "INSERT INTO audit VALUES(6, 0, 'key.import', 'admin', '{}', decode(repeat('00', 32), "
	     "'hex'))"},
	    {"details swapped",
	     "UPDATE audit SET detail = CASE seq WHEN 2 THEN '{\"attempt\":3}'"
	     " ELSE '{\"attempt\":2}' END WHERE seq IN (2, 3)",
	     2, NULL},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t head[AUDIT_MAC_LEN];
		uint64_t count, bad;
		store_t *s = fresh_store();
		append_n(s, NREC);
		raw_sql(s, tu_store_backend() == STORE_PG && cases[i].sql_pg ? cases[i].sql_pg
		                                                             : cases[i].sql);
		verify(s, key, &count, &bad, head);
		if (bad != cases[i].bad_seq)
			fail_msg("%s: bad_seq %llu, want %llu", cases[i].name,
			         (unsigned long long)bad, (unsigned long long)cases[i].bad_seq);
		store_close(s);
	}
}

/* Cutting the newest rows keeps a valid chain: only the head shows it. */
static void
test_truncation_changes_head(void **state)
{
	uint8_t head_before[AUDIT_MAC_LEN], head_after[AUDIT_MAC_LEN], mac4[AUDIT_MAC_LEN];
	uint64_t count, bad;
	store_t *s = fresh_store();

	(void)state;
	append_n(s, NREC);
	verify(s, key, &count, &bad, head_before);
	row_mac(s, 4, mac4);
	raw_sql(s, "DELETE FROM audit WHERE seq = 5");
	verify_intact(s, NREC - 1, head_after);
	assert_memory_equal(head_after, mac4, AUDIT_MAC_LEN);
	assert_memory_not_equal(head_after, head_before, AUDIT_MAC_LEN);
	store_close(s);
}

static void
test_wrong_key(void **state)
{
	uint8_t other[AUDIT_KEY_LEN], head[AUDIT_MAC_LEN];
	uint64_t count, bad;
	store_t *s = fresh_store();

	(void)state;
	memcpy(other, key, sizeof(other));
	other[31] ^= 0x80;
	append_n(s, NREC);
	verify(s, other, &count, &bad, head);
	assert_int_equal(bad, 1);
	store_close(s);
}

static void
test_append_continues_chain_after_reopen(void **state)
{
	char path[TU_WHERE_MAX];
	uint8_t head[AUDIT_MAC_LEN];
	store_t *s;
	err_t err;

	(void)state;
	tu_store_where(path, sizeof(path), tu_dir, "reopen.sqlite");
	assert_non_null(s = tu_store_open(path, migs, migs_pg, 1, &err));
	append_n(s, 2);
	store_close(s);
	assert_non_null(s = tu_store_open(path, migs, migs_pg, 1, &err));
	{
		struct append a = {key, "key.import", "admin", "", 0};
		assert_int_equal(store_write_sync(s, job_append, &a, &err), 0);
		assert_int_equal(a.seq, 3);
	}
	verify_intact(s, 3, head);
	store_close(s);
}

static void
test_field_limits(void **state)
{
	char ev64[65], ev63[64], ac160[161], ac159[160], de1025[1026], de1024[1025];
	static const struct {
		const char *name;
		int ev, ac, de; /* which long field: 0 none, else its length */
		int ok;
	} cases[] = {
	    {"event of 64 bytes", 64, 0, 0, 0},      {"event of 63 bytes", 63, 0, 0, 1},
	    {"actor of 160 bytes", 0, 160, 0, 0},    {"actor of 159 bytes", 0, 159, 0, 1},
	    {"detail of 1025 bytes", 0, 0, 1025, 0}, {"detail of 1024 bytes", 0, 0, 1024, 1},
	};
	store_t *s = fresh_store();
	uint64_t want_seq = 1;
	uint8_t head[AUDIT_MAC_LEN];

	(void)state;
	memset(ev64, 'e', 64);
	ev64[64] = '\0';
	memcpy(ev63, ev64, 63);
	ev63[63] = '\0';
	memset(ac160, 'a', 160);
	ac160[160] = '\0';
	memcpy(ac159, ac160, 159);
	ac159[159] = '\0';
	memset(de1025, 'd', 1025);
	de1025[1025] = '\0';
	memcpy(de1024, de1025, 1024);
	de1024[1024] = '\0';
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct append a = {key, "e", "a", "d", 0};
		err_t err;
		int rc;
		if (cases[i].ev)
			a.event = cases[i].ev == 64 ? ev64 : ev63;
		if (cases[i].ac)
			a.actor = cases[i].ac == 160 ? ac160 : ac159;
		if (cases[i].de)
			a.detail = cases[i].de == 1025 ? de1025 : de1024;
		err_clear(&err);
		rc = store_write_sync(s, job_append, &a, &err);
		if (cases[i].ok) {
			if (rc != 0)
				fail_msg("%s: refused: %s", cases[i].name, err.msg);
			assert_int_equal(a.seq, want_seq++);
		} else if (rc != -1 || err.status != STB_TOO_LARGE) {
			fail_msg("%s: rc %d status %d, want TOO_LARGE", cases[i].name, rc,
			         err.status);
		}
	}
	/* the longest fields read back whole: the chain still verifies */
	verify_intact(s, 3, head);
	store_close(s);
}

struct collect {
	audit_rec_t rec[8];
	int n;
	int stop_after;
};

static int
collect(const audit_rec_t *r, void *arg)
{
	struct collect *c = arg;

	if (c->n < (int)TU_NELEM(c->rec))
		c->rec[c->n] = *r;
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? -1 : 0;
}

static void
test_export_since_and_limit(void **state)
{
	static const struct {
		uint64_t since;
		uint32_t limit;
		int stop_after;
		int first, n;
	} cases[] = {
	    {0, 100, 0, 1, 5}, {1, 5, 0, 1, 5},   {2, 2, 0, 2, 2}, {4, 100, 0, 4, 2},
	    {5, 1, 0, 5, 1},   {6, 100, 0, 0, 0}, {1, 0, 0, 0, 0}, {1, 100, 2, 1, 2},
	};
	store_t *s = fresh_store();
	uint8_t head[AUDIT_MAC_LEN];
	uint64_t count, bad;

	(void)state;
	append_n(s, NREC);
	verify(s, key, &count, &bad, head);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct collect c;
		err_t err;
		memset(&c, 0, sizeof(c));
		c.stop_after = cases[i].stop_after;
		assert_int_equal(
		    audit_export(reader(s), cases[i].since, cases[i].limit, collect, &c, &err), 0);
		if (c.n != cases[i].n)
			fail_msg("since %llu limit %u: %d records, want %d",
			         (unsigned long long)cases[i].since, cases[i].limit, c.n,
			         cases[i].n);
		for (int k = 0; k < c.n; k++) {
			char actor[32], detail[64];
			const audit_rec_t *r = &c.rec[k];
			uint64_t seq = (uint64_t)(cases[i].first + k);
			uint8_t mac[AUDIT_MAC_LEN];
			rec_fields((int)seq, actor, detail);
			assert_int_equal(r->seq, seq);
			assert_string_equal(r->event, "login.granted");
			assert_string_equal(r->actor, actor);
			assert_string_equal(r->detail, detail);
			assert_true(r->ts > 1600000000);
			row_mac(s, seq, mac);
			assert_memory_equal(r->mac, mac, AUDIT_MAC_LEN);
		}
	}
	store_close(s);
}

static void
test_rec_json(void **state)
{
	static const char detail[] = "say \"hi\"\\\nnew line\t\x01 caf\xc3\xa9";
	audit_rec_t r;
	char out[4096], hex[2 * AUDIT_MAC_LEN + 1];
	cJSON *o;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.seq = 42;
	r.ts = 1700000000;
	snprintf(r.event, sizeof(r.event), "app.verdict");
	snprintf(r.actor, sizeof(r.actor), "urn:stbcred:role:admin");
	snprintf(r.detail, sizeof(r.detail), "%s", detail);
	for (int i = 0; i < AUDIT_MAC_LEN; i++) {
		r.mac[i] = (uint8_t)(0xa0 + i);
		snprintf(hex + 2 * i, 3, "%02x", r.mac[i]);
	}
	assert_int_equal(audit_rec_json(&r, out, sizeof(out)), 0);
	o = cJSON_Parse(out);
	if (o == NULL)
		fail_msg("not JSON: %s", out);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "seq")));
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "seq")->valuedouble, 42);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "ts")->valuedouble, 1700000000);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "event")),
	                    "app.verdict");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "actor")),
	                    "urn:stbcred:role:admin");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "detail")),
	                    detail);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "mac")), hex);
	cJSON_Delete(o);
	/* a buffer too small is refused */
	assert_int_equal(audit_rec_json(&r, out, 16), -1);
}

static void
test_exported_record_as_json(void **state)
{
	store_t *s = fresh_store();
	struct collect c;
	char out[4096];
	cJSON *o;
	err_t err;

	(void)state;
	append_n(s, 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(audit_export(reader(s), 1, 1, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(audit_rec_json(&c.rec[0], out, sizeof(out)), 0);
	assert_non_null(o = cJSON_Parse(out));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "detail")),
	                    "{\"attempt\":1}");
	assert_int_equal(strlen(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "mac"))),
	                 64);
	cJSON_Delete(o);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_intact_chain),
	    cmocka_unit_test(test_verify_empty_log),
	    cmocka_unit_test(test_tampering_detected),
	    cmocka_unit_test(test_truncation_changes_head),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_append_continues_chain_after_reopen),
	    cmocka_unit_test(test_field_limits),
	    cmocka_unit_test(test_export_since_and_limit),
	    cmocka_unit_test(test_rec_json),
	    cmocka_unit_test(test_exported_record_as_json),
	};

	return cmocka_run_group_tests_name("audit", tests, tu_setup_dir, tu_teardown_dir);
}
