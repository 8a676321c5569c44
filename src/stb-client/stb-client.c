/* stb-client: try libstbclient from a shell. */
#include <ctype.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appcmd.h"
#include "stb/stbclient.h"
#include "stbcli_qd.h"

static void
usage(void)
{
	fprintf(stderr,
	        "usage: stb-client [options] command\n"
	        "options:\n"
	        "  -a, --addr HOST:PORT   server (default 127.0.0.1:7103)\n"
	        "      --ca FILE          CA certificate to trust (pinned)\n"
	        "      --cert FILE        client certificate (optional)\n"
	        "      --key FILE         client key\n"
	        "  -T, --timeout MS       deadline per request (default 10000)\n"
	        "  -v, --verbose          print library debug messages\n"
	        "      --enrol-file FILE  rdv-*: the device's one-time enrolment code, for its\n"
	        "                         first registration (or $STB_RDV_ENROL_CODE)\n"
	        "commands:\n"
	        "  ping [-n COUNT] [-s BYTES]   PING and print the round-trip time\n"
	        "  rdv-register [-w SECONDS] DEVICE USER ENDPOINT\n"
	        "                               register with rendezvousd (and stay\n"
	        "                               online SECONDS)\n"
	        "  rdv-listen DEVICE USER ENDPOINT\n"
	        "                               register, accept links on ENDPOINT and\n"
	        "                               echo every line back\n"
	        "  rdv-connect DEVICE USER ENDPOINT TARGET\n"
	        "                               register, link to TARGET, send stdin line\n"
	        "                               by line and print the echoes\n"
	        "  login [--cp HOST:PORT] [--secret-file FILE] DEVICE\n"
	        "                               certificate-proxied login: -a is media-gw,\n"
	        "                               --cp cert-proxyd (default 127.0.0.1:7102);\n"
	        "                               prints the access token and its expiry\n"
	        "  watch [--count N] [--seconds S] [--secret-file FILE] DEVICE\n"
	        "                               stay connected to cert-proxyd (-a, default\n"
	        "                               127.0.0.1:7102), acknowledge certificate\n"
	        "                               update pushes and print each; stop after N\n"
	        "                               renewals or S seconds\n"
	        "  keysync [--key-file FILE] [--app APP] [--timestamp T] [--sms] KEY_ID MDN\n"
	        "                               key sync at keymgmtd (-a, default\n"
	        "                               127.0.0.1:7105): bind the key to MDN (and\n"
	        "                               APP) and have it pushed to the app platform;\n"
	        "                               --sms prints the SMS text to send instead\n"
	        "  bootstrap --operator-ca FILE --out FILE [--ocsp URL] [--device ID]\n"
	        "                               credentialing bootstrap (qualifyd): -a is\n"
	        "                               the registration role, --cert/--key the\n"
	        "                               device's; writes IMSI/K/OPc to a 0600 file\n"
	        "%s"
	        "The device password comes from $STB_RDV_PASSWORD; the device secret\n"
	        "(hex) from $STB_DEVICE_SECRET or --secret-file, the terminal key (hex)\n"
	        "from $STB_KEYSYNC_KEY or --key-file: never the command line.\n",
	        appcmd_usage);
}

static void
log_stderr(void *ctx, int level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "stb-client: <%d> %s\n", level, msg);
}

static int
cmd_ping(stb_client_t *c, int argc, char **argv)
{
	long count = 1, size = 0;
	uint64_t rtt, sum = 0, min = UINT64_MAX, max = 0;
	unsigned char *payload = NULL;
	stb_error_t err;
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		if (ch == 'n')
			count = strtol(optarg, NULL, 10);
		else if (ch == 's')
			size = strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (count < 1 || count > 1000000 || size < 0 || size > 16384) {
		fprintf(stderr, "stb-client: -n 1..1000000, -s 0..16384\n");
		return 2;
	}
	if (size > 0 && (payload = malloc((size_t)size)) == NULL)
		return 1;
	for (long i = 0; i < size; i++)
		payload[i] = (unsigned char)i;
	for (long i = 0; i < count; i++) {
		if (stb_ping(c, payload, (size_t)size, &rtt, &err) == -1) {
			fprintf(stderr, "stb-client: ping: %s: %s\n", stb_status_name(err.status),
			        err.message);
			free(payload);
			return 1;
		}
		printf("PING ok: rtt %llu us\n", (unsigned long long)rtt);
		sum += rtt;
		min = rtt < min ? rtt : min;
		max = rtt > max ? rtt : max;
	}
	if (count > 1)
		printf("%ld pings: min %llu us, avg %llu us, max %llu us\n", count,
		       (unsigned long long)min, (unsigned long long)(sum / (uint64_t)count),
		       (unsigned long long)max);
	free(payload);
	return 0;
}

