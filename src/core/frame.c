#include "frame.h"

#include "bytes.h"
#include "stb/stbproto.h"

int
frame_decode(const uint8_t *p, size_t avail, uint32_t max_frame, frame_hdr_t *hdr)
{
	/* Judge what we have early: a bad magic byte fails at once, not after
	 * the peer has trickled in sixteen bytes. */
	if (avail >= 1 && p[0] != STB_FRAME_MAGIC0)
		return FRAME_BAD_MAGIC;
	if (avail >= 2 && p[1] != STB_FRAME_MAGIC1)
		return FRAME_BAD_MAGIC;
	if (avail < STB_FRAME_HDR_LEN)
		return FRAME_NEED_MORE;
	hdr->flags = p[3];
	hdr->type = load_be16(p + 4);
	hdr->req_id = load_be32(p + 8);
	hdr->len = load_be32(p + 12);
	if (p[2] != STB_FRAME_VERSION)
		return FRAME_BAD_VERSION;
	if (hdr->flags & ~STB_FRAME_F_MASK)
		return FRAME_BAD_FLAGS;
	if ((hdr->flags & STB_FRAME_F_ERROR) && !(hdr->flags & STB_FRAME_F_RESPONSE))
		return FRAME_BAD_FLAGS;
	if ((hdr->flags & STB_FRAME_F_PUSH) && (hdr->flags & STB_FRAME_F_RESPONSE))
		return FRAME_BAD_FLAGS;
	if (load_be16(p + 6) != 0)
		return FRAME_BAD_RESERVED;
	if (hdr->len > max_frame || hdr->len > STB_FRAME_CAP)
		return FRAME_TOO_LARGE;
	if (avail - STB_FRAME_HDR_LEN < hdr->len)
		return FRAME_NEED_MORE;
	return FRAME_OK;
}

const char *
frame_strerror(int rc)
{
	switch (rc) {
	case FRAME_OK:
		return "ok";
	case FRAME_NEED_MORE:
		return "incomplete frame";
	case FRAME_BAD_MAGIC:
		return "bad frame magic";
	case FRAME_BAD_VERSION:
		return "unsupported protocol version";
	case FRAME_BAD_FLAGS:
		return "bad frame flags";
	case FRAME_BAD_RESERVED:
		return "reserved header field is not zero";
	case FRAME_TOO_LARGE:
		return "frame longer than max_frame";
	}
	return "unknown frame error";
}

int
frame_error_status(int rc)
{
	switch (rc) {
	case FRAME_BAD_VERSION:
		return STB_UNSUPPORTED;
	case FRAME_TOO_LARGE:
		return STB_TOO_LARGE;
	}
	return STB_BAD_REQUEST;
}

void
frame_encode_hdr(uint8_t out[16], const frame_hdr_t *hdr)
{
	out[0] = STB_FRAME_MAGIC0;
	out[1] = STB_FRAME_MAGIC1;
	out[2] = STB_FRAME_VERSION;
	out[3] = hdr->flags;
	store_be16(out + 4, hdr->type);
	store_be16(out + 6, 0);
	store_be32(out + 8, hdr->req_id);
	store_be32(out + 12, hdr->len);
}

int
frame_begin(buf_t *b, size_t *start)
{
	if (buf_reserve(b, STB_FRAME_HDR_LEN) == -1)
		return -1;
	*start = b->len;
	b->len += STB_FRAME_HDR_LEN;
	return 0;
}

int
frame_end(buf_t *b, size_t start, uint16_t type, uint8_t flags, uint32_t req_id)
{
	frame_hdr_t h;
	size_t body = b->len - start - STB_FRAME_HDR_LEN;

	if (body > STB_FRAME_CAP)
		return -1;
	h.flags = flags;
	h.type = type;
	h.req_id = req_id;
	h.len = (uint32_t)body;
	frame_encode_hdr(b->data + start, &h);
	return 0;
}
