/*
 * stb-bench: the load generator.  `ping` drives PING round trips over many
 * long-lived TLS connections, `handshake` opens full TLS handshakes as fast
 * as it can, `speed` measures the crypto bound they compare against
 * (DESIGN 8).  Threads each run their own epoll over non-blocking OpenSSL
 * (worker.c); this file parses options, builds the one SSL_CTX, checks the
 * target with one probe connection and merges and prints the figures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "bench.h"
#include "buf.h"
#include "frame.h"
#include "msgenc.h"
#include "stb/stbproto.h"
#include "tlv.h"

#define BENCH_MAX_CONNS   100000
#define BENCH_MAX_THREADS 64
#define BENCH_MAX_DEPTH   4096
#define BENCH_MAX_PAYLOAD 16384 /* the registry's PAYLOAD maximum */
#define BENCH_ERR_RSP_MAX 1024  /* STATUS + ERROR_TEXT (<= 512) + headers */

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: stb-bench ping|handshake|rdv|login|issue|keysync|bootstrap|appcheck [options]\n"
	    "       stb-bench speed [-d SECONDS] [--json]\n"
	    "\n"
	    "modes:\n"
	    "  ping        C connections handshake once, then each sends PING and waits\n"
	    "              for the answer (PIPELINE outstanding per connection), repeat\n"
	    "  handshake   C slots each connect, complete a full TLS handshake (never a\n"
	    "              resumption), close, repeat; reports new connections per second\n"
	    "  rdv         D devices register with rendezvousd and hold their control\n"
	    "              channels (answering heartbeats and offers); C of them ask for\n"
	    "              sessions with random others; reports grants/s, p50/p99 and,\n"
	    "              with --server-pid, the server's resident memory per device\n"
	    "  login       C simulated STBs (threads; -a is media-gw, --cp cert-proxyd) are\n"
	    "              imported as admin, log in once (fetching their certificate),\n"
	    "              then log in again and again with stb_login(); logins/s, p50/p99\n"
	    "  issue       C connections to ca-authd (-a; --cert/--key an admin or\n"
	    "              cert-proxyd identity) send CA_ISSUE for a P-256 CSR, one at a\n"
	    "              time each; certificates issued per second, p50/p99\n"
	    "  keysync     C simulated terminals (threads; -a is keymgmtd) each sync keys\n"
	    "              with stb_keysync(), -n in all (default 200 per terminal), every\n"
	    "              one a new durable bind; before the clock the keys are imported\n"
	    "              and one MDN per key registered for --app, as admin.  Binds/s,\n"
	    "              p50/p99; with --platform, pushes/s stored and acknowledged by\n"
	    "              the reference app platform; next to the crypto bound of one\n"
	    "              sync measured in the same run (HMAC verify, AES-GCM unseal, CMS\n"
	    "              envelope to --platform-cert, its opening with --platform-key)\n"

	    "  bootstrap   D devices (-a is qualifyd's registration role) get a certificate\n"
	    "              from ca-authd (--ca-addr) and are enrolled as admin; then C\n"
	    "              threads run stb_bootstrap() once per device; bootstraps/s,\n"
	    "              p50/p99, next to the crypto bound of one bootstrap measured\n"
	    "              after the run (--operator-ca, --ocsp, --admin-addr)\n"

	    "  appcheck    C simulated TVs (threads; -a is appvetd's check listener) send\n"
	    "              APP_CHECK with --payload again and again (stb_app_check);\n"
	    "              checks/s, p50/p99, next to the ECDSA P-256 verify bound of\n"
	    "              all cores measured first in the same run\n"
	    "  speed       in-process crypto bound of a handshake: ECDSA P-256 sign and\n"
	    "              verify, X25519 keygen and derive, one thread, 2 s each; the\n"
	    "              same figures as `openssl speed -elapsed ecdsap256 ecdhx25519`\n"
	    "\n");
	fprintf(f,
	        "options:\n"
	        "  -a HOST:PORT     target (default 127.0.0.1:7103); the only address used\n"
	        "  --ca FILE        trust anchor: verify the server certificate and its\n"
	        "                   name/IP against HOST (without it nothing is verified)\n"
	        "  --cert FILE      client certificate chain (optional)\n"
	        "  --key FILE       client private key (with --cert)\n"
	        "  -c CONNECTIONS   concurrent connections / handshake slots (default 64)\n"
	        "  -t THREADS       load threads, each with its own epoll (default 1)\n"
	        "  -d SECONDS       measured time (default 10; speed: 2 per operation); a hard\n"
	        "                   limit also with -n\n"
	        "  -n REQUESTS      stop after this many requests or handshakes\n"
	        "  -w SECONDS       warm-up before measuring, excluded from the figures\n"
	        "                   (default 1)\n"
	        "  -p PIPELINE      outstanding PINGs per connection (default 1)\n"
	        "  -s BYTES         PING PAYLOAD size, 0-16384 (default 0: no PAYLOAD)\n"
	        "  --ping           handshake mode: send one PING on each connection before\n"
	        "                   closing it (off: works against `openssl s_server`)\n"
	        "  --resume         handshake mode: C clients (libstbclient), one PING per\n"
	        "                   connection, full handshakes for half of -d, then\n"
	        "                   resumed ones (TLS 1.3 session tickets): both rates\n"
	        "  --tls12, --tls13 force the protocol version (default: negotiate)\n"
	        "  -D DEVICES       rdv: devices to provision and register; bootstrap: devices\n"
	        "                   to enrol, each bootstrapped once (default 1000)\n"
	        "  --admin-cert FILE, --admin-key FILE\n"
	        "                   rdv: admin identity that provisions the devices\n"
	        "  --server-pid PID rdv: read this process's VmRSS before and while the\n"
	        "                   devices hold their channels; appcheck: its CPU time\n"
	        "                   over the measured window (checks per CPU-second);\n"
	        "                   keysync: its CPU time and the bench's from the first sync\n"
	        "                   to the last push stored, per sync\n"
	        "  --cp HOST:PORT   login: cert-proxyd\n"
	        "  --profile NAME   issue: ca-authd profile (default stb-media)\n"
	        "  --app APP        keysync: the app the terminals sync for (default bench.app)\n"
	        "  --platform HOST:PORT, --platform-cert FILE, --platform-key FILE\n"
	        "                   keysync: the reference app platform (polled as admin) and\n"
	        "                   its encryption certificate and key, for the bound\n"
	        "  --acks FILE      keysync: append \"ACK key_id mdn app_id push_id\" per sync\n"
	        "                   answered OK\n"
	        "  --retry-s S      keysync: retry a sync whose connection broke, reconnecting,\n"
	        "                   for up to S seconds (fault tests)\n"
	        "  --push-batch N   keysync: keys per KEY_PUSH_BATCH keymgmtd runs with\n"
	        "                   (push.batch, default 64), for the bound per push\n"

	        "  --ca-addr HOST:PORT, --operator-ca FILE, --ocsp URL, --admin-addr HOST:PORT\n"
	        "                   bootstrap: ca-authd (device certificates), the package\n"
	        "                   signer's trust anchor, its OCSP responder (default: its\n"
	        "                   AIA), qualifyd's admin listener (default: -a)\n"

	        "  --payload TEXT   appcheck: a published QR payload (STB1:...)\n"
	        "  --json           one JSON object on stdout (other lines go to stderr)\n"
	        "  -h, --help       this text\n"
	        "\n"
	        "Latency is from the request's send (ping) or the connect() call (handshake)\n"
	        "to the answer or the finished handshake.  Exit status: 0 when nothing\n"
	        "failed, 1 on errors or failures, 2 on bad usage.\n");
}

