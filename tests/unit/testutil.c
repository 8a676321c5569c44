/* Helpers shared by the unit tests: temporary directories, event loops. */
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "testutil.h"

char tu_dir[TU_DIR_MAX];

int
tu_mkdtemp(char *dir, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(dir, size, "%s/stb-%s-XXXXXX", tmp ? tmp : "/tmp",
	                 program_invocation_short_name);

	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
tu_rmtree(const char *path)
{
	return nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
tu_setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(tu_dir, sizeof(tu_dir));
}

int
tu_teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tu_dir);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	tu_guard_t *g = arg;

	(void)fd;
	(void)what;
	g->fired = 1;
	event_base_loopbreak(event_get_base(g->ev));
}

void
tu_guard_start(tu_guard_t *g, struct event_base *base, int sec)
{
	struct timeval tv = {sec, 0};

	g->fired = 0;
	assert_non_null(g->ev = event_new(base, -1, 0, on_guard, g));
	assert_int_equal(event_add(g->ev, &tv), 0);
}

void
tu_guard_free(tu_guard_t *g)
{
	event_free(g->ev);
}

void *
tu_loop_main(void *base)
{
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}
