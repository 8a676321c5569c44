/* Unit tests for tlv: the reading cursor and the appenders. */
#include <string.h>

#include "testutil.h"
#include "tlv.h"

static void
test_cursor_good_sequence(void **state)
{
	static const uint8_t body[] = {
	    0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x05,      /* 0x0001 len 2 */
	    0x00, 0x03, 0x00, 0x00, 0x00, 0x00,                  /* 0x0003 len 0 */
	    0x81, 0x23, 0x00, 0x00, 0x00, 0x03, 'a',  'b',  'c', /* 0x8123 len 3 */
	};
	static const struct {
		uint16_t type;
		uint32_t len;
		size_t off;
	} want[] = {{0x0001, 2, 6}, {0x0003, 0, 14}, {0x8123, 3, 20}};
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *val;
	uint32_t len;

	(void)state;
	tlv_cursor_init(&c, body, sizeof(body));
	for (size_t i = 0; i < TU_NELEM(want); i++) {
		int rc = tlv_next(&c, &type, &val, &len);
		if (rc != TLV_NEXT)
			fail_msg("TLV %zu: got %d, want TLV_NEXT", i, rc);
		assert_int_equal(type, want[i].type);
		assert_int_equal(len, want[i].len);
		assert_ptr_equal(val, body + want[i].off);
	}
	assert_memory_equal(val, "abc", 3);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_END);
	/* the end is stable */
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_END);
	assert_int_equal(c.off, sizeof(body));
}

static void
test_cursor_empty_body(void **state)
{
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *val;
	uint32_t len;

	(void)state;
	tlv_cursor_init(&c, NULL, 0);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_END);
}

static void
test_cursor_truncated_header(void **state)
{
	uint8_t body[6 + 1 + 5];

	(void)state;
	/* one good TLV, then 1..5 bytes of a second header */
	memcpy(body, "\x00\x03\x00\x00\x00\x01Z", 7);
	memcpy(body + 7, "\x00\x03\x00\x00\x00", 5);
	for (size_t left = 1; left <= 5; left++) {
		tlv_cursor_t c;
		uint16_t type;
		const uint8_t *val;
		uint32_t len;
		int rc;
		tlv_cursor_init(&c, body, 7 + left);
		assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_NEXT);
		assert_int_equal(len, 1);
		rc = tlv_next(&c, &type, &val, &len);
		if (rc != TLV_TRUNCATED)
			fail_msg("%zu header bytes left: got %d, want TLV_TRUNCATED", left, rc);
		/* the cursor does not move past an error */
		assert_int_equal(c.off, 7);
		assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_TRUNCATED);
	}
}

static void
test_cursor_past_body(void **state)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t n;
		int want;
	} cases[] = {
	    {"len 1, no value", "\x00\x03\x00\x00\x00\x01", 6, TLV_PAST_BODY},
	    {"len 5, 4 bytes",
	     "\x00\x03\x00\x00\x00\x05"
	     "abcd",
	     10, TLV_PAST_BODY},
	    {"len 2^31",
	     "\x00\x03\x80\x00\x00\x00"
	     "abcd",
	     10, TLV_PAST_BODY},
	    {"len 2^32-1",
	     "\x00\x03\xff\xff\xff\xff"
	     "abcd",
	     10, TLV_PAST_BODY},
	    {"len 4, 4 bytes",
	     "\x00\x03\x00\x00\x00\x04"
	     "abcd",
	     10, TLV_NEXT},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		tlv_cursor_t c;
		uint16_t type;
		const uint8_t *val;
		uint32_t len;
		int rc;
		tlv_cursor_init(&c, (const uint8_t *)cases[i].bytes, cases[i].n);
		rc = tlv_next(&c, &type, &val, &len);
		if (rc != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, rc, cases[i].want);
		if (rc == TLV_PAST_BODY)
			assert_int_equal(c.off, 0);
	}
}

static void
test_cursor_zero_length_values(void **state)
{
	static const uint8_t body[] = {0x00, 0x07, 0, 0,    0,    0, 0x00, 0x08, 0,
	                               0,    0,    0, 0x00, 0x09, 0, 0,    0,    0};
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *val;
	uint32_t len = 99;
	int n = 0;

	(void)state;
	tlv_cursor_init(&c, body, sizeof(body));
	while (tlv_next(&c, &type, &val, &len) == TLV_NEXT) {
		assert_int_equal(type, 0x0007 + n);
		assert_int_equal(len, 0);
		assert_ptr_equal(val, body + 6 * (n + 1));
		n++;
	}
	assert_int_equal(n, 3);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_END);
}

