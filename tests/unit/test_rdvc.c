/* libstbclient's offered-session set (src/stb-client/rdv.c): a device
 * accepts a peer only with a session the server offered it, once, before
 * it expires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rdvc.h"

static void
sid_of(int n, uint8_t sid[RDV_SID_LEN])
{
	memset(sid, 0, RDV_SID_LEN);
	sid[0] = (uint8_t)(n >> 8);
	sid[1] = (uint8_t)n;
	sid[15] = 0xa5;
}

static void
code_of(int n, uint8_t code[RDV_CODE_LEN])
{
	memset(code, 0x40 + (n % 64), RDV_CODE_LEN);
}

static int
take(stb_rdv_t *r, int n, uint8_t code[RDV_CODE_LEN], char caller[RDVC_ID_CAP])
{
	uint8_t sid[RDV_SID_LEN];
	stb_error_t err;

	sid_of(n, sid);
	if (rdvc_take(r, sid, sizeof(sid), code, caller, &err) == 0)
		return STB_OK;
	return err.status;
}

static int
setup(void **state)
{
	*state = test_calloc(1, sizeof(stb_rdv_t));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	test_free(*state);
	return 0;
}

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/* An offer opens once: its code and caller come back, then REPLAY. */
static void
test_offer_used_once(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN], want[RDV_CODE_LEN], got[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP] = "";

	sid_of(1, sid);
	code_of(1, want);
	memcpy(code, want, sizeof(code));
	rdvc_offer_add(r, sid, code, "box-a", (int64_t)time(NULL) + 60);
	assert_int_equal(take(r, 1, got, caller), STB_OK);
	assert_memory_equal(got, want, RDV_CODE_LEN);
	assert_string_equal(caller, "box-a");
	/* the slot is wiped, not just marked free */
	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++)
		assert_true(all_zero(&r->offers[i], sizeof(r->offers[i])));
	assert_int_equal(take(r, 1, got, caller), STB_REPLAY);
}

/* A session the server never offered, or a malformed identity. */
static void
test_never_offered(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];
	stb_error_t err;

	sid_of(2, sid);
	code_of(2, code);
	rdvc_offer_add(r, sid, code, "box-b", (int64_t)time(NULL) + 60);
	assert_int_equal(take(r, 3, code, caller), STB_UNAUTHENTICATED);
	assert_int_equal(rdvc_take(r, sid, RDV_SID_LEN - 1, code, caller, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* the real one is still there after the misses */
	assert_int_equal(take(r, 2, code, caller), STB_OK);
}

/* An expired offer is refused as EXPIRED, then remembered as expired. */
static void
test_offer_expired(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];

	sid_of(4, sid);
	code_of(4, code);
	rdvc_offer_add(r, sid, code, "box-c", (int64_t)time(NULL) - 1);
	assert_int_equal(take(r, 4, code, caller), STB_EXPIRED);
	assert_int_equal(take(r, 4, code, caller), STB_EXPIRED);
}

/* Expired offers are swept when a new one arrives. */
static void
test_expired_swept_on_add(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];
	int live = 0;

	sid_of(5, sid);
	code_of(5, code);
	rdvc_offer_add(r, sid, code, "box-d", (int64_t)time(NULL) - 5);
	sid_of(6, sid);
	rdvc_offer_add(r, sid, code, "box-e", (int64_t)time(NULL) + 60);
	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++)
		live += r->offers[i].live;
	assert_int_equal(live, 1);
	assert_int_equal(take(r, 5, code, caller), STB_EXPIRED);
	assert_int_equal(take(r, 6, code, caller), STB_OK);
}

/* One caller past RDVC_MAX_PER_CALLER loses its own oldest offer, which is
 * SUPERSEDED (not EXPIRED); its newer ones stay usable. */
static void
test_caller_cap_supersedes_own(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];
	int64_t now = (int64_t)time(NULL);

	for (int n = 0; n <= RDVC_MAX_PER_CALLER; n++) {
		sid_of(100 + n, sid);
		code_of(n, code);
		rdvc_offer_add(r, sid, code, "caller", now + 100 + n);
	}
	assert_int_equal(take(r, 100, code, caller), STB_SUPERSEDED);
	assert_int_equal(take(r, 100, code, caller), STB_SUPERSEDED);
	for (int n = 1; n <= RDVC_MAX_PER_CALLER; n++)
		assert_int_equal(take(r, 100 + n, code, caller), STB_OK);
}

/* A full set drops from the caller holding the most, never from one that
 * holds a single offer while another holds more. */
static void
test_full_evicts_largest_holder(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP], name[32];
	int64_t now = (int64_t)time(NULL);
	int singles = RDVC_MAX_OFFERS - RDVC_MAX_PER_CALLER;

	for (int n = 0; n < singles; n++) {
		snprintf(name, sizeof(name), "box-%d", n);
		sid_of(n, sid);
		code_of(n, code);
		rdvc_offer_add(r, sid, code, name, now + 60);
	}
	for (int n = 0; n < RDVC_MAX_PER_CALLER; n++) {
		sid_of(500 + n, sid);
		rdvc_offer_add(r, sid, code, "evil", now + 60 + n);
	}
	sid_of(999, sid);
	rdvc_offer_add(r, sid, code, "late", now + 30); /* expires first, yet evil's goes */
	assert_int_equal(take(r, 500, code, caller), STB_SUPERSEDED);
	assert_int_equal(take(r, 999, code, caller), STB_OK);
	assert_string_equal(caller, "late");
	for (int n = 0; n < singles; n++)
		assert_int_equal(take(r, n, code, caller), STB_OK);
	for (int n = 1; n < RDVC_MAX_PER_CALLER; n++)
		assert_int_equal(take(r, 500 + n, code, caller), STB_OK);
}

/* The flood of issue 9: one caller sends far more offers than the set
 * holds; another caller's offer made in the middle survives it. */
static void
test_flood_keeps_other_callers(void **state)
{
	stb_rdv_t *r = *state;
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN], want[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];
	int64_t now = (int64_t)time(NULL);

	for (int n = 0; n < 2000; n++) {
		if (n == 1000) {
			sid_of(4000, sid);
			code_of(7, want);
			memcpy(code, want, sizeof(code));
			rdvc_offer_add(r, sid, code, "real", now + 60);
		}
		sid_of(n, sid);
		code_of(n, code);
		rdvc_offer_add(r, sid, code, "flood", now + 60);
	}
	assert_int_equal(take(r, 4000, code, caller), STB_OK);
	assert_memory_equal(code, want, RDV_CODE_LEN);
	assert_string_equal(caller, "real");
	assert_int_equal(take(r, 1999, code, caller), STB_OK);
	assert_int_equal(take(r, 1950, code, caller), STB_SUPERSEDED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_offer_used_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_never_offered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offer_expired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expired_swept_on_add, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_caller_cap_supersedes_own, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_evicts_largest_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flood_keeps_other_callers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
