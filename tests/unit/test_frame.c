/* Unit tests for frame: the 16-byte header decoder and encoder. */
#include <string.h>

#include "frame.h"
#include "stb/stbproto.h"
#include "testutil.h"
#include "tlv.h"

#define MAXF STB_FRAME_DEFAULT_MAX

/* A header written byte by byte, independent of frame_encode_hdr(). */
static void
raw_hdr(uint8_t p[16], uint8_t ver, uint8_t flags, uint16_t type, uint16_t reserved,
        uint32_t req_id, uint32_t len)
{
	p[0] = 0x53;
	p[1] = 0x42;
	p[2] = ver;
	p[3] = flags;
	p[4] = (uint8_t)(type >> 8);
	p[5] = (uint8_t)type;
	p[6] = (uint8_t)(reserved >> 8);
	p[7] = (uint8_t)reserved;
	p[8] = (uint8_t)(req_id >> 24);
	p[9] = (uint8_t)(req_id >> 16);
	p[10] = (uint8_t)(req_id >> 8);
	p[11] = (uint8_t)req_id;
	p[12] = (uint8_t)(len >> 24);
	p[13] = (uint8_t)(len >> 16);
	p[14] = (uint8_t)(len >> 8);
	p[15] = (uint8_t)len;
}

static void
test_decode_ok(void **state)
{
	uint8_t p[16 + 5 + 16];
	frame_hdr_t h;

	(void)state;
	raw_hdr(p, 1, STB_FRAME_F_RESPONSE, 0x0f01, 0, 0xdeadbeef, 5);
	memcpy(p + 16, "hello", 5);
	memset(&h, 0, sizeof(h));
	assert_int_equal(frame_decode(p, 21, MAXF, &h), FRAME_OK);
	assert_int_equal(h.flags, STB_FRAME_F_RESPONSE);
	assert_int_equal(h.type, 0x0f01);
	assert_int_equal(h.req_id, 0xdeadbeef);
	assert_int_equal(h.len, 5);
	/* bytes of the next frame after the body do not matter */
	memset(p + 21, 0xff, 16);
	assert_int_equal(frame_decode(p, sizeof(p), MAXF, &h), FRAME_OK);
	assert_int_equal(h.len, 5);
	/* an empty body is complete with the header alone */
	raw_hdr(p, 1, 0, STB_MSG_PING, 0, 1, 0);
	assert_int_equal(frame_decode(p, 16, MAXF, &h), FRAME_OK);
	assert_int_equal(h.len, 0);
	assert_int_equal(h.type, STB_MSG_PING);
	assert_int_equal(h.req_id, 1);
}

static void
test_decode_need_more_header(void **state)
{
	uint8_t p[16];
	frame_hdr_t h;

	(void)state;
	raw_hdr(p, 1, 0, STB_MSG_PING, 0, 7, 0);
	for (size_t avail = 0; avail < 16; avail++) {
		int rc = frame_decode(p, avail, MAXF, &h);
		if (rc != FRAME_NEED_MORE)
			fail_msg("%zu header bytes: got %d (%s), want NEED_MORE", avail, rc,
			         frame_strerror(rc));
	}
}

static void
test_decode_need_more_body(void **state)
{
	uint8_t p[16 + 10];
	frame_hdr_t h;

	(void)state;
	raw_hdr(p, 1, 0, STB_MSG_PING, 0, 7, 10);
	memset(p + 16, 'x', 10);
	for (size_t avail = 16; avail < sizeof(p); avail++) {
		int rc = frame_decode(p, avail, MAXF, &h);
		if (rc != FRAME_NEED_MORE)
			fail_msg("%zu of 26 bytes: got %d, want NEED_MORE", avail, rc);
	}
	assert_int_equal(frame_decode(p, sizeof(p), MAXF, &h), FRAME_OK);
	/* a body at exactly max_frame is accepted, and waited for */
	raw_hdr(p, 1, 0, STB_MSG_PING, 0, 7, MAXF);
	assert_int_equal(frame_decode(p, 16, MAXF, &h), FRAME_NEED_MORE);
}

