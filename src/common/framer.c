#include "framer.h"

#include <event2/buffer.h>

#include "proto.h"

int
framer_run(struct evbuffer *in, uint32_t max_frame, framer_fn fn, void *arg, frame_hdr_t *h,
           int *code, int *have_hdr)
{
	for (;;) {
		uint8_t hb[STB_FRAME_HDR_LEN];
		size_t avail = evbuffer_get_length(in);
		uint8_t *frame;
		int rc;

		if (avail == 0)
			return FRAMER_EMPTY;
		evbuffer_copyout(in, hb, avail < sizeof(hb) ? avail : sizeof(hb));
		rc = frame_decode(hb, avail, max_frame, h);
		if (rc == FRAME_NEED_MORE)
			return FRAMER_PARTIAL;
		if (rc != FRAME_OK) {
			*code = rc;
			*have_hdr = rc != FRAME_BAD_MAGIC && avail >= STB_FRAME_HDR_LEN;
			return FRAMER_BAD;
		}
		/* usually already contiguous: the writer sends a frame as one record */
		frame = evbuffer_pullup(in, (ev_ssize_t)(STB_FRAME_HDR_LEN + h->len));
		if (frame == NULL)
			return FRAMER_NOMEM;
		rc = fn(arg, h, frame + STB_FRAME_HDR_LEN);
		if (rc == FRAMER_GONE)
			return FRAMER_STOPPED;
		evbuffer_drain(in, STB_FRAME_HDR_LEN + h->len);
		if (rc == FRAMER_STOP)
			return FRAMER_STOPPED;
	}
}