static int
parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
parse_int(const char *opt, const char *s, double lo, double hi, double *out)
{
	if (parse_num(s, lo, hi, out) == -1 || *out != (double)(long long)*out) {
		fprintf(stderr, "stb-bench: %s: want an integer in %.0f..%.0f, not '%s'\n", opt, lo,
		        hi, s);
		return -1;
	}
	return 0;
}

static int
parse_secs(const char *opt, const char *s, double lo, double *out)
{
	if (parse_num(s, lo, 86400, out) == -1) {
		fprintf(stderr, "stb-bench: %s: want seconds in %g..86400, not '%s'\n", opt, lo, s);
		return -1;
	}
	return 0;
}

enum {
	OPT_CA = 256,
	OPT_CERT,
	OPT_KEY,
	OPT_JSON,
	OPT_TLS12,
	OPT_TLS13,
	OPT_PING,
	OPT_RESUME,
	OPT_ADMIN_CERT,
	OPT_ADMIN_KEY,
	OPT_SERVER_PID,
	OPT_CP,
	OPT_PROFILE,
	OPT_APP,
	OPT_PLATFORM,
	OPT_PLATFORM_CERT,
	OPT_PLATFORM_KEY,
	OPT_ACKS,
	OPT_RETRY,
	OPT_PUSH_BATCH,

