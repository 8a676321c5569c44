/* Unit tests for keysync: the key sync MAC, the MDN rule and the SMS text. */
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "keysync.h"
#include "testutil.h"

static const char *const vec_mac = /* computed independently (Python hmac) */
    "30cbb7e3ab4c2542df602ff812474941f23b4aa1567076752e786c1842832569";
static const char *const vec_mac_noapp =
    "bba497048fc60a0f3754ecd8bb273c26673285e2169203e0ffeab6d2cc8b1d6a";

static void
vec_key(uint8_t key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
}

static void
test_mac_vector(void **state)
{
	uint8_t key[32], mac[KEYSYNC_MAC_LEN];
	char hex[2 * KEYSYNC_MAC_LEN + 1];
	err_t err;

	(void)state;
	vec_key(key);
	assert_int_equal(keysync_mac(key, sizeof key, "KEY-0001", "8613800138000", "tv.example",
	                             1764643200, mac, &err),
	                 0);
	hex_encode(mac, sizeof mac, hex);
	assert_string_equal(hex, vec_mac);
	assert_int_equal(
	    keysync_mac(key, sizeof key, "KEY-0001", "8613800138000", NULL, 1764643200, mac, &err),
	    0);
	hex_encode(mac, sizeof mac, hex);
	assert_string_equal(hex, vec_mac_noapp);
	/* "" and NULL are the same missing app */
	assert_int_equal(keysync_mac_verify(key, sizeof key, "KEY-0001", "8613800138000", "",
	                                    1764643200, mac, sizeof mac, &err),
	                 0);
}

