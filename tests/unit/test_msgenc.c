/* Unit tests for msgenc: the generated request encoders check every field
 * against the registry and put exactly what msg_parse accepts. */
#include <string.h>

#include "msgenc.h"
#include "testutil.h"
#include "tlv.h"

static int
parse(msg_t *m, uint16_t type, const buf_t *b, err_t *err)
{
	frame_hdr_t h = {.type = type, .req_id = 9, .len = (uint32_t)b->len};

	return msg_parse(m, &h, b->data, err);
}

static void
test_round_trip(void **state)
{
	uint8_t csr[300];
	buf_t b;
	msg_t m;
	err_t err;
	const uint8_t *p;
	size_t n;
	uint32_t v;
	char s[64];

	(void)state;
	memset(csr, 0x30, sizeof(csr));
	buf_init(&b, 4096);
	struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(csr, sizeof(csr)),
	                            .CERT_PROFILE = MV_STR("stb-media"),
	                            .DEVICE_ID = MV_STR("stb-0001"),
	                            .VALIDITY_S = MV_U(86400)};
	assert_int_equal(msgenc_CA_ISSUE(&b, &q, &err), 0);
	assert_int_equal(parse(&m, STB_MSG_CA_ISSUE, &b, &err), 0);
	assert_int_equal(msg_get_bytes(&m, TLV_IX_CSR_DER, &p, &n), 0);
	assert_int_equal(n, sizeof(csr));
	assert_memory_equal(p, csr, n);
	assert_int_equal(msg_get_str(&m, TLV_IX_CERT_PROFILE, s, sizeof(s)), 0);
	assert_string_equal(s, "stb-media");
	assert_int_equal(msg_get_str(&m, TLV_IX_DEVICE_ID, s, sizeof(s)), 0);
	assert_string_equal(s, "stb-0001");
	assert_int_equal(msg_get_u32(&m, TLV_IX_VALIDITY_S, &v), 0);
	assert_int_equal(v, 86400);
	/* an optional field left out is not on the wire */
	assert_false(msg_has(&m, TLV_IX_CERT_ID));
	buf_free(&b);
}

static void
test_no_fields(void **state)
{
	buf_t b;
	err_t err;

	(void)state;
	buf_init(&b, 64);
	struct msgreq_ADMIN_CONFIG_DUMP q = {0};
	assert_int_equal(msgenc_ADMIN_CONFIG_DUMP(&b, &q, &err), 0);
	assert_int_equal(b.len, 0);
	struct msgreq_PING ping = {.PAYLOAD = MV_IF(0, MV_STR("x"))};
	assert_int_equal(msgenc_PING(&b, &ping, &err), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* Each refusal leaves the buffer as it was and names the field. */
static void
test_refusals(void **state)
{
	static const uint8_t csr[300] = {0x30};
	uint8_t big[9000];
	struct {
		const char *name;
		struct msgreq_CA_ISSUE q;
		size_t cap;
		int status;
		const char *word;
	} cases[] = {
	    {"required field missing",
	     {.CERT_PROFILE = MV_STR("stb-media")},
	     4096,
	     STB_BAD_REQUEST,
	     "CSR_DER is required"},
	    {"bytes below the minimum",
	     {.CSR_DER = MV_BYTES(csr, 3), .CERT_PROFILE = MV_STR("p")},
	     4096,
	     STB_BAD_REQUEST,
	     "CSR_DER"},
	    {"bytes above the maximum",
	     {.CSR_DER = MV_BYTES(big, sizeof(big)), .CERT_PROFILE = MV_STR("p")},
	     65536,
	     STB_BAD_REQUEST,
	     "CSR_DER"},
	    {"identifier syntax",
	     {.CSR_DER = MV_BYTES(csr, sizeof(csr)),
	      .CERT_PROFILE = MV_STR("p"),
	      .DEVICE_ID = MV_STR("no spaces")},
	     4096,
	     STB_BAD_REQUEST,
	     "DEVICE_ID is not an identifier"},
	    {"integer wider than its TLV",
	     {.CSR_DER = MV_BYTES(csr, sizeof(csr)),
	      .CERT_PROFILE = MV_STR("p"),
	      .VALIDITY_S = MV_U(UINT64_C(1) << 33)},
	     4096,
	     STB_BAD_REQUEST,
	     "VALIDITY_S"},
	    {"buffer cap",
	     {.CSR_DER = MV_BYTES(csr, sizeof(csr)), .CERT_PROFILE = MV_STR("p")},
	     100,
	     STB_TOO_LARGE,
	     "CA_ISSUE"},
	};

	(void)state;
	memset(big, 0x30, sizeof(big));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_t b;
		err_t err;

		buf_init(&b, cases[i].cap);
		assert_int_equal(tlv_put_u8(&b, 0x8001, 7), 0); /* what was there before */
		err_clear(&err);
		if (msgenc_CA_ISSUE(&b, &cases[i].q, &err) != -1)
			fail_msg("%s: accepted", cases[i].name);
		if (err.status != cases[i].status || strstr(err.msg, cases[i].word) == NULL)
			fail_msg("%s: %s \"%s\"", cases[i].name, stb_status_name(err.status),
			         err.msg);
		if (b.len != 7 || b.failed)
			fail_msg("%s: buffer left at %zu bytes (failed %d)", cases[i].name, b.len,
			         b.failed);
		buf_free(&b);
	}
}

static void
test_string_nul(void **state)
{
	static const char nul[] = {'a', 0, 'b'};
	buf_t b;
	err_t err;

	(void)state;
	buf_init(&b, 4096);
	struct msgreq_ADMIN_AUDIT_NOTE q = {.NOTE_TEXT = MV_BYTES(nul, sizeof(nul))};
	assert_int_equal(msgenc_ADMIN_AUDIT_NOTE(&b, &q, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_non_null(strstr(err.msg, "NOTE_TEXT holds a NUL"));
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* MV_STR and friends evaluate their arguments once, as argv loops need. */
static void
test_single_evaluation(void **state)
{
	const char *args[] = {"stb-1", "stb-2"};
	int i = 0;
	msg_val_t v;

	(void)state;
	v = MV_STR(args[i++]);
	assert_int_equal(i, 1);
	assert_int_equal(v.len, 5);
	assert_memory_equal(v.p, "stb-1", 5);
	v = MV_U(++i);
	assert_int_equal(i, 2);
	assert_int_equal(v.u, 2);
	v = MV_IF(i > 5, MV_STR(args[i++]));
	assert_int_equal(i, 2);
	assert_false(v.set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_no_fields),
	    cmocka_unit_test(test_refusals),          cmocka_unit_test(test_string_nul),
	    cmocka_unit_test(test_single_evaluation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
