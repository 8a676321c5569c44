/* test_base45: RFC 9285's vectors both ways, and what a decoder refuses. */
#include <string.h>

#include "base45.h"
#include "testutil.h"

static const struct {
	const char *bytes;
	const char *text;
} vectors[] = {
    {"AB", "BB8"},              /* RFC 9285 4.3 */
    {"Hello!!", "%69 VD92EX0"}, /* 4.3 */
    {"base-45", "UJCLQE7W581"}, /* 4.3 */
    {"ietf!", "QED8WEX0"},      /* 4.4 (decoding) */
    {"", ""},
    {"\xff\xff", "FGW"}, /* the largest group */
    {"\x00", "00"},
};

static void
test_vectors(void **state)
{
	char text[64];
	uint8_t bytes[64];
	size_t n;
	err_t err;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(vectors); i++) {
		size_t blen = strlen(vectors[i].bytes);

		if (i == 6)
			blen = 1;
		assert_int_equal(base45_encode((const uint8_t *)vectors[i].bytes, blen, text,
		                               sizeof(text), &n, &err),
		                 0);
		assert_string_equal(text, vectors[i].text);
		assert_int_equal(n, base45_encoded_len(blen));
		assert_int_equal(base45_decode(vectors[i].text, strlen(vectors[i].text), bytes,
		                               sizeof(bytes), &n, &err),
		                 0);
		assert_int_equal(n, blen);
		assert_memory_equal(bytes, vectors[i].bytes, blen);
	}
}

static void
test_refused(void **state)
{
	static const char *bad[] = {
	    "GGW",  /* 65536: out of range (RFC 9285 section 6) */
	    "BB8A", /* 3k+1 characters */
	    "bb8",  /* lowercase is not in the alphabet */
	    "B=8",  /* neither is '=' */
	    ":::",  /* 44 + 44*45 + 44*2025 > 65535 */
	    "L7",   /* 20 + 7*45 = 335: the last byte out of range */
	};
	uint8_t out[16];
	size_t n = 99;
	err_t err;

	(void)state;
	for (size_t i = 0; i < TU_NELEM(bad); i++) {
		assert_int_equal(base45_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n, &err),
		                 -1);
		assert_int_equal(err.status, STB_BAD_REQUEST);
		assert_int_equal(n, 99);
	}
	/* the decoded bytes must fit */
	assert_int_equal(base45_decode("UJCLQE7W581", 11, out, 6, &n, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
}

static void
test_encode_room(void **state)
{
	char text[4];
	err_t err;

	(void)state;
	/* "AB" needs 3 characters and the NUL */
	assert_int_equal(base45_encode((const uint8_t *)"AB", 2, text, 3, NULL, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(base45_encode((const uint8_t *)"AB", 2, text, 4, NULL, &err), 0);
	assert_string_equal(text, "BB8");
	assert_int_equal(base45_encode((const uint8_t *)"", 0, text, 0, NULL, &err), -1);
}

static void
test_round_trip(void **state)
{
	uint8_t in[257], back[257];
	char text[400];
	size_t n, m;
	err_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(in); len++) {
		assert_int_equal(base45_encode(in, len, text, sizeof(text), &n, &err), 0);
		assert_int_equal(base45_decode(text, n, back, sizeof(back), &m, &err), 0);
		assert_int_equal(m, len);
		assert_memory_equal(back, in, len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_encode_room),
	    cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
