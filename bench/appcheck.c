/*
 * appcheck: `stb-bench appcheck` (flow E): C simulated TVs, each a thread
 * with its own server-authenticated TLS connection to appvetd's check
 * listener, send APP_CHECK with one published QR payload again and again
 * through libstbclient's stb_app_check().  Every answer must be the same
 * verdict as the first.  Each check costs appvetd one ECDSA P-256 verify
 * (the payload's COSE signature), one AES-GCM open and a lookup, so the
 * figure is set next to the ECDSA verifies/s this machine does on all its
 * cores, measured in the same run just before the load.  On a machine
 * others load too, wall-clock rates say little; with --server-pid the
 * bench also reads appvetd's CPU time over the measured window and sets
 * its checks per CPU-second next to the verifies per CPU-second.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "stb/stbclient.h"

typedef struct ac_thread {
	const bench_opts_t *o;
	bench_run_t *run;
	stb_client_t *c;
	int want_allow;
	pthread_t tid;
	bench_stats_t st;
} ac_thread_t;

static void
ac_note(ac_thread_t *t, const char *what, const stb_error_t *err)
{
	if (t->st.first_err[0] == '\0')
		snprintf(t->st.first_err, sizeof(t->st.first_err), "%s: %s: %.160s", what,
		         stb_status_name(err->status), err->message);
}

static void *
ac_main(void *arg)
{
	ac_thread_t *t = arg;
	stb_app_verdict_t v;
	stb_error_t err;

	pthread_barrier_wait(&t->run->gate); /* ready */
	pthread_barrier_wait(&t->run->gate); /* main has set the clock */
	for (;;) {
		uint64_t now = bench_now();

		if (now >= t->run->t_stop)
			break;
		if (stb_app_check(t->c, t->o->app_payload, &v, &err) == -1) {
			t->st.errors++;
			ac_note(t, "APP_CHECK", &err);
			if (err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT) {
				t->st.lost++;
				break; /* the connection is gone */
			}
			continue;
		}
		if (v.allow != t->want_allow) {
			t->st.errors++;
			snprintf(t->st.first_err, sizeof(t->st.first_err), "the verdict changed");
		}
		if (now >= t->run->t_warm && bench_now() <= t->run->t_stop) {
			t->st.done++;
			hist_observe(&t->st.lat, (bench_now() - now) / 1000);
		}
	}
	t->st.t_end = bench_now();
	return NULL;
}

/* utime + stime of process pid in seconds, or -1. */
static double
ac_proc_cpu(int pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	/* after the command's closing parenthesis: state, then fields 4..13,
	 * utime (14) and stime (15) */
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return -1;
	n = sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
	return n == 2 ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : -1;
}

static void
ac_sleep_until(uint64_t t)
{
	uint64_t now = bench_now();

	if (t > now) {
		struct timespec ts = {(time_t)((t - now) / 1000000000u),
		                      (long)((t - now) % 1000000000u)};
		nanosleep(&ts, NULL);
	}
}

/* Connects every TV and checks the payload once: the verdict to expect. */
static int
ac_prepare(bench_run_t *run, ac_thread_t *t, int n, int *allow)
{
	const bench_opts_t *o = run->o;
	stb_app_verdict_t v;
	stb_error_t err;

	for (int i = 0; i < n; i++) {
		t[i].o = o;
		t[i].run = run;
		if (stb_client_new(&t[i].c, &err) == -1 ||
		    stb_client_set_ca_file(t[i].c, o->ca, &err) == -1 ||
		    stb_connect_addr(t[i].c, o->addr, &err) == -1) {
			fprintf(stderr, "stb-bench: connect %s: %s: %s\n", o->addr,
			        stb_status_name(err.status), err.message);
			return -1;
		}
		stb_client_set_timeout(t[i].c, 30000);
		if (i == 0) {
			if (stb_app_check(t[0].c, o->app_payload, &v, &err) == -1) {
				fprintf(stderr, "stb-bench: the first APP_CHECK: %s: %s\n",
				        stb_status_name(err.status), err.message);
				return -1;
			}
			*allow = v.allow;
		}
		t[i].want_allow = *allow;
	}
	return 0;
}

