/*
 * stbcli_qd: `stb-client bootstrap`, the device's credentialing bootstrap
 * (flow D) from a shell.  The device key is read through a secret store
 * callback (the way firmware hands it over), the credentials are written
 * to a new 0600 file:
 *   device_id=... imsi=... k=HEX opc=HEX issued=UNIX expires=UNIX
 * one per line.
 */
#include "stbcli_qd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The secret store: "device-key" is the --key file, "tls-session" the
 * --session-file (the TLS session to resume, kept between runs). */
struct qd_secrets {
	const char *key, *session;
};

static const char *
qd_secret_path(const struct qd_secrets *s, const char *name)
{
	if (strcmp(name, "device-key") == 0)
		return s->key;
	return strcmp(name, "tls-session") == 0 ? s->session : NULL;
}

static int
qd_secret_load(void *ctx, const char *name, unsigned char *buf, size_t cap, size_t *len)
{
	const char *path = qd_secret_path(ctx, name);
	FILE *f;
	size_t n;

	if (path == NULL || (f = fopen(path, "rb")) == NULL)
		return -1;
	n = fread(buf, 1, cap, f);
	fclose(f);
	if (n == 0 || n == cap)
		return -1;
	*len = n;
	return 0;
}

static void
qd_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Only the session is ever saved: a new 0600 file, then renamed. */
static int
qd_secret_save(void *ctx, const char *name, const unsigned char *buf, size_t len)
{
	const struct qd_secrets *s = ctx;
	char tmp[4096];
	int fd, ok;

	if (strcmp(name, "tls-session") != 0 || s->session == NULL ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", s->session) >= sizeof(tmp))
		return -1;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		return -1;
	ok = write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok && rename(tmp, s->session) == 0;
	if (!ok)
		unlink(tmp);
	return ok ? 0 : -1;
}

/* Writes the credentials to the --out file (created 0600, replaced
 * atomically); 0 or -1. */
static int
qd_store(void *ctx, const stb_credentials_t *cr)
{
	const char *path = ctx;
	char tmp[4096], k[2 * STB_QD_KEY_LEN + 1], opc[2 * STB_QD_KEY_LEN + 1], text[512];
	int fd, n, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	qd_hex(cr->k, sizeof(cr->k), k);
	qd_hex(cr->opc, sizeof(cr->opc), opc);
	n = snprintf(text, sizeof(text),
	             "device_id=%s\nimsi=%s\nk=%s\nopc=%s\nissued=%llu\nexpires=%llu\n",
	             cr->device_id, cr->imsi, k, opc, (unsigned long long)cr->issued,
	             (unsigned long long)cr->expires);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(opc, sizeof(opc));
	unlink(tmp);
	if (n > 0 && (size_t)n < sizeof(text) &&
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) != -1) {
		if (fchmod(fd, 0600) == 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0)
			rc = 0;
		if (close(fd) != 0)
			rc = -1;
		if (rc == 0 && rename(tmp, path) != 0)
			rc = -1;
		if (rc != 0)
			unlink(tmp);
	}
	if (rc != 0)
		fprintf(stderr, "stb-client: cannot write %s: %s\n", path, strerror(errno));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

static void
qd_usage(void)
{
	fprintf(stderr, "usage: stb-client --ca CA --cert DEVICE.crt --key DEVICE.key -a REG_ADDR "
	                "bootstrap --operator-ca FILE --out FILE [--ocsp URL] [--device ID]\n"
	                "        [--session-file FILE]\n");
}

int
stbcli_bootstrap(stb_client_t *c, const char *addr, const char *cert, const char *key, int argc,
                 char **argv)
{
	static const struct option opts[] = {
	    {"operator-ca", required_argument, NULL, 'O'},  {"ocsp", required_argument, NULL, 'U'},
	    {"device", required_argument, NULL, 'D'},       {"out", required_argument, NULL, 'o'},
	    {"session-file", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
	static const stb_secret_store_t keystore = {.load = qd_secret_load, .save = qd_secret_save};
	struct qd_secrets secrets = {.key = key};
	stb_bootstrap_conf_t conf = {.reg_addr = addr, .cert_file = cert, .key_name = "device-key"};
	stb_bootstrap_result_t res;
	const char *out = NULL;
	char digest[65], when[32];
	struct tm tm;
	time_t t;
	stb_error_t err;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'O')
			conf.operator_ca_file = optarg;
		else if (ch == 'U')
			conf.ocsp_url = optarg;
		else if (ch == 'D')
			conf.device_id = optarg;
		else if (ch == 'o')
			out = optarg;
		else if (ch == 'S')
			secrets.session = optarg;
		else {
			qd_usage();
			return 2;
		}
	}
	if (optind != argc || cert == NULL || key == NULL || out == NULL ||
	    conf.operator_ca_file == NULL) {
		qd_usage();
		return 2;
	}
	stb_client_set_secret_store(c, &keystore, &secrets);
	if (secrets.session != NULL)
		stb_client_set_resumption(c, 1, "tls-session");
	if (stb_bootstrap(c, &conf, qd_store, (void *)out, &res, &err) == -1) {
		fprintf(stderr, "stb-client: bootstrap: %s: %s\n", stb_status_name(err.status),
		        err.message);
		return 1;
	}
	qd_hex(res.pkg_digest, sizeof(res.pkg_digest), digest);
	t = (time_t)res.expires;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("bootstrap ok: device %s, IMSI %s, expires %s, package %.16s\n", res.device_id,
	       res.imsi, when, digest);
	printf("credentials written to %s\n", out);
	return 0;
}
