/* hist: fixed Prometheus bounds, each bucket split for quantiles. */
#include "hist.h"

const uint64_t hist_bounds_us[HIST_NBUCKETS - 1] = {50,   100,   250,   500,    1000,   2500,
                                                    5000, 10000, 25000, 100000, 1000000};

#define HIST_TOP hist_bounds_us[HIST_NBUCKETS - 2]

/* The part of bucket i that us falls in. */
static unsigned
hist_part(unsigned i, uint64_t us)
{
	uint64_t lo, width;
	unsigned k = 0;

	if (i == HIST_NBUCKETS - 1) { /* (1 s, +Inf): 1-2 s, 2-4 s, ... */
		for (uint64_t s = (us - 1) / HIST_TOP; s > 1 && k < HIST_SUB - 1; s >>= 1)
			k++;
		return k;
	}
	lo = i == 0 ? 0 : hist_bounds_us[i - 1] + 1;
	width = hist_bounds_us[i] - lo + 1;
	return (unsigned)((us - lo) * HIST_SUB / width);
}

/* The largest value part k of bucket i holds. */
static uint64_t
hist_part_top(unsigned i, unsigned k)
{
	uint64_t lo, width;

	if (i == HIST_NBUCKETS - 1)
		return k == HIST_SUB - 1 ? UINT64_MAX : HIST_TOP * ((uint64_t)2 << k);
	lo = i == 0 ? 0 : hist_bounds_us[i - 1] + 1;
	width = hist_bounds_us[i] - lo + 1;
	return lo + ((uint64_t)(k + 1) * width + HIST_SUB - 1) / HIST_SUB - 1;
}

void
hist_observe(hist_t *h, uint64_t us)
{
	unsigned i = 0;

	while (i < HIST_NBUCKETS - 1 && us > hist_bounds_us[i])
		i++;
	ctr_add(&h->bucket[i], 1);
	ctr_add(&h->sub[i][hist_part(i, us)], 1);
	ctr_add(&h->count, 1);
	ctr_add(&h->sum_us, us);
	if (us > ctr_get(&h->max_us))
		__atomic_store_n(&h->max_us, us, __ATOMIC_RELAXED);
}

void
hist_merge(hist_t *dst, const hist_t *src)
{
	uint64_t m = ctr_get(&src->max_us);

	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		dst->bucket[i] += ctr_get(&src->bucket[i]);
		for (unsigned k = 0; k < HIST_SUB; k++)
			dst->sub[i][k] += ctr_get(&src->sub[i][k]);
	}
	dst->count += ctr_get(&src->count);
	dst->sum_us += ctr_get(&src->sum_us);
	if (m > dst->max_us)
		dst->max_us = m;
}

uint64_t
hist_quantile(const hist_t *h, double q)
{
	uint64_t want, seen = 0, n = ctr_get(&h->count), max = ctr_get(&h->max_us);

	if (n == 0)
		return 0;
	if (q <= 0)
		want = 1;
	else if (q >= 1)
		want = n;
	else
		want = (uint64_t)(q * (double)n + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		for (unsigned k = 0; k < HIST_SUB; k++) {
			seen += ctr_get(&h->sub[i][k]);
			if (seen >= want) {
				uint64_t v = hist_part_top(i, k);
				return v < max ? v : max;
			}
		}
	}
	return max;
}
