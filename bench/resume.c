/*
 * resume: `stb-bench handshake --resume`: full against resumed TLS 1.3
 * handshakes in the same run.  C threads, each with its own libstbclient
 * handle; each connection does one PING (so that the server's session
 * ticket arrives, as it does for a device that talks) and closes.  The
 * first half of the run the handles never resume (every connection is a
 * full handshake: certificate, signatures, chain checks); the second half
 * they offer the last ticket (a resumed handshake costs a key exchange).
 * Reported: both rates, their ratio, and how many "resumed" connections
 * really resumed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "stb/stbclient.h"

typedef struct resume_thread {
	const bench_opts_t *o;
	pthread_barrier_t *gate;
	uint64_t t_half, t_stop;
	pthread_t tid;
	uint64_t full, resumed, tried, errors;
	char first_err[320];
} resume_thread_t;

static int
resume_once(resume_thread_t *t, stb_client_t *c, int want_resumed)
{
	stb_error_t err;
	uint64_t rtt;

	if (stb_connect_addr(c, t->o->addr, &err) == -1 || stb_ping(c, NULL, 0, &rtt, &err) == -1) {
		if (t->errors++ == 0)
			snprintf(t->first_err, sizeof(t->first_err), "%.40s: %.250s",
			         stb_status_name(err.status), err.message);
		stb_disconnect(c);
		return -1;
	}
	if (!want_resumed)
		t->full++;
	else {
		t->tried++;
		t->resumed += (uint64_t)stb_client_resumed(c);
	}
	stb_disconnect(c);
	return 0;
}

static void *
resume_main(void *arg)
{
	resume_thread_t *t = arg;
	stb_client_t *c = NULL;
	stb_error_t err;

	if (stb_client_new(&c, &err) == -1 ||
	    (t->o->ca != NULL && stb_client_set_ca_file(c, t->o->ca, &err) == -1) ||
	    (t->o->cert != NULL && stb_client_set_identity(c, t->o->cert, t->o->key, &err) == -1)) {
		snprintf(t->first_err, sizeof(t->first_err), "client: %.250s", err.message);
		t->errors++;
		pthread_barrier_wait(t->gate);
		stb_client_free(c);
		return NULL;
	}
	stb_client_set_resumption(c, 0, NULL);
	pthread_barrier_wait(t->gate);
	while (bench_now() < t->t_half)
		resume_once(t, c, 0);
	stb_client_set_resumption(c, 1, NULL);
	resume_once(t, c, 0); /* the first ticket: a full handshake, not counted twice */
	t->full--;
	while (bench_now() < t->t_stop)
		resume_once(t, c, 1);
	stb_client_free(c);
	return NULL;
}

/* CPU seconds of this process (cpu[0]) and of --server-pid (cpu[1], 0
 * when not given): the sum is the figure, the split says which side a
 * change helped. */
static void
resume_cpu(const bench_opts_t *o, double cpu[2])
{
	struct rusage ru;
	double s;

	cpu[0] = cpu[1] = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu[0] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if (o->server_pid > 0 && (s = bench_proc_cpu(o->server_pid)) >= 0)
		cpu[1] = s;
}

static void
resume_sleep_until(uint64_t t)
{
	uint64_t now = bench_now();
	struct timespec ts;

	if (now >= t)
		return;
	ts.tv_sec = (time_t)((t - now) / 1000000000u);
	ts.tv_nsec = (long)((t - now) % 1000000000u);
	nanosleep(&ts, NULL);
}

