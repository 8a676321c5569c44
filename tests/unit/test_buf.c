/* Unit tests for buf: the growable byte buffer with a hard cap. */
#include <string.h>

#include "buf.h"
#include "testutil.h"

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i);
}

static void
test_init_is_empty(void **state)
{
	buf_t b;

	(void)state;
	memset(&b, 0xa5, sizeof(b));
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	assert_int_equal(b.failed, 0);
	buf_free(&b);
}

static void
test_append_grows_and_keeps_bytes(void **state)
{
	uint8_t src[5000];
	buf_t b;

	(void)state;
	fill(src, sizeof(src), 7);
	buf_init(&b, 1 << 20);
	/* many small appends force several reallocations */
	for (size_t off = 0; off < sizeof(src); off += 100)
		assert_int_equal(buf_append(&b, src + off, 100), 0);
	assert_int_equal(b.len, sizeof(src));
	assert_true(b.cap >= b.len);
	assert_true(b.cap <= b.max);
	assert_memory_equal(b.data, src, sizeof(src));
	assert_int_equal(b.failed, 0);
	buf_free(&b);
}

static void
test_reserve_does_not_change_len(void **state)
{
	buf_t b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(buf_reserve(&b, 1000), 0);
	assert_int_equal(b.len, 0);
	assert_true(b.cap >= 1000);
	assert_non_null(b.data);
	/* a second reserve that already fits keeps the same storage */
	{
		uint8_t *before = b.data;
		size_t cap = b.cap;
		assert_int_equal(buf_reserve(&b, 10), 0);
		assert_ptr_equal(b.data, before);
		assert_int_equal(b.cap, cap);
	}
	buf_free(&b);
}

static void
test_cap_is_hard(void **state)
{
	uint8_t src[1000];
	buf_t b;

	(void)state;
	fill(src, sizeof(src), 1);
	buf_init(&b, 1000);
	assert_int_equal(buf_append(&b, src, 600), 0);
	assert_int_equal(buf_append(&b, src + 600, 400), 0);
	assert_int_equal(b.len, 1000);
	assert_true(b.cap <= 1000);
	assert_int_equal(b.failed, 0);
	/* one byte past max is refused, sticky, and leaves the bytes alone */
	assert_int_equal(buf_append(&b, src, 1), -1);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.len, 1000);
	assert_memory_equal(b.data, src, 1000);
	/* an empty append still succeeds, failed stays set */
	assert_int_equal(buf_append(&b, src, 0), 0);
	assert_int_equal(b.failed, 1);
	buf_free(&b);
}

static void
test_reserve_refuses_overflowing_sizes(void **state)
{
	static const struct {
		const char *name;
		size_t max, first, extra;
	} cases[] = {
	    {"extra over max", 100, 0, 101},
	    {"len + extra over max", 100, 60, 41},
	    {"SIZE_MAX extra", 100, 10, SIZE_MAX},
	    {"SIZE_MAX max, SIZE_MAX extra", SIZE_MAX, 10, SIZE_MAX},
	    {"zero max", 0, 0, 1},
	};
	uint8_t src[100] = {0};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		buf_t b;
		buf_init(&b, cases[i].max);
		if (cases[i].first > 0)
			assert_int_equal(buf_append(&b, src, cases[i].first), 0);
		if (buf_reserve(&b, cases[i].extra) != -1)
			fail_msg("%s: reserve succeeded", cases[i].name);
		if (b.failed != 1 || b.len != cases[i].first)
			fail_msg("%s: failed=%d len=%zu", cases[i].name, b.failed, b.len);
		buf_free(&b);
	}
}

static void
test_reset_keeps_storage(void **state)
{
	buf_t b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(buf_append(&b, "9", 1), -1);
	assert_int_equal(b.failed, 1);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.failed, 0);
	assert_non_null(b.data);
	assert_int_equal(buf_append(&b, "abcdefgh", 8), 0);
	assert_memory_equal(b.data, "abcdefgh", 8);
	buf_free(&b);
}

static void
test_free_and_wipe_leave_empty_buffer(void **state)
{
	buf_t b;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(buf_append(&b, "secret", 6), 0);
	buf_wipe(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* usable again after a wipe, and wiping an empty buffer is fine */
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(b.len, 1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_wipe(&b);
	buf_free(&b);
	assert_null(b.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_is_empty),
	    cmocka_unit_test(test_append_grows_and_keeps_bytes),
	    cmocka_unit_test(test_reserve_does_not_change_len),
	    cmocka_unit_test(test_cap_is_hard),
	    cmocka_unit_test(test_reserve_refuses_overflowing_sizes),
	    cmocka_unit_test(test_reset_keeps_storage),
	    cmocka_unit_test(test_free_and_wipe_leave_empty_buffer),
	};

	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