	OPT_CA_ADDR,
	OPT_ADMIN_ADDR,
	OPT_OPERATOR_CA,
	OPT_OCSP,

	OPT_PAYLOAD,
};

static int
opts_parse_one(bench_opts_t *o, int ch, const char *arg)
{
	double v;

	switch (ch) {
	case 'a':
		o->addr = arg;
		return 0;
	case OPT_CA:
		o->ca = arg;
		return 0;
	case OPT_CERT:
		o->cert = arg;
		return 0;
	case OPT_KEY:
		o->key = arg;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_TLS12:
		o->tls_version = 12;
		return 0;
	case OPT_TLS13:
		o->tls_version = 13;
		return 0;
	case OPT_PING:
		o->hs_ping = 1;
		return 0;
	case OPT_RESUME:
		o->hs_resume = 1;
		return 0;
	case OPT_ADMIN_CERT:
		o->admin_cert = arg;
		return 0;
	case OPT_ADMIN_KEY:
		o->admin_key = arg;
		return 0;
	case OPT_SERVER_PID:
		if (parse_int("--server-pid", arg, 1, INT_MAX, &v) == -1)
			return -1;
		o->server_pid = (int)v;
		return 0;
	case OPT_CP:
		o->cp_addr = arg;
		return 0;
	case OPT_PROFILE:
		o->profile = arg;
		return 0;
	case OPT_APP:
		o->app = arg;
		return 0;
	case OPT_PLATFORM:
		o->platform_addr = arg;
		return 0;
	case OPT_PLATFORM_CERT:
		o->platform_cert = arg;
		return 0;
	case OPT_PLATFORM_KEY:
		o->platform_key = arg;
		return 0;
	case OPT_ACKS:
		if ((o->acks = fopen(arg, "a")) == NULL) {
			fprintf(stderr, "stb-bench: --acks: cannot open %s\n", arg);
			return -1;
		}
		return 0;
	case OPT_RETRY:
		return parse_secs("--retry-s", arg, 0, &o->retry_s);
	case OPT_PUSH_BATCH: {
		char *end;
		long nb = strtol(arg, &end, 10);

		if (*arg == '\0' || *end != '\0' || nb < 1 || nb > 1024) {
			fprintf(stderr, "stb-bench: --push-batch: 1..1024\n");
			return -1;
		}
		o->push_batch = (int)nb;
		return 0;
	}

	case OPT_CA_ADDR:
		o->ca_addr = arg;
		return 0;
	case OPT_ADMIN_ADDR:
		o->admin_addr = arg;
		return 0;
	case OPT_OPERATOR_CA:
		o->operator_ca = arg;
		return 0;
	case OPT_OCSP:
		o->ocsp_url = arg;
		return 0;
	case OPT_PAYLOAD:
		o->app_payload = arg;
		return 0;
	case 'D':
		if (parse_int("-D", arg, 2, BENCH_MAX_CONNS, &v) == -1)
			return -1;
		o->devices = (int)v;
		return 0;
	case 'c':
		if (parse_int("-c", arg, 1, BENCH_MAX_CONNS, &v) == -1)
			return -1;
		o->conns = (int)v;
		return 0;
	case 't':
		if (parse_int("-t", arg, 1, BENCH_MAX_THREADS, &v) == -1)
			return -1;
		o->threads = (int)v;
		return 0;
	case 'p':
		if (parse_int("-p", arg, 1, BENCH_MAX_DEPTH, &v) == -1)
			return -1;
		o->pipeline = (int)v;
		return 0;
	case 's':
		if (parse_int("-s", arg, 0, BENCH_MAX_PAYLOAD, &v) == -1)
			return -1;
		o->payload = (size_t)v;
		return 0;
	case 'n':
		if (parse_int("-n", arg, 1, 1e15, &v) == -1)
			return -1;
		o->requests = (uint64_t)v;
		return 0;
	case 'd':
		o->duration_set = 1;
		return parse_secs("-d", arg, 0.1, &o->duration);
	case 'w':
		return parse_secs("-w", arg, 0, &o->warmup);
	}
	return -1;
}

