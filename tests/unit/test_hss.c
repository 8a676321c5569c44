/* test_hss: the embedded HSS pool (hss_embedded.c) over a real store. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss.h"
#include "testutil.h"

typedef struct fx {
	store_t *st;
	sealed_kek_t *kek;
	hss_t *hss;
} fx_t;

static fx_t fx;

static int
fx_setup(void **state)
{
	static const char *const mig[] = {hss_schema};
	static const char *const mig_pg[] = {hss_schema_pg};
	uint8_t key[SEALED_KEY_LEN];
	hss_conf_t hc = {.backend = "embedded"};
	char path[TU_WHERE_MAX];
	err_t err;

	tu_setup_dir(state);
	tu_store_where(path, sizeof(path), tu_dir, "hss.db");
	memset(key, 7, sizeof(key));
	assert_int_equal(sealed_kek_from_bytes(key, &fx.kek, &err), 0);
	assert_non_null(fx.st = tu_store_open(path, mig, mig_pg, 1, &err));
	assert_int_equal(hss_open(&hc, fx.kek, &fx.hss, &err), 0);
	return 0;
}

static int
fx_teardown(void **state)
{
	hss_close(fx.hss);
	store_close(fx.st);
	sealed_kek_free(fx.kek);
	return tu_teardown_dir(state);
}

/* One operation in the writer, as qualifyd runs them. */
typedef struct op {
	int what; /* 0 import, 1 allocate, 2 deliver, 3 release, 4 retire */
	const char *imsi, *dev;
	hss_cred_t cred;
	int fail_after; /* allocate, then fail the job: rolled back */
} op_t;

static int
op_write(store_conn_t *c, void *arg, err_t *err)
{
	op_t *o = arg;

	switch (o->what) {
	case 0:
		return hss_import(fx.hss, c, &o->cred, 1, err);
	case 1:
		if (hss_allocate(fx.hss, c, o->dev, 2, &o->cred, err) == -1)
			return -1;
		return o->fail_after ? err_set(err, STB_INTERNAL, "later step failed") : 0;
	case 2:
		return hss_deliver(fx.hss, c, o->imsi, o->dev, 3, err);
	case 3:
		return hss_release(fx.hss, c, o->imsi, 4, err);
	default:
		return hss_retire(fx.hss, c, o->imsi, 5, err);
	}
}

static int
run(op_t *o, err_t *err)
{
	return store_write_sync(fx.st, op_write, o, err);
}

static void
import(const char *imsi, uint8_t seed)
{
	op_t o = {.what = 0};
	err_t err;

	snprintf(o.cred.imsi, sizeof(o.cred.imsi), "%s", imsi);
	memset(o.cred.k, seed, 16);
	memset(o.cred.opc, seed + 1, 16);
	assert_int_equal(run(&o, &err), 0);
}

static void
counts(uint64_t f, uint64_t h, uint64_t d, uint64_t r)
{
	hss_counts_t c;
	err_t err;
	store_conn_t *rc = store_reader(fx.st, &err);

	assert_non_null(rc);
	assert_int_equal(hss_counts(fx.hss, rc, &c, &err), 0);
	assert_int_equal(c.free, f);
	assert_int_equal(c.held, h);
	assert_int_equal(c.delivered, d);
	assert_int_equal(c.retired, r);
}

static void
test_pool(void **state)
{
	uint8_t k[16];
	op_t o;
	err_t err;
	store_conn_t *rc;
	store_stmt_t *st;
	size_t n;

	(void)state;
	import("001010000000002", 0x22);
	import("001010000000001", 0x11);
	counts(2, 0, 0, 0);
	/* the same IMSI twice; a bad IMSI */
	o = (op_t){.what = 0};
	strcpy(o.cred.imsi, "001010000000001");
	assert_int_equal(run(&o, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	strcpy(o.cred.imsi, "0010x");
	assert_int_equal(run(&o, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	/* K is sealed at rest: the row does not hold it */
	assert_non_null(rc = store_reader(fx.st, &err));
	assert_non_null(st = store_stmt(rc, "SELECT k FROM hss_rows WHERE imsi=?1", &err));
	store_bind_str(st, 1, "001010000000001");
	assert_int_equal(store_step(st, &err), STORE_ROW);
	memset(k, 0x11, 16);
	const uint8_t *blob = store_col_blob(st, 0, &n);
	assert_int_equal(n, 16 + SEALED_OVERHEAD);
	assert_null(memmem(blob, n, k, 16));
	store_reset(st);

	/* a failed job takes nothing */
	o = (op_t){.what = 1, .dev = "dev-a", .fail_after = 1};
	assert_int_equal(run(&o, &err), -1);
	counts(2, 0, 0, 0);
	/* lowest IMSI first, one row to one device, K/OPc unsealed */
	o = (op_t){.what = 1, .dev = "dev-a"};
	assert_int_equal(run(&o, &err), 0);
	assert_string_equal(o.cred.imsi, "001010000000001");
	memset(k, 0x11, 16);
	assert_memory_equal(o.cred.k, k, 16);
	memset(k, 0x12, 16);
	assert_memory_equal(o.cred.opc, k, 16);
	op_t b = {.what = 1, .dev = "dev-b"};
	assert_int_equal(run(&b, &err), 0);
	assert_string_equal(b.cred.imsi, "001010000000002");
	counts(0, 2, 0, 0);
	op_t c = {.what = 1, .dev = "dev-c"};
	assert_int_equal(run(&c, &err), -1);
	assert_int_equal(err.status, STB_UNAVAILABLE);

	/* delivered only for the device it is held for */
	o = (op_t){.what = 2, .imsi = "001010000000001", .dev = "dev-b"};
	assert_int_equal(run(&o, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	o.dev = "dev-a";
	assert_int_equal(run(&o, &err), 0);
	counts(0, 1, 1, 0);
	/* a delivered row is neither released nor retired */
	o = (op_t){.what = 3, .imsi = "001010000000001"};
	assert_int_equal(run(&o, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	o.what = 4;
	assert_int_equal(run(&o, &err), -1);
	/* a held row goes back, then is handed out again; retired for good */
	o = (op_t){.what = 3, .imsi = "001010000000002"};
	assert_int_equal(run(&o, &err), 0);
	counts(1, 0, 1, 0);
	o = (op_t){.what = 4, .imsi = "001010000000002"};
	assert_int_equal(run(&o, &err), 0);
	counts(0, 0, 1, 1);
	o = (op_t){.what = 3, .imsi = "001010000000002"};
	assert_int_equal(run(&o, &err), -1);
	o = (op_t){.what = 3, .imsi = "001019999999999"};
	assert_int_equal(run(&o, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	hss_cred_wipe(&b.cred);
	assert_string_equal(hss_backend(fx.hss), "embedded");
}

static void
test_backend_name(void **state)
{
	hss_conf_t hc = {.backend = "mysql"};
	hss_t *h;
	err_t err;

	(void)state;
	assert_int_equal(hss_open(&hc, fx.kek, &h, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pool, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_backend_name, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
