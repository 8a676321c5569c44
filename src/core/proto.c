#include "proto.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "tlv.h"

#define K_U8     TK_U8
#define K_U16    TK_U16
#define K_U32    TK_U32
#define K_U64    TK_U64
#define K_BYTES  TK_BYTES
#define K_STRING TK_STRING
#define K_ID     TK_ID

const proto_tlv_t proto_tlvs[TLV_IX_COUNT] = {
#define STB_TLV(n, c, k, mn, mx, r, d) {c, K_##k, r, mn, mx, #n, d},
#include "stb_proto.def"
};

const proto_msg_t proto_msgs[MSG_IX_COUNT] = {
#define STB_MSG(n, c, r, d) {c, r, #n, d},
#include "stb_proto.def"
};

#define DIR_REQ           MSG_DIR_REQ
#define DIR_RSP           MSG_DIR_RSP
#define PRESENCE_REQUIRED 1
#define PRESENCE_OPTIONAL 0
const proto_field_t proto_fields[] = {
#define STB_FIELD(m, dir, t, p) {MSG_IX_##m, DIR_##dir, TLV_IX_##t, PRESENCE_##p},
#include "stb_proto.def"
};
const size_t proto_nfields = sizeof(proto_fields) / sizeof(proto_fields[0]);

const proto_role_t proto_roles[ROLE_COUNT] = {
#define STB_ROLE(n, b, u) {1u << (b), u},
#include "stb_proto.def"
};

static const struct {
	int code;
	const char *name;
} status_names[STATUS_COUNT] = {
#define STB_STATUS(n, c, d) {c, #n},
#include "stb_proto.def"
};

