/* Unit tests for config: the declarative option table and its JSON loader. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

struct conf {
	char *mode;
	long long workers;
	int verbose;
	char *tls_cert;
	long long tls_timeout_ms;
	int tls_verify;
};

struct extra {
	char *name;
	long long offset;
};

static const char *const modes[] = {"fast", "safe", NULL};

static const cfg_opt_t conf_opts[] = {
    {"mode", CFG_STR, "safe", 0, 0, modes, offsetof(struct conf, mode), "operating mode"},
    {"workers", CFG_INT, "4", 1, 64, NULL, offsetof(struct conf, workers), "worker loops"},
    {"verbose", CFG_BOOL, "false", 0, 0, NULL, offsetof(struct conf, verbose), "chatty logs"},
    {"tls.cert", CFG_STR, "/etc/stbcred/cert.pem", 0, 0, NULL, offsetof(struct conf, tls_cert),
     "certificate chain"},
    {"tls.timeout_ms", CFG_INT, "5000", 100, 60000, NULL, offsetof(struct conf, tls_timeout_ms),
     "handshake timeout"},
    {"tls.verify", CFG_BOOL, "true", 0, 0, NULL, offsetof(struct conf, tls_verify), "verify peers"},
};

static const cfg_opt_t extra_opts[] = {
    {"name", CFG_STR, "", 0, 0, NULL, offsetof(struct extra, name), "instance name"},
    {"offset", CFG_INT, "-3", -10, 10, NULL, offsetof(struct extra, offset), "signed value"},
};

struct cfgs {
	struct conf c;
	struct extra x;
	cfg_table_t tabs[2];
};

static void
cfgs_init(struct cfgs *s)
{
	memset(s, 0, sizeof(*s));
	s->tabs[0] = (cfg_table_t){conf_opts, TU_NELEM(conf_opts), &s->c};
	s->tabs[1] = (cfg_table_t){extra_opts, TU_NELEM(extra_opts), &s->x};
}

static int
load_text(struct cfgs *s, const char *text, err_t *err)
{
	cfgs_init(s);
	err_clear(err);
	return cfg_load_text(s->tabs, 2, text, "test.json", err);
}

static int
load_file(struct cfgs *s, const char *path, err_t *err)
{
	cfgs_init(s);
	err_clear(err);
	return cfg_load(s->tabs, 2, path, err);
}

static void
assert_defaults(const struct cfgs *s)
{
	assert_string_equal(s->c.mode, "safe");
	assert_int_equal(s->c.workers, 4);
	assert_int_equal(s->c.verbose, 0);
	assert_string_equal(s->c.tls_cert, "/etc/stbcred/cert.pem");
	assert_int_equal(s->c.tls_timeout_ms, 5000);
	assert_int_equal(s->c.tls_verify, 1);
	assert_string_equal(s->x.name, "");
	assert_int_equal(s->x.offset, -3);
}

/* A file in a fresh temporary directory. */
static char file[128];

static int
setup_dir(void **state)
{
	if (tu_setup_dir(state) != 0)
		return -1;
	snprintf(file, sizeof(file), "%s/daemon.json", tu_dir);
	return 0;
}

/* Removes the file, then the directory: rmdir() fails if a test left more. */
static int
teardown_dir(void **state)
{
	(void)state;
	unlink(file);
	return rmdir(tu_dir);
}

static void
write_file(const char *text, size_t len)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Loading path fails with status want and a message that names path. */
static void
assert_load_refused(const char *path, int want, err_t *err)
{
	struct cfgs s;

	assert_int_equal(load_file(&s, path, err), -1);
	assert_int_equal(err->status, want);
	assert_non_null(strstr(err->msg, path));
	cfg_free(s.tabs, 2);
}

static void
test_defaults_without_file(void **state)
{
	struct cfgs s;
	err_t err;

	(void)state;
	assert_int_equal(load_file(&s, NULL, &err), 0);
	assert_defaults(&s);
	cfg_free(s.tabs, 2);
	assert_null(s.c.mode);
	assert_null(s.c.tls_cert);
	assert_null(s.x.name);
}

