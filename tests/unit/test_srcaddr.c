/* Unit tests for srcaddr: one source per IPv4 address and per IPv6 /64. */
#include <string.h>

#include "srcaddr.h"
#include "testutil.h"

static void
test_keys(void **state)
{
	static const struct {
		const char *peer, *key;
		int rc;
	} cases[] = {
	    {"1.2.3.4:5", "1.2.3.4", 0},
	    {"127.0.0.2:40000", "127.0.0.2", 0},
	    {"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64", 0},
	    {"2001:db8:1:2:ff:4:5:6:443", "2001:db8:1:2::/64", 0},
	    {"::ffff:10.0.0.1:80", "10.0.0.1", 0},
	    {"::1:5", "::/64", 0},
	    {"2001:db8::1", "2001:db8::/64", 0},
	    {"unix", "unix", -1},
	    {"", "", -1},
	};
	char out[SRCADDR_MAX + 1];

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		int rc = srcaddr_key(cases[i].peer, out);
		if (rc != cases[i].rc || strcmp(out, cases[i].key) != 0)
			fail_msg("%s: %d '%s', want %d '%s'", cases[i].peer, rc, out, cases[i].rc,
			         cases[i].key);
	}
}

/* a key never overruns, whatever the peer string */
static void
test_long_peer(void **state)
{
	char peer[200], out[SRCADDR_MAX + 1];

	(void)state;
	memset(peer, 'a', sizeof(peer) - 1);
	peer[sizeof(peer) - 1] = '\0';
	assert_int_equal(srcaddr_key(peer, out), -1);
	assert_int_equal(strlen(out), SRCADDR_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_long_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
