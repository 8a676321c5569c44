/* Unit tests for connguard: source keys (a table of addresses), the
 * per-source cap, accept backoff at a real descriptor limit (no spin, the
 * queue's head shed through the spare), and the delayed trim. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "connguard.h"
#include "testutil.h"

static void
key_v4(const char *ip, connguard_key_t *k)
{
	struct sockaddr_in a = {0};

	a.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	connguard_key_of((struct sockaddr *)&a, k);
}

static void
key_v6(const char *ip, connguard_key_t *k)
{
	struct sockaddr_in6 a = {0};

	a.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	connguard_key_of((struct sockaddr *)&a, k);
}

static void
test_keys(void **state)
{
	static const struct {
		const char *a, *b;
		int same;
	} cases[] = {
	    {"10.0.0.1", "10.0.0.1", 1},
	    {"10.0.0.1", "10.0.0.2", 0},
	    {"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 1}, /* one /64 */
	    {"2001:db8:1:2::1", "2001:db8:1:3::1", 0},
	    {"::ffff:10.0.0.1", "10.0.0.1", 1}, /* v4-mapped is the v4 address */
	    {"::ffff:10.0.0.1", "10.0.0.2", 0},
	};
	connguard_key_t ka, kb, empty;
	struct sockaddr_un un = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strchr(cases[i].a, ':'))
			key_v6(cases[i].a, &ka);
		else
			key_v4(cases[i].a, &ka);
		if (strchr(cases[i].b, ':'))
			key_v6(cases[i].b, &kb);
		else
			key_v4(cases[i].b, &kb);
		if ((memcmp(&ka, &kb, sizeof(ka)) == 0) != cases[i].same)
			fail_msg("case %zu: %s and %s", i, cases[i].a, cases[i].b);
		assert_int_not_equal(ka.b[0], 0);
	}
	un.sun_family = AF_UNIX;
	connguard_key_of((struct sockaddr *)&un, &empty);
	assert_int_equal(empty.b[0], 0);
	connguard_key_of(NULL, &empty);
	assert_int_equal(empty.b[0], 0);
}

static void
test_source_cap(void **state)
{
	connguard_src_t *t = connguard_src_new(2, NULL);
	connguard_key_t a, b, none;

	(void)state;
	assert_non_null(t);
	key_v4("192.0.2.1", &a);
	key_v4("192.0.2.2", &b);
	connguard_key_of(NULL, &none);
	assert_int_equal(connguard_src_take(t, &a), 0);
	assert_int_equal(connguard_src_take(t, &a), 0);
	assert_int_equal(connguard_src_take(t, &a), -1); /* at its cap */
	assert_int_equal(connguard_src_take(t, &b), 0);  /* another source is not */
	assert_int_equal(connguard_src_count(t, &a), 2);
	connguard_src_give(t, &a);
	assert_int_equal(connguard_src_take(t, &a), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(connguard_src_take(t, &none), 0); /* never counted */
	connguard_src_give(t, &a);
	connguard_src_give(t, &a);
	connguard_src_give(t, &b);
	assert_int_equal(connguard_src_count(t, &a), 0);
	assert_int_equal(connguard_src_count(t, &b), 0);
	connguard_src_give(t, &a); /* one too many: ignored */
	connguard_src_free(t);
	connguard_src_free(NULL);
}

static int accepted;

static void
count_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl, void *arg)
{
	(void)l;
	(void)sa;
	(void)sl;
	(void)arg;
	accepted++;
	close(fd);
}

static void
stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static void
run_for(struct event_base *base, int ms)
{
	struct event *ev = evtimer_new(base, stop_loop, base);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
}

/* Clients wait in the queue while the process has no descriptor left:
 * the listener must back off, not spin, and shed the queue's head. */
static void
test_accept_backoff(void **state)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in a = {0};
	socklen_t al = sizeof(a);
	struct evconnlistener *l;
	connguard_accept_t *g;
	struct rlimit old, low;
	int cl[4], maxfd = 0, fill[64], nfill = 0;
	char b;

	(void)state;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, count_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
	                            (struct sockaddr *)&a, sizeof(a));
	assert_non_null(l);
	g = connguard_accept_new(base, l, "test", NULL);
	assert_non_null(g);
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a, &al);
	for (int i = 0; i < 4; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(cl[i], (struct sockaddr *)&a, sizeof(a)), 0);
		if (cl[i] > maxfd)
			maxfd = cl[i];
	}
	/* no descriptor left above the ones open now */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY)) >= 0)
		nfill++; /* any gap below the limit too */
	run_for(base, 350);
	while (nfill > 0)
		close(fill[--nfill]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* 100 ms, then 200 ms pauses: a few errors, not thousands */
	assert_true(connguard_accept_errors(g) >= 1);
	assert_true(connguard_accept_errors(g) <= 4);
	assert_true(connguard_accept_shed(g) >= 1);
	assert_int_equal(accepted, 0);
	/* the shed client heard at once */
	assert_int_equal(recv(cl[0], &b, 1, MSG_DONTWAIT), 0);
	/* descriptors back: the rest are accepted once the pause ends */
	run_for(base, 1200);
	assert_int_equal((uint64_t)accepted + connguard_accept_shed(g), 4);
	for (int i = 0; i < 4; i++)
		close(cl[i]);
	connguard_accept_free(g);
	connguard_accept_free(NULL);
	evconnlistener_free(l);
	event_base_free(base);
}

static void
test_trim(void **state)
{
	struct event_base *base = event_base_new();
	connguard_trim_t t;

	(void)state;
	assert_int_equal(connguard_trim_init(&t, base, NULL), 0);
	/* a small burst is not worth it */
	for (uint32_t n = 1; n <= 100; n++)
		connguard_trim_opened(&t, n);
	for (uint32_t n = 100; n-- > 0;)
		connguard_trim_closed(&t, n);
	run_for(base, 700);
	assert_int_equal(t.trims, 0);
	/* a large one: one trim once half of it is gone */
	for (uint32_t n = 1; n <= 400; n++)
		connguard_trim_opened(&t, n);
	for (uint32_t n = 400; n-- > 10;)
		connguard_trim_closed(&t, n);
	run_for(base, 700);
	assert_int_equal(t.trims, 1);
	assert_int_equal(t.hiwat, 10);
	connguard_trim_fini(&t);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_source_cap),
	    cmocka_unit_test(test_accept_backoff),
	    cmocka_unit_test(test_trim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