static void
test_decode_bad_magic(void **state)
{
	static const struct {
		const char *name;
		uint8_t b0, b1;
		size_t avail;
	} cases[] = {
	    {"first byte alone, zero", 0x00, 0x42, 1},
	    {"first byte alone, 'B'", 0x42, 0x42, 1},
	    {"first byte alone, 'S'+1", 0x54, 0x42, 1},
	    {"second byte wrong", 0x53, 0x43, 2},
	    {"second byte wrong, whole header", 0x53, 0x00, 16},
	    {"swapped, whole header", 0x42, 0x53, 16},
	    {"HTTP request", 'G', 'E', 16},
	    {"TLS record", 0x16, 0x03, 16},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t p[16];
		frame_hdr_t h;
		int rc;
		/* bad version and flags too: magic must be judged first */
		raw_hdr(p, 9, 0xff, STB_MSG_PING, 1, 1, 0);
		p[0] = cases[i].b0;
		p[1] = cases[i].b1;
		rc = frame_decode(p, cases[i].avail, MAXF, &h);
		if (rc != FRAME_BAD_MAGIC)
			fail_msg("%s: got %d, want BAD_MAGIC", cases[i].name, rc);
	}
}

static void
test_decode_bad_version(void **state)
{
	static const uint8_t versions[] = {0, 2, 3, 0x80, 0xff};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(versions); i++) {
		uint8_t p[16];
		frame_hdr_t h;
		int rc;
		raw_hdr(p, versions[i], 0, 0x0f02, 0, 0x01020304, 0);
		memset(&h, 0, sizeof(h));
		rc = frame_decode(p, sizeof(p), MAXF, &h);
		if (rc != FRAME_BAD_VERSION)
			fail_msg("version %u: got %d, want BAD_VERSION", versions[i], rc);
		/* the caller answers with the request's type and id */
		assert_int_equal(h.type, 0x0f02);
		assert_int_equal(h.req_id, 0x01020304);
		assert_int_equal(frame_error_status(rc), STB_UNSUPPORTED);
	}
}

static void
test_decode_flags(void **state)
{
	static const struct {
		const char *name;
		uint8_t flags;
		int want;
	} cases[] = {
	    {"request", 0x00, FRAME_OK},
	    {"response", STB_FRAME_F_RESPONSE, FRAME_OK},
	    {"error response", STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, FRAME_OK},
	    {"push", STB_FRAME_F_PUSH, FRAME_OK},
	    {"error without response", STB_FRAME_F_ERROR, FRAME_BAD_FLAGS},
	    {"push with response", STB_FRAME_F_PUSH | STB_FRAME_F_RESPONSE, FRAME_BAD_FLAGS},
	    {"push with error", STB_FRAME_F_PUSH | STB_FRAME_F_ERROR, FRAME_BAD_FLAGS},
	    {"all three", 0x07, FRAME_BAD_FLAGS},
	    {"bit 3", 0x08, FRAME_BAD_FLAGS},
	    {"bit 4", 0x10, FRAME_BAD_FLAGS},
	    {"bit 5", 0x20, FRAME_BAD_FLAGS},
	    {"bit 6", 0x40, FRAME_BAD_FLAGS},
	    {"bit 7", 0x80, FRAME_BAD_FLAGS},
	    {"response + bit 3", 0x09, FRAME_BAD_FLAGS},
	    {"error response + bit 7", 0x83, FRAME_BAD_FLAGS},
	    {"push + bit 5", 0x24, FRAME_BAD_FLAGS},
	    {"all bits", 0xff, FRAME_BAD_FLAGS},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t p[16];
		frame_hdr_t h;
		int rc;
		raw_hdr(p, 1, cases[i].flags, STB_MSG_PING, 0, 0x55, 0);
		memset(&h, 0, sizeof(h));
		rc = frame_decode(p, sizeof(p), MAXF, &h);
		if (rc != cases[i].want)
			fail_msg("%s (0x%02x): got %d (%s), want %d", cases[i].name, cases[i].flags,
			         rc, frame_strerror(rc), cases[i].want);
		assert_int_equal(h.req_id, 0x55);
		assert_int_equal(h.flags, cases[i].flags);
		if (rc != FRAME_OK)
			assert_int_equal(frame_error_status(rc), STB_BAD_REQUEST);
	}
}