int
appcheck_run(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	int n = o->conns, allow = 0, rc = 1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	ac_thread_t *t = calloc((size_t)n, sizeof(*t));
	double bound, bound_cpu = -1, srv0 = -1, srv1 = -1, srv_cpu = -1;
	bench_stats_t tot;

	if (t == NULL)
		return 1;
	if (cores < 1)
		cores = 1;
	/* the bound first, on an idle machine (the daemon waits) */
	if ((bound = speed_verify_bound((int)cores, 2.0, &bound_cpu)) <= 0) {
		fprintf(stderr, "stb-bench: the ECDSA verify bound could not be measured\n");
		free(t);
		return 1;
	}
	fprintf(info,
	        "stb-bench: ECDSA P-256 verify bound %.0f/s on %ld cores (%.0f per CPU-second)\n",
	        bound, cores, bound_cpu);
	if (ac_prepare(run, t, n, &allow) == -1)
		goto done;
	fprintf(info, "stb-bench: %d TVs connected; the payload is %s\n", n,
	        allow ? "ALLOWed" : "DENYed");
	pthread_barrier_init(&run->gate, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++)
		pthread_create(&t[i].tid, NULL, ac_main, &t[i]);
	pthread_barrier_wait(&run->gate);
	run->t_warm = bench_now() + (uint64_t)(o->warmup * 1e9);
	run->t_stop = run->t_warm + (uint64_t)(o->duration * 1e9);
	fflush(info);
	pthread_barrier_wait(&run->gate);
	if (o->server_pid > 0) {
		ac_sleep_until(run->t_warm);
		srv0 = ac_proc_cpu(o->server_pid);
		ac_sleep_until(run->t_stop);
		srv1 = ac_proc_cpu(o->server_pid);
		if (srv0 >= 0 && srv1 > srv0)
			srv_cpu = srv1 - srv0;
	}
	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < n; i++) {
		pthread_join(t[i].tid, NULL);
		bench_stats_add(&tot, &t[i].st);
	}
	pthread_barrier_destroy(&run->gate);
	{
		double rate = (double)tot.done / o->duration;
		double p50 = (double)hist_quantile(&tot.lat, 0.50);
		double p99 = (double)hist_quantile(&tot.lat, 0.99);
		/* checks per second of appvetd's CPU time, next to the verifies
		 * one CPU-second does */
		double per_cpu = srv_cpu > 0 ? (double)tot.done / srv_cpu : -1;
		double of_cpu = per_cpu > 0 && bound_cpu > 0 ? per_cpu / bound_cpu : -1;

		if (o->json)
			printf(
			    "{\"mode\":\"appcheck\",\"tvs\":%d,\"seconds\":%.3f,\"done\":%" PRIu64
			    ",\"per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%" PRIu64
			    ",\"lost\":%" PRIu64 ",\"allow\":%d,\"cores\":%ld,"
			    "\"bound_verify_per_s\":%.0f,\"of_bound\":%.3f,"
			    "\"bound_verify_per_cpu_s\":%.0f,\"server_cpu_s\":%.3f,"
			    "\"server_checks_per_cpu_s\":%.0f,\"of_cpu_bound\":%.3f}\n",
			    n, o->duration, tot.done, rate, p50, p99, tot.errors, tot.lost, allow,
			    cores, bound, rate / bound, bound_cpu, srv_cpu, per_cpu, of_cpu);
		else
			printf(
			    "appcheck: %d TVs, %.1f checks/s over %.1f s (%" PRIu64
			    "), p50 %.0f us, p99 %.0f us, errors %" PRIu64
			    "\nappcheck: ECDSA P-256 verify bound %.0f/s on %ld cores: %.0f%% of "
			    "it\n",
			    n, rate, o->duration, tot.done, p50, p99, tot.errors, bound, cores,
			    100 * rate / bound);
		if (!o->json && of_cpu > 0)
			printf(
			    "appcheck: appvetd used %.2f CPU-seconds: %.0f checks per CPU-second, "
			    "%.0f%% of the %.0f verifies per CPU-second\n",
			    srv_cpu, per_cpu, 100 * of_cpu, bound_cpu);
		if (tot.first_err[0] != '\0')
			fprintf(stderr, "stb-bench: first error: %s\n", tot.first_err);
	}
	rc = tot.done > 0 && tot.errors == 0 ? 0 : 1;
done:
	for (int i = 0; i < n; i++)
		stb_client_free(t[i].c);
	free(t);
	return rc;
}
