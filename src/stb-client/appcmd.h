/* appcmd: stb-client's app-check command (flow E). */
#ifndef STB_APPCMD_H
#define STB_APPCMD_H

/* The options stb-client's main took that app-check uses. */
typedef struct appcmd_opts {
	const char *addr; /* the check listener; NULL: APPCMD_ADDR */
	const char *ca;   /* CA file (online only) */
	int timeout_ms;
	int verbose;
} appcmd_opts_t;

#define APPCMD_ADDR "127.0.0.1:7127"

/* argv[0] is "app-check"; the exit code: 0 ALLOW, 3 DENY, 1 refused or
 * failed, 2 usage. */
int appcmd_check(const appcmd_opts_t *o, int argc, char **argv);
extern const char appcmd_usage[];

#endif
