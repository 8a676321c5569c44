/*
 * frame: the 16-byte frame header (DESIGN 3).  frame_decode() is a pure
 * function over a buffer: it checks everything it can from the header,
 * including the declared length against the limit, before anyone waits for
 * or allocates the body.
 */
#ifndef STB_FRAME_H
#define STB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct frame_hdr {
	uint8_t flags;
	uint16_t type;
	uint32_t req_id;
	uint32_t len; /* body length */
} frame_hdr_t;

enum {
	FRAME_OK = 0,        /* header and whole body are in the buffer */
	FRAME_NEED_MORE = 1, /* not enough bytes yet */
	FRAME_BAD_MAGIC = -1,
	FRAME_BAD_VERSION = -2,
	FRAME_BAD_FLAGS = -3,
	FRAME_BAD_RESERVED = -4,
	FRAME_TOO_LARGE = -5,
};

/* Decodes the header at p (avail bytes).  On FRAME_OK and on the errors
 * after the magic check, hdr is filled so the caller can answer with the
 * request's type and id. */
int frame_decode(const uint8_t *p, size_t avail, uint32_t max_frame, frame_hdr_t *hdr);
const char *frame_strerror(int rc);
/* Status code to answer a decode error with. */
int frame_error_status(int rc);

void frame_encode_hdr(uint8_t out[16], const frame_hdr_t *hdr);

/* Starts a frame in b (reserves the header); frame_end() fills it in once
 * the TLVs are appended.  Returns -1 when b's cap is too small. */
int frame_begin(buf_t *b, size_t *start);
int frame_end(buf_t *b, size_t start, uint16_t type, uint8_t flags, uint32_t req_id);

#endif