static void
test_decode_reserved(void **state)
{
	static const uint16_t reserved[] = {0x0001, 0x0100, 0x8000, 0xffff};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(reserved); i++) {
		uint8_t p[16];
		frame_hdr_t h;
		int rc;
		raw_hdr(p, 1, 0, STB_MSG_PING, reserved[i], 9, 0);
		rc = frame_decode(p, sizeof(p), MAXF, &h);
		if (rc != FRAME_BAD_RESERVED)
			fail_msg("reserved 0x%04x: got %d, want BAD_RESERVED", reserved[i], rc);
		assert_int_equal(h.req_id, 9);
		assert_int_equal(frame_error_status(rc), STB_BAD_REQUEST);
	}
}

static void
test_decode_too_large(void **state)
{
	static const struct {
		const char *name;
		uint32_t max_frame, len;
		int want;
	} cases[] = {
	    {"default max, at limit", MAXF, MAXF, FRAME_NEED_MORE},
	    {"default max, one over", MAXF, MAXF + 1, FRAME_TOO_LARGE},
	    {"default max, 4 GiB", MAXF, 0xffffffffu, FRAME_TOO_LARGE},
	    {"small max", 100, 101, FRAME_TOO_LARGE},
	    {"zero max, empty body", 0, 0, FRAME_OK},
	    {"zero max, one byte", 0, 1, FRAME_TOO_LARGE},
	    {"max above cap, at cap", 0xffffffffu, STB_FRAME_CAP, FRAME_NEED_MORE},
	    {"max above cap, one over cap", 0xffffffffu, STB_FRAME_CAP + 1, FRAME_TOO_LARGE},
	    {"max at cap, one over cap", STB_FRAME_CAP, STB_FRAME_CAP + 1, FRAME_TOO_LARGE},
	    {"max above cap, 4 GiB", 0xffffffffu, 0xffffffffu, FRAME_TOO_LARGE},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint8_t p[16];
		frame_hdr_t h;
		int rc;
		/* only the header is here: the limit is judged before waiting */
		raw_hdr(p, 1, 0, 0x0f01, 0, 3, cases[i].len);
		rc = frame_decode(p, sizeof(p), cases[i].max_frame, &h);
		if (rc != cases[i].want)
			fail_msg("%s: got %d (%s), want %d", cases[i].name, rc, frame_strerror(rc),
			         cases[i].want);
		if (rc == FRAME_TOO_LARGE) {
			assert_int_equal(frame_error_status(rc), STB_TOO_LARGE);
			assert_int_equal(h.type, 0x0f01);
			assert_int_equal(h.req_id, 3);
		}
	}
}

static void
test_encode_hdr_bytes(void **state)
{
	static const uint8_t want[16] = {0x53, 0x42, 0x01, 0x03, 0x0f, 0x05, 0x00, 0x00,
	                                 0x89, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x02, 0x03};
	frame_hdr_t in = {.flags = 0x03, .type = 0x0f05, .req_id = 0x89abcdef, .len = 0x010203};
	frame_hdr_t out;
	uint8_t p[16];

	(void)state;
	memset(p, 0xee, sizeof(p));
	frame_encode_hdr(p, &in);
	assert_memory_equal(p, want, 16);
	/* len 0x010203 is over the default max: use a large enough max */
	assert_int_equal(frame_decode(p, 16, STB_FRAME_CAP, &out), FRAME_NEED_MORE);
	in.len = 0;
	frame_encode_hdr(p, &in);
	assert_int_equal(frame_decode(p, 16, MAXF, &out), FRAME_OK);
	assert_int_equal(out.flags, in.flags);
	assert_int_equal(out.type, in.type);
	assert_int_equal(out.req_id, in.req_id);
	assert_int_equal(out.len, 0);
}