static void
print_err(const char *what, const stb_error_t *err)
{
	fprintf(stderr, "stb-client: %s: %s: %s\n", what, stb_status_name(err->status),
	        err->message);
}

static const char *enrol_file; /* --enrol-file */

/* The enrolment code from --enrol-file or $STB_RDV_ENROL_CODE into code
 * (empty: none); -1 when the file cannot be read. */
static int
load_enrol(char *code, size_t cap)
{
	const char *env = getenv("STB_RDV_ENROL_CODE");
	FILE *f;
	size_t n;

	code[0] = '\0';
	if (enrol_file == NULL) {
		if (env != NULL)
			snprintf(code, cap, "%s", env);
		return 0;
	}
	if ((f = fopen(enrol_file, "r")) == NULL) {
		fprintf(stderr, "stb-client: %s: cannot read the enrolment code\n", enrol_file);
		return -1;
	}
	n = fread(code, 1, cap - 1, f);
	fclose(f);
	code[n] = '\0';
	while (n > 0 && isspace((unsigned char)code[n - 1]))
		code[--n] = '\0';
	return 0;
}

/* Registers argv[0..2] (DEVICE USER ENDPOINT) on c, enrolling with the
 * code when one is given, and says so on out. */
static int
rdv_open(stb_client_t *c, char **argv, stb_rdv_t **r, FILE *out)
{
	const char *pw = getenv("STB_RDV_PASSWORD");
	char code[80];
	stb_error_t err;
	int rc;

	if (pw == NULL) {
		fprintf(stderr, "stb-client: set STB_RDV_PASSWORD to the device password\n");
		return 2;
	}
	if (load_enrol(code, sizeof(code)) == -1)
		return 2;
	rc = code[0] != '\0' ? stb_rdv_enrol(c, argv[0], code, argv[1], pw, argv[2], r, &err)
	                     : stb_rdv_register(c, argv[0], argv[1], pw, argv[2], r, &err);
	OPENSSL_cleanse(code, sizeof(code));
	if (rc == -1) {
		print_err("register", &err);
		return 1;
	}
	fprintf(out, "registered %s overlay=%s\n", argv[0], stb_rdv_overlay_addr(*r));
	fflush(out);
	return 0;
}

static int
cmd_rdv_register(stb_client_t *c, int argc, char **argv)
{
	long wait_s = 0;
	stb_error_t err;
	stb_rdv_t *r;
	int ch, rc;

	optind = 1;
	while ((ch = getopt(argc, argv, "w:")) != -1) {
		if (ch != 'w')
			return 2;
		wait_s = strtol(optarg, NULL, 10);
	}
	if (argc - optind != 3 || wait_s < 0 || wait_s > 86400) {
		usage();
		return 2;
	}
	if ((rc = rdv_open(c, argv + optind, &r, stdout)) != 0)
		return rc;
	rc = 0;
	if (wait_s > 0 && stb_rdv_poll(r, (int)(wait_s * 1000), &err) == -1) {
		print_err("control channel", &err);
		rc = 1;
	}
	stb_rdv_free(r);
	return rc;
}

/* Echoes every message of one link until it ends. */
static void
echo_link(stb_peer_t *p)
{
	static char buf[STB_PEER_MAX_PAYLOAD];
	stb_error_t err;
	size_t n;

	printf("link from %s\n", stb_peer_device(p));
	fflush(stdout);
	for (;;) {
		if (stb_peer_recv(p, buf, sizeof(buf), &n, 60000, &err) == -1) {
			if (err.status == STB_TIMEOUT)
				continue;
			printf("link closed: %s\n", err.message);
			break;
		}
		printf("got %.*s\n", (int)n, buf);
		fflush(stdout);
		if (stb_peer_send(p, buf, n, &err) == -1) {
			printf("link closed: %s\n", err.message);
			break;
		}
	}
	fflush(stdout);
}

