/* Unit tests for connreg: the online-connection registry.  Entries here
 * carry no connection (the pushes find none and do nothing); what is
 * checked is the bookkeeping, the posting to each entry's loop and that
 * queued jobs keep the registry alive. */
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <string.h>

#include "connreg.h"
#include "testutil.h"

static void
ent(connreg_ent_t *e, const char *id, mbox_t *mb)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->mb = mb;
}

static int
count_ids(connreg_ent_t *e, void *arg)
{
	(void)e;
	++*(int *)arg;
	return 0;
}

static void
test_many_per_id(void **state)
{
	connreg_t *r = connreg_new(0, NULL);
	connreg_ent_t a, b, c;
	uint64_t gen;
	mbox_t *mb;
	int n = 0;

	(void)state;
	ent(&a, "dev-1", (mbox_t *)&a);
	ent(&b, "dev-1", (mbox_t *)&b);
	ent(&c, "dev-2", (mbox_t *)&c);
	assert_null(connreg_add(r, &a));
	assert_null(connreg_add(r, &b));
	assert_null(connreg_add(r, &c));
	assert_true(a.gen != 0 && b.gen != a.gen && c.gen != b.gen);
	assert_int_equal(connreg_count(r, "dev-1"), 2);
	assert_int_equal(connreg_count(r, "dev-3"), 0);
	assert_int_equal(connreg_size(r), 3);
	assert_int_equal(connreg_find(r, "dev-2", &gen, &mb), 0);
	assert_true(gen == c.gen && mb == (mbox_t *)&c);
	assert_int_equal(connreg_find(r, "nobody", &gen, &mb), -1);
	/* a stale gen takes nothing */
	assert_null(connreg_take(r, "dev-1", c.gen));
	assert_ptr_equal(connreg_take(r, "dev-1", a.gen), &a);
	assert_int_equal(connreg_count(r, "dev-1"), 1);
	assert_null(connreg_conn(r, "dev-1", a.gen));
	assert_int_equal(connreg_foreach(r, count_ids, &n), 0);
	assert_int_equal(n, 2);
	assert_ptr_equal(connreg_take(r, "dev-1", 0), &b);
	assert_ptr_equal(connreg_take(r, "dev-2", 0), &c);
	assert_int_equal(connreg_size(r), 0);
	connreg_free(r);
}

static void
test_unique_replaces(void **state)
{
	connreg_t *r = connreg_new(1, NULL);
	connreg_ent_t a, b;

	(void)state;
	ent(&a, "dev", NULL);
	ent(&b, "dev", NULL);
	assert_null(connreg_add(r, &a));
	assert_ptr_equal(connreg_add(r, &b), &a); /* the older one, for its owner to close */
	assert_int_equal(connreg_count(r, "dev"), 1);
	/* the replaced entry's late close takes nothing */
	assert_null(connreg_take(r, "dev", a.gen));
	assert_ptr_equal(connreg_take(r, "dev", b.gen), &b);
	connreg_free(r);
}

static void
test_ent_init_bounds(void **state)
{
	char id[CONNREG_ID_CAP + 1];
	connreg_ent_t e;
	err_t err;

	(void)state;
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(connreg_ent_init(&e, id, NULL, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(connreg_ent_init(&e, "", NULL, &err), -1);
}

/* Pushes are posted to each entry's own loop; queued jobs outlive the
 * owner's reference (ASan would see a use after free). */
static void
test_push_posts_to_each_loop(void **state)
{
	struct event_base *b1 = event_base_new(), *b2 = event_base_new();
	mbox_t *m1 = mbox_new(b1), *m2 = mbox_new(b2);
	connreg_t *r = connreg_new(0, NULL);
	connreg_ent_t a, b, c;
	buf_t tlvs;

	(void)state;
	assert_non_null(m1);
	assert_non_null(m2);
	ent(&a, "dev", m1);
	ent(&b, "dev", m2);
	ent(&c, "other", m1);
	connreg_add(r, &a);
	connreg_add(r, &b);
	connreg_add(r, &c);
	buf_init(&tlvs, 64);
	assert_int_equal(buf_append(&tlvs, "x", 1), 0);
	assert_int_equal(connreg_push(r, "dev", 0x0201, &tlvs), 2);
	assert_int_equal(connreg_kick(r, "other"), 1);
	assert_int_equal(connreg_push(r, "nobody", 0x0201, &tlvs), 0);
	connreg_take(r, "dev", 0);
	connreg_take(r, "dev", 0);
	connreg_take(r, "other", 0);
	connreg_free(r); /* three jobs still hold it */
	event_base_loop(b1, EVLOOP_NONBLOCK);
	event_base_loop(b2, EVLOOP_NONBLOCK);
	mbox_free(m1); /* runs anything left */
	mbox_free(m2);
	buf_free(&tlvs);
	event_base_free(b1);
	event_base_free(b2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_per_id),
	    cmocka_unit_test(test_unique_replaces),
	    cmocka_unit_test(test_ent_init_bounds),
	    cmocka_unit_test(test_push_posts_to_each_loop),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
