#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int
buf_printf(buf_t *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(out, (size_t)n + 1) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)out->data + out->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	out->len += (size_t)n;
	return 0;
}

int
hist_write_prom(buf_t *out, const char *name, const char *labels, const hist_t *h)
{
	uint64_t cum = 0;
	const char *sep = *labels ? "," : "";

	for (size_t i = 0; i < HIST_NBUCKETS; i++) {
		cum += h->bucket[i];
		if (i < HIST_NBUCKETS - 1) {
			if (buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
			               (double)hist_bounds_us[i] / 1e6,
			               (unsigned long long)cum) == -1)
				return -1;
		} else if (buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		                      (unsigned long long)cum) == -1)
			return -1;
	}
	if (buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
	               (double)h->sum_us / 1e6, name, labels, (unsigned long long)h->count) == -1)
		return -1;
	return 0;
}

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The process_* families Prometheus's client libraries export, so the usual
 * dashboards and alerts work unchanged. */
int
metrics_write_process(buf_t *out, time_t started)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vsz = 0, rss = 0, fds = 0;
	long page = sysconf(_SC_PAGESIZE);
	double cpu = 0;
	FILE *f;
	DIR *dir;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu %llu", &vsz, &rss) != 2)
			vsz = rss = 0;
		fclose(f);
	}
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		struct dirent *e;
		while ((e = readdir(dir)) != NULL)
			fds += e->d_name[0] != '.';
		closedir(dir);
		fds--; /* the one opendir holds */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		rl.rlim_cur = 0;
	if (page < 0)
		page = 4096;
	return buf_printf(out,
	                  "# HELP process_cpu_seconds_total user and system CPU time\n"
	                  "# TYPE process_cpu_seconds_total counter\n"
	                  "process_cpu_seconds_total %.3f\n"
	                  "# HELP process_resident_memory_bytes resident memory\n"
	                  "# TYPE process_resident_memory_bytes gauge\n"
	                  "process_resident_memory_bytes %llu\n"
	                  "# HELP process_virtual_memory_bytes virtual memory\n"
	                  "# TYPE process_virtual_memory_bytes gauge\n"
	                  "process_virtual_memory_bytes %llu\n"
	                  "# HELP process_open_fds open file descriptors\n"
	                  "# TYPE process_open_fds gauge\n"
	                  "process_open_fds %llu\n"
	                  "# HELP process_max_fds the descriptor limit\n"
	                  "# TYPE process_max_fds gauge\n"
	                  "process_max_fds %llu\n"
	                  "# HELP process_start_time_seconds start time, seconds since the epoch\n"
	                  "# TYPE process_start_time_seconds gauge\n"
	                  "process_start_time_seconds %lld\n",
	                  cpu, rss * (unsigned long long)page, vsz * (unsigned long long)page, fds,
	                  (unsigned long long)rl.rlim_cur, (long long)started);
}
