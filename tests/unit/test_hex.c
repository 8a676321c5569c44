/* Unit tests for hex: bytes as hex digits and back. */
#include <string.h>

#include "hex.h"
#include "testutil.h"

static void
test_digit(void **state)
{
	static const struct {
		int c, want;
	} cases[] = {
	    {'0', 0},  {'9', 9},   {'a', 10}, {'f', 15},  {'A', 10},        {'F', 15},
	    {'g', -1}, {'G', -1},  {'/', -1}, {':', -1},  {'@', -1},        {'`', -1},
	    {' ', -1}, {'\0', -1}, {-1, -1},  {0xff, -1}, {(char)0xe9, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hex_digit(cases[i].c) != cases[i].want)
			fail_msg("hex_digit(%d): got %d, want %d", cases[i].c,
			         hex_digit(cases[i].c), cases[i].want);
}

static void
test_encode(void **state)
{
	static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof(bytes) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	hex_encode(bytes, sizeof(bytes), out);
	assert_string_equal(out, "00017f80abff");
	hex_encode_upper(bytes, sizeof(bytes), out);
	assert_string_equal(out, "00017F80ABFF");
	/* nothing to write is still a string */
	memset(out, 'x', sizeof(out));
	hex_encode(bytes, 0, out);
	assert_string_equal(out, "");
	hex_encode_upper(bytes, 0, out);
	assert_string_equal(out, "");
}

static void
test_decode(void **state)
{
	static const struct {
		const char *name, *in;
		size_t cap;
		int rc;
		size_t n;
		const char *want;
	} cases[] = {
	    {"empty", "", 4, 0, 0, ""},
	    {"lower", "00017f80abff", 6, 0, 6, "\x00\x01\x7f\x80\xab\xff"},
	    {"upper", "00017F80ABFF", 6, 0, 6, "\x00\x01\x7f\x80\xab\xff"},
	    {"mixed", "aBcD", 8, 0, 2, "\xab\xcd"},
	    {"exactly fits", "0102", 2, 0, 2, "\x01\x02"},
	    {"one byte too many", "010203", 2, -1, 0, NULL},
	    {"odd length", "012", 4, -1, 0, NULL},
	    {"non-digit first", "g0", 4, -1, 0, NULL},
	    {"non-digit second", "0g", 4, -1, 0, NULL},
	    {"blank", "01 2", 4, -1, 0, NULL},
	    {"0x prefix", "0x01", 4, -1, 0, NULL},
	    {"sign", "+1", 4, -1, 0, NULL},
	    {"high byte", "0\xe9", 4, -1, 0, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[8];
		size_t n = 99;
		int rc = hex_decode(cases[i].in, strlen(cases[i].in), out, cases[i].cap, &n);
		if (rc != cases[i].rc)
			fail_msg("%s: got %d, want %d", cases[i].name, rc, cases[i].rc);
		if (rc == -1) {
			if (n != 99)
				fail_msg("%s: length set on failure", cases[i].name);
			continue;
		}
		if (n != cases[i].n || memcmp(out, cases[i].want, n) != 0)
			fail_msg("%s: wrong bytes (%zu)", cases[i].name, n);
	}
}

static void
test_decode_length_only_from_len(void **state)
{
	uint8_t out[2] = {0, 0};

	(void)state;
	/* len, not the NUL, bounds the digits; a NULL outlen is fine */
	assert_int_equal(hex_decode("abcdef", 4, out, sizeof(out), NULL), 0);
	assert_memory_equal(out, "\xab\xcd", 2);
	/* a NUL inside len is not a digit */
	assert_int_equal(hex_decode("ab\0d", 4, out, sizeof(out), NULL), -1);
}

static void
test_round_trip(void **state)
{
	uint8_t bytes[256], back[256];
	char text[2 * sizeof(bytes) + 1];
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	hex_encode(bytes, sizeof(bytes), text);
	assert_int_equal(hex_decode(text, strlen(text), back, sizeof(back), &n), 0);
	assert_int_equal(n, sizeof(bytes));
	assert_memory_equal(back, bytes, sizeof(bytes));
	hex_encode_upper(bytes, sizeof(bytes), text);
	assert_int_equal(hex_decode(text, strlen(text), back, sizeof(back), &n), 0);
	assert_memory_equal(back, bytes, sizeof(bytes));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digit),      cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_decode),     cmocka_unit_test(test_decode_length_only_from_len),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests_name("hex", tests, NULL, NULL);
}
