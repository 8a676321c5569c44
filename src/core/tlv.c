#include "tlv.h"

#include <string.h>

#include "bytes.h"
#include "stb/stbproto.h"

void
tlv_cursor_init(tlv_cursor_t *c, const uint8_t *body, size_t len)
{
	c->p = body;
	c->len = len;
	c->off = 0;
}

int
tlv_next(tlv_cursor_t *c, uint16_t *type, const uint8_t **val, uint32_t *len)
{
	size_t left = c->len - c->off;
	uint32_t l;

	if (left == 0)
		return TLV_END;
	if (left < STB_TLV_HDR_LEN)
		return TLV_TRUNCATED;
	l = load_be32(c->p + c->off + 2);
	if (l > left - STB_TLV_HDR_LEN)
		return TLV_PAST_BODY;
	*type = load_be16(c->p + c->off);
	*len = l;
	*val = c->p + c->off + STB_TLV_HDR_LEN;
	c->off += STB_TLV_HDR_LEN + (size_t)l;
	return TLV_NEXT;
}

int
tlv_put(buf_t *b, uint16_t type, const void *val, size_t len)
{
	uint8_t h[STB_TLV_HDR_LEN];

	if (len > UINT32_MAX) {
		b->failed = 1;
		return -1;
	}
	if (buf_reserve(b, sizeof(h) + len) == -1)
		return -1;
	store_be16(h, type);
	store_be32(h + 2, (uint32_t)len);
	memcpy(b->data + b->len, h, sizeof(h));
	b->len += sizeof(h);
	if (len > 0)
		memcpy(b->data + b->len, val, len);
	b->len += len;
	return 0;
}

int
tlv_put_u8(buf_t *b, uint16_t type, uint8_t v)
{
	return tlv_put(b, type, &v, 1);
}

int
tlv_put_u16(buf_t *b, uint16_t type, uint16_t v)
{
	uint8_t x[2];

	store_be16(x, v);
	return tlv_put(b, type, x, sizeof(x));
}

int
tlv_put_u32(buf_t *b, uint16_t type, uint32_t v)
{
	uint8_t x[4];

	store_be32(x, v);
	return tlv_put(b, type, x, sizeof(x));
}

int
tlv_put_u64(buf_t *b, uint16_t type, uint64_t v)
{
	uint8_t x[8];

	store_be64(x, v);
	return tlv_put(b, type, x, sizeof(x));
}

int
tlv_put_str(buf_t *b, uint16_t type, const char *s)
{
	return tlv_put(b, type, s, strlen(s));
}
