/*
 * hist: the one latency histogram, in microseconds.  Twelve buckets at fixed
 * upper bounds (the Prometheus buckets every daemon exports, each bound
 * inclusive; the last is +Inf), each split into HIST_SUB equal parts so that
 * a load generator can read quantiles to a few per cent of the value.  A
 * histogram has one writer; readers on other threads see relaxed atomic
 * counts.  Recording never allocates.
 */
#ifndef STB_HIST_H
#define STB_HIST_H

#include <stdint.h>

#define HIST_NBUCKETS 12
#define HIST_SUB      32
/* Upper bounds in microseconds; the last bucket is +Inf. */
extern const uint64_t hist_bounds_us[HIST_NBUCKETS - 1];

typedef struct hist {
	uint64_t bucket[HIST_NBUCKETS];
	uint64_t count;
	uint64_t sum_us;
	uint64_t max_us;
	/* bucket[i] split evenly over (bound[i-1], bound[i]]; above the last
	 * bound, by powers of two of whole seconds */
	uint64_t sub[HIST_NBUCKETS][HIST_SUB];
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
/* Adds src into dst (a snapshot, for export or a run's total). */
void hist_merge(hist_t *dst, const hist_t *src);
/* The value at quantile q (0..1) in microseconds: the upper edge of the
 * part it falls in, never above the largest value seen; 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);

#endif