static int
cmd_rdv_listen(stb_client_t *c, int argc, char **argv)
{
	stb_peer_listener_t *l;
	stb_error_t err;
	stb_rdv_t *r;
	int rc;

	if (argc != 4) {
		usage();
		return 2;
	}
	if ((rc = rdv_open(c, argv + 1, &r, stdout)) != 0)
		return rc;
	if (stb_peer_listen(r, NULL, &l, &err) == -1) {
		print_err("listen", &err);
		stb_rdv_free(r);
		return 1;
	}
	printf("listening on %s\n", argv[3]);
	fflush(stdout);
	for (;;) {
		stb_peer_t *p;
		if (stb_peer_accept(l, 1000, &p, &err) == 0) {
			echo_link(p);
			stb_peer_free(p);
		} else if (err.status == STB_UNAVAILABLE) { /* the control channel is gone */
			print_err("accept", &err);
			break;
		} else if (err.status != STB_TIMEOUT) {
			printf("refused %s %s\n", stb_status_name(err.status), err.message);
			fflush(stdout);
		}
	}
	stb_peer_listener_free(l);
	stb_rdv_free(r);
	return 1;
}

/* Sends one line and prints its echo; reconnects once on a broken link. */
static int
send_line(stb_rdv_t *r, stb_peer_t **p, const char *target, const char *line, size_t n)
{
	static char echo[STB_PEER_MAX_PAYLOAD];
	stb_error_t err;
	size_t got;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (*p == NULL && stb_rdv_connect(r, target, p, &err) == -1) {
			print_err("connect", &err);
			return -1;
		}
		if (stb_peer_send(*p, line, n, &err) == 0 &&
		    stb_peer_recv(*p, echo, sizeof(echo), &got, 10000, &err) == 0) {
			printf("%.*s\n", (int)got, echo);
			fflush(stdout);
			return 0;
		}
		print_err("link", &err);
		stb_peer_free(*p);
		*p = NULL;
		if (err.status != STB_UNAVAILABLE)
			return -1;
		fprintf(stderr, "stb-client: link broken: asking for a new session\n");
	}
	return -1;
}

/* A person types slowly: keep the control channel answered meanwhile.  A
 * terminal hands over one line per read, so poll() on it is exact. */
static int
wait_stdin(stb_rdv_t *r)
{
	struct pollfd pf = {0, POLLIN, 0};
	stb_error_t err;

	if (!isatty(0))
		return 0;
	while (poll(&pf, 1, 0) == 0)
		if (stb_rdv_poll(r, 200, &err) == -1) {
			print_err("control channel", &err);
			return -1;
		}
	return 0;
}

static int
cmd_rdv_connect(stb_client_t *c, int argc, char **argv)
{
	static char line[STB_PEER_MAX_PAYLOAD + 2];
	stb_peer_t *p = NULL;
	stb_error_t err;
	stb_rdv_t *r;
	int rc;

	if (argc != 5) {
		usage();
		return 2;
	}
	if ((rc = rdv_open(c, argv + 1, &r, stderr)) != 0) /* stdout: the echoes */
		return rc;
	if (stb_rdv_connect(r, argv[4], &p, &err) == -1) {
		print_err("connect", &err);
		stb_rdv_free(r);
		return 1;
	}
	fprintf(stderr, "stb-client: linked to %s\n", stb_peer_device(p));
	while (rc == 0 && wait_stdin(r) == 0 && fgets(line, sizeof(line), stdin) != NULL) {
		size_t n = strcspn(line, "\n");
		if (n > STB_PEER_MAX_PAYLOAD) {
			fprintf(stderr, "stb-client: line longer than %d bytes\n",
			        STB_PEER_MAX_PAYLOAD);
			rc = 1;
			break;
		}
		if (send_line(r, &p, argv[4], line, n) == -1)
			rc = 1;
	}
	stb_peer_free(p);
	stb_rdv_free(r);
	return rc;
}

/* ---- flow A: login and watch ---- */

