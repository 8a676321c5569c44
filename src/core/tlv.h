/*
 * tlv: reading TLVs through a cursor and appending them to a buffer.
 * The reader never allocates; values point into the frame body.
 */
#ifndef STB_TLV_H
#define STB_TLV_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct tlv_cursor {
	const uint8_t *p;
	size_t len;
	size_t off;
} tlv_cursor_t;

enum {
	TLV_END = 0,        /* no more TLVs, nothing left over */
	TLV_NEXT = 1,       /* *type, *val, *len are set */
	TLV_TRUNCATED = -1, /* fewer than 6 bytes of TLV header left */
	TLV_PAST_BODY = -2, /* declared length runs past the body */
};

void tlv_cursor_init(tlv_cursor_t *c, const uint8_t *body, size_t len);
int tlv_next(tlv_cursor_t *c, uint16_t *type, const uint8_t **val, uint32_t *len);

/* Appenders: 0, or -1 when the buffer's cap is reached. */
int tlv_put(buf_t *b, uint16_t type, const void *val, size_t len);
int tlv_put_u8(buf_t *b, uint16_t type, uint8_t v);
int tlv_put_u16(buf_t *b, uint16_t type, uint16_t v);
int tlv_put_u32(buf_t *b, uint16_t type, uint32_t v);
int tlv_put_u64(buf_t *b, uint16_t type, uint64_t v);
int tlv_put_str(buf_t *b, uint16_t type, const char *s);

#endif
