/* ca: stbctl commands (being written). */
#include <stdio.h>

#include "ctl.h"

const char ctl_ca_usage[] = "ca-authd: (no commands yet)\n";

int
ctl_ca(ctl_t *x, int argc, char **argv)
{
	(void)x;
	(void)argc;
	(void)argv;
	fprintf(stderr, "stbctl: ca: no commands yet\n");
	return 2;
}