#define SECRET_MIN 16
#define SECRET_MAX 64

/* A secret (the device secret, a terminal key), hex, from the environment
 * variable env or a file; never argv. */
static int
load_secret(const char *file, const char *env, unsigned char *out, size_t *len)
{
	char text[2 * SECRET_MAX + 64];
	const char *p;
	size_t n = 0, k = 0;
	int bad;
	FILE *f;

	memset(text, 0, sizeof(text));
	if (file != NULL) {
		if ((f = fopen(file, "r")) == NULL) {
			fprintf(stderr, "stb-client: cannot read %s\n", file);
			return -1;
		}
		n = fread(text, 1, sizeof(text) - 1, f);
		if (n == sizeof(text) - 1 && fgetc(f) != EOF)
			text[0] = '!'; /* longer than any secret: refused below */
		fclose(f);
		text[n] = '\0';
		p = text;
	} else if ((p = getenv(env)) == NULL) {
		fprintf(stderr, "stb-client: set %s (hex) or use a file option\n", env);
		return -1;
	}
	for (; *p != '\0'; p++) {
		int v = isxdigit((unsigned char)*p)
		            ? (isdigit((unsigned char)*p) ? *p - '0' : (*p | 0x20) - 'a' + 10)
		            : -1;
		if (v < 0) {
			if (isspace((unsigned char)*p))
				continue;
			break;
		}
		if (k / 2 >= SECRET_MAX) {
			k = 0;
			break;
		}
		out[k / 2] = (unsigned char)(k % 2 ? out[k / 2] | v : v << 4);
		k++;
	}
	bad = *p != '\0' || k % 2 != 0 || k / 2 < SECRET_MIN; /* p may point into text */
	OPENSSL_cleanse(text, sizeof(text));
	if (bad) {
		OPENSSL_cleanse(out, SECRET_MAX);
		fprintf(stderr, "stb-client: the secret must be %d..%d bytes of hex\n", SECRET_MIN,
		        SECRET_MAX);
		return -1;
	}
	*len = k / 2;
	return 0;
}

static int
connect_client(stb_client_t *c, const char *addr, const char *what)
{
	stb_error_t err;

	if (stb_connect_addr(c, addr, &err) == -1) {
		fprintf(stderr, "stb-client: %s %s: %s: %s\n", what, addr,
		        stb_status_name(err.status), err.message);
		return -1;
	}
	return 0;
}

static int
cmd_login(stb_client_t *gw, stb_client_t *cp, const char *cp_addr, const char *device,
          const unsigned char *secret, size_t slen)
{
	stb_login_result_t res;
	stb_error_t err;

	if (connect_client(cp, cp_addr, "cert-proxyd") == -1)
		return 1;
	if (stb_login(gw, cp, device, secret, slen, &res, &err) == -1) {
		print_err("login", &err);
		return 1;
	}
	printf("login ok device=%s cert_id=%s cert=%s fetched=%d token=", device, res.cert_id,
	       stb_status_name(res.cert_status), res.fetched);
	for (size_t i = 0; i < STB_TOKEN_LEN; i++)
		printf("%02x", res.token[i]);
	{
		time_t t = (time_t)res.token_expires;
		struct tm tm;
		char when[32] = "-";
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf(" expires=%s\n", when);
	}
	stb_login_result_clear(&res);
	return 0;
}

struct watch_ctx {
	long count; /* renewals to wait for; 0: no limit */
	long seen;
};

static int
on_watch(void *ctx, const stb_watch_event_t *ev)
{
	struct watch_ctx *w = ctx;

	switch (ev->type) {
	case STB_WATCH_READY:
		printf("watching\n");
		break;
	case STB_WATCH_UPDATE_NEEDED:
		printf("update-needed cert_id=%s reason=%d acked\n", ev->cert_id, ev->reason);
		break;
	case STB_WATCH_UPDATED:
		printf("updated cert_id=%s not_after=%llu\n", ev->cert_id,
		       (unsigned long long)ev->not_after);
		w->seen++;
		break;
	case STB_WATCH_UPDATE_FAILED:
		printf("update-failed cert_id=%s %s: %s\n", ev->cert_id,
		       stb_status_name(ev->status), ev->message);
		break;
	default:
		break;
	}
	fflush(stdout);
	return w->count > 0 && w->seen >= w->count;
}

