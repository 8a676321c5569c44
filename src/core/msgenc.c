/* msgenc: the registry-checked encoder behind the generated msgenc_<MSG>. */
#include "msgenc.h"

#include "tlv.h"

/* The first REQ field of each message in proto_fields, or -1. */
static int
msgenc_first_req(int midx, size_t *first)
{
	for (size_t i = 0; i < proto_nfields; i++) {
		if (proto_fields[i].msg == midx && proto_fields[i].dir == MSG_DIR_REQ) {
			*first = i;
			return 0;
		}
	}
	return -1;
}

static int
msgenc_check(const proto_tlv_t *t, const msg_val_t *v, const char *msg, err_t *err)
{
	static const uint64_t widest[] = {[TK_U8] = UINT8_MAX,
	                                  [TK_U16] = UINT16_MAX,
	                                  [TK_U32] = UINT32_MAX,
	                                  [TK_U64] = UINT64_MAX};

	switch (t->kind) {
	case TK_U8:
	case TK_U16:
	case TK_U32:
	case TK_U64:
		if (v->u > widest[t->kind])
			return err_set(err, STB_BAD_REQUEST, "%s: %s does not fit in %s", msg,
			               t->name, proto_tlv_kind_name(t->kind));
		return 0;
	default:
		break;
	}
	if (v->p == NULL && v->len > 0)
		return err_set(err, STB_BAD_REQUEST, "%s: %s has no value", msg, t->name);
	if (v->len < t->min || v->len > t->max)
		return err_set(err, STB_BAD_REQUEST, "%s: %s is %zu bytes, not %u..%u", msg,
		               t->name, v->len, t->min, t->max);
	if (t->kind == TK_ID && !proto_id_valid(v->p, v->len))
		return err_set(err, STB_BAD_REQUEST, "%s: %s is not an identifier", msg, t->name);
	if (t->kind == TK_STRING && memchr(v->p, 0, v->len) != NULL)
		return err_set(err, STB_BAD_REQUEST, "%s: %s holds a NUL byte", msg, t->name);
	return 0;
}

static int
msgenc_put(buf_t *b, const proto_tlv_t *t, const msg_val_t *v)
{
	switch (t->kind) {
	case TK_U8:
		return tlv_put_u8(b, t->num, (uint8_t)v->u);
	case TK_U16:
		return tlv_put_u16(b, t->num, (uint16_t)v->u);
	case TK_U32:
		return tlv_put_u32(b, t->num, (uint32_t)v->u);
	case TK_U64:
		return tlv_put_u64(b, t->num, v->u);
	default:
		return tlv_put(b, t->num, v->len > 0 ? v->p : "", v->len);
	}
}

int
msg_encode(buf_t *b, int midx, const msg_val_t *vals, err_t *err)
{
	size_t first, start = b->len;
	int failed = b->failed;
	const char *name;

	if (midx < 0 || midx >= MSG_IX_COUNT)
		return err_set(err, STB_INTERNAL, "msg_encode: no message %d", midx);
	name = proto_msgs[midx].name;
	if (msgenc_first_req(midx, &first) == -1)
		return 0; /* a message with no request fields */
	for (size_t i = first, k = 0; i < proto_nfields && proto_fields[i].msg == midx; i++) {
		const proto_field_t *f = &proto_fields[i];
		const proto_tlv_t *t = &proto_tlvs[f->tlv];
		const msg_val_t *v;

		if (f->dir != MSG_DIR_REQ)
			continue;
		v = &vals[k++];
		if (!v->set) {
			if (f->required) {
				b->len = start;
				return err_set(err, STB_BAD_REQUEST, "%s: %s is required", name,
				               t->name);
			}
			continue;
		}
		if (msgenc_check(t, v, name, err) == -1) {
			b->len = start;
			return -1;
		}
		if (msgenc_put(b, t, v) == -1) {
			b->len = start;
			b->failed = failed;
			return err_set(err, STB_TOO_LARGE, "%s: request larger than %zu bytes",
			               name, b->max);
		}
	}
	return 0;
}
