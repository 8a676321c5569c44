#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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