/* 0, 1 after --help, or -1 (message printed). */
static int
opts_parse(bench_opts_t *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ca", required_argument, NULL, OPT_CA},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"tls12", no_argument, NULL, OPT_TLS12},
	    {"tls13", no_argument, NULL, OPT_TLS13},
	    {"ping", no_argument, NULL, OPT_PING},
	    {"resume", no_argument, NULL, OPT_RESUME},
	    {"admin-cert", required_argument, NULL, OPT_ADMIN_CERT},
	    {"admin-key", required_argument, NULL, OPT_ADMIN_KEY},
	    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
	    {"cp", required_argument, NULL, OPT_CP},
	    {"profile", required_argument, NULL, OPT_PROFILE},
	    {"app", required_argument, NULL, OPT_APP},
	    {"platform", required_argument, NULL, OPT_PLATFORM},
	    {"platform-cert", required_argument, NULL, OPT_PLATFORM_CERT},
	    {"platform-key", required_argument, NULL, OPT_PLATFORM_KEY},
	    {"acks", required_argument, NULL, OPT_ACKS},
	    {"retry-s", required_argument, NULL, OPT_RETRY},
	    {"push-batch", required_argument, NULL, OPT_PUSH_BATCH},

	    {"ca-addr", required_argument, NULL, OPT_CA_ADDR},
	    {"admin-addr", required_argument, NULL, OPT_ADMIN_ADDR},
	    {"operator-ca", required_argument, NULL, OPT_OPERATOR_CA},
	    {"ocsp", required_argument, NULL, OPT_OCSP},

	    {"payload", required_argument, NULL, OPT_PAYLOAD},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *mode;
	int ch;

	*o = (bench_opts_t){.addr = "127.0.0.1:7103",
	                    .conns = 64,
	                    .threads = 1,
	                    .pipeline = 1,
	                    .duration = 10,
	                    .warmup = 1,
	                    .devices = 1000,
	                    .profile = "stb-media",
	                    .app = "bench.app"};
	while ((ch = getopt_long(argc, argv, "a:c:t:d:n:w:p:s:D:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return 1;
		}
		if (ch == '?' || opts_parse_one(o, ch, optarg) == -1)
			goto bad;
	}
	if (optind != argc - 1)
		goto bad;
	mode = argv[optind];
	if (strcmp(mode, "ping") == 0)
		o->mode = BENCH_PING;
	else if (strcmp(mode, "handshake") == 0)
		o->mode = BENCH_HANDSHAKE;
	else if (strcmp(mode, "speed") == 0)
		o->mode = BENCH_SPEED;
	else if (strcmp(mode, "rdv") == 0)
		o->mode = BENCH_RDV;
	else if (strcmp(mode, "login") == 0)
		o->mode = BENCH_LOGIN;
	else if (strcmp(mode, "issue") == 0)
		o->mode = BENCH_ISSUE;
	else if (strcmp(mode, "keysync") == 0)
		o->mode = BENCH_KEYSYNC;
	else if (strcmp(mode, "bootstrap") == 0)
		o->mode = BENCH_BOOTSTRAP;
	else if (strcmp(mode, "appcheck") == 0)
		o->mode = BENCH_APPCHECK;
	else
		goto bad;
	if ((o->cert == NULL) != (o->key == NULL)) {
		fprintf(stderr, "stb-bench: --cert and --key go together\n");
		return -1;
	}
	if (o->mode == BENCH_RDV && (o->admin_cert == NULL || o->admin_key == NULL)) {
		fprintf(stderr, "stb-bench: rdv needs --admin-cert and --admin-key to provision "
		                "its devices\n");
		return -1;
	}
	if (o->mode == BENCH_LOGIN &&
	    (o->cp_addr == NULL || o->admin_cert == NULL || o->admin_key == NULL)) {
		fprintf(stderr,
		        "stb-bench: login needs --cp (cert-proxyd) and --admin-cert/--admin-key "
		        "to import its STBs\n");
		return -1;
	}
	if (o->mode == BENCH_KEYSYNC && (o->admin_cert == NULL || o->admin_key == NULL)) {
		fprintf(stderr, "stb-bench: keysync needs --admin-cert/--admin-key to import its "
		                "keys and register its MDNs\n");
		return -1;
	}
	if (o->mode == BENCH_KEYSYNC && o->conns > 1024) {
		fprintf(stderr, "stb-bench: keysync: at most 1024 terminals (threads)\n");
		return -1;
	}
	if (o->mode == BENCH_APPCHECK && (o->app_payload == NULL || o->ca == NULL)) {
		fprintf(stderr, "stb-bench: appcheck needs --payload and --ca\n");
		return -1;
	}
	if (o->mode == BENCH_ISSUE && o->cert == NULL) {
		fprintf(stderr,
		        "stb-bench: issue needs --cert/--key (admin or cert-proxyd role)\n");
		return -1;
	}
	if (o->mode == BENCH_BOOTSTRAP &&
	    (o->ca == NULL || o->ca_addr == NULL || o->operator_ca == NULL ||
	     o->admin_cert == NULL || o->admin_key == NULL)) {
		fprintf(stderr, "stb-bench: bootstrap needs --ca, --ca-addr (ca-authd), "
		                "--operator-ca and --admin-cert/--admin-key\n");
		return -1;
	}
	if (o->threads > o->conns)
		o->threads = o->conns;
	return 0;
bad:
	usage(stderr);
	return -1;
}

/* HOST:PORT or [V6]:PORT into run->sa. */
static int
target_resolve(bench_run_t *run, const char *addr)
{
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	unsigned char tmp[sizeof(struct in6_addr)];
	size_t hl;
	int rc;

	if (colon == NULL || colon[1] == '\0')
		goto bad;
	hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 2 || addr[hl - 1] != ']')
			goto bad;
		addr++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(run->host))
		goto bad;
	memcpy(run->host, addr, hl);
	run->host[hl] = '\0';
	if ((rc = getaddrinfo(run->host, colon + 1, &hints, &ai)) != 0) {
		fprintf(stderr, "stb-bench: %s: %s\n", run->host, gai_strerror(rc));
		return -1;
	}
	memcpy(&run->sa, ai->ai_addr, ai->ai_addrlen);
	run->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	run->host_is_ip =
	    inet_pton(AF_INET, run->host, tmp) == 1 || inet_pton(AF_INET6, run->host, tmp) == 1;
	return 0;
