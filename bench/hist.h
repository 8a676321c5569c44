/*
 * hist: a fixed-size log-linear latency histogram (HdrHistogram style).
 * Values are nanoseconds: exact below 128 ns, then 64 buckets per power of
 * two (under 1% error at the bucket midpoint) up to 2^40 ns (18 minutes);
 * larger values land in the last bucket.  Recording is a few instructions
 * and never allocates; one histogram per thread, merged at the end.
 */
#ifndef STB_BENCH_HIST_H
#define STB_BENCH_HIST_H

#include <stdint.h>

#define HIST_LINEAR   128 /* values below this have a bucket each */
#define HIST_SUB_BITS 6   /* 64 sub-buckets per power of two */
#define HIST_MAX_EXP  40
#define HIST_NBUCKETS (HIST_LINEAR + (HIST_MAX_EXP - 7) * (1 << HIST_SUB_BITS))

typedef struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t sum;
	uint64_t b[HIST_NBUCKETS];
} hist_t;

static inline unsigned
hist_index(uint64_t v)
{
	unsigned e;

	if (v < HIST_LINEAR)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* 7 and up */
	if (e >= HIST_MAX_EXP)
		return HIST_NBUCKETS - 1;
	return HIST_LINEAR + (e - 7) * (1u << HIST_SUB_BITS) +
	       (unsigned)((v >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
}

static inline void
hist_record(hist_t *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(hist_t *dst, const hist_t *src);
/* The value at quantile q (0..1), in the recorded unit; 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);

#endif
