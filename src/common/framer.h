/*
 * framer: the one frame loop, shared by the server's connections and by
 * peer.c.  It reads a header out of an evbuffer, decodes it (frame_decode
 * checks the declared length against the limit before anyone waits for the
 * body), waits for the whole body, pulls the frame up into one contiguous
 * piece and hands it up; the frame is drained only after the callback says
 * the buffer is still there.
 */
#ifndef STB_FRAMER_H
#define STB_FRAMER_H

#include <stdint.h>

#include "frame.h"

struct evbuffer;

/* What a frame callback tells the loop. */
enum {
	FRAMER_NEXT = 0, /* drain the frame and read the next */
	FRAMER_STOP = 1, /* drain the frame and stop (paused, closing) */
	FRAMER_GONE = 2, /* the buffer is gone (connection freed): touch nothing */
};

/* Why framer_run returned. */
enum {
	FRAMER_EMPTY = 0,   /* every frame was handed up */
	FRAMER_PARTIAL = 1, /* a frame has started but is not complete */
	FRAMER_STOPPED = 2, /* the callback said STOP or GONE */
	FRAMER_BAD = 3,     /* a bad header: *code is frame_decode's error */
	FRAMER_NOMEM = 4,   /* the frame could not be made contiguous */
};

/* h and body (h->len bytes) live only during the call. */
typedef int (*framer_fn)(void *arg, const frame_hdr_t *h, const uint8_t *body);

/* Hands every complete frame in `in` to fn.  On FRAMER_BAD, *code is the
 * decode error and *h holds what the header said (when *have_hdr). */
int framer_run(struct evbuffer *in, uint32_t max_frame, framer_fn fn, void *arg, frame_hdr_t *h,
               int *code, int *have_hdr);

#endif
