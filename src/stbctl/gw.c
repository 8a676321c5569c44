/* gw: stbctl commands (being written). */
#include <stdio.h>

#include "ctl.h"

const char ctl_gw_usage[] = "media-gw: (no commands yet)\n";

int
ctl_gw(ctl_t *x, int argc, char **argv)
{
	(void)x;
	(void)argc;
	(void)argv;
	fprintf(stderr, "stbctl: gw: no commands yet\n");
	return 2;
}