/* Compile-time checks the registry must pass. */
#define STB_TLV(n, c, k, mn, mx, r, d)                                                             \
	_Static_assert((c) > 0 && (c) <= 0xffff, "TLV number of " #n " out of range");             \
	_Static_assert((mn) <= (mx), "TLV " #n " min > max");
#define STB_ROLE(n, b, u) _Static_assert((b) < 32, "role bit of " #n " out of range");
#include "stb_proto.def"

const char *
stb_status_name(int status)
{
	for (size_t i = 0; i < STATUS_COUNT; i++)
		if (status_names[i].code == status)
			return status_names[i].name;
	return "UNKNOWN";
}

/* Sorted views for lookup by number, and the per-message field rules. */
static uint16_t tlv_sorted[TLV_IX_COUNT];
static uint16_t msg_sorted[MSG_IX_COUNT];
/* rule[msg][dir][tlv]: 0 not allowed, 1 optional, 2 required */
static uint8_t rule[MSG_IX_COUNT][2][TLV_IX_COUNT];
static pthread_once_t proto_once = PTHREAD_ONCE_INIT;

static void
sort_index(uint16_t *ix, size_t n, uint16_t (*num)(size_t))
{
	for (size_t i = 0; i < n; i++)
		ix[i] = (uint16_t)i;
	for (size_t i = 1; i < n; i++) { /* insertion sort: runs once */
		uint16_t v = ix[i];
		size_t j = i;
		while (j > 0 && num(ix[j - 1]) > num(v)) {
			ix[j] = ix[j - 1];
			j--;
		}
		ix[j] = v;
	}
}

static uint16_t
tlv_num(size_t i)
{
	return proto_tlvs[i].num;
}

static uint16_t
msg_num(size_t i)
{
	return proto_msgs[i].num;
}

static void
proto_init(void)
{
	sort_index(tlv_sorted, TLV_IX_COUNT, tlv_num);
	sort_index(msg_sorted, MSG_IX_COUNT, msg_num);
	for (size_t i = 0; i < proto_nfields; i++) {
		const proto_field_t *f = &proto_fields[i];
		rule[f->msg][f->dir][f->tlv] = f->required ? 2 : 1;
	}
}

static int
lookup(const uint16_t *sorted, size_t n, uint16_t (*num)(size_t), uint16_t type)
{
	size_t lo = 0, hi = n;

	pthread_once(&proto_once, proto_init);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint16_t v = num(sorted[mid]);
		if (v == type)
			return sorted[mid];
		if (v < type)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int
proto_msg_index(uint16_t type)
{
	return lookup(msg_sorted, MSG_IX_COUNT, msg_num, type);
}

int
proto_tlv_index(uint16_t type)
{
	return lookup(tlv_sorted, TLV_IX_COUNT, tlv_num, type);
}

const char *
proto_msg_name(uint16_t type)
{
	int ix = proto_msg_index(type);

	return ix < 0 ? "UNKNOWN" : proto_msgs[ix].name;
}

const char *
proto_tlv_kind_name(int kind)
{
	static const char *const names[] = {"u8", "u16", "u32", "u64", "bytes", "string", "id"};

	if (kind < 0 || kind > TK_ID)
		return "?";
	return names[kind];
}

uint32_t
proto_role_by_name(const char *s, size_t len)
{
	for (size_t i = 0; i < ROLE_COUNT; i++)
		if (strlen(proto_roles[i].uri) == len && memcmp(proto_roles[i].uri, s, len) == 0)
			return proto_roles[i].bit;
	return 0;
}

void
proto_roles_str(uint32_t mask, char *out, size_t cap)
{
	size_t used = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (mask == STB_R_ANY) {
		snprintf(out, cap, "any");
		return;
	}
	for (size_t i = 0; i < ROLE_COUNT; i++) {
		int n;
		if (!(mask & proto_roles[i].bit))
			continue;
		n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", proto_roles[i].uri);
		if (n < 0 || (size_t)n >= cap - used)
			return;
		used += (size_t)n;
	}
}

static int
utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, past U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

int
proto_id_valid(const uint8_t *p, size_t len)
{
	if (len < 1 || len > STB_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
			return 0;
	}
	return 1;
}

static int
tlv_value_check(const proto_tlv_t *t, const uint8_t *v, uint32_t len, err_t *err)
{
	static const uint32_t width[] = {1, 2, 4, 8};

	switch (t->kind) {
	case TK_U8:
	case TK_U16:
	case TK_U32:
	case TK_U64:
		if (len != width[t->kind])
			return err_set(err, STB_BAD_REQUEST, "TLV %s must be %u bytes, not %u",
			               t->name, width[t->kind], len);
		return 0;
	case TK_STRING:
		if (!utf8_valid(v, len))
			return err_set(err, STB_BAD_REQUEST, "TLV %s is not UTF-8 without NUL",
			               t->name);
		break;
	case TK_ID:
		if (!proto_id_valid(v, len))
			return err_set(err, STB_BAD_REQUEST,
			               "TLV %s is not an identifier [A-Za-z0-9._:/-]{1,128}",
			               t->name);
		break;
	}
	if (len < t->min || len > t->max)
		return err_set(err, STB_BAD_REQUEST, "TLV %s length %u outside %u..%u", t->name,
		               len, t->min, t->max);
	return 0;
}

/* Rules for a TLV in this message: 0 not allowed, 1 optional, 2 required. */
static int
field_rule(const msg_t *m, int dir, int tix)
{
	if (m->flags & STB_FRAME_F_ERROR)
		return tix == TLV_IX_STATUS ? 2 : tix == TLV_IX_ERROR_TEXT ? 1 : 0;
	if (dir == MSG_DIR_RSP && tix == TLV_IX_STATUS)
		return 1;
	return rule[m->midx][dir][tix];
}

int
msg_parse(msg_t *m, const frame_hdr_t *hdr, const uint8_t *body, err_t *err)
{
	tlv_cursor_t cur;
	uint16_t type;
	const uint8_t *val;
	uint32_t len;
	int rc, dir;
	const char *name;

	m->type = hdr->type;
	m->flags = hdr->flags;
	m->req_id = hdr->req_id;
	m->body = body;
	m->len = hdr->len;
	m->midx = proto_msg_index(hdr->type);
	memset(m->seen, 0, sizeof(m->seen));
	/* an error answer has the same shape whatever the type, even one we
	 * do not know (the answer to our unknown request) */
	if (m->midx < 0 && !(hdr->flags & STB_FRAME_F_ERROR))
		return err_set(err, STB_UNSUPPORTED, "unknown message type 0x%04x", hdr->type);
	name = m->midx < 0 ? "error" : proto_msgs[m->midx].name;
	dir = (hdr->flags & STB_FRAME_F_RESPONSE) ? MSG_DIR_RSP : MSG_DIR_REQ;

	tlv_cursor_init(&cur, body, hdr->len);
	while ((rc = tlv_next(&cur, &type, &val, &len)) == TLV_NEXT) {
		int tix = proto_tlv_index(type);
		int r = tix < 0 ? 0 : field_rule(m, dir, tix);

		if (r == 0) {
			if (type & STB_TLV_F_IGNORABLE)
				continue;
			if (tix < 0)
				return err_set(err, STB_BAD_REQUEST,
				               "unknown critical TLV 0x%04x in %s", type, name);
			return err_set(err, STB_BAD_REQUEST, "TLV %s not allowed in %s %s",
			               proto_tlvs[tix].name, name,
			               dir == MSG_DIR_REQ ? "request" : "response");
		}
		if (m->seen[tix] && !proto_tlvs[tix].repeatable)
			return err_set(err, STB_BAD_REQUEST, "duplicate TLV %s in %s",
			               proto_tlvs[tix].name, name);
		if (tlv_value_check(&proto_tlvs[tix], val, len, err) == -1)
			return -1;
		if (!m->seen[tix]) {
			m->off[tix] = (uint32_t)(val - body);
			m->vlen[tix] = len;
		}
		if (m->seen[tix] < UINT8_MAX)
			m->seen[tix]++;
	}
	if (rc == TLV_TRUNCATED)
		return err_set(err, STB_BAD_REQUEST, "truncated TLV header in %s", name);
	if (rc == TLV_PAST_BODY)
		return err_set(err, STB_BAD_REQUEST, "TLV length runs past the body of %s", name);
	for (int tix = 0; tix < TLV_IX_COUNT; tix++)
		if (!m->seen[tix] && field_rule(m, dir, tix) == 2)
			return err_set(err, STB_BAD_REQUEST, "%s %s lacks required TLV %s", name,
			               dir == MSG_DIR_REQ ? "request" : "response",
			               proto_tlvs[tix].name);
	return 0;
}

int
msg_check_role(const msg_t *m, uint32_t peer_roles, err_t *err)
{
	char roles[160];

	if (m->midx < 0)
		return err_set(err, STB_UNSUPPORTED, "unknown message type 0x%04x", m->type);
	if (proto_msgs[m->midx].roles & peer_roles)
		return 0;
	proto_roles_str(proto_msgs[m->midx].roles, roles, sizeof(roles));
	return err_set(err, STB_FORBIDDEN, "%s may only be sent by: %s", proto_msgs[m->midx].name,
	               roles);
}

int
msg_has(const msg_t *m, int tix)
{
	return tix >= 0 && tix < TLV_IX_COUNT && m->seen[tix] != 0;
}

static const uint8_t *
msg_val(const msg_t *m, int tix, uint32_t want)
{
	if (!msg_has(m, tix) || m->vlen[tix] != want)
		return NULL;
	return m->body + m->off[tix];
}

int
msg_get_u8(const msg_t *m, int tix, uint8_t *v)
{
	const uint8_t *p = msg_val(m, tix, 1);

	if (p == NULL)
		return -1;
	*v = p[0];
	return 0;
}

int
msg_get_u16(const msg_t *m, int tix, uint16_t *v)
{
	const uint8_t *p = msg_val(m, tix, 2);

	if (p == NULL)
		return -1;
	*v = load_be16(p);
	return 0;
}

int
msg_get_u32(const msg_t *m, int tix, uint32_t *v)
{
	const uint8_t *p = msg_val(m, tix, 4);

	if (p == NULL)
		return -1;
	*v = load_be32(p);
	return 0;
}

int
msg_get_u64(const msg_t *m, int tix, uint64_t *v)
{
	const uint8_t *p = msg_val(m, tix, 8);

	if (p == NULL)
		return -1;
	*v = load_be64(p);
	return 0;
}

int
msg_get_bytes(const msg_t *m, int tix, const uint8_t **p, size_t *len)
{
	if (!msg_has(m, tix))
		return -1;
	*p = m->body + m->off[tix];
	*len = m->vlen[tix];
	return 0;
}

int
msg_get_str(const msg_t *m, int tix, char *dst, size_t cap)
{
	if (!msg_has(m, tix) || cap == 0 || m->vlen[tix] >= cap)
		return -1;
	memcpy(dst, m->body + m->off[tix], m->vlen[tix]);
	dst[m->vlen[tix]] = '\0';
	return 0;
}

int
msg_next(const msg_t *m, int tix, size_t *pos, const uint8_t **p, size_t *len)
{
	tlv_cursor_t cur;
	uint16_t type;
	const uint8_t *val;
	uint32_t l;

	if (!msg_has(m, tix))
		return 0;
	tlv_cursor_init(&cur, m->body, m->len);
	cur.off = *pos;
	while (tlv_next(&cur, &type, &val, &l) == TLV_NEXT) {
		if (type != proto_tlvs[tix].num)
			continue;
		*pos = cur.off;
		*p = val;
		*len = l;
		return 1;
	}
	*pos = m->len;
	return 0;
}

int
msg_status(const msg_t *m)
{
	uint16_t st;

	if (msg_get_u16(m, TLV_IX_STATUS, &st) == 0)
		return st;
	return (m->flags & STB_FRAME_F_ERROR) ? STB_INTERNAL : STB_OK;
}