bad:
	fprintf(stderr, "stb-bench: -a wants HOST:PORT, not '%s'\n", addr);
	return -1;
}

static void
ossl_fail(const char *what)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	fprintf(stderr, "stb-bench: %s: %s\n", what, e);
}

/* The one client SSL_CTX.  No session cache, no tickets: every handshake
 * is a full one.  Read-ahead: one recv takes whatever the socket holds. */
SSL_CTX *
bench_ctx_new(const bench_opts_t *o, const bench_run_t *run, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *vp;
	int v = o->tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (ctx == NULL) {
		ossl_fail("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, o->tls_version != 0 ? v : 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_read_ahead(ctx, 1);
	if (o->ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
			ossl_fail(o->ca);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		vp = SSL_CTX_get0_param(ctx);
		if ((run->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, run->host)
		                     : X509_VERIFY_PARAM_set1_host(vp, run->host, 0)) != 1) {
			ossl_fail("verify parameters");
			goto fail;
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (cert != NULL && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	                     SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	                     SSL_CTX_check_private_key(ctx) != 1)) {
		ossl_fail(cert);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The PING request every worker sends (req_id patched per request). */
static int
bench_ping_frame(bench_run_t *run)
{
	size_t plen = run->o->payload, start;
	buf_t b;

	buf_init(&b, STB_FRAME_HDR_LEN + STB_TLV_HDR_LEN + BENCH_MAX_PAYLOAD);
	if (frame_begin(&b, &start) == -1)
		goto fail;
	if (plen > 0) {
		uint8_t *pay = malloc(plen);
		struct msgreq_PING q;
		err_t e;
		int rc;

		if (pay == NULL)
			goto fail;
		for (size_t i = 0; i < plen; i++)
			pay[i] = (uint8_t)(i * 31 + 7);
		q = (struct msgreq_PING){.PAYLOAD = MV_BYTES(pay, plen)};
		rc = msgenc_PING(&b, &q, &e);
		free(pay);
		if (rc == -1)
			goto fail;
	}
	if (frame_end(&b, start, STB_MSG_PING, 0, 0) == -1)
		goto fail;
	run->ping = b.data;
	run->ping_len = b.len;
	run->rsp_max = STB_FRAME_HDR_LEN + STB_TLV_HDR_LEN + plen + BENCH_ERR_RSP_MAX;
	return 0;
fail:
	fprintf(stderr, "stb-bench: cannot build the PING frame\n");
	buf_free(&b);
	return -1;
}

/* One blocking connection before the run: fails early and clearly when
 * the target is wrong, and shows what the run will negotiate. */
static int
bench_probe(const bench_run_t *run, FILE *info)
{
	struct timeval tv = {5, 0};
	int fd, one = 1, rc = -1, nid;
	SSL *ssl = NULL;
	X509 *peer;
	char subj[256] = "none";

	if ((fd = socket(run->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto out;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&run->sa, run->salen) == -1) {
		fprintf(stderr, "stb-bench: connect %s: %s\n", run->o->addr, strerror(errno));
		goto out;
	}
	if ((ssl = SSL_new(run->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
		goto out;
	if (!run->host_is_ip)
		SSL_set_tlsext_host_name(ssl, run->host);
	if (SSL_connect(ssl) != 1) {
		long vr = SSL_get_verify_result(ssl);

		ossl_fail("TLS handshake");
		if (vr != X509_V_OK)
			fprintf(stderr, "stb-bench: certificate: %s\n",
			        X509_verify_cert_error_string(vr));
		goto out;
	}
	if ((peer = SSL_get0_peer_certificate(ssl)) != NULL)
		X509_NAME_oneline(X509_get_subject_name(peer), subj, sizeof(subj));
	nid = SSL_get_negotiated_group(ssl);
	fprintf(info, "stb-bench: first connection: %s %s, group %s, server %s (%s)\n",
	        SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	        nid != NID_undef ? OBJ_nid2sn(nid) : "none", subj,
	        run->o->ca != NULL ? "verified" : "NOT verified: no --ca");
	rc = 0;
out:
	SSL_free(ssl);
	if (fd != -1)
		close(fd);
	ERR_clear_error();
	return rc;
}

static void
bench_raise_nofile(int conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The merged figures of all threads. */
typedef struct bench_total {
	bench_stats_t st;
	double secs;
	double rate;
	const char *first_err;
} bench_total_t;

void
bench_stats_add(bench_stats_t *dst, const bench_stats_t *src)
{
	dst->done += src->done;
	dst->errors += src->errors;
	dst->failures += src->failures;
	dst->lost += src->lost;
	dst->up += src->up;
	hist_merge(&dst->lat, &src->lat);
	if (dst->first_err[0] == '\0')
		memcpy(dst->first_err, src->first_err, sizeof(dst->first_err));
}

static void
bench_merge(const bench_run_t *run, worker_t **w, int n, bench_total_t *t)
{
	uint64_t end = run->t_warm;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < n; i++) {
		const bench_stats_t *s = worker_stats(w[i]);

		bench_stats_add(&t->st, s);
		if (s->t_end > end)
			end = s->t_end;
	}
	t->first_err = t->st.first_err;
	t->secs = (double)(end - run->t_warm) / 1e9;
	t->rate = t->secs > 0 ? (double)t->st.done / t->secs : 0;
}

/* A latency in microseconds, "950". */
static const char *
fmt_us(char *buf, size_t cap, uint64_t us)
{
	snprintf(buf, cap, "%llu", (unsigned long long)us);
	return buf;
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void
bench_report_json(const bench_opts_t *o, const bench_total_t *t)
{
	const hist_t *h = &t->st.lat;
	int ping = o->mode == BENCH_PING;

	printf("{\"mode\":\"%s\",\"openssl\":", ping ? "ping" : "handshake");
	json_str(OpenSSL_version(OPENSSL_VERSION));
	printf(",\"target\":");
	json_str(o->addr);
	printf(",\"connections\":%d,\"threads\":%d,\"seconds\":%.3f", o->conns, o->threads,
	       t->secs);
	if (ping)
		printf(",\"connections_up\":%llu,\"pipeline\":%d,\"payload\":%zu,\"requests\":%llu,"
		       "\"requests_per_s\":%.1f,\"errors\":%llu,\"connections_lost\":%llu",
		       (unsigned long long)t->st.up, o->pipeline, o->payload,
		       (unsigned long long)t->st.done, t->rate, (unsigned long long)t->st.errors,
		       (unsigned long long)t->st.lost);
	else
		printf(
		    ",\"ping\":%s,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,\"failures\":%llu,"
		    "\"errors\":%llu",
		    o->hs_ping ? "true" : "false", (unsigned long long)t->st.done, t->rate,
		    (unsigned long long)t->st.failures, (unsigned long long)t->st.errors);
	printf(",\"connect_failures\":%llu,\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,"
	       "\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},\"first_error\":",
	       (unsigned long long)(ping ? t->st.failures : 0),
	       h->count ? (double)h->sum_us / (double)h->count : 0.0, (double)hist_quantile(h, 0.5),
	       (double)hist_quantile(h, 0.9), (double)hist_quantile(h, 0.99), (double)h->max_us);
	json_str(t->first_err);
	printf("}\n");
}

static void
bench_report(const bench_opts_t *o, const bench_total_t *t)
{
	const hist_t *h = &t->st.lat;
	char a[32], b[32], c[32], d[32];

	fmt_us(a, sizeof(a), hist_quantile(h, 0.5));
	fmt_us(b, sizeof(b), hist_quantile(h, 0.9));
	fmt_us(c, sizeof(c), hist_quantile(h, 0.99));
	fmt_us(d, sizeof(d), h->max_us);
	if (o->mode == BENCH_PING) {
		printf("ping: %llu conns, %.1f s, %llu requests, %.0f req/s, p50 %s us, p90 %s us, "
		       "p99 %s us, max %s us, errors %llu\n",
		       (unsigned long long)t->st.up, t->secs, (unsigned long long)t->st.done,
		       t->rate, a, b, c, d, (unsigned long long)t->st.errors);
		if (t->st.failures > 0 || t->st.lost > 0)
			printf("ping: %llu of %d connections failed to connect, %llu lost while "
			       "running\n",
			       (unsigned long long)t->st.failures, o->conns,
			       (unsigned long long)t->st.lost);
	} else {
		printf("handshake: %d conns, %.1f s, %llu handshakes, %.0f hs/s, p50 %s us, p90 %s "
		       "us, p99 %s us, max %s us, failures %llu%s\n",
		       o->conns, t->secs, (unsigned long long)t->st.done, t->rate, a, b, c, d,
		       (unsigned long long)t->st.failures,
		       o->hs_ping ? " (with one PING each)" : "");
		if (t->st.errors > 0)
			printf("handshake: PING errors %llu\n", (unsigned long long)t->st.errors);
	}
	if (t->first_err[0] != '\0')
		printf("%s: first error: %s\n", o->mode == BENCH_PING ? "ping" : "handshake",
		       t->first_err);
}

static int
bench_go(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	worker_t *w[BENCH_MAX_THREADS];
	bench_total_t tot;
	int n = o->threads, started = 0, rc = 1;
	uint64_t t0;

	pthread_barrier_init(&run->gate, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		int share = o->conns / n + (i < o->conns % n);
		uint64_t quota =
		    o->requests / (uint64_t)n + ((uint64_t)i < o->requests % (uint64_t)n);

		if (o->requests > 0 && quota == 0)
			quota = 1;
		if ((w[i] = worker_new(run, i, share, quota)) == NULL) {
			fprintf(stderr, "stb-bench: out of memory\n");
			exit(1); /* threads already started wait on the barrier */
		}
	}
	for (; started < n; started++)
		if (worker_start(w[started]) == -1) {
			fprintf(stderr, "stb-bench: cannot start thread\n");
			exit(1);
		}
	t0 = bench_now();
	pthread_barrier_wait(&run->gate); /* connections are up */
	if (o->mode == BENCH_PING)
		fprintf(info, "stb-bench: connected in %.3f s; warm-up %.1f s, measuring %.1f s\n",
		        (double)(bench_now() - t0) / 1e9, o->warmup, o->duration);
	run->t_warm = bench_now() + (uint64_t)(o->warmup * 1e9);
	run->t_stop = run->t_warm + (uint64_t)(o->duration * 1e9);
	pthread_barrier_wait(&run->gate);
	for (int i = 0; i < n; i++)
		worker_join(w[i]);
	bench_merge(run, w, n, &tot);
	if (o->json)
		bench_report_json(o, &tot);
	else
		bench_report(o, &tot);
	if (tot.st.done > 0 && tot.st.errors == 0 && tot.st.failures == 0 && tot.st.lost == 0)
		rc = 0;
	for (int i = 0; i < n; i++)
		worker_free(w[i]);
	pthread_barrier_destroy(&run->gate);
	return rc;
}

int
main(int argc, char **argv)
{
	bench_opts_t o;
	bench_run_t run;
	FILE *info;
	int rc;

	if ((rc = opts_parse(&o, argc, argv)) != 0)
		return rc == 1 ? 0 : 2;
	/* a server closing a connection under load is a counted error, not the
	 * end of the run (the bench's own sockets write with write(2)) */
	signal(SIGPIPE, SIG_IGN);
	if (o.mode == BENCH_SPEED)
		return speed_run(&o);
	info = o.json ? stderr : stdout;
	memset(&run, 0, sizeof(run));
	run.o = &o;
	if (o.mode == BENCH_BOOTSTRAP)
		return boot_run(&run, info);
	if (o.mode == BENCH_HANDSHAKE && o.hs_resume)
		return resume_run(&run, info);
	rc = 1;
	if (target_resolve(&run, o.addr) == -1 ||
	    (run.ctx = bench_ctx_new(&o, &run, o.cert, o.key)) == NULL ||
	    bench_ping_frame(&run) == -1)
		goto out;
	bench_raise_nofile(o.conns);
	fprintf(info, "stb-bench: %s, %s %s, %d conns, %d threads%s\n",
	        OpenSSL_version(OPENSSL_VERSION),
	        o.mode == BENCH_PING       ? "ping"
	        : o.mode == BENCH_RDV      ? "rdv"
	        : o.mode == BENCH_KEYSYNC  ? "keysync"
	        : o.mode == BENCH_APPCHECK ? "appcheck"
	                                   : "handshake",
	        o.addr, o.conns, o.threads,
	        o.ca != NULL ? "" : " (server certificate NOT verified)");
	if (bench_probe(&run, info) == -1)
		goto out;
	fflush(info);
	if (o.mode == BENCH_LOGIN || o.mode == BENCH_ISSUE)
		rc = flowa_run(&run, info);
	else if (o.mode == BENCH_KEYSYNC)
		rc = keysync_run(&run, info);
	else if (o.mode == BENCH_APPCHECK)
		rc = appcheck_run(&run, info);
	else if (o.mode == BENCH_RDV) {
		SSL_CTX *adm = bench_ctx_new(&o, &run, o.admin_cert, o.admin_key);

		bench_raise_nofile(o.devices + 16);
		/* devices queue several frames at once; a blocked write may grow */
		SSL_CTX_set_mode(run.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if (adm != NULL)
			SSL_CTX_set_mode(adm, SSL_MODE_ENABLE_PARTIAL_WRITE |
			                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		rc = adm != NULL ? rdv_run(&run, adm, info) : 1;
		SSL_CTX_free(adm);
	} else
		rc = bench_go(&run, info);
out:
	free(run.ping);
	SSL_CTX_free(run.ctx);
	return rc;
}
