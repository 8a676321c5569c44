/*
 * The test devices' enrolment codes: $RDV_ENROL_CODE when set (one device,
 * or a made-up code), else the file $RDV_ENROL_DIR/<device id> that
 * tests/integration/rdv_lib.sh's provision wrote.  Header-only: each test
 * driver is a single file.
 */
#ifndef STB_ENROLCODE_H
#define STB_ENROLCODE_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* code (cap bytes) gets device_id's code; 0, or -1 when there is none. */
static inline int
test_enrol_code(const char *device_id, char *code, size_t cap)
{
	const char *env = getenv("RDV_ENROL_CODE"), *dir = getenv("RDV_ENROL_DIR");
	char path[512];
	FILE *f;
	size_t n;

	if (cap == 0)
		return -1;
	code[0] = '\0';
	if (env != NULL) {
		snprintf(code, cap, "%s", env);
		return 0;
	}
	if (dir == NULL ||
	    snprintf(path, sizeof(path), "%s/%s", dir, device_id) >= (int)sizeof(path) ||
	    (f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(code, 1, cap - 1, f);
	fclose(f);
	code[n] = '\0';
	while (n > 0 && isspace((unsigned char)code[n - 1]))
		code[--n] = '\0';
	return n > 0 ? 0 : -1;
}

#endif