static void
test_mac_verify(void **state)
{
	uint8_t key[32], mac[KEYSYNC_MAC_LEN];
	err_t err;

	(void)state;
	vec_key(key);
	assert_int_equal(keysync_mac(key, sizeof key, "K1", "12345678", "app", 7, mac, &err), 0);
	assert_int_equal(
	    keysync_mac_verify(key, sizeof key, "K1", "12345678", "app", 7, mac, sizeof mac, &err),
	    0);
	/* every field is covered */
	static const struct {
		const char *key_id, *mdn, *app;
		uint64_t ts;
	} other[] = {
	    {"K2", "12345678", "app", 7}, {"K1", "12345679", "app", 7},
	    {"K1", "12345678", "apq", 7}, {"K1", "12345678", "", 7},
	    {"K1", "12345678", "app", 8},
	};
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		assert_int_equal(keysync_mac_verify(key, sizeof key, other[i].key_id, other[i].mdn,
		                                    other[i].app, other[i].ts, mac, sizeof mac,
		                                    &err),
		                 -1);
		assert_int_equal(err.status, STB_UNAUTHENTICATED);
	}
	key[0] ^= 1;
	assert_int_equal(
	    keysync_mac_verify(key, sizeof key, "K1", "12345678", "app", 7, mac, sizeof mac, &err),
	    -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_int_equal(
	    keysync_mac_verify(key, sizeof key, "K1", "12345678", "app", 7, mac, 31, &err), -1);
	/* bad inputs are BAD_REQUEST, not a wrong MAC */
	assert_int_equal(keysync_mac(key, 15, "K1", "12345678", "app", 7, mac, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(keysync_mac(key, sizeof key, "K 1", "12345678", "app", 7, mac, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(keysync_mac(key, sizeof key, "K1", "1234567", "app", 7, mac, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
}

static void
test_mdn(void **state)
{
	static const struct {
		const char *mdn;
		int ok;
	} cases[] = {
	    {"12345678", 1},   {"123456789012345", 1}, {"1234567", 0}, {"1234567890123456", 0},
	    {"+12345678", 0},  {"1234 5678", 0},       {"", 0},        {"12345678a", 0},
	    {"８12345678", 0},
	};
	err_t err;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = keysync_mdn_check(cases[i].mdn, &err);

		if ((rc == 0) != cases[i].ok)
			fail_msg("mdn '%s': got %d", cases[i].mdn, rc);
		if (rc == -1)
			assert_int_equal(err.status, STB_BAD_REQUEST);
	}
}

static void
test_sms_round_trip(void **state)
{
	keysync_sms_t s = {0}, back;
	char text[KEYSYNC_SMS_MAX + 1];
	err_t err;

	(void)state;
	strcpy(s.key_id, "KEY-0001");
	strcpy(s.app_id, "tv.example");
	s.timestamp = 1764643200;
	assert_int_equal(hex_decode(vec_mac, 64, s.mac, sizeof s.mac, NULL), 0);
	assert_int_equal(keysync_sms_encode(&s, text, sizeof text, &err), 0);
	assert_string_equal(text,
	                    "KS1 KEY-0001 1764643200 "
	                    "30cbb7e3ab4c2542df602ff812474941f23b4aa1567076752e786c1842832569 "
	                    "tv.example");
	assert_int_equal(keysync_sms_decode(text, strlen(text), &back, &err), 0);
	assert_string_equal(back.key_id, s.key_id);
	assert_string_equal(back.app_id, s.app_id);
	assert_true(back.timestamp == s.timestamp);
	assert_memory_equal(back.mac, s.mac, sizeof s.mac);
	/* without an app */
	s.app_id[0] = '\0';
	assert_int_equal(keysync_sms_encode(&s, text, sizeof text, &err), 0);
	assert_int_equal(keysync_sms_decode(text, strlen(text), &back, &err), 0);
	assert_string_equal(back.app_id, "");
	/* too long for one SMS */
	memset(s.key_id, 'k', 100);
	s.key_id[100] = '\0';
	assert_int_equal(keysync_sms_encode(&s, text, sizeof text, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
}

/* pat with each '@' replaced by sub */
static void
expand(const char *pat, const char *sub, char *out, size_t cap)
{
	size_t n = 0;

	for (; *pat && n + 1 < cap; pat++) {
		if (*pat != '@') {
			out[n++] = *pat;
			continue;
		}
		for (const char *q = sub; *q && n + 1 < cap; q++)
			out[n++] = *q;
	}
	out[n] = '\0';
}

static void
test_sms_strict(void **state)
{
	static const char *const mac =
	    "30cbb7e3ab4c2542df602ff812474941f23b4aa1567076752e786c1842832569";
	static const char *const bad[] = {
	    "",
	    "KS1",
	    "KS1 ",
	    "ks1 K 1 @",
	    "KS2 K 1 @",
	    "KS1 K 1 @ ",
	    " KS1 K 1 @",
	    "KS1  K 1 @",
	    "KS1 K  1 @",
	    "KS1 K 01 @",
	    "KS1 K -1 @",
	    "KS1 K 18446744073709551616 @",
	    "KS1 K 1x @",
	    "KS1 K 1 @ app extra",
	    "KS1 K 1 @ app ",
	    "KS1 K 1 @ a*p",
	    "KS1 K* 1 @",
	    "KS1 K 1 @0",
	    "KS1 K 1 30CBB7E3AB4C2542DF602FF812474941F23B4AA1567076752E786C1842832569",
	    "KS1 K 1 30cbb7e3ab4c2542df602ff812474941f23b4aa1567076752e786c184283256",
	    "KS1 K 1 30cbb7e3ab4c2542df602ff812474941f23b4aa1567076752e786c184283256g",
	    "KS1 K 1 @\n",
	};
	keysync_sms_t s;
	char text[512];
	err_t err;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		expand(bad[i], mac, text, sizeof text);
		if (keysync_sms_decode(text, strlen(text), &s, &err) != -1)
			fail_msg("accepted '@'", text);
		assert_int_equal(err.status, STB_BAD_REQUEST);
	}
	/* the largest u64 is a timestamp; a NUL inside the length is not text */
	expand("KS1 K 18446744073709551615 @", mac, text, sizeof text);
	assert_int_equal(keysync_sms_decode(text, strlen(text), &s, &err), 0);
	assert_true(s.timestamp == UINT64_MAX);
	expand("KS1 K 1 @", mac, text, sizeof text);
	assert_int_equal(keysync_sms_decode(text, strlen(text) + 1, &s, &err), -1);
	/* longer than one SMS */
	memset(text, 'a', 200);
	assert_int_equal(keysync_sms_decode(text, 161, &s, &err), -1);
}

static void
test_sms_reply(void **state)
{
	char text[KEYSYNC_SMS_MAX + 1], app[KEYSYNC_ID_MAX + 1];
	int status;
	err_t err;

	(void)state;
	assert_int_equal(keysync_sms_reply(STB_OK, "tv.example", text, sizeof text, &err), 0);
	assert_string_equal(text, "KS1 OK tv.example");
	assert_int_equal(
	    keysync_sms_reply_parse(text, strlen(text), &status, app, sizeof app, &err), 0);
	assert_int_equal(status, STB_OK);
	assert_string_equal(app, "tv.example");
	assert_int_equal(keysync_sms_reply(STB_REPLAY, NULL, text, sizeof text, &err), 0);
	assert_string_equal(text, "KS1 ERR REPLAY");
	assert_int_equal(
	    keysync_sms_reply_parse(text, strlen(text), &status, app, sizeof app, &err), 0);
	assert_int_equal(status, STB_REPLAY);
	assert_int_equal(
	    keysync_sms_reply_parse("KS1 ERR NOPE", 12, &status, app, sizeof app, &err), -1);
	assert_int_equal(keysync_sms_reply_parse("KS1 OK", 6, &status, app, sizeof app, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_vector), cmocka_unit_test(test_mac_verify),
	    cmocka_unit_test(test_mdn),        cmocka_unit_test(test_sms_round_trip),
	    cmocka_unit_test(test_sms_strict), cmocka_unit_test(test_sms_reply),
	};

	return cmocka_run_group_tests_name("keysync", tests, NULL, NULL);
}
