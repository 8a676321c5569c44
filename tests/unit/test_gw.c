/* media-gw: the login session table (one-time nonces) and how ca-authd's
 * refusals are relayed to the STB. */
#include <pthread.h>
#include <string.h>

#include "gw.h"
#include "testutil.h"

#define NOW 1700000000

static void
test_sess_once(void **state)
{
	gw_sessions_t *t = gw_sess_new(16);
	gw_sess_t a, b;
	err_t err;

	(void)state;
	assert_non_null(t);
	assert_int_equal(gw_sess_open(t, "stb-1", "cert-1", NOW + 60, &a, &err), 0);
	assert_int_equal(gw_sess_count(t), 1);
	assert_int_equal(gw_sess_take(t, a.sid, NOW, &b, &err), 0);
	assert_memory_equal(a.sid, b.sid, LOGIN_SESSION_LEN);
	assert_memory_equal(a.nonce, b.nonce, LOGIN_NONCE_LEN);
	assert_string_equal(b.device_id, "stb-1");
	assert_string_equal(b.cert_id, "cert-1");
	assert_int_equal(b.expires, NOW + 60);
	/* the nonce works once */
	assert_int_equal(gw_sess_take(t, a.sid, NOW, &b, &err), -1);
	assert_int_equal(err.status, STB_REPLAY);
	/* still REPLAY after it would have expired, until swept */
	assert_int_equal(gw_sess_take(t, a.sid, NOW + 120, &b, &err), -1);
	assert_int_equal(err.status, STB_REPLAY);
	gw_sess_free(t);
}