static int
cmd_watch(stb_client_t *cp, const char *device, const unsigned char *secret, size_t slen,
          long count, long seconds)
{
	struct watch_ctx w = {count, 0};
	stb_error_t err;

	if (stb_watch(cp, device, secret, slen, (int)(seconds * 1000), on_watch, &w, &err) == -1) {
		print_err("watch", &err);
		return 1;
	}
	return 0;
}

/* keysync: the terminal's key sync (flow C), over TLS or as an SMS text. */
static int
cmd_keysync(stb_client_t *c, const char *addr, int addr_set, int argc, char **argv)
{
	static const struct option opts[] = {{"key-file", required_argument, NULL, 'f'},
	                                     {"app", required_argument, NULL, 'A'},
	                                     {"timestamp", required_argument, NULL, 't'},
	                                     {"sms", no_argument, NULL, 's'},
	                                     {NULL, 0, NULL, 0}};
	const char *key_file = NULL, *app = NULL;
	unsigned char key[SECRET_MAX];
	char text[STB_KEYSYNC_SMS_MAX + 1];
	unsigned long long ts = 0;
	stb_keysync_result_t res;
	int sms = 0, ch, rc = 1;
	size_t klen = 0;
	stb_error_t err;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'f')
			key_file = optarg;
		else if (ch == 'A')
			app = optarg;
		else if (ch == 't') {
			char *end;
			ts = strtoull(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || ts == 0) {
				fprintf(stderr, "stb-client: --timestamp: unix seconds, not '%s'\n",
				        optarg);
				return 2;
			}
		} else if (ch == 's')
			sms = 1;
		else {
			usage();
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage();
		return 2;
	}
	if (load_secret(key_file, "STB_KEYSYNC_KEY", key, &klen) == -1)
		return 2;
	if (sms) {
		if (stb_keysync_sms(argv[optind], argv[optind + 1], app, key, klen, ts, text,
		                    sizeof(text), &err) == 0) {
			printf("%s\n", text);
			rc = 0;
		} else
			print_err("keysync", &err);
	} else if (connect_client(c, addr_set ? addr : "127.0.0.1:7105", "keymgmtd") == 0) {
		if (stb_keysync(c, argv[optind], argv[optind + 1], app, key, klen, ts, &res,
		                &err) == 0) {
			printf("keysync ok key_id=%s mdn=%s app_id=%s push_id=%llu\n", argv[optind],
			       argv[optind + 1], res.app_id, (unsigned long long)res.push_id);
			rc = 0;
		} else
			print_err("keysync", &err);
	}
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* How the tool's clients are set up (the second one of login too). */
struct setup {
	const char *ca;
	int timeout_ms;
	int verbose;
};

