/* appcmd: `stb-client app-check`, the TV's view of an app's QR code. */
#include "appcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stb/stbclient.h"

#define ZBARIMG "zbarimg"

const char appcmd_usage[] =
    "  app-check [--index FILE --key PEM [--state FILE] [--at UNIX]] PAYLOAD |\n"
    "            --image FILE.png\n"
    "                               check an app's QR code: online at appvetd's\n"
    "                               check listener (-a, default " APPCMD_ADDR "),\n"
    "                               or offline against a signed index snapshot\n"
    "                               verified with the operator's key (--state keeps\n"
    "                               the last index version seen: no rollback;\n"
    "                               --at checks as of that time, not now);\n"
    "                               --image decodes a PNG with zbarimg; prints\n"
    "                               ALLOW or DENY; exit 0 ALLOW, 3 DENY, 1 refused\n";

/* The text of the QR code in the image at path, through zbarimg. */
static int
appcmd_scan(const char *path, char *out, size_t cap)
{
	int fd[2], status = 0;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(fd) == -1) {
		fprintf(stderr, "stb-client: pipe: %s\n", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		fprintf(stderr, "stb-client: fork: %s\n", strerror(errno));
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		/* zbarimg's own stderr is noise (D-Bus, "scanned 1 barcode"):
		 * the outcome is its exit status and stdout */
		int null = open("/dev/null", O_WRONLY);

		dup2(fd[1], 1);
		if (null != -1)
			dup2(null, 2);
		close(fd[0]);
		close(fd[1]);
		execlp(ZBARIMG, ZBARIMG, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path,
		       (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while (n < cap - 1 && (r = read(fd[0], out + n, cap - 1 - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			break;
		n += (size_t)r;
	}
	close(fd[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	out[n] = '\0';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		fprintf(stderr,
		        "stb-client: --image needs %s (Debian: zbar-tools), not found; "
		        "pass the payload text instead\n",
		        ZBARIMG);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n == 0) {
		fprintf(stderr, "stb-client: %s: no QR code found\n", path);
		return -1;
	}
	/* zbarimg ends each symbol with a newline; one symbol only */
	if (out[n - 1] == '\n')
		out[--n] = '\0';
	if (memchr(out, '\n', n) != NULL) {
		fprintf(stderr, "stb-client: %s: more than one QR code\n", path);
		return -1;
	}
	return 0;
}

/* --state: the last index version in a file (a decimal number). */
static int
state_load(void *ctx, uint64_t *v)
{
	FILE *f = fopen(ctx, "r");
	char line[32];
	char *end;

	*v = 0;
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	errno = 0;
	*v = strtoull(line, &end, 10);
	return errno != 0 || end == line || (*end != '\n' && *end != '\0') ? -1 : 0;
}

static int
state_save(void *ctx, uint64_t v)
{
	char tmp[4096];
	FILE *f;
	int ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", (const char *)ctx) >= sizeof(tmp) ||
	    (f = fopen(tmp, "w")) == NULL)
		return -1;
	ok = fprintf(f, "%" PRIu64 "\n", v) > 0;
	ok = fclose(f) == 0 && ok;
	return ok && rename(tmp, ctx) == 0 ? 0 : -1;
}

static int
appcmd_print(const stb_app_verdict_t *v)
{
	if (v->allow)
		printf("ALLOW");
	else
		printf("DENY");
	if (v->name[0] != '\0')
		printf(" app=%s version=%s", v->name, v->version);
	if (v->index_version != 0)
		printf(" index=%" PRIu64, v->index_version);
	if (!v->allow)
		printf(" warning=\"%s\"", v->warning);
	printf("\n");
	return v->allow ? 0 : 3;
}

static int
appcmd_refused(const char *what, const stb_error_t *err)
{
	fprintf(stderr, "stb-client: %s: %s: %s\n", what, stb_status_name(err->status),
	        err->message);
	return 1;
}

static int
appcmd_offline(const char *index, const char *key, const char *state, uint64_t at,
               const char *payload)
{
	static const stb_app_version_store_t store = {state_load, state_save};
	stb_app_index_t *ix;
	stb_app_verdict_t v;
	stb_error_t err;
	int rc;

	if (stb_app_index_load(index, key, state != NULL ? &store : NULL, (void *)state, at, &ix,
	                       &err) == -1)
		return appcmd_refused("index", &err);
	rc = stb_app_check_offline(ix, payload, at, &v, &err) == -1
	         ? appcmd_refused("app-check", &err)
	         : appcmd_print(&v);
	stb_app_index_free(ix);
	return rc;
}

static int
appcmd_online(const appcmd_opts_t *o, const char *payload)
{
	stb_app_verdict_t v;
	stb_client_t *c;
	stb_error_t err;
	int rc;

	if (o->ca == NULL) {
		fprintf(stderr, "stb-client: app-check online needs --ca (or $STB_CA)\n");
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, o->ca, &err) == -1) {
		stb_client_free(c);
		return appcmd_refused("setup", &err);
	}
	stb_client_set_timeout(c, o->timeout_ms);
	if (stb_connect_addr(c, o->addr != NULL ? o->addr : APPCMD_ADDR, &err) == -1)
		rc = appcmd_refused("connect", &err);
	else if (stb_app_check(c, payload, &v, &err) == -1)
		rc = appcmd_refused("app-check", &err);
	else
		rc = appcmd_print(&v);
	stb_client_free(c);
	return rc;
}

int
appcmd_check(const appcmd_opts_t *o, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"image", required_argument, NULL, 'i'}, {"index", required_argument, NULL, 'x'},
	    {"key", required_argument, NULL, 'k'},   {"state", required_argument, NULL, 's'},
	    {"at", required_argument, NULL, 't'},    {NULL, 0, NULL, 0}};
	const char *image = NULL, *index = NULL, *key = NULL, *state = NULL, *payload;
	char scanned[STB_APP_PAYLOAD_MAX + 2], *end;
	uint64_t at = 0;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'i')
			image = optarg;
		else if (ch == 'x')
			index = optarg;
		else if (ch == 'k')
			key = optarg;
		else if (ch == 's')
			state = optarg;
		else if (ch == 't') {
			at = strtoull(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || at == 0) {
				fprintf(stderr, "stb-client: --at takes a unix time\n");
				return 2;
			}
		} else
			return 2;
	}
	if ((image != NULL) == (argc - optind == 1) || argc - optind > 1 ||
	    (index != NULL) != (key != NULL) || ((state != NULL || at != 0) && index == NULL)) {
		fprintf(stderr,
		        "usage: stb-client app-check [--index FILE --key PEM [--state FILE] "
		        "[--at UNIX]] PAYLOAD | --image FILE.png\n");
		return 2;
	}
	if (image != NULL) {
		if (appcmd_scan(image, scanned, sizeof(scanned)) == -1)
			return 1;
		payload = scanned;
	} else {
		payload = argv[optind];
	}
	return index != NULL ? appcmd_offline(index, key, state, at, payload)
	                     : appcmd_online(o, payload);
}