static void
test_good_file(void **state)
{
	static const char text[] =
	    "{\n"
	    "  \"mode\": \"fast\",\n"
	    "  \"workers\": 16,\n"
	    "  \"verbose\": true,\n"
	    "  \"tls\": { \"cert\": \"/srv/cert.pem\", \"verify\": false },\n"
	    "  \"offset\": -10\n"
	    "}\n";
	struct cfgs s;
	err_t err;

	(void)state;
	write_file(text, sizeof(text) - 1);
	if (load_file(&s, file, &err) != 0)
		fail_msg("good file refused: %s", err.msg);
	assert_string_equal(s.c.mode, "fast");
	assert_int_equal(s.c.workers, 16);
	assert_int_equal(s.c.verbose, 1);
	assert_string_equal(s.c.tls_cert, "/srv/cert.pem");
	assert_int_equal(s.c.tls_verify, 0);
	assert_int_equal(s.x.offset, -10);
	/* what the file does not set keeps its default */
	assert_int_equal(s.c.tls_timeout_ms, 5000);
	assert_string_equal(s.x.name, "");
	cfg_free(s.tabs, 2);
}

static void
test_empty_object_and_empty_section(void **state)
{
	struct cfgs s;
	err_t err;

	(void)state;
	assert_int_equal(load_text(&s, "{}", &err), 0);
	assert_defaults(&s);
	cfg_free(s.tabs, 2);
	assert_int_equal(load_text(&s, "{\"tls\": {}}", &err), 0);
	assert_defaults(&s);
	cfg_free(s.tabs, 2);
}

/* Texts that must be refused, and the words the message must contain. */
static void
test_refused_texts(void **state)
{
	static const struct {
		const char *name;
		const char *text;
		const char *w1, *w2;
	} cases[] = {
	    {"text after the object", "{\"workers\": 1} trailing", "test.json", "syntax"},
	    {"a second object", "{\"workers\": 1}{\"workers\": 2}", "test.json", "syntax"},
	    {"unknown key", "{\"mdoe\": \"fast\"}", "mdoe", "unknown key"},
	    {"unknown key in a section", "{\"tls\": {\"kee\": \"x\"}}", "tls.kee", "unknown key"},
	    {"unknown section", "{\"tlz\": {\"cert\": \"x\"}}", "tlz", "unknown section"},
	    {"section name that is only a prefix", "{\"tl\": {\"cert\": \"x\"}}", "tl",
	     "unknown section"},
	    {"option given as a section", "{\"mode\": {\"x\": 1}}", "mode", "section"},
	    {"section given as a value", "{\"tls\": \"on\"}", "tls", "unknown key"},
	    {"string for an int", "{\"workers\": \"4\"}", "workers", "integer"},
	    {"bool for an int", "{\"workers\": true}", "workers", "integer"},
	    {"null for an int", "{\"workers\": null}", "workers", "integer"},
	    {"number for a string", "{\"mode\": 3}", "mode", "string"},
	    {"array for a string", "{\"tls\": {\"cert\": [\"a\"]}}", "tls.cert", "string"},
	    {"number for a bool", "{\"verbose\": 1}", "verbose", "true or false"},
	    {"string for a bool", "{\"tls\": {\"verify\": \"yes\"}}", "tls.verify",
	     "true or false"},
	    {"int below min", "{\"workers\": 0}", "workers", "1..64"},
	    {"int above max", "{\"workers\": 65}", "workers", "1..64"},
	    {"negative int", "{\"workers\": -1}", "workers", "-1"},
	    {"nested int above max", "{\"tls\": {\"timeout_ms\": 60001}}", "tls.timeout_ms",
	     "100..60000"},
	    {"signed int below min", "{\"offset\": -11}", "offset", "-10..10"},
	    {"fraction", "{\"workers\": 2.5}", "workers", "integer"},
	    {"exponent fraction", "{\"workers\": 25e-1}", "workers", "integer"},
	    {"huge number", "{\"workers\": 1e19}", "workers", NULL},
	    {"bad choice", "{\"mode\": \"turbo\"}", "mode", "turbo"},
	    {"choice with other case", "{\"mode\": \"FAST\"}", "mode", "FAST"},
	    {"top level array", "[1, 2]", "top level", NULL},
	    {"top level string", "\"mode\"", "top level", NULL},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct cfgs s;
		err_t err;
		int rc = load_text(&s, cases[i].text, &err);
		if (rc != -1 || err.status != STB_BAD_REQUEST)
			fail_msg("%s: rc %d status %d (%s), want BAD_REQUEST", cases[i].name, rc,
			         err.status, err.msg);
		if (strstr(err.msg, "test.json") == NULL)
			fail_msg("%s: \"%s\" does not name the file", cases[i].name, err.msg);
		if (strstr(err.msg, cases[i].w1) == NULL)
			fail_msg("%s: \"%s\" does not name \"%s\"", cases[i].name, err.msg,
			         cases[i].w1);
		if (cases[i].w2 != NULL && strstr(err.msg, cases[i].w2) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].name, err.msg,
			         cases[i].w2);
		cfg_free(s.tabs, 2);
	}
}

