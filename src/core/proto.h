/*
 * proto: the registry as tables, and validation of a frame against it.
 * A receiver calls msg_parse() before any handler runs; handlers then read
 * fields through the typed getters, which cannot see an unvalidated byte.
 */
#ifndef STB_PROTO_H
#define STB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"
#include "stb/stbproto.h"

typedef enum {
	TK_U8,
	TK_U16,
	TK_U32,
	TK_U64,
	TK_BYTES,
	TK_STRING,
	TK_ID,
} tlv_kind_t;

/* Dense indexes, generated from the registry. */
enum {
#define STB_TLV(n, c, k, mn, mx, r, d) TLV_IX_##n,
#include "stb_proto.def"
	TLV_IX_COUNT
};
enum {
#define STB_MSG(n, c, r, d) MSG_IX_##n,
#include "stb_proto.def"
	MSG_IX_COUNT
};
enum {
#define STB_STATUS(n, c, d) STATUS_IX_##n,
#include "stb_proto.def"
	STATUS_COUNT
};
enum {
#define STB_ROLE(n, b, u) ROLE_IX_##n,
#include "stb_proto.def"
	ROLE_COUNT
};

typedef struct proto_tlv {
	uint16_t num;
	uint8_t kind;
	uint8_t repeatable;
	uint32_t min;
	uint32_t max;
	const char *name;
	const char *desc;
} proto_tlv_t;

typedef struct proto_msg {
	uint16_t num;
	uint32_t roles;
	const char *name;
	const char *desc;
} proto_msg_t;

typedef struct proto_field {
	int msg;      /* MSG_IX_ */
	int dir;      /* MSG_DIR_ */
	int tlv;      /* TLV_IX_ */
	int required; /* 1 REQUIRED, 0 OPTIONAL */
} proto_field_t;

typedef struct proto_role {
	uint32_t bit;
	const char *uri; /* suffix after urn:stbcred:role: */
} proto_role_t;

enum { MSG_DIR_REQ = 0, MSG_DIR_RSP = 1 };

extern const proto_tlv_t proto_tlvs[TLV_IX_COUNT];
extern const proto_msg_t proto_msgs[MSG_IX_COUNT];
extern const proto_field_t proto_fields[];
extern const size_t proto_nfields;
extern const proto_role_t proto_roles[ROLE_COUNT];

#define STB_ROLE_URI_PREFIX "urn:stbcred:role:"

int proto_msg_index(uint16_t type);        /* MSG_IX_ or -1 */
int proto_tlv_index(uint16_t type);        /* TLV_IX_ or -1 */
const char *proto_msg_name(uint16_t type); /* "PING", or "UNKNOWN" */
const char *proto_tlv_kind_name(int kind);
/* Role bit for a URI suffix such as "media-gw"; 0 when unknown. */
uint32_t proto_role_by_name(const char *s, size_t len);
/* 1 when p[0..len) is an identifier: [A-Za-z0-9._:/-]{1,STB_ID_MAX}. */
int proto_id_valid(const uint8_t *p, size_t len);
/* Comma-separated role names of a mask into out. */
void proto_roles_str(uint32_t mask, char *out, size_t cap);

/* A validated message.  Values point into the caller's body buffer. */
typedef struct msg {
	uint16_t type;
	int midx; /* MSG_IX_, or -1 for an unknown type */
	uint8_t flags;
	uint32_t req_id;
	const uint8_t *body;
	uint32_t len;
	uint8_t seen[TLV_IX_COUNT];
	uint32_t off[TLV_IX_COUNT]; /* first occurrence */
	uint32_t vlen[TLV_IX_COUNT];
} msg_t;

/* Validates hdr+body against the registry: direction from hdr flags (a
 * request or push is checked against the REQ fields, an OK response against
 * RSP, an error response against STATUS/ERROR_TEXT).  Does not check roles.
 * Fails with BAD_REQUEST or UNSUPPORTED and a precise message. */
int msg_parse(msg_t *m, const frame_hdr_t *hdr, const uint8_t *body, err_t *err);
/* FORBIDDEN unless the message's roles include one of peer_roles. */
int msg_check_role(const msg_t *m, uint32_t peer_roles, err_t *err);

int msg_has(const msg_t *m, int tlv_ix);
/* Getters: 0, or -1 when the TLV is absent.  Kinds are checked by parse. */
int msg_get_u8(const msg_t *m, int tlv_ix, uint8_t *v);
int msg_get_u16(const msg_t *m, int tlv_ix, uint16_t *v);
int msg_get_u32(const msg_t *m, int tlv_ix, uint32_t *v);
int msg_get_u64(const msg_t *m, int tlv_ix, uint64_t *v);
int msg_get_bytes(const msg_t *m, int tlv_ix, const uint8_t **p, size_t *len);
/* Copies a STRING/ID value with a NUL; -1 when absent or cap too small. */
int msg_get_str(const msg_t *m, int tlv_ix, char *dst, size_t cap);
/* Iterates a repeatable TLV: start *pos at 0. 1 while a value is found. */
int msg_next(const msg_t *m, int tlv_ix, size_t *pos, const uint8_t **p, size_t *len);
/* The status of a response (STB_OK when an OK response has no STATUS). */
int msg_status(const msg_t *m);

#endif
