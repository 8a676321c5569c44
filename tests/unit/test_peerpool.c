/* Unit tests for peerpool: one peer per loop, calls on the caller's loop,
 * refusal once stopping, bounded shutdown.  The service is a TCP listener
 * that never answers the TLS handshake, so calls stay pending. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peerpool.h"
#include "testutil.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Runs fn(arg) on l and waits for it. */
struct onloop {
	void (*fn)(void *arg);
	void *arg;
	int done;
};

static void
onloop_run(void *arg)
{
	struct onloop *o = arg;

	o->fn(o->arg);
	pthread_mutex_lock(&mu);
	o->done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
run_on(tu_loop_t *l, void (*fn)(void *arg), void *arg)
{
	struct onloop o = {fn, arg, 0};

	assert_int_equal(mbox_post(l->mb, onloop_run, &o), 0);
	pthread_mutex_lock(&mu);
	while (!o.done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* A listener that takes connections into its backlog and says nothing. */
static int
silent_listener(char *addr, size_t cap)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
	return fd;
}

struct fix {
	tu_loop_t l[2];
	tls_holder_t tls;
	peerpool_t *pp;
	char addr[64];
	int lfd;
};

static struct fix f;

static int
setup(void **state)
{
	peerpool_conf_t pc = {.name = "svc",
	                      .expect_roles = STB_R_CA_AUTHD,
	                      .backoff_min_ms = 100,
	                      .backoff_max_ms = 1000,
	                      .timeout_ms = 30000,
	                      .shutdown_wait_ms = 300,
	                      .tls = &f.tls};

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lfd = silent_listener(f.addr, sizeof(f.addr));
	tls_holder_init(&f.tls, SSL_CTX_new(TLS_client_method()));
	pc.addr = f.addr;
	assert_non_null(f.pp = peerpool_new(&pc, NULL));
	tu_loop_start(&f.l[0]);
	tu_loop_start(&f.l[1]);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tu_loop_stop(&f.l[0]);
	tu_loop_stop(&f.l[1]);
	tls_holder_destroy(&f.tls);
	close(f.lfd);
	return 0;
}

struct get {
	tu_loop_t *l;
	peer_t *p1, *p2;
};

static void
get_peer(void *arg)
{
	struct get *g = arg;

	g->p1 = peerpool_peer(f.pp, g->l->base, g->l->mb, NULL);
	g->p2 = peerpool_peer(f.pp, g->l->base, g->l->mb, NULL);
}

struct call {
	tu_loop_t *l;
	int rc;
	int done;
	int status;
	int on_loop; /* fn ran on the loop's thread */
};

static void
call_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct call *c = arg;

	pthread_mutex_lock(&mu);
	c->done++;
	c->status = rsp == NULL ? err->status : STB_OK;
	c->on_loop = pthread_equal(pthread_self(), c->l->th);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
call_start(void *arg)
{
	struct call *c = arg;
	err_t err;

	c->rc = peerpool_call(f.pp, c->l->base, c->l->mb, 0x0001, NULL, 0, call_done, c, &err);
	if (c->rc == -1)
		c->status = err.status;
}

static void
test_one_peer_per_loop(void **state)
{
	struct get a = {&f.l[0], NULL, NULL}, b = {&f.l[1], NULL, NULL};

	(void)state;
	run_on(&f.l[0], get_peer, &a);
	run_on(&f.l[1], get_peer, &b);
	assert_non_null(a.p1);
	assert_ptr_equal(a.p1, a.p2);
	assert_non_null(b.p1);
	assert_ptr_not_equal(a.p1, b.p1);
	peerpool_free(f.pp);
}

/* Pending calls fail with UNAVAILABLE on their own loop when the pool
 * goes; new ones are refused. */
static void
test_free_fails_pending_on_their_loops(void **state)
{
	struct call c0 = {.l = &f.l[0]}, c1 = {.l = &f.l[1]}, late = {.l = &f.l[0]};

	(void)state;
	run_on(&f.l[0], call_start, &c0);
	run_on(&f.l[1], call_start, &c1);
	assert_int_equal(c0.rc, 0);
	assert_int_equal(c1.rc, 0);
	assert_int_equal(c0.done + c1.done, 0); /* the service is silent */
	peerpool_stop(f.pp);
	run_on(&f.l[0], call_start, &late);
	assert_int_equal(late.rc, -1);
	assert_int_equal(late.status, STB_UNAVAILABLE);
	peerpool_free(f.pp);
	assert_int_equal(c0.done, 1);
	assert_int_equal(c1.done, 1);
	assert_int_equal(c0.status, STB_UNAVAILABLE);
	assert_true(c0.on_loop && c1.on_loop);
}

static int stuck;

static void
block_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (stuck)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* A stuck loop does not hold shutdown past its bound; it lets go of its
 * peer (and the pool) when it comes back. */
static void
test_free_is_bounded(void **state)
{
	struct call c0 = {.l = &f.l[0]}, c1 = {.l = &f.l[1]};
	struct timespec t0, t1;
	long ms;

	(void)state;
	run_on(&f.l[0], call_start, &c0);
	run_on(&f.l[1], call_start, &c1);
	stuck = 1;
	assert_int_equal(mbox_post(f.l[1].mb, block_loop, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	peerpool_free(f.pp);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 3000);
	assert_int_equal(c0.done, 1);
	pthread_mutex_lock(&mu);
	assert_int_equal(c1.done, 0);
	stuck = 0;
	pthread_cond_broadcast(&cv);
	while (!c1.done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	assert_int_equal(c1.status, STB_UNAVAILABLE);
	assert_true(c1.on_loop);
}

struct call_to {
	struct call *c;
	int timeout_ms;
};

static void
call_start_to(void *arg)
{
	struct call_to *t = arg;
	err_t err;

	t->c->rc = peerpool_call(f.pp, t->c->l->base, t->c->l->mb, 0x0001, NULL, t->timeout_ms,
	                         call_done, t->c, &err);
	if (t->c->rc == -1)
		t->c->status = err.status;
}

/* The fd of a connection that reaches the silent listener within ms (kept
 * open and silent: the caller closes it), or -1. */
static int
accept_within(int ms)
{
	struct pollfd pfd = {f.lfd, POLLIN, 0};

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return accept(f.lfd, NULL, NULL);
}

/* A server that never completes the handshake (or never reads) is
 * dropped when a call times out: the next call dials a new connection
 * instead of queueing behind the dead one for ever. */
static void
test_stalled_server_is_redialled(void **state)
{
	struct call c0 = {.l = &f.l[0]}, c1 = {.l = &f.l[0]};
	struct call_to t0 = {&c0, 200}, t1 = {&c1, 200};
	int fd0, fd1;

	(void)state;
	run_on(&f.l[0], call_start_to, &t0);
	assert_int_equal(c0.rc, 0);
	assert_true((fd0 = accept_within(2000)) >= 0);
	pthread_mutex_lock(&mu);
	while (!c0.done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	assert_int_not_equal(c0.status, STB_OK);
	usleep(300 * 1000); /* past backoff_min_ms */
	run_on(&f.l[0], call_start_to, &t1);
	assert_int_equal(c1.rc, 0);
	fd1 = accept_within(2000);
	peerpool_free(f.pp);
	close(fd0);
	if (fd1 >= 0)
		close(fd1);
	assert_true(fd1 >= 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_peer_per_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_fails_pending_on_their_loops, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_free_is_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_server_is_redialled, setup, teardown),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