static void
test_int_bounds_are_inclusive(void **state)
{
	static const char *const texts[] = {
	    "{\"workers\": 1, \"offset\": -10, \"tls\": {\"timeout_ms\": 100}}",
	    "{\"workers\": 64, \"offset\": 10, \"tls\": {\"timeout_ms\": 60000}}",
	    "{\"workers\": 8.0}",
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(texts); i++) {
		struct cfgs s;
		err_t err;
		if (load_text(&s, texts[i], &err) != 0)
			fail_msg("%s refused: %s", texts[i], err.msg);
		cfg_free(s.tabs, 2);
	}
}

static void
test_syntax_error_names_line(void **state)
{
	static const struct {
		const char *text;
		const char *where;
	} cases[] = {
	    {"{\n  \"mode\": \"fast\",\n  \"workers\": ,\n  \"verbose\": true\n}\n",
	     "test.json:3:"},
	    {"{\"mode\": \"fast\" \"workers\": 4}", "test.json:1:"},
	    {"{\n\n\n\n  \"mode\": 'fast'\n}", "test.json:5:"},
	    {"{\n  \"mode\": \"fast\",\n", "test.json:"},
	    {"", "test.json:1:"},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct cfgs s;
		err_t err;
		assert_int_equal(load_text(&s, cases[i].text, &err), -1);
		assert_int_equal(err.status, STB_BAD_REQUEST);
		if (strstr(err.msg, cases[i].where) == NULL)
			fail_msg("case %zu: \"%s\" does not point at \"%s\"", i, err.msg,
			         cases[i].where);
		assert_non_null(strstr(err.msg, "syntax"));
		cfg_free(s.tabs, 2);
	}
}

static void
test_dump_round_trip(void **state)
{
	static const char text[] =
	    "{\"mode\": \"fast\", \"workers\": 33, \"verbose\": true, \"name\": \"edge-1\","
	    " \"offset\": 7, \"tls\": {\"cert\": \"/a/\\\"quoted\\\" path\", \"timeout_ms\": 250,"
	    " \"verify\": false}}";
	struct cfgs s, t;
	err_t err;
	char *dump;
	cJSON *root, *tls;

	(void)state;
	assert_int_equal(load_text(&s, text, &err), 0);
	dump = cfg_dump_json(s.tabs, 2);
	assert_non_null(dump);
	/* nested names come back as nested objects */
	root = cJSON_Parse(dump);
	assert_non_null(root);
	tls = cJSON_GetObjectItemCaseSensitive(root, "tls");
	assert_true(cJSON_IsObject(tls));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(tls, "cert")->valuestring,
	                    "/a/\"quoted\" path");
	assert_null(cJSON_GetObjectItemCaseSensitive(root, "tls.cert"));
	cJSON_Delete(root);

	if (load_text(&t, dump, &err) != 0)
		fail_msg("dump does not load back: %s\n%s", err.msg, dump);
	assert_string_equal(t.c.mode, s.c.mode);
	assert_int_equal(t.c.workers, 33);
	assert_int_equal(t.c.verbose, 1);
	assert_string_equal(t.c.tls_cert, s.c.tls_cert);
	assert_int_equal(t.c.tls_timeout_ms, 250);
	assert_int_equal(t.c.tls_verify, 0);
	assert_string_equal(t.x.name, "edge-1");
	assert_int_equal(t.x.offset, 7);
	free(dump);
	cfg_free(s.tabs, 2);
	cfg_free(t.tabs, 2);
}

