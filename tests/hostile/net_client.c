/*
 * net_client: a bounded hostile client for the network resource tests
 * (tests/hostile/test_slowloris.sh, test_idle_sockets.sh,
 * test_fd_exhaustion.sh).  Loopback only; a fixed number of connections,
 * spread over source addresses 127.0.0.FIRST .. 127.0.0.(FIRST+SOURCES-1),
 * and a fixed duration.
 *
 *   net_client MODE PORT CONNS SECONDS FIRST SOURCES
 *
 * MODE:
 *   idle      connect and send nothing
 *   byte      connect and send one byte (a TLS record header's first), so the
 *             server allocates its TLS state, then nothing
 *   slowloris connect, send "GET / HTTP/1.1\r\n" and then one header byte
 *             per second, never the end of the head
 *
 * Prints "connected N" once every connection is made (after a line to
 * stdout the caller can wait for), then holds them for SECONDS (or until
 * SIGTERM) and prints "open N closed M" (closed: by the server), and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NC_MAX 20000

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
nc_connect(int port, int src)
{
	struct sockaddr_in a = {0}, b = {0};
	struct timeval tv = {3, 0}; /* a full backlog must not hang us (one SYN retry) */
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	b.sin_family = AF_INET;
	b.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)src);
	if (bind(fd, (struct sockaddr *)&b, sizeof(b)) == -1) {
		close(fd);
		return -1;
	}
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static struct pollfd pf[NC_MAX];
	const char *mode;
	int port, n, first, sources, made = 0, closed = 0;
	double secs, t0, next_drip;
	struct rlimit rl;

	if (argc != 7) {
		fprintf(stderr, "usage: net_client idle|byte|slowloris PORT CONNS SECONDS FIRST "
		                "SOURCES\n");
		return 2;
	}
	mode = argv[1];
	port = atoi(argv[2]);
	n = atoi(argv[3]);
	secs = atof(argv[4]);
	first = atoi(argv[5]);
	sources = atoi(argv[6]);
	if (n < 1 || n > NC_MAX || port < 1 || port > 65535 || secs <= 0 || secs > 120 ||
	    first < 1 || sources < 1 || first + sources > 255 ||
	    (strcmp(mode, "idle") != 0 && strcmp(mode, "byte") != 0 &&
	     strcmp(mode, "slowloris") != 0)) {
		fprintf(stderr, "net_client: bad arguments\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++) {
		int fd = nc_connect(port, first + i % sources);
		if (fd < 0)
			continue;
		if (strcmp(mode, "byte") == 0)
			(void)!write(fd, "\x16", 1);
		else if (strcmp(mode, "slowloris") == 0)
			(void)!write(fd, "GET / HTTP/1.1\r\n", 16);
		pf[made].fd = fd;
		pf[made].events = POLLIN;
		made++;
	}
	printf("connected %d\n", made);
	fflush(stdout);
	t0 = now_s();
	next_drip = t0 + 1;
	while (!stop && now_s() - t0 < secs) {
		int rc = poll(pf, (nfds_t)made, 100);
		if (rc < 0 && errno != EINTR)
			break;
		for (int i = 0; i < made && rc > 0; i++) {
			char buf[512];
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			/* an answer (an error page) or the close: either way it ends */
			if (read(pf[i].fd, buf, sizeof(buf)) <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				closed++;
			}
		}
		if (strcmp(mode, "slowloris") == 0 && now_s() >= next_drip) {
			next_drip += 1;
			for (int i = 0; i < made; i++)
				if (pf[i].fd >= 0 && write(pf[i].fd, "X", 1) != 1) {
					close(pf[i].fd);
					pf[i].fd = -1;
					closed++;
				}
		}
	}
	printf("open %d closed %d\n", made - closed, closed);
	for (int i = 0; i < made; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	return 0;
}
