/* metrics: lock-free counters and latency histograms, Prometheus text. */
#ifndef STB_METRICS_H
#define STB_METRICS_H

#include <stdint.h>

#include "buf.h"

#define HIST_NBUCKETS 12
/* Upper bounds in microseconds; the last bucket is +Inf. */
extern const uint64_t hist_bounds_us[HIST_NBUCKETS - 1];

typedef struct hist {
	uint64_t bucket[HIST_NBUCKETS];
	uint64_t count;
	uint64_t sum_us;
} hist_t;

static inline void
ctr_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t
ctr_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void hist_observe(hist_t *h, uint64_t us);
/* Adds src into dst (snapshot for export). */
void hist_merge(hist_t *dst, const hist_t *src);
/* Appends "name_bucket{labels,le=..}" lines; labels may be "". */
int hist_write_prom(buf_t *out, const char *name, const char *labels, const hist_t *h);
/* printf-style append to a text buffer. */
int buf_printf(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t now_ns(void); /* CLOCK_MONOTONIC */

#endif
