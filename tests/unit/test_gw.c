/* media-gw: the login session table (one-time nonces) and how ca-authd's
 * refusals are relayed to the STB. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "testutil.h"

#define NOW 1700000000

static gw_sessions_t *
sess_new(size_t max, size_t per_device, size_t per_source, int64_t ttl)
{
	gw_sess_limits_t lim = {
	    .max = max, .per_device = per_device, .per_source = per_source, .ttl_s = ttl};
	gw_sessions_t *t;
	err_t err;

	t = gw_sess_new(&lim, &err);
	assert_non_null(t);
	return t;
}

static int
sopen(gw_sessions_t *t, const char *dev, const char *src, int64_t now, gw_sess_t *out, err_t *err)
{
	return gw_sess_open(t, dev, "c", src, now, out, err);
}

static void
test_sess_once(void **state)
{
	gw_sessions_t *t = sess_new(16, 4, 16, 60);
	gw_sess_t a, b;
	err_t err;

	(void)state;
	assert_int_equal(gw_sess_open(t, "stb-1", "cert-1", "10.0.0.1", NOW, &a, &err), 0);
	assert_int_equal(a.expires, NOW + 60);
	assert_int_equal(gw_sess_count(t), 1);
	assert_int_equal(gw_sess_take(t, a.sid, NOW, &b, &err), 0);
	assert_memory_equal(a.sid, b.sid, LOGIN_SESSION_LEN);
	assert_memory_equal(a.nonce, b.nonce, LOGIN_NONCE_LEN);
	assert_string_equal(b.device_id, "stb-1");
	assert_string_equal(b.cert_id, "cert-1");
	assert_int_equal(b.expires, NOW + 60);
	assert_int_equal(gw_sess_count(t), 0);
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
	gw_sessions_t *t = sess_new(16, 4, 16, 60);
	uint8_t unknown[LOGIN_SESSION_LEN] = {1, 2, 3};
	char longid[GW_ID_CAP + 1];
	gw_sess_t a, b;
	err_t err;

	(void)state;
	assert_int_equal(gw_sess_take(t, unknown, NOW, &b, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(gw_sess_open(t, "stb-1", "cert-1", "10.0.0.1", NOW, &a, &err), 0);
	/* at the expiry second and after: EXPIRED, and not consumed by asking */
	memset(&b, 0, sizeof(b));
	assert_int_equal(gw_sess_take(t, a.sid, NOW + 60, &b, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_string_equal(b.device_id, "stb-1"); /* for the record */
	assert_string_equal(b.cert_id, "cert-1");
	assert_int_equal(gw_sess_take(t, a.sid, NOW + 61, &b, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	/* a session id differing in one bit is another session */
	a.sid[LOGIN_SESSION_LEN - 1] ^= 1;
	assert_int_equal(gw_sess_take(t, a.sid, NOW, &b, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(gw_sess_open(t, longid, "c", "10.0.0.1", NOW, &a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(gw_sess_count(t), 1);
	gw_sess_free(t);
}

/* Sessions leave the open set at their expiry (not twice it), are told
 * EXPIRED for one TTL more, then forgotten; the global cap holds. */
static void
test_sess_sweep_at_expiry(void **state)
{
	gw_sessions_t *t = sess_new(16, 4, 100, 10);
	gw_sess_t s[16], x;
	char dev[16];
	err_t err;

	(void)state;
	for (int i = 0; i < 16; i++) {
		snprintf(dev, sizeof(dev), "stb-%d", i);
		assert_int_equal(sopen(t, dev, "10.0.0.1", NOW + i, &s[i], &err), 0);
	}
	assert_int_equal(gw_sess_sweep(t, NOW + 9), 0);
	assert_int_equal(sopen(t, "stb-x", "10.0.0.2", NOW + 15, &x, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	assert_int_equal(gw_sess_take(t, s[3].sid, NOW + 5, &x, &err), 0);
	/* expiries NOW+10 .. NOW+17 go (s[3] was spent already), the rest stay */
	assert_int_equal(gw_sess_sweep(t, NOW + 17), 7);
	assert_int_equal(gw_sess_count(t), 8);
	assert_int_equal(gw_sess_take(t, s[0].sid, NOW + 17, &x, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_int_equal(gw_sess_take(t, s[3].sid, NOW + 17, &x, &err), -1);
	assert_int_equal(err.status, STB_REPLAY);
	/* room again at once */
	assert_int_equal(sopen(t, "stb-x", "10.0.0.2", NOW + 18, &x, &err), 0);
	/* one TTL later the records go: NOT_FOUND, still refused */
	assert_int_equal(gw_sess_sweep(t, NOW + 27), 7 + 1 + 8);
	assert_int_equal(gw_sess_count(t), 1);
	assert_int_equal(gw_sess_take(t, s[3].sid, NOW + 27, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(gw_sess_take(t, s[0].sid, NOW + 27, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(gw_sess_take(t, s[8].sid, NOW + 27, &x, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	/* a long pause: one sweep sees everything due */
	assert_true(gw_sess_sweep(t, NOW + 1000000) >= 8 + 1);
	assert_int_equal(gw_sess_count(t), 0);
	assert_int_equal(gw_sess_take(t, s[8].sid, NOW + 1000000, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	gw_sess_free(t);
}

/* A flood of STARTs for one device from one address replaces its own
 * sessions: the real box's session (another address) survives, and its
 * fresh START always gets one. */
static void
test_sess_per_device(void **state)
{
	gw_sessions_t *t = sess_new(1000, 2, 100, 60);
	gw_sess_t x1, x2, x3, b1, x;
	err_t err;

	(void)state;
	assert_int_equal(sopen(t, "stb", "10.6.6.6", NOW, &x1, &err), 0);
	assert_int_equal(sopen(t, "stb", "10.6.6.6", NOW, &x2, &err), 0);
	assert_int_equal(sopen(t, "stb", "10.6.6.6", NOW, &x3, &err), 0);
	assert_int_equal(gw_sess_count(t), 2);
	assert_int_equal(gw_sess_take(t, x1.sid, NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND); /* replaced */
	/* the real box: none of its own to replace, so the oldest goes */
	assert_int_equal(sopen(t, "stb", "10.1.1.1", NOW, &b1, &err), 0);
	assert_int_equal(gw_sess_take(t, x2.sid, NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sopen(t, "stb", "10.6.6.6", NOW, &x, &err), 0);
	assert_int_equal(gw_sess_count(t), 2);
	assert_int_equal(gw_sess_take(t, b1.sid, NOW, &x, &err), 0);
	assert_string_equal(x.device_id, "stb");
	/* another device is not touched */
	assert_int_equal(sopen(t, "stb-2", "10.6.6.6", NOW, &x, &err), 0);
	assert_int_equal(gw_sess_count(t), 2);
	gw_sess_free(t);
}

static void
test_sess_per_source(void **state)
{
	gw_sessions_t *t = sess_new(1000, 1, 3, 60);
	gw_sess_t s[3], x;
	char dev[16];
	err_t err;

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(dev, sizeof(dev), "stb-%d", i);
		assert_int_equal(sopen(t, dev, "10.6.6.6", NOW, &s[i], &err), 0);
	}
	assert_int_equal(sopen(t, "stb-3", "10.6.6.6", NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	assert_non_null(strstr(err.msg, "10.6.6.6"));
	/* another address is not affected */
	assert_int_equal(sopen(t, "stb-3", "10.1.1.1", NOW, &x, &err), 0);
	/* replacing its own session keeps the address at its cap, and is allowed */
	assert_int_equal(sopen(t, "stb-0", "10.6.6.6", NOW, &x, &err), 0);
	assert_int_equal(gw_sess_count(t), 4);
	/* a finished login frees its place */
	assert_int_equal(gw_sess_take(t, s[1].sid, NOW, &x, &err), 0);
	assert_int_equal(sopen(t, "stb-4", "10.6.6.6", NOW, &x, &err), 0);
	gw_sess_free(t);
}

/* The cap is on logins in progress: a consumed session frees its place at
 * once, yet a replay of it is still told REPLAY. */
static void
test_sess_consumed_frees_place(void **state)
{
	gw_sessions_t *t = sess_new(4, 4, 16, 60);
	gw_sess_t s[4], x;
	err_t err;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(sopen(t, "stb", "10.0.0.1", NOW, &s[i], &err), 0);
	assert_int_equal(sopen(t, "stb-2", "10.0.0.1", NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	for (int round = 0; round < 50; round++) { /* many logins through 4 places */
		assert_int_equal(gw_sess_take(t, s[0].sid, NOW, &x, &err), 0);
		assert_int_equal(gw_sess_count(t), 3);
		assert_int_equal(gw_sess_take(t, s[0].sid, NOW, &x, &err), -1);
		assert_int_equal(err.status, STB_REPLAY);
		assert_string_equal(x.device_id, "stb"); /* for the record */
		assert_int_equal(sopen(t, "stb", "10.0.0.1", NOW, &s[0], &err), 0);
	}
	/* a TTL past expiry, the record goes: NOT_FOUND, still refused */
	assert_int_equal(gw_sess_take(t, s[1].sid, NOW, &x, &err), 0);
	gw_sess_sweep(t, NOW + 120);
	assert_int_equal(gw_sess_take(t, s[1].sid, NOW, &x, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(gw_sess_count(t), 0);
	gw_sess_free(t);
}

/* 100,000 STARTs for one device from one address hold four sessions. */
static void
test_sess_flood(void **state)
{
	gw_sessions_t *t = sess_new(100000, 4, 256, 60);
	gw_sess_t x, b;
	err_t err;

	(void)state;
	for (int i = 0; i < 100000; i++)
		assert_int_equal(sopen(t, "stb-1", "10.6.6.6", NOW + i / 20000, &x, &err), 0);
	assert_int_equal(gw_sess_count(t), 4);
	assert_int_equal(sopen(t, "stb-1", "10.1.1.1", NOW + 5, &b, &err), 0);
	assert_int_equal(sopen(t, "stb-1", "10.6.6.6", NOW + 5, &x, &err), 0);
	assert_int_equal(gw_sess_take(t, b.sid, NOW + 5, &x, &err), 0);
	gw_sess_free(t);
}

static void
test_sess_random(void **state)
{
	gw_sessions_t *t = sess_new(1000, 1000, 1000, 60);
	static gw_sess_t s[500];
	err_t err;

	(void)state;
	for (int i = 0; i < 500; i++)
		assert_int_equal(sopen(t, "stb", "10.0.0.1", NOW, &s[i], &err), 0);
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
	gw_sessions_t *t = sess_new(64, 4, 64, 60);
	struct race r[8];
	pthread_t th[8];
	int ok = 0, replay = 0;
	gw_sess_t s;
	err_t err;

	(void)state;
	for (int round = 0; round < 20; round++) {
		assert_int_equal(sopen(t, "stb", "10.0.0.1", NOW, &s, &err), 0);
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
	    cmocka_unit_test(test_sess_sweep_at_expiry),
	    cmocka_unit_test(test_sess_per_device),
	    cmocka_unit_test(test_sess_per_source),
	    cmocka_unit_test(test_sess_consumed_frees_place),
	    cmocka_unit_test(test_sess_flood),
	    cmocka_unit_test(test_sess_random),
	    cmocka_unit_test(test_sess_race),
	    cmocka_unit_test(test_ca_refusal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
