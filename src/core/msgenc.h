/*
 * msgenc: typed request encoders, generated from the registry.  Each
 * message gets a struct with one msg_val_t per REQ field of the registry,
 * named after its TLV, and an encoder that checks every field against the
 * registry (required present, integer width, length bounds, identifier
 * syntax) before it appends the TLVs in registry order:
 *
 *	struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(der, n),
 *	                            .CERT_PROFILE = MV_STR("stb-media")};
 *	if (msgenc_CA_ISSUE(&b, &q, &err) == -1) ...
 *
 * A field the message does not have is a compile error; a sender cannot
 * put a number on the wire that the registry does not name.
 */
#ifndef STB_MSGENC_H
#define STB_MSGENC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "proto.h"

typedef struct msg_val {
	const void *p; /* BYTES, STRING, ID */
	size_t len;
	uint64_t u; /* U8..U64 */
	int set;
} msg_val_t;

/* Each argument is evaluated once (MV_STR(argv[++i]) is safe). */
static inline msg_val_t
msg_val_u(uint64_t v)
{
	return (msg_val_t){.u = v, .set = 1};
}

static inline msg_val_t
msg_val_bytes(const void *p, size_t n)
{
	return (msg_val_t){.p = p, .len = n, .set = 1};
}

static inline msg_val_t
msg_val_str(const char *s)
{
	return (msg_val_t){.p = s, .len = strlen(s), .set = 1};
}

#define MV_U(v)        msg_val_u((uint64_t)(v))
#define MV_STR(s)      msg_val_str(s)
#define MV_BYTES(q, n) msg_val_bytes((q), (n))
/* An optional field that is present only when cond holds. */
#define MV_IF(cond, v) ((cond) ? (v) : (msg_val_t){.set = 0})

/* Appends vals (one per REQ field of midx, in registry order) to b.
 * BAD_REQUEST naming the field when one is missing or out of bounds,
 * TOO_LARGE when b's cap is reached; b is then left as it was. */
int msg_encode(buf_t *b, int midx, const msg_val_t *vals, err_t *err);

/* struct msgreq_<MSG>: msg_val_t none_ first, then the REQ fields. */
struct msgreq_first_ {
	msg_val_t none_;
#define STB_MSG(n, c, r, d)                                                                        \
	}                                                                                          \
	;                                                                                          \
	struct msgreq_##n {                                                                        \
		msg_val_t none_;
#define STB_FIELD(m, dir, t, p) STB_MSGENC_FIELD_##dir(t)
#define STB_MSGENC_FIELD_REQ(t) msg_val_t t;
#define STB_MSGENC_FIELD_RSP(t)
#include "stb_proto.def"
};
#undef STB_MSGENC_FIELD_REQ
#undef STB_MSGENC_FIELD_RSP

/* A REQ field listed away from its message would land in another struct. */
#define STB_FIELD(m, dir, t, p) STB_MSGENC_CHECK_##dir(m, t)
#define STB_MSGENC_CHECK_REQ(m, t)                                                                 \
	_Static_assert(offsetof(struct msgreq_##m, t) >= sizeof(msg_val_t), #m "." #t);
#define STB_MSGENC_CHECK_RSP(m, t)
#include "stb_proto.def"
#undef STB_MSGENC_CHECK_REQ
#undef STB_MSGENC_CHECK_RSP

#define STB_MSG(n, c, r, d)                                                                        \
	static inline int msgenc_##n(buf_t *b, const struct msgreq_##n *q, err_t *err)             \
	{                                                                                          \
		return msg_encode(                                                                 \
		    b, MSG_IX_##n,                                                                 \
		    (const msg_val_t *)(const void *)((const char *)q + sizeof(msg_val_t)), err);  \
	}
#include "stb_proto.def"

#endif