static void
test_put_encodings_are_big_endian(void **state)
{
	static const uint8_t want[] = {
	    0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0xab,                   /* u8 */
	    0x03, 0x04, 0x00, 0x00, 0x00, 0x02, 0x12, 0x34,             /* u16 */
	    0x05, 0x06, 0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, /* u32 */
	    0x07, 0x08, 0x00, 0x00, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04,
	    0x05, 0x06, 0x07, 0x08,                               /* u64 */
	    0x80, 0x09, 0x00, 0x00, 0x00, 0x02, 'h',  'i',        /* str */
	    0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,                   /* empty str */
	    0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x02, /* bytes */
	    0x00, 0x0b, 0x00, 0x00, 0x00, 0x00,                   /* empty bytes */
	};
	buf_t b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(tlv_put_u8(&b, 0x0102, 0xab), 0);
	assert_int_equal(tlv_put_u16(&b, 0x0304, 0x1234), 0);
	assert_int_equal(tlv_put_u32(&b, 0x0506, 0xdeadbeef), 0);
	assert_int_equal(tlv_put_u64(&b, 0x0708, 0x0102030405060708ull), 0);
	assert_int_equal(tlv_put_str(&b, 0x8009, "hi"), 0);
	assert_int_equal(tlv_put_str(&b, 0x000a, ""), 0);
	assert_int_equal(tlv_put(&b, 0xffff, "\x00\x01\x02", 3), 0);
	assert_int_equal(tlv_put(&b, 0x000b, NULL, 0), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	assert_int_equal(b.failed, 0);
	buf_free(&b);
}

static void
test_put_then_read_back(void **state)
{
	buf_t b;
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *val;
	uint32_t len;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(tlv_put_u64(&b, 0x0f03, UINT64_MAX), 0);
	assert_int_equal(tlv_put_str(&b, 0x0f01, "ca-authd"), 0);
	tlv_cursor_init(&c, b.data, b.len);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_NEXT);
	assert_int_equal(type, 0x0f03);
	assert_int_equal(len, 8);
	assert_memory_equal(val, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_NEXT);
	assert_int_equal(type, 0x0f01);
	assert_int_equal(len, 8);
	assert_memory_equal(val, "ca-authd", 8);
	assert_int_equal(tlv_next(&c, &type, &val, &len), TLV_END);
	buf_free(&b);
}

static void
test_put_refused_by_cap(void **state)
{
	buf_t b;

	(void)state;
	/* a u32 TLV is 10 bytes: an exact fit succeeds */
	buf_init(&b, 10);
	assert_int_equal(tlv_put_u32(&b, 1, 7), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.failed, 0);
	assert_int_equal(tlv_put_u8(&b, 2, 1), -1);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.len, 10);
	buf_free(&b);

	/* nothing of a refused TLV is written, not even its header */
	buf_init(&b, 9);
	assert_int_equal(tlv_put_u32(&b, 1, 7), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.failed, 1);
	buf_free(&b);

	/* failed is sticky across a later append that fits */
	buf_init(&b, 20);
	assert_int_equal(tlv_put_u32(&b, 1, 7), 0);
	assert_int_equal(tlv_put_u64(&b, 2, 7), -1);
	assert_int_equal(tlv_put_u8(&b, 3, 7), 0);
	assert_int_equal(b.len, 17);
	assert_int_equal(b.failed, 1);
	assert_int_equal(tlv_put_str(&b, 4, "xyzw"), -1);
	assert_int_equal(b.len, 17);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cursor_good_sequence),
	    cmocka_unit_test(test_cursor_empty_body),
	    cmocka_unit_test(test_cursor_truncated_header),
	    cmocka_unit_test(test_cursor_past_body),
	    cmocka_unit_test(test_cursor_zero_length_values),
	    cmocka_unit_test(test_put_encodings_are_big_endian),
	    cmocka_unit_test(test_put_then_read_back),
	    cmocka_unit_test(test_put_refused_by_cap),
	};

	return cmocka_run_group_tests_name("tlv", tests, NULL, NULL);
}