static void
test_begin_end_round_trip(void **state)
{
	buf_t b;
	size_t s1, s2;
	frame_hdr_t h;

	(void)state;
	buf_init(&b, 4096);
	/* two frames back to back in one buffer */
	assert_int_equal(frame_begin(&b, &s1), 0);
	assert_int_equal(s1, 0);
	assert_int_equal(b.len, 16);
	assert_int_equal(tlv_put(&b, STB_TLV_PAYLOAD, "abc", 3), 0);
	assert_int_equal(frame_end(&b, s1, STB_MSG_PING, 0, 42), 0);
	assert_int_equal(frame_begin(&b, &s2), 0);
	assert_int_equal(s2, 16 + 9);
	assert_int_equal(tlv_put_u16(&b, STB_TLV_STATUS, STB_NOT_FOUND), 0);
	assert_int_equal(frame_end(&b, s2, 0x0f02, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, 43),
	                 0);

	assert_int_equal(frame_decode(b.data, b.len, MAXF, &h), FRAME_OK);
	assert_int_equal(h.type, STB_MSG_PING);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.req_id, 42);
	assert_int_equal(h.len, 9);
	assert_memory_equal(b.data + 16,
	                    "\x00\x03\x00\x00\x00\x03"
	                    "abc",
	                    9);

	assert_int_equal(frame_decode(b.data + s2, b.len - s2, MAXF, &h), FRAME_OK);
	assert_int_equal(h.type, 0x0f02);
	assert_int_equal(h.flags, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR);
	assert_int_equal(h.req_id, 43);
	assert_int_equal(h.len, 8);
	assert_int_equal(b.len, s2 + 16 + 8);
	buf_free(&b);
}

static void
test_begin_refused_by_cap(void **state)
{
	buf_t b;
	size_t start = 12345;

	(void)state;
	buf_init(&b, 15);
	assert_int_equal(frame_begin(&b, &start), -1);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	buf_init(&b, 16);
	assert_int_equal(frame_begin(&b, &start), 0);
	assert_int_equal(b.len, 16);
	assert_int_equal(frame_end(&b, start, STB_MSG_PING, 0, 1), 0);
	buf_free(&b);
}

static void
test_end_refuses_body_over_cap(void **state)
{
	static uint8_t zeros[1 << 16];
	buf_t b;
	size_t start;

	(void)state;
	buf_init(&b, 2 * (size_t)STB_FRAME_CAP);
	assert_int_equal(frame_begin(&b, &start), 0);
	while (b.len < 16 + (size_t)STB_FRAME_CAP)
		assert_int_equal(buf_append(&b, zeros, sizeof(zeros)), 0);
	/* exactly the cap is fine, one byte more is not */
	assert_int_equal(frame_end(&b, start, STB_MSG_PING, 0, 1), 0);
	assert_int_equal(buf_append(&b, zeros, 1), 0);
	assert_int_equal(frame_end(&b, start, STB_MSG_PING, 0, 2), -1);
	buf_free(&b);
}

static void
test_error_status_mapping(void **state)
{
	static const struct {
		int rc;
		int status;
	} cases[] = {
	    {FRAME_BAD_MAGIC, STB_BAD_REQUEST}, {FRAME_BAD_VERSION, STB_UNSUPPORTED},
	    {FRAME_BAD_FLAGS, STB_BAD_REQUEST}, {FRAME_BAD_RESERVED, STB_BAD_REQUEST},
	    {FRAME_TOO_LARGE, STB_TOO_LARGE},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		int got = frame_error_status(cases[i].rc);
		if (got != cases[i].status)
			fail_msg("%s: status %s, want %s", frame_strerror(cases[i].rc),
			         stb_status_name(got), stb_status_name(cases[i].status));
		/* each error has its own text */
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(frame_strerror(cases[i].rc),
			                        frame_strerror(cases[k].rc));
		assert_string_not_equal(frame_strerror(cases[i].rc), frame_strerror(FRAME_OK));
		assert_string_not_equal(frame_strerror(cases[i].rc), frame_strerror(-99));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_ok),
	    cmocka_unit_test(test_decode_need_more_header),
	    cmocka_unit_test(test_decode_need_more_body),
	    cmocka_unit_test(test_decode_bad_magic),
	    cmocka_unit_test(test_decode_bad_version),
	    cmocka_unit_test(test_decode_flags),
	    cmocka_unit_test(test_decode_reserved),
	    cmocka_unit_test(test_decode_too_large),
	    cmocka_unit_test(test_encode_hdr_bytes),
	    cmocka_unit_test(test_begin_end_round_trip),
	    cmocka_unit_test(test_begin_refused_by_cap),
	    cmocka_unit_test(test_end_refuses_body_over_cap),
	    cmocka_unit_test(test_error_status_mapping),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