static void
test_dump_of_defaults_round_trips(void **state)
{
	struct cfgs s, t;
	err_t err;
	char *dump;

	(void)state;
	assert_int_equal(load_text(&s, NULL, &err), 0);
	dump = cfg_dump_json(s.tabs, 2);
	assert_non_null(dump);
	assert_int_equal(load_text(&t, dump, &err), 0);
	assert_defaults(&t);
	free(dump);
	cfg_free(s.tabs, 2);
	cfg_free(t.tabs, 2);
}

static void
test_dump_redacts_secrets(void **state)
{
	struct sec {
		char *dsn, *host;
	} v = {0};
	static const cfg_opt_t opts[] = {
	    {"store.dsn", CFG_SECRET, "", 0, 0, NULL, offsetof(struct sec, dsn), "dsn"},
	    {"host", CFG_STR, "", 0, 0, NULL, offsetof(struct sec, host), "host"},
	};
	cfg_table_t tab = {opts, TU_NELEM(opts), &v};
	err_t err;
	char *dump;

	(void)state;
	err_clear(&err);
	assert_int_equal(cfg_load_text(&tab, 1, NULL, "test.json", &err), 0);
	dump = cfg_dump_json(&tab, 1);
	assert_non_null(dump); /* unset: shown empty, so an operator sees it is unset */
	assert_non_null(strstr(dump, "\"dsn\":\t\"\""));
	free(dump);
	assert_int_equal(cfg_load_text(&tab, 1,
	                               "{\"store\": {\"dsn\": \"host=db password=hunter2\"},"
	                               " \"host\": \"db\"}",
	                               "test.json", &err),
	                 0);
	assert_string_equal(v.dsn, "host=db password=hunter2"); /* the daemon still has it */
	dump = cfg_dump_json(&tab, 1);
	assert_non_null(dump);
	assert_null(strstr(dump, "hunter2"));
	assert_non_null(strstr(dump, "(redacted)"));
	assert_non_null(strstr(dump, "\"db\""));
	free(dump);
	cfg_free(&tab, 1);
	assert_null(v.dsn);
}

static void
test_missing_file(void **state)
{
	char path[160];
	err_t err;

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.json", tu_dir);
	assert_load_refused(path, STB_NOT_FOUND, &err);
}

static void
test_file_errors_name_the_file(void **state)
{
	static const char text[] = "{\"workers\": 100}";
	err_t err;

	(void)state;
	write_file(text, sizeof(text) - 1);
	assert_load_refused(file, STB_BAD_REQUEST, &err);
	assert_non_null(strstr(err.msg, "workers"));
}

static void
test_oversized_file(void **state)
{
	size_t n = 1024 * 1024 + 1;
	char *big = malloc(n);
	err_t err;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	write_file(big, n);
	free(big);
	assert_load_refused(file, STB_TOO_LARGE, &err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_without_file),
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_empty_object_and_empty_section),
	    cmocka_unit_test(test_refused_texts),
	    cmocka_unit_test(test_int_bounds_are_inclusive),
	    cmocka_unit_test(test_syntax_error_names_line),
	    cmocka_unit_test(test_dump_round_trip),
	    cmocka_unit_test(test_dump_of_defaults_round_trips),
	    cmocka_unit_test(test_dump_redacts_secrets),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_file_errors_name_the_file),
	    cmocka_unit_test(test_oversized_file),
	};

	return cmocka_run_group_tests_name("config", tests, setup_dir, teardown_dir);
}
