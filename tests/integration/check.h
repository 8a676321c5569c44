/*
 * CHECK for the integration test programs: prints "ok: NAME", or
 * "FAIL: NAME: " and the printf-style rest, and counts either way;
 * check_report() prints the tally and gives the exit status.  Each program
 * is a single file, so the counters can live here.
 */
#ifndef STB_CHECK_H
#define STB_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(name, cond, ...)                                                                     \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok: %s\n", name);                                                  \
			check_passed++;                                                            \
		} else {                                                                           \
			printf("FAIL: %s: ", name);                                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			check_failed++;                                                            \
		}                                                                                  \
	} while (0)

/* Prints "N passed, M failed"; returns 0 when nothing failed, else 1. */
static inline int
check_report(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed == 0 ? 0 : 1;
}

#endif
