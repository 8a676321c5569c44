/* stb-client: try libstbclient from a shell. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb/stbclient.h"

static void
usage(void)
{
	fprintf(stderr, "usage: stb-client [options] command\n"
	                "options:\n"
	                "  -a, --addr HOST:PORT   server (default 127.0.0.1:7103)\n"
	                "      --ca FILE          CA certificate to trust (pinned)\n"
	                "      --cert FILE        client certificate (optional)\n"
	                "      --key FILE         client key\n"
	                "  -T, --timeout MS       deadline per request (default 10000)\n"
	                "  -v, --verbose          print library debug messages\n"
	                "commands:\n"
	                "  ping [-n COUNT] [-s BYTES]   PING and print the round-trip time\n");
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

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"addr", required_argument, NULL, 'a'},    {"ca", required_argument, NULL, 'C'},
	    {"cert", required_argument, NULL, 'c'},    {"key", required_argument, NULL, 'k'},
	    {"timeout", required_argument, NULL, 'T'}, {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
	const char *addr = "127.0.0.1:7103", *ca = getenv("STB_CA"), *cert = NULL, *key = NULL;
	int ch, timeout = 10000, verbose = 0, rc;
	stb_client_t *c;
	stb_error_t err;

	while ((ch = getopt_long(argc, argv, "+a:T:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
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
	if (argc < 1 || ca == NULL) {
		usage();
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, ca, &err) == -1 ||
	    (cert != NULL && stb_client_set_identity(c, cert, key ? key : cert, &err) == -1)) {
		fprintf(stderr, "stb-client: %s\n", err.message);
		return 1;
	}
	stb_client_set_timeout(c, timeout);
	if (verbose)
		stb_client_set_log(c, log_stderr, NULL);
	if (strcmp(argv[0], "ping") != 0) {
		fprintf(stderr, "stb-client: unknown command '%s'\n", argv[0]);
		stb_client_free(c);
		return 2;
	}
	if (stb_connect_addr(c, addr, &err) == -1) {
		fprintf(stderr, "stb-client: %s: %s\n", stb_status_name(err.status), err.message);
		stb_client_free(c);
		return 1;
	}
	rc = cmd_ping(c, argc, argv);
	stb_client_free(c);
	return rc;
}
