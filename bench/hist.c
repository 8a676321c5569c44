#include "hist.h"

#include <math.h>

void
hist_merge(hist_t *dst, const hist_t *src)
{
	for (unsigned i = 0; i < HIST_NBUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* The midpoint of bucket i. */
static uint64_t
hist_bucket_value(unsigned i)
{
	unsigned k, e;
	uint64_t lo, width;

	if (i < HIST_LINEAR)
		return i;
	k = i - HIST_LINEAR;
	e = 7 + (k >> HIST_SUB_BITS);
	width = (uint64_t)1 << (e - HIST_SUB_BITS);
	lo = ((uint64_t)(1u << HIST_SUB_BITS) + (k & ((1u << HIST_SUB_BITS) - 1))) * width;
	return lo + width / 2;
}

uint64_t
hist_quantile(const hist_t *h, double q)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->count);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = hist_bucket_value(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}