/* login / watch: their own options, and connections of their own. */
static int
cmd_flow_a(stb_client_t *c, const struct setup *su, const char *addr, int addr_set, int argc,
           char **argv)
{
	static const struct option opts[] = {{"cp", required_argument, NULL, 'p'},
	                                     {"secret-file", required_argument, NULL, 's'},
	                                     {"count", required_argument, NULL, 'n'},
	                                     {"seconds", required_argument, NULL, 'S'},
	                                     {NULL, 0, NULL, 0}};
	const char *cp_addr = "127.0.0.1:7102", *secret_file = NULL;
	int login = strcmp(argv[0], "login") == 0, ch, rc;
	unsigned char secret[SECRET_MAX];
	size_t slen = 0;
	long count = 0, seconds = 0;
	stb_client_t *cp = NULL;
	stb_error_t err;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'p' && login)
			cp_addr = optarg;
		else if (ch == 's')
			secret_file = optarg;
		else if (ch == 'n' && !login)
			count = strtol(optarg, NULL, 10);
		else if (ch == 'S' && !login)
			seconds = strtol(optarg, NULL, 10);
		else {
			usage();
			return 2;
		}
	}
	if (argc - optind != 1 || count < 0 || seconds < 0 || seconds > 86400 * 365) {
		usage();
		return 2;
	}
	if (load_secret(secret_file, "STB_DEVICE_SECRET", secret, &slen) == -1)
		return 2;
	if (!login)
		rc = connect_client(c, addr_set ? addr : "127.0.0.1:7102", "cert-proxyd") == -1
		         ? 1
		         : cmd_watch(c, argv[optind], secret, slen, count, seconds);
	else if (connect_client(c, addr, "media-gw") == -1)
		rc = 1;
	/* the cert-proxyd connection trusts what the media-gw one does */
	else if (stb_client_new(&cp, &err) == -1 ||
	         stb_client_set_ca_file(cp, su->ca, &err) == -1) {
		fprintf(stderr, "stb-client: %s\n", err.message);
		rc = 1;
	} else {
		stb_client_set_timeout(cp, su->timeout_ms);
		if (su->verbose)
			stb_client_set_log(cp, log_stderr, NULL);
		rc = cmd_login(c, cp, cp_addr, argv[optind], secret, slen);
	}
	stb_client_free(cp);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
	                                         {"ca", required_argument, NULL, 'C'},
	                                         {"cert", required_argument, NULL, 'c'},
	                                         {"key", required_argument, NULL, 'k'},
	                                         {"timeout", required_argument, NULL, 'T'},
	                                         {"verbose", no_argument, NULL, 'v'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"enrol-file", required_argument, NULL, 'E'},
	                                         {NULL, 0, NULL, 0}};
	const char *addr = "127.0.0.1:7103", *ca = getenv("STB_CA"), *cert = NULL, *key = NULL;
	int ch, timeout = 10000, verbose = 0, addr_set = 0, rc;
	stb_client_t *c;
	stb_error_t err;

	while ((ch = getopt_long(argc, argv, "+a:T:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			addr_set = 1;
			break;
		case 'C':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'T':
			timeout = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'E':
			enrol_file = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 1 && strcmp(argv[0], "app-check") == 0) {
		appcmd_opts_t ao = {addr_set ? addr : NULL, ca, timeout, verbose};
		return appcmd_check(&ao, argc, argv);
	}
	if (argc < 1 || ca == NULL) {
		usage();
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, ca, &err) == -1 ||
	    (cert != NULL && strcmp(argv[0], "bootstrap") != 0 &&
	     stb_client_set_identity(c, cert, key ? key : cert, &err) == -1)) {
		fprintf(stderr, "stb-client: %s\n", err.message);
		return 1;
	}
	stb_client_set_timeout(c, timeout);
	if (verbose)
		stb_client_set_log(c, log_stderr, NULL);
	if (strcmp(argv[0], "login") == 0 || strcmp(argv[0], "watch") == 0) {
		struct setup su = {ca, timeout, verbose};
		rc = cmd_flow_a(c, &su, addr, addr_set, argc, argv);
		stb_client_free(c);
		return rc;
	}
	if (strcmp(argv[0], "keysync") == 0) {
		rc = cmd_keysync(c, addr, addr_set, argc, argv);
		stb_client_free(c);
		return rc;
	}
	if (strcmp(argv[0], "bootstrap") == 0) {
		rc = stbcli_bootstrap(c, addr, cert, key ? key : cert, argc, argv);
		stb_client_free(c);
		return rc;
	}
	if (strcmp(argv[0], "ping") != 0 && strcmp(argv[0], "rdv-register") != 0 &&
	    strcmp(argv[0], "rdv-listen") != 0 && strcmp(argv[0], "rdv-connect") != 0) {
		fprintf(stderr, "stb-client: unknown command '%s'\n", argv[0]);
		stb_client_free(c);
		return 2;
	}
	if (stb_connect_addr(c, addr, &err) == -1) {
		fprintf(stderr, "stb-client: %s: %s\n", stb_status_name(err.status), err.message);
		stb_client_free(c);
		return 1;
	}
	if (strcmp(argv[0], "rdv-register") == 0)
		rc = cmd_rdv_register(c, argc, argv);
	else if (strcmp(argv[0], "rdv-listen") == 0)
		rc = cmd_rdv_listen(c, argc, argv);
	else if (strcmp(argv[0], "rdv-connect") == 0)
		rc = cmd_rdv_connect(c, argc, argv);
	else
		rc = cmd_ping(c, argc, argv);
	stb_client_free(c);
	return rc;
}
