#include "buf.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(buf_t *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->failed = 0;
}

int
buf_reserve(buf_t *b, size_t extra)
{
	size_t want, ncap;
	uint8_t *p;

	if (extra > b->max || b->len > b->max - extra) {
		b->failed = 1;
		return -1;
	}
	want = b->len + extra;
	if (want <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	p = realloc(b->data, ncap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(buf_t *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_reset(buf_t *b)
{
	b->len = 0;
	b->failed = 0;
}

void
buf_free(buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_wipe(buf_t *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}