int
resume_run(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	int n = o->conns > 0 ? o->conns : 1;
	resume_thread_t *t = calloc((size_t)n, sizeof(*t));
	pthread_barrier_t gate;
	double half = o->duration / 2;
	uint64_t t0, full = 0, resumed = 0, tried = 0, errors = 0;
	const char *first = "";
	double fr, rr, c0[2], c1[2], c2[2], fc, rc, fb, fs, rb, rs;

	if (t == NULL)
		return 1;
	pthread_barrier_init(&gate, NULL, (unsigned)n + 1);
	t0 = bench_now();
	for (int i = 0; i < n; i++) {
		t[i] = (resume_thread_t){.o = o,
		                         .gate = &gate,
		                         .t_half = t0 + (uint64_t)(half * 1e9),
		                         .t_stop = t0 + (uint64_t)(2 * half * 1e9)};
		pthread_create(&t[i].tid, NULL, resume_main, &t[i]);
	}
	fprintf(info, "stb-bench: %d clients, %.1f s of full then %.1f s of resumed handshakes\n",
	        n, half, half);
	fflush(info);
	pthread_barrier_wait(&gate);
	/* CPU of both phases (this process and the server), for a figure a
	 * loaded machine does not bend */
	resume_cpu(o, c0);
	resume_sleep_until(t[0].t_half);
	resume_cpu(o, c1);
	resume_sleep_until(t[0].t_stop);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i].tid, NULL);
		full += t[i].full;
		resumed += t[i].resumed;
		tried += t[i].tried;
		errors += t[i].errors;
		if (first[0] == '\0')
			first = t[i].first_err;
	}
	pthread_barrier_destroy(&gate);
	resume_cpu(o, c2);
	fr = half > 0 ? (double)full / half : 0;
	rr = half > 0 ? (double)tried / half : 0;
	fb = full > 0 ? 1000 * (c1[0] - c0[0]) / (double)full : 0;
	fs = full > 0 ? 1000 * (c1[1] - c0[1]) / (double)full : 0;
	rb = tried > 0 ? 1000 * (c2[0] - c1[0]) / (double)tried : 0;
	rs = tried > 0 ? 1000 * (c2[1] - c1[1]) / (double)tried : 0;
	fc = fb + fs;
	rc = rb + rs;
	if (o->json)
		printf("{\"mode\":\"handshake_resume\",\"conns\":%d,\"seconds_each\":%.1f,"
		       "\"full\":%" PRIu64 ",\"full_per_s\":%.1f,\"resumed_tried\":%" PRIu64
		       ",\"resumed\":%" PRIu64 ",\"resumed_per_s\":%.1f,\"ratio\":%.2f,"
		       "\"errors\":%" PRIu64 ",\"cpu_ms_full\":%.3f,\"cpu_ms_resumed\":%.3f,"
		       "\"cpu_ratio\":%.2f,\"cpu_ms_full_bench\":%.3f,\"cpu_ms_full_server\":%.3f,"
		       "\"cpu_ms_resumed_bench\":%.3f,\"cpu_ms_resumed_server\":%.3f,"
		       "\"server_counted\":%s}\n",
		       n, half, full, fr, tried, resumed, rr, fr > 0 ? rr / fr : 0, errors, fc, rc,
		       rc > 0 ? fc / rc : 0, fb, fs, rb, rs, o->server_pid > 0 ? "true" : "false");
	else
		printf("handshake: %d clients, one PING each: full %.0f/s, resumed %.0f/s (%" PRIu64
		       " of %" PRIu64 " resumed), ratio %.2f, errors %" PRIu64 "\n",
		       n, fr, rr, resumed, tried, fr > 0 ? rr / fr : 0, errors);
	if (!o->json)
		printf("handshake: CPU per connection (this process%s): full %.3f ms, resumed %.3f "
		       "ms, ratio %.2f (this process: full %.3f ms, resumed %.3f ms)\n",
		       o->server_pid > 0 ? " and the server" : "", fc, rc, rc > 0 ? fc / rc : 0, fb,
		       rb);
	if (first[0] != '\0')
		fprintf(stderr, "stb-bench: first error: %s\n", first);
	free(t);
	return errors == 0 && full > 0 && tried > 0 && resumed == tried ? 0 : 1;
}
