/* cp: stbctl commands (being written). */
#include <stdio.h>

#include "ctl.h"

const char ctl_cp_usage[] = "cert-proxyd: (no commands yet)\n";

int
ctl_cp(ctl_t *x, int argc, char **argv)
{
	(void)x;
	(void)argc;
	(void)argv;
	fprintf(stderr, "stbctl: cp: no commands yet\n");
	return 2;
}
