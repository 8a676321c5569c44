/* Unit tests for proto: the registry tables and message validation. */
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "testutil.h"
#include "tlv.h"

#define REQ  0
#define RSP  STB_FRAME_F_RESPONSE
#define ERR  (STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR)
#define PUSH STB_FRAME_F_PUSH

static int
parse(msg_t *m, uint16_t type, uint8_t flags, const buf_t *b, err_t *err)
{
	frame_hdr_t h = {.flags = flags, .type = type, .req_id = 77, .len = (uint32_t)b->len};

	err_clear(err);
	return msg_parse(m, &h, b->data, err);
}

/* Asserts the outcome of a parse: status and words the message must name. */
static void
check_outcome(const char *name, int rc, const err_t *err, int want, const char *w1, const char *w2)
{
	if (want == STB_OK) {
		if (rc != 0)
			fail_msg("%s: refused (%s: %s), want OK", name,
			         stb_status_name(err->status), err->msg);
		return;
	}
	if (rc != -1)
		fail_msg("%s: accepted, want %s", name, stb_status_name(want));
	if (err->status != want)
		fail_msg("%s: status %s (%s), want %s", name, stb_status_name(err->status),
		         err->msg, stb_status_name(want));
	if (w1 != NULL && strstr(err->msg, w1) == NULL)
		fail_msg("%s: message \"%s\" does not name \"%s\"", name, err->msg, w1);
	if (w2 != NULL && strstr(err->msg, w2) == NULL)
		fail_msg("%s: message \"%s\" does not name \"%s\"", name, err->msg, w2);
}

/* ---- a table of hand-written messages ---- */

struct tv {
	uint16_t type;
	const char *v;
	size_t n;
};
#define TV(t, lit)                                                                                 \
	{                                                                                          \
		(t), (lit), sizeof(lit) - 1                                                        \
	}
#define U64_ONE "\x00\x00\x00\x00\x00\x00\x00\x01"
#define MAC31   "0123456789abcdef0123456789abcde"
#define MAC32   MAC31 "f"

struct parse_case {
	const char *name;
	uint16_t type;
	uint8_t flags;
	int want;
	const char *w1, *w2;
	struct tv tlv[4];
};

