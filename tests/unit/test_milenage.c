/* Unit tests for milenage: the conformance test sets of 3GPP TS 35.207 /
 * 35.208 (4.3, sets 1 to 6), every function of each set. */
#include <string.h>

#include "hex.h"
#include "milenage.h"
#include "testutil.h"

static const struct milenage_set {
	const char *name, *k, *rand, *sqn, *amf, *op, *opc;
	const char *f1, *f1s, *f2, *f3, *f4, *f5, *f5s;
} sets[] = {
    {"set 1", "465b5ce8b199b49faa5f0a2ee238a6bc", "23553cbe9637a89d218ae64dae47bf35",
     "ff9bb4d0b607", "b9b9", "cdc202d5123e20f62b6d676ac72cb318", "cd63cb71954a9f4e48a5994e37a02baf",
     "4a9ffac354dfafb3", "01cfaf9ec4e871e9", "a54211d5e3ba50bf", "b40ba9a3c58b2a05bbf0d987b21bf8cb",
     "f769bcd751044604127672711c6d3441", "aa689c648370", "451e8beca43b"},
    {"set 2", "0396eb317b6d1c36f19c1c84cd6ffd16", "c00d603103dcee52c4478119494202e8",
     "fd8eef40df7d", "af17", "ff53bade17df5d4e793073ce9d7579fa", "53c15671c60a4b731c55b4a441c0bde2",
     "5df5b31807e258b0", "a8c016e51ef4a343", "d3a628ed988620f0", "58c433ff7a7082acd424220f2b67c556",
     "21a8c1f929702adb3e738488b9f5c5da", "c47783995f72", "30f1197061c1"},
    {"set 3", "fec86ba6eb707ed08905757b1bb44b8f", "9f7c8d021accf4db213ccff0c7f71a6a",
     "9d0277595ffc", "725c", "dbc59adcb6f9a0ef735477b7fadf8374", "1006020f0a478bf6b699f15c062e42b3",
     "9cabc3e99baf7281", "95814ba2b3044324", "8011c48c0c214ed2", "5dbdbb2954e8f3cde665b046179a5098",
     "59a92d3b476a0443487055cf88b2307b", "33484dc2136b", "deacdd848cc6"},
    {"set 4", "9e5944aea94b81165c82fbf9f32db751", "ce83dbc54ac0274a157c17f80d017bd6",
     "0b604a81eca8", "9e09", "223014c5806694c007ca1eeef57f004f", "a64a507ae1a2a98bb88eb4210135dc87",
     "74a58220cba84c49", "ac2cc74a96871837", "f365cd683cd92e96", "e203edb3971574f5a94b0d61b816345d",
     "0c4524adeac041c4dd830d20854fc46b", "f0b9c08ad02e", "6085a86c6f63"},
    {"set 5", "4ab1deb05ca6ceb051fc98e77d026a84", "74b0cd6031a1c8339b2b6ce2b8c4a186",
     "e880a1b580b6", "9f07", "2d16c5cd1fdf6b22383584e3bef2a8d8", "dcf07cbd51855290b92a07a9891e523e",
     "49e785dd12626ef2", "9e85790336bb3fa2", "5860fc1bce351e7e", "7657766b373d1c2138f307e3de9242f9",
     "1c42e960d89b8fa99f2744e0708ccb53", "31e11a609118", "fe2555e54aa9"},
    {"set 6", "6c38a116ac280c454f59332ee35c8c4f", "ee6466bc96202c5a557abbeff8babf63",
     "414b98222181", "4464", "1ba00a1a7c6700ac8c3ff3e96ad08725", "3803ef5363b947c6aaa225e58fae3934",
     "078adfb488241a57", "80246b8d0186bcf1", "16c8233f05a0ac28", "3f8c7587fe8e4b233af676aede30ba3b",
     "a7466cc1e6b2a1337d49d3b66e95d7b4", "45b0f69ab06c", "1f53cd2b1113"},
};

/* The bytes of a hex string from the table; the length must be n. */
static void
hexin(const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;

	assert_int_equal(hex_decode(s, strlen(s), out, n, &len), 0);
	assert_int_equal(len, n);
}

