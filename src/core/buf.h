/* buf: a growable byte buffer with a hard cap. */
#ifndef STB_BUF_H
#define STB_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* appends past this fail */
	int failed; /* sticky: an append was refused */
} buf_t;

void buf_init(buf_t *b, size_t max);
/* 0, or -1 when growing would pass max or memory is short. */
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *p, size_t n);
void buf_reset(buf_t *b);
/* Frees; buf_wipe also clears the bytes first (for secrets). */
void buf_free(buf_t *b);
void buf_wipe(buf_t *b);

#endif