static const struct parse_case parse_cases[] = {
    {"PING request, no TLV", STB_MSG_PING, REQ, STB_OK, NULL, NULL, {{0}}},
    {"PING request with PAYLOAD",
     STB_MSG_PING,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_PAYLOAD, "hello")}},
    {"PING request with empty PAYLOAD",
     STB_MSG_PING,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_PAYLOAD, "")}},
    {"PING response echoes PAYLOAD",
     STB_MSG_PING,
     RSP,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_PAYLOAD, "hello")}},
    {"OK response may carry STATUS",
     STB_MSG_PING,
     RSP,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x00")}},
    {"PING push", STB_MSG_PING, PUSH, STB_OK, NULL, NULL, {TV(STB_TLV_PAYLOAD, "x")}},
    {"unknown message type", 0x7777, REQ, STB_UNSUPPORTED, "0x7777", NULL, {{0}}},
    {"unknown message type in admin range", 0x0f7f, RSP, STB_UNSUPPORTED, "0x0f7f", NULL, {{0}}},
    {"unknown critical TLV",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "0x0123",
     "PING",
     {TV(0x0123, "x")}},
    {"unknown critical TLV after a good one",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "0x7fff",
     NULL,
     {TV(STB_TLV_PAYLOAD, "a"), TV(0x7fff, "")}},
    {"unknown ignorable TLV is skipped",
     STB_MSG_PING,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(0x8123, "zz"), TV(STB_TLV_PAYLOAD, "a")}},
    {"unknown ignorable TLV twice",
     STB_MSG_PING,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(0xffff, ""), TV(0xffff, "a")}},
    {"known TLV not allowed in PING",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "NOTE_TEXT",
     "PING",
     {TV(STB_TLV_NOTE_TEXT, "x")}},
    {"response TLV in a request",
     STB_MSG_ADMIN_AUDIT_NOTE,
     REQ,
     STB_BAD_REQUEST,
     "AUDIT_SEQ",
     "request",
     {TV(STB_TLV_NOTE_TEXT, "x"), TV(STB_TLV_AUDIT_SEQ, U64_ONE)}},
    {"request TLV in a response",
     STB_MSG_ADMIN_AUDIT_NOTE,
     RSP,
     STB_BAD_REQUEST,
     "NOTE_TEXT",
     "response",
     {TV(STB_TLV_AUDIT_SEQ, U64_ONE), TV(STB_TLV_NOTE_TEXT, "x")}},
    {"STATUS in a request",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "STATUS",
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x00")}},
    {"ERROR_TEXT in a request",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "ERROR_TEXT",
     NULL,
     {TV(STB_TLV_ERROR_TEXT, "x")}},
    {"duplicate PAYLOAD",
     STB_MSG_PING,
     REQ,
     STB_BAD_REQUEST,
     "duplicate",
     "PAYLOAD",
     {TV(STB_TLV_PAYLOAD, "a"), TV(STB_TLV_PAYLOAD, "b")}},
    {"duplicate empty PAYLOAD",
     STB_MSG_PING,
     RSP,
     STB_BAD_REQUEST,
     "duplicate",
     "PAYLOAD",
     {TV(STB_TLV_PAYLOAD, ""), TV(0x8001, ""), TV(STB_TLV_PAYLOAD, "")}},
    {"missing required NOTE_TEXT",
     STB_MSG_ADMIN_AUDIT_NOTE,
     REQ,
     STB_BAD_REQUEST,
     "NOTE_TEXT",
     "ADMIN_AUDIT_NOTE",
     {{0}}},
    {"required NOTE_TEXT present",
     STB_MSG_ADMIN_AUDIT_NOTE,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_NOTE_TEXT, "rotated keys")}},
    {"missing required AUDIT_SEQ in response",
     STB_MSG_ADMIN_AUDIT_NOTE,
     RSP,
     STB_BAD_REQUEST,
     "AUDIT_SEQ",
     "response",
     {{0}}},
    {"U16 STATUS of 1 byte",
     STB_MSG_PING,
     ERR,
     STB_BAD_REQUEST,
     "STATUS",
     "2 bytes",
     {TV(STB_TLV_STATUS, "\x05")}},
    {"U16 STATUS of 3 bytes",
     STB_MSG_PING,
     ERR,
     STB_BAD_REQUEST,
     "STATUS",
     "2 bytes",
     {TV(STB_TLV_STATUS, "\x00\x00\x05")}},
    {"U16 STATUS of 0 bytes",
     STB_MSG_PING,
     RSP,
     STB_BAD_REQUEST,
     "STATUS",
     "2 bytes",
     {TV(STB_TLV_STATUS, "")}},
    {"U64 AUDIT_SEQ of 4 bytes",
     STB_MSG_ADMIN_AUDIT_EXPORT,
     REQ,
     STB_BAD_REQUEST,
     "AUDIT_SEQ",
     "8 bytes",
     {TV(STB_TLV_AUDIT_SEQ, "\x00\x00\x00\x01")}},
    {"U64 AUDIT_SEQ of 9 bytes",
     STB_MSG_ADMIN_AUDIT_EXPORT,
     REQ,
     STB_BAD_REQUEST,
     "AUDIT_SEQ",
     "8 bytes",
     {TV(STB_TLV_AUDIT_SEQ, U64_ONE "\x00")}},
    {"U32 AUDIT_LIMIT of 8 bytes",
     STB_MSG_ADMIN_AUDIT_EXPORT,
     REQ,
     STB_BAD_REQUEST,
     "AUDIT_LIMIT",
     "4 bytes",
     {TV(STB_TLV_AUDIT_LIMIT, U64_ONE)}},
    {"U64 and U32 of the right widths",
     STB_MSG_ADMIN_AUDIT_EXPORT,
     REQ,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_AUDIT_SEQ, U64_ONE), TV(STB_TLV_AUDIT_LIMIT, "\x00\x00\x00\x10")}},
    {"BYTES AUDIT_HEAD of 31 bytes",
     STB_MSG_ADMIN_AUDIT_VERIFY,
     RSP,
     STB_BAD_REQUEST,
     "AUDIT_HEAD",
     "length 31",
     {TV(STB_TLV_AUDIT_COUNT, U64_ONE), TV(STB_TLV_AUDIT_HEAD, MAC31)}},
    {"BYTES AUDIT_HEAD of 32 bytes",
     STB_MSG_ADMIN_AUDIT_VERIFY,
     RSP,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_AUDIT_COUNT, U64_ONE), TV(STB_TLV_AUDIT_HEAD, MAC32)}},
    {"STRING with NUL",
     STB_MSG_ADMIN_AUDIT_NOTE,
     REQ,
     STB_BAD_REQUEST,
     "NOTE_TEXT",
     "NUL",
     {TV(STB_TLV_NOTE_TEXT, "a\0b")}},
    {"STRING below its minimum",
     STB_MSG_ADMIN_AUDIT_NOTE,
     REQ,
     STB_BAD_REQUEST,
     "NOTE_TEXT",
     "length 0",
     {TV(STB_TLV_NOTE_TEXT, "")}},
    {"error response: STATUS and ERROR_TEXT",
     STB_MSG_PING,
     ERR,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x05"), TV(STB_TLV_ERROR_TEXT, "no such device")}},
    {"error response: STATUS alone, no RSP fields needed",
     STB_MSG_ADMIN_STATS,
     ERR,
     STB_OK,
     NULL,
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x04")}},
    {"error response without STATUS",
     STB_MSG_ADMIN_AUDIT_NOTE,
     ERR,
     STB_BAD_REQUEST,
     "STATUS",
     NULL,
     {TV(STB_TLV_ERROR_TEXT, "oops")}},
    {"error response with PAYLOAD",
     STB_MSG_PING,
     ERR,
     STB_BAD_REQUEST,
     "PAYLOAD",
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x01"), TV(STB_TLV_PAYLOAD, "x")}},
    {"error response with a RSP field",
     STB_MSG_ADMIN_AUDIT_NOTE,
     ERR,
     STB_BAD_REQUEST,
     "AUDIT_SEQ",
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x01"), TV(STB_TLV_AUDIT_SEQ, U64_ONE)}},
    {"error response with an ignorable TLV",
     STB_MSG_PING,
     ERR,
     STB_OK,
     NULL,
     NULL,
     {TV(0x8abc, "future"), TV(STB_TLV_STATUS, "\x00\x01")}},
    {"error response with ERROR_TEXT not UTF-8",
     STB_MSG_PING,
     ERR,
     STB_BAD_REQUEST,
     "ERROR_TEXT",
     NULL,
     {TV(STB_TLV_STATUS, "\x00\x01"), TV(STB_TLV_ERROR_TEXT, "\xff")}},
    {"duplicate STATUS in an error response",
     STB_MSG_PING,
     ERR,
     STB_BAD_REQUEST,
     "duplicate",
     "STATUS",
     {TV(STB_TLV_STATUS, "\x00\x01"), TV(STB_TLV_STATUS, "\x00\x01")}},
};

static void
build(buf_t *b, const struct tv *tlv, size_t n)
{
	buf_init(b, 1 << 20);
	for (size_t i = 0; i < n && tlv[i].type != 0; i++)
		assert_int_equal(tlv_put(b, tlv[i].type, tlv[i].v, tlv[i].n), 0);
}

static void
test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_NELEM(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		msg_t m;
		err_t err;
		buf_t b;
		int rc;
		build(&b, c->tlv, TU_NELEM(c->tlv));
		rc = parse(&m, c->type, c->flags, &b, &err);
		check_outcome(c->name, rc, &err, c->want, c->w1, c->w2);
		if (rc == 0) {
			assert_int_equal(m.type, c->type);
			assert_int_equal(m.flags, c->flags);
			assert_int_equal(m.req_id, 77);
			assert_int_equal(m.midx, proto_msg_index(c->type));
		}
		buf_free(&b);
	}
}

static void
test_parse_utf8(void **state)
{
	static const struct {
		const char *name;
		const char *s;
		size_t n;
		int ok;
	} cases[] = {
#define U(name, lit, ok) {name, lit, sizeof(lit) - 1, ok}
	    U("ASCII", "rotated keys", 1),
	    U("2, 3 and 4 byte forms", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 1),
	    U("U+D7FF below the surrogates", "\xed\x9f\xbf", 1),
	    U("U+E000 above the surrogates", "\xee\x80\x80", 1),
	    U("U+FFFF", "\xef\xbf\xbf", 1),
	    U("U+10FFFF", "\xf4\x8f\xbf\xbf", 1),
	    U("overlong 2-byte '/'", "\xc0\xaf", 0),
	    U("overlong 2-byte U+007F", "\xc1\xbf", 0),
	    U("overlong 3-byte '/'", "\xe0\x80\xaf", 0),
	    U("overlong 3-byte U+07FF", "\xe0\x9f\xbf", 0),
	    U("overlong 4-byte '/'", "\xf0\x80\x80\xaf", 0),
	    U("overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf", 0),
	    U("high surrogate U+D800", "\xed\xa0\x80", 0),
	    U("low surrogate U+DFFF", "\xed\xbf\xbf", 0),
	    U("past U+10FFFF", "\xf4\x90\x80\x80", 0),
	    U("lead byte F5", "\xf5\x80\x80\x80", 0),
	    U("5-byte form", "\xf8\x88\x80\x80\x80", 0),
	    U("byte FF", "ok\xff", 0),
	    U("lone continuation byte", "\x80", 0),
	    U("truncated 2-byte sequence", "\xc3", 0),
	    U("truncated 3-byte sequence at the end", "ab\xe2\x82", 0),
	    U("truncated 4-byte sequence", "\xf0\x9f\x98", 0),
	    U("bad continuation in 3-byte", "\xe2\x28\xa1", 0),
	    U("ASCII where a continuation belongs", "\xc3(", 0),
	    U("NUL alone", "\0", 0),
	    U("NUL in the middle", "a\0b", 0),
#undef U
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		struct tv tlv[1] = {{STB_TLV_NOTE_TEXT, cases[i].s, cases[i].n}};
		msg_t m;
		err_t err;
		buf_t b;
		int rc;
		build(&b, tlv, 1);
		rc = parse(&m, STB_MSG_ADMIN_AUDIT_NOTE, REQ, &b, &err);
		check_outcome(cases[i].name, rc, &err, cases[i].ok ? STB_OK : STB_BAD_REQUEST,
		              "NOTE_TEXT", "UTF-8");
		buf_free(&b);
	}
}

/* A body of n bytes 'x' in TLV type, inside message type/flags. */
static int
parse_filled(uint16_t msgtype, uint8_t flags, uint16_t type, size_t n, msg_t *m, err_t *err)
{
	static char fill[20000];
	buf_t b;
	int rc;

	memset(fill, 'x', sizeof(fill));
	assert_true(n <= sizeof(fill));
	buf_init(&b, 1 << 20);
	if (flags & STB_FRAME_F_ERROR)
		assert_int_equal(tlv_put_u16(&b, STB_TLV_STATUS, STB_INTERNAL), 0);
	assert_int_equal(tlv_put(&b, type, fill, n), 0);
	rc = parse(m, msgtype, flags, &b, err);
	buf_free(&b);
	return rc;
}

static void
test_parse_length_limits(void **state)
{
	static const struct {
		const char *name;
		uint16_t msg;
		uint8_t flags;
		uint16_t tlv;
		const char *tlvname;
		size_t max;
	} cases[] = {
	    {"NOTE_TEXT", STB_MSG_ADMIN_AUDIT_NOTE, REQ, STB_TLV_NOTE_TEXT, "NOTE_TEXT", 1024},
	    {"ERROR_TEXT", STB_MSG_PING, ERR, STB_TLV_ERROR_TEXT, "ERROR_TEXT", 512},
	    {"PAYLOAD", STB_MSG_PING, REQ, STB_TLV_PAYLOAD, "PAYLOAD", 16384},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		char what[64], len[32];
		msg_t m;
		err_t err;
		int rc;
		rc = parse_filled(cases[i].msg, cases[i].flags, cases[i].tlv, cases[i].max, &m,
		                  &err);
		snprintf(what, sizeof(what), "%s at its maximum", cases[i].name);
		check_outcome(what, rc, &err, STB_OK, NULL, NULL);
		rc = parse_filled(cases[i].msg, cases[i].flags, cases[i].tlv, cases[i].max + 1, &m,
		                  &err);
		snprintf(what, sizeof(what), "%s one over its maximum", cases[i].name);
		snprintf(len, sizeof(len), "length %zu", cases[i].max + 1);
		check_outcome(what, rc, &err, STB_BAD_REQUEST, cases[i].tlvname, len);
	}
}

static void
test_parse_broken_tlv_stream(void **state)
{
	static const struct {
		const char *name;
		const char *body;
		size_t n;
		const char *word;
	} cases[] = {
	    {"3 bytes of a TLV header", "\x00\x03\x00", 3, "truncated"},
	    {"good TLV, then 5 header bytes",
	     "\x00\x03\x00\x00\x00\x00"
	     "\x00\x03\x00\x00\x00",
	     11, "truncated"},
	    {"length past the body",
	     "\x00\x03\x00\x00\x00\x09"
	     "abc",
	     9, "past the body"},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		frame_hdr_t h = {
		    .flags = 0, .type = STB_MSG_PING, .req_id = 1, .len = (uint32_t)cases[i].n};
		msg_t m;
		err_t err;
		int rc = msg_parse(&m, &h, (const uint8_t *)cases[i].body, &err);
		check_outcome(cases[i].name, rc, &err, STB_BAD_REQUEST, cases[i].word, "PING");
	}
}

/* ---- registry-driven checks ---- */

/* Appends a valid value for TLV tix; integers carry seed in their last byte. */
static void
put_valid(buf_t *b, int tix, uint8_t seed)
{
	const proto_tlv_t *t = &proto_tlvs[tix];
	uint8_t v[256];
	size_t n;

	memset(v, 0, sizeof(v));
	switch (t->kind) {
	case TK_U8:
		n = 1;
		break;
	case TK_U16:
		n = 2;
		break;
	case TK_U32:
		n = 4;
		break;
	case TK_U64:
		n = 8;
		break;
	default:
		n = t->min > 0 ? t->min : 1;
		assert_true(n <= t->max && n <= sizeof(v));
		memset(v, 'a', n);
		break;
	}
	if (t->kind <= TK_U64)
		v[n - 1] = seed;
	assert_int_equal(tlv_put(b, t->num, v, n), 0);
}

static void
put_required(buf_t *b, int midx, int dir, int skip)
{
	for (size_t i = 0; i < proto_nfields; i++) {
		const proto_field_t *f = &proto_fields[i];
		if (f->msg == midx && f->dir == dir && f->required && f->tlv != skip)
			put_valid(b, f->tlv, 1);
	}
}

static int
field_of(int midx, int dir, int tix)
{
	for (size_t i = 0; i < proto_nfields; i++)
		if (proto_fields[i].msg == midx && proto_fields[i].dir == dir &&
		    proto_fields[i].tlv == tix)
			return (int)i;
	return -1;
}

/* Every (message, direction, TLV): allowed exactly where the registry says
 * (plus STATUS in every response); every required TLV missing is refused. */
static void
test_parse_every_registry_rule(void **state)
{
	(void)state;
	for (int mi = 0; mi < MSG_IX_COUNT; mi++)
		for (int dir = MSG_DIR_REQ; dir <= MSG_DIR_RSP; dir++) {
			uint8_t flags = dir == MSG_DIR_RSP ? RSP : REQ;
			char what[160];
			msg_t m;
			err_t err;
			buf_t b;
			int rc;

			buf_init(&b, 1 << 20);
			put_required(&b, mi, dir, -1);
			rc = parse(&m, proto_msgs[mi].num, flags, &b, &err);
			snprintf(what, sizeof(what), "%s %s with its required TLVs",
			         proto_msgs[mi].name, dir ? "response" : "request");
			check_outcome(what, rc, &err, STB_OK, NULL, NULL);
			buf_free(&b);

			for (int ti = 0; ti < TLV_IX_COUNT; ti++) {
				int fi = field_of(mi, dir, ti);
				int allowed =
				    fi >= 0 || (dir == MSG_DIR_RSP && ti == TLV_IX_STATUS);

				buf_init(&b, 1 << 20);
				put_required(&b, mi, dir, ti);
				if (fi >= 0 && proto_fields[fi].required) {
					rc = parse(&m, proto_msgs[mi].num, flags, &b, &err);
					snprintf(what, sizeof(what), "%s %s without %s",
					         proto_msgs[mi].name, dir ? "response" : "request",
					         proto_tlvs[ti].name);
					check_outcome(what, rc, &err, STB_BAD_REQUEST,
					              proto_tlvs[ti].name, "lacks");
					buf_free(&b);
					continue;
				}
				put_valid(&b, ti, 1);
				rc = parse(&m, proto_msgs[mi].num, flags, &b, &err);
				snprintf(what, sizeof(what), "%s in %s %s", proto_tlvs[ti].name,
				         proto_msgs[mi].name, dir ? "response" : "request");
				check_outcome(what, rc, &err, allowed ? STB_OK : STB_BAD_REQUEST,
				              allowed ? NULL : proto_tlvs[ti].name,
				              allowed ? NULL : "not allowed");
				if (rc == 0)
					assert_true(msg_has(&m, ti));
				buf_free(&b);
			}
		}
}

/* Every integer TLV reads back through its getter and only through it. */
static void
test_getters_every_integer_tlv(void **state)
{
	(void)state;
	for (int ti = 0; ti < TLV_IX_COUNT; ti++) {
		const proto_tlv_t *t = &proto_tlvs[ti];
		int fi = -1, midx = MSG_IX_PING, dir = MSG_DIR_RSP;
		uint8_t flags = ERR, u8;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		msg_t m;
		err_t err;
		buf_t b;

		if (t->kind > TK_U64)
			continue;
		for (size_t i = 0; i < proto_nfields && fi < 0; i++)
			if (proto_fields[i].tlv == ti)
				fi = (int)i;
		if (fi >= 0) {
			midx = proto_fields[fi].msg;
			dir = proto_fields[fi].dir;
			flags = dir == MSG_DIR_RSP ? RSP : REQ;
		} else if (ti != TLV_IX_STATUS) {
			fail_msg("integer TLV %s is used by no message", t->name);
		}
		buf_init(&b, 1 << 20);
		if (flags != ERR)
			put_required(&b, midx, dir, ti);
		put_valid(&b, ti, 0x5a);
		if (parse(&m, proto_msgs[midx].num, flags, &b, &err) != 0)
			fail_msg("%s: %s", t->name, err.msg);
		assert_int_equal(msg_get_u8(&m, ti, &u8) == 0, t->kind == TK_U8);
		assert_int_equal(msg_get_u16(&m, ti, &u16) == 0, t->kind == TK_U16);
		assert_int_equal(msg_get_u32(&m, ti, &u32) == 0, t->kind == TK_U32);
		assert_int_equal(msg_get_u64(&m, ti, &u64) == 0, t->kind == TK_U64);
		switch (t->kind) {
		case TK_U8:
			assert_int_equal(u8, 0x5a);
			break;
		case TK_U16:
			assert_int_equal(u16, 0x5a);
			break;
		case TK_U32:
			assert_int_equal(u32, 0x5a);
			break;
		default:
			assert_int_equal(u64, 0x5a);
			break;
		}
		buf_free(&b);
	}
}

/* An ADMIN_STATS response with three MSG_COUNT entries among the others. */
static void
build_stats_response(buf_t *b)
{
	buf_init(b, 1 << 20);
	assert_int_equal(tlv_put_str(b, STB_TLV_DAEMON_NAME, "ca-authd"), 0);
	assert_int_equal(tlv_put(b, STB_TLV_MSG_COUNT, "\x00\x01\x00\x00\0\0\0\0\0\0\0\x07", 12),
	                 0);
	assert_int_equal(tlv_put_str(b, STB_TLV_VERSION_TEXT, "0.1.0"), 0);
	assert_int_equal(tlv_put_u64(b, STB_TLV_UPTIME_S, 0x0102030405060708ull), 0);
	assert_int_equal(tlv_put_u16(b, STB_TLV_WORKERS, 8), 0);
	assert_int_equal(tlv_put_u32(b, STB_TLV_CONNECTIONS, 70000), 0);
	assert_int_equal(tlv_put(b, STB_TLV_MSG_COUNT, "\x0f\x01\x00\x04\0\0\0\0\0\0\0\x02", 12),
	                 0);
	assert_int_equal(tlv_put_u64(b, STB_TLV_REQUESTS_TOTAL, 10), 0);
	assert_int_equal(tlv_put_u64(b, STB_TLV_ERRORS_TOTAL, 2), 0);
	assert_int_equal(tlv_put_u64(b, STB_TLV_STORE_COMMITS, 3), 0);
	assert_int_equal(tlv_put_u64(b, STB_TLV_STORE_WRITES, 4), 0);
	assert_int_equal(tlv_put_u32(b, STB_TLV_STORE_QUEUE, 0), 0);
	assert_int_equal(tlv_put(b, STB_TLV_MSG_COUNT, "\x00\x01\x00\x01\0\0\0\0\0\0\0\x01", 12),
	                 0);
}

static void
test_repeatable_msg_count(void **state)
{
	static const char *const want[] = {
	    "\x00\x01\x00\x00\0\0\0\0\0\0\0\x07",
	    "\x0f\x01\x00\x04\0\0\0\0\0\0\0\x02",
	    "\x00\x01\x00\x01\0\0\0\0\0\0\0\x01",
	};
	const uint8_t *p;
	size_t len, pos = 0;
	msg_t m;
	err_t err;
	buf_t b;

	(void)state;
	build_stats_response(&b);
	check_outcome("ADMIN_STATS response", parse(&m, STB_MSG_ADMIN_STATS, RSP, &b, &err), &err,
	              STB_OK, NULL, NULL);
	for (size_t i = 0; i < TU_NELEM(want); i++) {
		if (msg_next(&m, TLV_IX_MSG_COUNT, &pos, &p, &len) != 1)
			fail_msg("MSG_COUNT %zu not found", i);
		assert_int_equal(len, 12);
		assert_memory_equal(p, want[i], 12);
	}
	assert_int_equal(msg_next(&m, TLV_IX_MSG_COUNT, &pos, &p, &len), 0);
	/* msg_get_bytes gives the first occurrence */
	assert_int_equal(msg_get_bytes(&m, TLV_IX_MSG_COUNT, &p, &len), 0);
	assert_memory_equal(p, want[0], 12);
	/* a TLV that is absent iterates nothing */
	pos = 0;
	assert_int_equal(msg_next(&m, TLV_IX_AUDIT_RECORD, &pos, &p, &len), 0);
	buf_free(&b);

	/* a MSG_COUNT of the wrong size is refused */
	build_stats_response(&b);
	assert_int_equal(tlv_put(&b, STB_TLV_MSG_COUNT, "12345678901", 11), 0);
	check_outcome("MSG_COUNT of 11 bytes", parse(&m, STB_MSG_ADMIN_STATS, RSP, &b, &err), &err,
	              STB_BAD_REQUEST, "MSG_COUNT", "length 11");
	buf_free(&b);
}

static void
test_repeatable_audit_record(void **state)
{
	static const char *const rec[] = {"{\"seq\":1}", "{\"seq\":2}", "{\"seq\":3}"};
	const uint8_t *p;
	size_t len, pos = 0;
	msg_t m;
	err_t err;
	buf_t b;
	int n = 0;

	(void)state;
	buf_init(&b, 1 << 20);
	for (size_t i = 0; i < TU_NELEM(rec); i++) {
		assert_int_equal(tlv_put_str(&b, STB_TLV_AUDIT_RECORD, rec[i]), 0);
		assert_int_equal(tlv_put_str(&b, 0x8f00, "ignored"), 0);
	}
	check_outcome("export response", parse(&m, STB_MSG_ADMIN_AUDIT_EXPORT, RSP, &b, &err), &err,
	              STB_OK, NULL, NULL);
	while (msg_next(&m, TLV_IX_AUDIT_RECORD, &pos, &p, &len) == 1) {
		assert_true(n < 3);
		assert_int_equal(len, strlen(rec[n]));
		assert_memory_equal(p, rec[n], len);
		n++;
	}
	assert_int_equal(n, 3);
	buf_free(&b);

	/* each repeated value is validated, not only the first */
	buf_init(&b, 1 << 20);
	assert_int_equal(tlv_put_str(&b, STB_TLV_AUDIT_RECORD, rec[0]), 0);
	assert_int_equal(tlv_put(&b, STB_TLV_AUDIT_RECORD, "{\xc0\xaf}", 4), 0);
	check_outcome("second AUDIT_RECORD not UTF-8",
	              parse(&m, STB_MSG_ADMIN_AUDIT_EXPORT, RSP, &b, &err), &err, STB_BAD_REQUEST,
	              "AUDIT_RECORD", NULL);
	buf_free(&b);
}

static void
test_typed_getters(void **state)
{
	char name[16];
	const uint8_t *p;
	size_t len;
	uint64_t u64;
	uint32_t u32;
	uint16_t u16;
	uint8_t u8;
	msg_t m;
	err_t err;
	buf_t b;

	(void)state;
	build_stats_response(&b);
	assert_int_equal(parse(&m, STB_MSG_ADMIN_STATS, RSP, &b, &err), 0);
	assert_int_equal(msg_get_str(&m, TLV_IX_DAEMON_NAME, name, sizeof(name)), 0);
	assert_string_equal(name, "ca-authd");
	/* "ca-authd" needs 9 bytes with its NUL */
	memset(name, '#', sizeof(name));
	assert_int_equal(msg_get_str(&m, TLV_IX_DAEMON_NAME, name, 9), 0);
	assert_string_equal(name, "ca-authd");
	memset(name, '#', sizeof(name));
	assert_int_equal(msg_get_str(&m, TLV_IX_DAEMON_NAME, name, 8), -1);
	assert_int_equal(name[0], '#');
	assert_int_equal(msg_get_str(&m, TLV_IX_DAEMON_NAME, name, 0), -1);
	assert_int_equal(msg_get_u64(&m, TLV_IX_UPTIME_S, &u64), 0);
	assert_int_equal(u64, 0x0102030405060708ull);
	assert_int_equal(msg_get_u32(&m, TLV_IX_CONNECTIONS, &u32), 0);
	assert_int_equal(u32, 70000);
	assert_int_equal(msg_get_u16(&m, TLV_IX_WORKERS, &u16), 0);
	assert_int_equal(u16, 8);
	assert_int_equal(msg_get_bytes(&m, TLV_IX_VERSION_TEXT, &p, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "0.1.0", 5);
	/* absent TLVs and wrong widths give -1 */
	assert_false(msg_has(&m, TLV_IX_PAYLOAD));
	assert_int_equal(msg_get_bytes(&m, TLV_IX_PAYLOAD, &p, &len), -1);
	assert_int_equal(msg_get_str(&m, TLV_IX_NOTE_TEXT, name, sizeof(name)), -1);
	assert_int_equal(msg_get_u16(&m, TLV_IX_STATUS, &u16), -1);
	assert_int_equal(msg_get_u8(&m, TLV_IX_WORKERS, &u8), -1);
	assert_int_equal(msg_get_u16(&m, TLV_IX_UPTIME_S, &u16), -1);
	assert_int_equal(msg_get_u64(&m, TLV_IX_CONNECTIONS, &u64), -1);
	assert_false(msg_has(&m, -1));
	assert_false(msg_has(&m, TLV_IX_COUNT));
	/* an OK response without STATUS reads as OK */
	assert_int_equal(msg_status(&m), STB_OK);
	buf_free(&b);
}

static void
test_error_response_status(void **state)
{
	char text[64];
	msg_t m;
	err_t err;
	buf_t b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(tlv_put_u16(&b, STB_TLV_STATUS, STB_NOT_FOUND), 0);
	assert_int_equal(tlv_put_str(&b, STB_TLV_ERROR_TEXT, "no such device"), 0);
	assert_int_equal(parse(&m, STB_MSG_ADMIN_AUDIT_NOTE, ERR, &b, &err), 0);
	assert_int_equal(msg_status(&m), STB_NOT_FOUND);
	assert_int_equal(msg_get_str(&m, TLV_IX_ERROR_TEXT, text, sizeof(text)), 0);
	assert_string_equal(text, "no such device");
	buf_free(&b);
}

static void
test_check_role(void **state)
{
	static const struct {
		const char *name;
		uint16_t type;
		uint32_t roles;
		int want;
	} cases[] = {
	    {"ADMIN_STATS from admin", STB_MSG_ADMIN_STATS, STB_R_ADMIN, STB_OK},
	    {"ADMIN_STATS from admin and media-gw", STB_MSG_ADMIN_STATS,
	     STB_R_ADMIN | STB_R_MEDIA_GW, STB_OK},
	    {"ADMIN_STATS from media-gw", STB_MSG_ADMIN_STATS, STB_R_MEDIA_GW, STB_FORBIDDEN},
	    {"ADMIN_STATS from anonymous", STB_MSG_ADMIN_STATS, STB_R_ANONYMOUS, STB_FORBIDDEN},
	    {"ADMIN_STATS from no role", STB_MSG_ADMIN_STATS, 0, STB_FORBIDDEN},
	    {"ADMIN_AUDIT_NOTE from device", STB_MSG_ADMIN_AUDIT_NOTE, STB_R_DEVICE, STB_FORBIDDEN},
	    {"PING from anonymous", STB_MSG_PING, STB_R_ANONYMOUS, STB_OK},
	    {"PING from device", STB_MSG_PING, STB_R_DEVICE, STB_OK},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		msg_t m;
		err_t err;
		buf_t b;
		int rc;
		buf_init(&b, 1024);
		if (cases[i].type == STB_MSG_ADMIN_AUDIT_NOTE)
			assert_int_equal(tlv_put_str(&b, STB_TLV_NOTE_TEXT, "x"), 0);
		assert_int_equal(parse(&m, cases[i].type, REQ, &b, &err), 0);
		err_clear(&err);
		rc = msg_check_role(&m, cases[i].roles, &err);
		check_outcome(cases[i].name, rc, &err, cases[i].want,
		              cases[i].want ? proto_msg_name(cases[i].type) : NULL,
		              cases[i].want ? "admin" : NULL);
		buf_free(&b);
	}
}

static void
test_index_every_entry(void **state)
{
	static const uint16_t unknown[] = {0x0000, 0x0002, 0x00ff, 0x0f00, 0x0fff, 0x8001, 0xffff};

	(void)state;
	for (int i = 0; i < MSG_IX_COUNT; i++) {
		if (proto_msg_index(proto_msgs[i].num) != i)
			fail_msg("message %s (0x%04x) indexes to %d, want %d", proto_msgs[i].name,
			         proto_msgs[i].num, proto_msg_index(proto_msgs[i].num), i);
		assert_string_equal(proto_msg_name(proto_msgs[i].num), proto_msgs[i].name);
	}
	for (int i = 0; i < TLV_IX_COUNT; i++)
		if (proto_tlv_index(proto_tlvs[i].num) != i)
			fail_msg("TLV %s (0x%04x) indexes to %d, want %d", proto_tlvs[i].name,
			         proto_tlvs[i].num, proto_tlv_index(proto_tlvs[i].num), i);
	for (size_t i = 0; i < TU_NELEM(unknown); i++) {
		if (proto_msg_index(unknown[i]) >= 0 &&
		    proto_msgs[proto_msg_index(unknown[i])].num != unknown[i])
			fail_msg("0x%04x found as a wrong message", unknown[i]);
		if (proto_tlv_index(unknown[i]) >= 0 &&
		    proto_tlvs[proto_tlv_index(unknown[i])].num != unknown[i])
			fail_msg("0x%04x found as a wrong TLV", unknown[i]);
	}
	assert_int_equal(proto_msg_index(0x0000), -1);
	assert_int_equal(proto_msg_index(0xffff), -1);
	assert_int_equal(proto_tlv_index(0x0000), -1);
	assert_int_equal(proto_tlv_index(0xffff), -1);
	/* the enum constants and the tables agree */
	assert_int_equal(proto_msgs[MSG_IX_PING].num, STB_MSG_PING);
	assert_int_equal(proto_msgs[MSG_IX_ADMIN_STATS].num, STB_MSG_ADMIN_STATS);
	assert_int_equal(proto_tlvs[TLV_IX_STATUS].num, STB_TLV_STATUS);
	assert_int_equal(proto_tlvs[TLV_IX_ERROR_TEXT].num, STB_TLV_ERROR_TEXT);
	assert_int_equal(proto_tlvs[TLV_IX_PAYLOAD].num, STB_TLV_PAYLOAD);
}

static void
test_role_by_name(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t want;
	} cases[] = {
	    {"anonymous", 9, STB_R_ANONYMOUS},
	    {"ca-authd", 8, STB_R_CA_AUTHD},
	    {"media-gw", 8, STB_R_MEDIA_GW},
	    {"admin", 5, STB_R_ADMIN},
	    {"device", 6, STB_R_DEVICE},
	    {"app-platform", 12, STB_R_APP_PLATFORM},
	    {"adminX", 5, STB_R_ADMIN},
	    {"admin", 4, 0},
	    {"adminX", 6, 0},
	    {"ADMIN", 5, 0},
	    {"media_gw", 8, 0},
	    {"", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		uint32_t got = proto_role_by_name(cases[i].s, cases[i].len);
		if (got != cases[i].want)
			fail_msg("\"%.*s\": 0x%x, want 0x%x", (int)cases[i].len, cases[i].s, got,
			         cases[i].want);
	}
	for (int i = 0; i < ROLE_COUNT; i++)
		assert_int_equal(proto_role_by_name(proto_roles[i].uri, strlen(proto_roles[i].uri)),
		                 proto_roles[i].bit);
}

static void
test_roles_str(void **state)
{
	char out[160];
	char small[8];

	(void)state;
	proto_roles_str(STB_R_ADMIN, out, sizeof(out));
	assert_string_equal(out, "admin");
	proto_roles_str(STB_R_MEDIA_GW | STB_R_ADMIN, out, sizeof(out));
	assert_string_equal(out, "media-gw,admin");
	proto_roles_str(STB_R_ANY, out, sizeof(out));
	assert_string_equal(out, "any");
	proto_roles_str(0, out, sizeof(out));
	assert_string_equal(out, "");
	/* a short buffer stays NUL-terminated */
	memset(small, '#', sizeof(small));
	proto_roles_str(STB_R_CA_AUTHD | STB_R_ADMIN, small, sizeof(small));
	assert_non_null(memchr(small, '\0', sizeof(small)));
}

static void
test_status_names(void **state)
{
	static const struct {
		int code;
		const char *name;
	} want[] = {
	    {0, "OK"},          {1, "BAD_REQUEST"},  {2, "UNSUPPORTED"},  {3, "UNAUTHENTICATED"},
	    {4, "FORBIDDEN"},   {5, "NOT_FOUND"},    {6, "EXPIRED"},      {7, "REVOKED"},
	    {8, "CONFLICT"},    {9, "RATE_LIMITED"}, {10, "UNAVAILABLE"}, {11, "TIMEOUT"},
	    {12, "INTERNAL"},   {13, "TOO_LARGE"},   {14, "REPLAY"},      {15, "PENDING"},
	    {16, "SUPERSEDED"},
	};

	(void)state;
	/* codes are append-only: the published numbers never move */
	assert_int_equal(STATUS_COUNT, TU_NELEM(want));
	for (size_t i = 0; i < TU_NELEM(want); i++)
		assert_string_equal(stb_status_name(want[i].code), want[i].name);
	assert_int_equal(STB_NOT_FOUND, 5);
	assert_int_equal(STB_PENDING, 15);
	assert_string_equal(stb_status_name(17), "UNKNOWN");
	assert_string_equal(stb_status_name(-1), "UNKNOWN");
	assert_string_equal(stb_status_name(0x7fffffff), "UNKNOWN");
}

static void
test_registry_self_check(void **state)
{
	(void)state;
	/* DESIGN 3: these numbers are fixed */
	assert_int_equal(STB_MSG_PING, 0x0001);
	assert_int_equal(STB_TLV_STATUS, 0x0001);
	assert_int_equal(STB_TLV_ERROR_TEXT, 0x0002);
	assert_int_equal(STB_TLV_PAYLOAD, 0x0003);
	assert_int_equal(proto_tlvs[TLV_IX_STATUS].kind, TK_U16);
	assert_int_equal(proto_tlvs[TLV_IX_ERROR_TEXT].kind, TK_STRING);
	assert_int_equal(proto_tlvs[TLV_IX_ERROR_TEXT].max, 512);
	assert_int_equal(proto_tlvs[TLV_IX_PAYLOAD].kind, TK_BYTES);

	for (int i = 0; i < MSG_IX_COUNT; i++) {
		for (int k = 0; k < i; k++)
			if (proto_msgs[i].num == proto_msgs[k].num)
				fail_msg("messages %s and %s share 0x%04x", proto_msgs[i].name,
				         proto_msgs[k].name, proto_msgs[i].num);
		if (proto_msgs[i].num == 0 || proto_msgs[i].roles == 0)
			fail_msg("message %s: number 0 or no sender role", proto_msgs[i].name);
	}
	for (int i = 0; i < TLV_IX_COUNT; i++) {
		const proto_tlv_t *t = &proto_tlvs[i];
		for (int k = 0; k < i; k++)
			if (t->num == proto_tlvs[k].num)
				fail_msg("TLVs %s and %s share 0x%04x", t->name, proto_tlvs[k].name,
				         t->num);
		if (t->min > t->max || t->kind > TK_ID)
			fail_msg("TLV %s: bad kind or bounds", t->name);
		if (t->kind == TK_ID && (t->min < 1 || t->max > STB_ID_MAX))
			fail_msg("TLV %s: identifier bounds outside 1..%d", t->name, STB_ID_MAX);
		if (t->num & STB_TLV_F_IGNORABLE)
			fail_msg("TLV %s: a known TLV with the ignorable bit", t->name);
	}
	for (size_t i = 0; i < proto_nfields; i++) {
		const proto_field_t *f = &proto_fields[i];
		if (f->msg < 0 || f->msg >= MSG_IX_COUNT || f->tlv < 0 || f->tlv >= TLV_IX_COUNT ||
		    (f->dir != MSG_DIR_REQ && f->dir != MSG_DIR_RSP))
			fail_msg("field %zu refers outside the registry", i);
		for (size_t k = 0; k < i; k++)
			if (proto_fields[k].msg == f->msg && proto_fields[k].dir == f->dir &&
			    proto_fields[k].tlv == f->tlv)
				fail_msg("field %s %s %s listed twice", proto_msgs[f->msg].name,
				         f->dir ? "RSP" : "REQ", proto_tlvs[f->tlv].name);
		/* error-only TLVs are implicit, never listed */
		if (f->tlv == TLV_IX_STATUS || f->tlv == TLV_IX_ERROR_TEXT)
			fail_msg("field %s lists %s", proto_msgs[f->msg].name,
			         proto_tlvs[f->tlv].name);
	}
	for (int i = 0; i < ROLE_COUNT; i++)
		for (int k = 0; k < i; k++)
			if (proto_roles[i].bit == proto_roles[k].bit ||
			    strcmp(proto_roles[i].uri, proto_roles[k].uri) == 0)
				fail_msg("roles %s and %s collide", proto_roles[i].uri,
				         proto_roles[k].uri);
	assert_string_equal(proto_tlv_kind_name(TK_U16), "u16");
	assert_string_equal(proto_tlv_kind_name(TK_ID), "id");
	assert_string_equal(proto_tlv_kind_name(99), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_parse_utf8),
	    cmocka_unit_test(test_parse_length_limits),
	    cmocka_unit_test(test_parse_broken_tlv_stream),
	    cmocka_unit_test(test_parse_every_registry_rule),
	    cmocka_unit_test(test_getters_every_integer_tlv),
	    cmocka_unit_test(test_repeatable_msg_count),
	    cmocka_unit_test(test_repeatable_audit_record),
	    cmocka_unit_test(test_typed_getters),
	    cmocka_unit_test(test_error_response_status),
	    cmocka_unit_test(test_check_role),
	    cmocka_unit_test(test_index_every_entry),
	    cmocka_unit_test(test_role_by_name),
	    cmocka_unit_test(test_roles_str),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_registry_self_check),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