static void
want(const char *set, const char *what, const uint8_t *got, size_t n, const char *hex)
{
	char text[2 * 16 + 1];

	hex_encode(got, n, text);
	if (strcmp(text, hex) != 0)
		fail_msg("%s %s: got %s, want %s", set, what, text, hex);
}

static void
test_sets(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const struct milenage_set *t = &sets[i];
		uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc[16], mac_a[8], mac_s[8];
		uint8_t ak_s[6];
		milenage_keys_t keys;
		err_t err;

		hexin(t->k, k, 16);
		hexin(t->rand, rand, 16);
		hexin(t->sqn, sqn, 6);
		hexin(t->amf, amf, 2);
		hexin(t->op, op, 16);
		assert_int_equal(milenage_opc(k, op, opc, &err), 0);
		want(t->name, "OPc", opc, 16, t->opc);
		assert_int_equal(milenage_f1(k, opc, rand, sqn, amf, mac_a, mac_s, &err), 0);
		want(t->name, "f1", mac_a, 8, t->f1);
		want(t->name, "f1*", mac_s, 8, t->f1s);
		assert_int_equal(milenage_f2345(k, opc, rand, &keys, &err), 0);
		want(t->name, "f2", keys.res, 8, t->f2);
		want(t->name, "f3", keys.ck, 16, t->f3);
		want(t->name, "f4", keys.ik, 16, t->f4);
		want(t->name, "f5", keys.ak, 6, t->f5);
		assert_int_equal(milenage_f5star(k, opc, rand, ak_s, &err), 0);
		want(t->name, "f5*", ak_s, 6, t->f5s);
	}
}

/* One output alone: f1 with a NULL MAC-S gives the same MAC-A. */
static void
test_f1_one_output(void **state)
{
	uint8_t k[16], rand[16], sqn[6], amf[2], opc[16], mac_a[8];
	err_t err;

	(void)state;
	hexin(sets[0].k, k, 16);
	hexin(sets[0].rand, rand, 16);
	hexin(sets[0].sqn, sqn, 6);
	hexin(sets[0].amf, amf, 2);
	hexin(sets[0].opc, opc, 16);
	assert_int_equal(milenage_f1(k, opc, rand, sqn, amf, mac_a, NULL, &err), 0);
	want("set 1", "f1 alone", mac_a, 8, sets[0].f1);
}

/* The network's AUTN checks on the device with the same K/OPc and gives
 * back the SQN; with another OPc, or one bit of AUTN changed, it fails. */
static void
test_autn(void **state)
{
	uint8_t k[16], rand[16], sqn[6], amf[2], opc[16], autn[16], got_sqn[6];
	milenage_keys_t keys;
	err_t err;

	(void)state;
	hexin(sets[2].k, k, 16);
	hexin(sets[2].rand, rand, 16);
	hexin(sets[2].sqn, sqn, 6);
	hexin(sets[2].amf, amf, 2);
	hexin(sets[2].opc, opc, 16);
	assert_int_equal(milenage_autn(k, opc, rand, sqn, amf, autn, &err), 0);
	/* SQN xor AK || AMF || MAC-A */
	want("set 3", "AUTN MAC-A", autn + 8, 8, sets[2].f1);
	assert_memory_equal(autn + 6, amf, 2);
	assert_int_equal(milenage_check_autn(k, opc, rand, autn, &keys, got_sqn, &err), 0);
	assert_memory_equal(got_sqn, sqn, 6);
	want("set 3", "RES", keys.res, 8, sets[2].f2);

	autn[15] ^= 0x01;
	assert_int_equal(milenage_check_autn(k, opc, rand, autn, &keys, NULL, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	autn[15] ^= 0x01;
	opc[0] ^= 0x80;
	assert_int_equal(milenage_check_autn(k, opc, rand, autn, &keys, NULL, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* nothing of a failed check is left for the caller to use */
	for (size_t i = 0; i < sizeof(keys.res); i++)
		assert_int_equal(keys.res[i], 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sets),
	    cmocka_unit_test(test_f1_one_output),
	    cmocka_unit_test(test_autn),
	};

	return cmocka_run_group_tests_name("milenage", tests, NULL, NULL);
}