static void
test_sess_refusals(void **state)
{
	gw_sessions_t *t = gw_sess_new(16);
	uint8_t unknown[LOGIN_SESSION_LEN] = {1, 2, 3};
	char longid[GW_ID_CAP + 1];
	gw_sess_t a, b;
	err_t err;

	(void)state;
	assert_int_equal(gw_sess_take(t, unknown, NOW, &b, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(gw_sess_open(t, "stb-1", "cert-1", NOW + 60, &a, &err), 0);
	/* at the expiry second and after: EXPIRED, and not consumed by asking */
	memset(&b, 0, sizeof(b));
	assert_int_equal(gw_sess_take(t, a.sid, NOW + 60, &b, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_string_equal(b.device_id, "stb-1"); /* for the audit */
	assert_string_equal(b.cert_id, "cert-1");
	assert_int_equal(gw_sess_take(t, a.sid, NOW + 61, &b, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	/* a session id differing in one bit is another session */
	a.sid[LOGIN_SESSION_LEN - 1] ^= 1;
	assert_int_equal(gw_sess_take(t, a.sid, NOW, &b, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(gw_sess_open(t, longid, "c", NOW + 60, &a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(gw_sess_count(t), 1);
	gw_sess_free(t);
}

static void
test_sess_sweep_and_cap(void **state)
{
	gw_sessions_t *t = gw_sess_new(16);
	gw_sess_t s[16], x;
	err_t err;

	(void)state;
	for (int i = 0; i < 16; i++)
		assert_int_equal(gw_sess_open(t, "stb", "c", NOW + i, &s[i], &err), 0);
	assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 99, &x, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	assert_int_equal(gw_sess_take(t, s[3].sid, NOW, &x, &err), 0);
	/* expiries NOW+0 .. NOW+7 go, the rest stay */
	assert_int_equal(gw_sess_sweep(t, NOW + 8), 8);
	assert_int_equal(gw_sess_count(t), 8);
	assert_int_equal(gw_sess_take(t, s[3].sid, NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND); /* forgotten: still refused */
	assert_int_equal(gw_sess_take(t, s[8].sid, NOW, &x, &err), 0);
	assert_int_equal(gw_sess_sweep(t, NOW), 0);
	assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 99, &x, &err), 0);
	gw_sess_free(t);
}

/* The cap is on logins in progress: a consumed session frees its place at
 * once, yet a replay of it is still told REPLAY. */
static void
test_sess_consumed_frees_place(void **state)
{
	gw_sessions_t *t = gw_sess_new(4);
	gw_sess_t s[4], x;
	err_t err;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 60, &s[i], &err), 0);
	assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 60, &x, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	for (int round = 0; round < 50; round++) { /* many logins through 4 places */
		assert_int_equal(gw_sess_take(t, s[0].sid, NOW, &x, &err), 0);
		assert_int_equal(gw_sess_count(t), 3);
		assert_int_equal(gw_sess_take(t, s[0].sid, NOW, &x, &err), -1);
		assert_int_equal(err.status, STB_REPLAY);
		assert_string_equal(x.device_id, "stb"); /* for the audit */
		assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 60, &s[0], &err), 0);
	}
	/* past expiry plus the sweep, the record goes: NOT_FOUND, still refused */
	assert_int_equal(gw_sess_take(t, s[1].sid, NOW, &x, &err), 0);
	gw_sess_sweep(t, NOW + 61);
	assert_int_equal(gw_sess_take(t, s[1].sid, NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	gw_sess_free(t);
}

static void
test_sess_random(void **state)
{
	gw_sessions_t *t = gw_sess_new(1000);
	static gw_sess_t s[500];
	err_t err;

	(void)state;
	for (int i = 0; i < 500; i++)
		assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 60, &s[i], &err), 0);
	for (int i = 0; i < 500; i++)
		for (int j = i + 1; j < 500; j++) {
			assert_memory_not_equal(s[i].sid, s[j].sid, LOGIN_SESSION_LEN);
			assert_memory_not_equal(s[i].nonce, s[j].nonce, LOGIN_NONCE_LEN);
		}
	gw_sess_free(t);
}

/* Many loops finishing one session at once: exactly one wins. */
struct race {
	gw_sessions_t *t;
	const uint8_t *sid;
	int ok, replay;
};

static void *
race_main(void *arg)
{
	struct race *r = arg;
	gw_sess_t x;
	err_t err;

	if (gw_sess_take(r->t, r->sid, NOW, &x, &err) == 0)
		r->ok = 1;
	else if (err.status == STB_REPLAY)
		r->replay = 1;
	return NULL;
}

static void
test_sess_race(void **state)
{
	gw_sessions_t *t = gw_sess_new(64);
	struct race r[8];
	pthread_t th[8];
	int ok = 0, replay = 0;
	gw_sess_t s;
	err_t err;

	(void)state;
	for (int round = 0; round < 20; round++) {
		assert_int_equal(gw_sess_open(t, "stb", "c", NOW + 60, &s, &err), 0);
		for (int i = 0; i < 8; i++) {
			r[i] = (struct race){t, s.sid, 0, 0};
			assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
		}
		ok = replay = 0;
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			ok += r[i].ok;
			replay += r[i].replay;
		}
		assert_int_equal(ok, 1);
		assert_int_equal(replay, 7);
	}
	gw_sess_free(t);
}

static void
test_ca_refusal(void **state)
{
	static const struct {
		int ca;
		int relayed;
		const char *says;
	} cases[] = {
	    {STB_REVOKED, STB_REVOKED, "certificate revoked: why"},
	    {STB_EXPIRED, STB_EXPIRED, "certificate or key info expired: why"},
	    {STB_UNAUTHENTICATED, STB_UNAUTHENTICATED, "key info proof rejected: why"},
	    {STB_NOT_FOUND, STB_UNAUTHENTICATED, "certificate unknown to the CA: why"},
	    {STB_BAD_REQUEST, STB_BAD_REQUEST, "key info malformed: why"},
	    {STB_FORBIDDEN, STB_UNAVAILABLE, "CA unavailable: ca-authd answered FORBIDDEN: why"},
	    {STB_INTERNAL, STB_UNAVAILABLE, "CA unavailable: ca-authd answered INTERNAL: why"},
	    {STB_TIMEOUT, STB_UNAVAILABLE, "CA unavailable: ca-authd answered TIMEOUT: why"},
	};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		assert_int_equal(gw_ca_refusal(cases[i].ca, "why", msg, sizeof(msg)),
		                 cases[i].relayed);
		assert_string_equal(msg, cases[i].says);
	}
	assert_int_equal(gw_ca_refusal(STB_REVOKED, "", msg, sizeof(msg)), STB_REVOKED);
	assert_string_equal(msg, "certificate revoked: no reason given");
	/* a long reason is cut, never overrun */
	assert_int_equal(gw_ca_refusal(STB_REVOKED, "0123456789", msg, 24), STB_REVOKED);
	assert_int_equal(strlen(msg), 23);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sess_once),
	    cmocka_unit_test(test_sess_refusals),
	    cmocka_unit_test(test_sess_sweep_and_cap),
	    cmocka_unit_test(test_sess_consumed_frees_place),
	    cmocka_unit_test(test_sess_random),
	    cmocka_unit_test(test_sess_race),
	    cmocka_unit_test(test_ca_refusal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
