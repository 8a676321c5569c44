/*
 * rdv_client: a test device for rendezvousd over the internal client API.
 *
 *   rdv_client ADDR CA register ID USER PASS ENDPOINT
 *   rdv_client ADDR CA device   ID USER PASS ENDPOINT [mute|refuse]
 *   rdv_client ADDR CA connect  ID USER PASS ENDPOINT TARGET...
 *   rdv_client unwrap SALT N R P PASS SID CALLER TARGET WRAPPED
 *
 * "device" registers, answers heartbeats (unless mute; refuse answers each
 * server heartbeat with FORBIDDEN, declining any session), sends its own, and
 * prints each SESSION_OFFER with the code it unwraps; "connect" registers
 * and asks for a session with each TARGET in turn.  Hex on stdout, one line
 * per event; the exit status is 0 when everything asked for was OK.  The
 * enrolment code, when there is one, comes from enrolcode.h.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codewrap.h"
#include "enrolcode.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

typedef struct dev {
	stb_client_t *c;
	const char *id, *user, *pass, *endpoint;
	int mute;
	int refuse;
	uint8_t key[RDV_KEY_LEN];
} rdvdev_t;

static void
print_err(const stb_error_t *err)
{
	printf("%s %s\n", stb_status_name(err->status), err->message);
	fflush(stdout);
}

/* A request this client could not encode (msgenc.h): said like an answer. */
static int
print_enc(const err_t *e)
{
	printf("%s (not sent) %s\n", stb_status_name(e->status), e->msg);
	fflush(stdout);
	return -1;
}

static void
on_offer(rdvdev_t *v, const msg_t *m)
{
	const uint8_t *sid, *w;
	size_t sl, wl;
	char caller[STB_ID_MAX + 1] = "", caddr[16] = "", sh[33], wh[2 * RDV_WRAP_LEN + 1],
	                         ch[65] = "-";
	uint8_t code[RDV_CODE_LEN];

	msg_get_bytes(m, TLV_IX_RDV_SESSION_ID, &sid, &sl);
	msg_get_bytes(m, TLV_IX_RDV_WRAPPED_CODE, &w, &wl);
	msg_get_str(m, TLV_IX_RDV_CALLER_ID, caller, sizeof(caller));
	msg_get_str(m, TLV_IX_RDV_CALLER_ADDR, caddr, sizeof(caddr));
	hex_encode(sid, sl, sh);
	hex_encode(w, wl, wh);
	if (rdv_unwrap(v->key, sid, caller, v->id, w, code) == 0)
		hex_encode(code, sizeof(code), ch);
	OPENSSL_cleanse(code, sizeof(code));
	printf("offer sid=%s caller=%s caller_addr=%s code=%s wrapped=%s\n", sh, caller, caddr, ch,
	       wh);
	fflush(stdout);
}

/* A push: answer a heartbeat (unless mute), take an offer. */
static int
on_push(rdvdev_t *v, const msg_t *m)
{
	stb_error_t err;

	if (m->type == STB_MSG_RDV_SESSION_OFFER)
		on_offer(v, m);
	if (v->mute)
		return 0;
	if (v->refuse && m->type == STB_MSG_RDV_HEARTBEAT) {
		buf_t b;
		int rc;

		buf_init(&b, 64);
		tlv_put_u16(&b, STB_TLV_STATUS, STB_FORBIDDEN);
		tlv_put_str(&b, STB_TLV_ERROR_TEXT, "busy");
		rc = stbc_send(v->c, m->type, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, m->req_id,
		               &b, &err);
		buf_free(&b);
		printf("refused a heartbeat\n");
		fflush(stdout);
		return rc;
	}
	return stbc_send(v->c, m->type, STB_FRAME_F_RESPONSE, m->req_id, NULL, &err);
}

static int
push_cb(void *arg, const msg_t *m, stb_error_t *err)
{
	(void)err;
	return on_push(arg, m);
}

/* A request whose answer may come after pushes. */
static int
call(rdvdev_t *v, uint16_t type, const buf_t *tlvs, msg_t *m, stb_error_t *err)
{
	return stbc_call_pushes(v->c, type, tlvs, m, 15000, push_cb, v, err);
}

static int
dev_register(rdvdev_t *v)
{
	const uint8_t *salt;
	size_t sl;
	uint64_t n = 0;
	uint32_t r = 0, p = 0;
	char addr[16] = "", sh[129], code[80];
	stb_error_t err;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_RDV_REGISTER q = {.RDV_DEVICE_ID = MV_STR(v->id),
	                                .RDV_USERNAME = MV_STR(v->user),
	                                .RDV_PASSWORD = MV_STR(v->pass),
	                                .RDV_ENDPOINT = MV_STR(v->endpoint)};
	if (test_enrol_code(v->id, code, sizeof(code)) == 0)
		q.RDV_ENROL_CODE = MV_STR(code);
	buf_init(&b, 1024);
	rc = msgenc_RDV_REGISTER(&b, &q, &e);
	OPENSSL_cleanse(code, sizeof(code));
	if (rc == -1) {
		buf_wipe(&b);
		return print_enc(&e);
	}
	rc = call(v, STB_MSG_RDV_REGISTER, &b, &m, &err);
	buf_wipe(&b);
	if (rc == -1) {
		print_err(&err);
		return -1;
	}
	msg_get_str(&m, TLV_IX_RDV_OVERLAY_ADDR, addr, sizeof(addr));
	msg_get_bytes(&m, TLV_IX_RDV_KDF_SALT, &salt, &sl);
	msg_get_u64(&m, TLV_IX_RDV_KDF_N, &n);
	msg_get_u32(&m, TLV_IX_RDV_KDF_R, &r);
	msg_get_u32(&m, TLV_IX_RDV_KDF_P, &p);
	hex_encode(salt, sl, sh);
	if (rdv_kdf_derive(v->pass, strlen(v->pass), salt, sl, n, r, p, v->key) == -1) {
		printf("INTERNAL cannot derive the key\n");
		return -1;
	}
	printf("registered overlay=%s salt=%s n=%llu r=%u p=%u\n", addr, sh, (unsigned long long)n,
	       r, p);
	fflush(stdout);
	return 0;
}

static int
dev_loop(rdvdev_t *v)
{
	time_t next_hb = time(NULL) + 1;
	stb_error_t err;
	msg_t m;

	for (;;) {
		int rc = stbc_read(v->c, 200, &m, &err);
		if (rc == -1) {
			printf("closed %s\n", err.message);
			fflush(stdout);
			return 0;
		}
		if (rc == 0 && (m.flags & STB_FRAME_F_PUSH) && on_push(v, &m) == -1)
			continue;
		if (!v->mute && time(NULL) >= next_hb) {
			next_hb = time(NULL) + 1;
			stbc_send(v->c, STB_MSG_RDV_HEARTBEAT, 0, ++v->c->next_id, NULL, &err);
		}
	}
}

static int
dev_connect(rdvdev_t *v, const char *target)
{
	const uint8_t *sid, *w;
	size_t sl, wl;
	char ep[263] = "", addr[16] = "", sh[33], wh[2 * RDV_WRAP_LEN + 1], ch[65] = "-";
	uint8_t code[RDV_CODE_LEN];
	stb_error_t err;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_RDV_CONNECT_REQ q = {.RDV_TARGET_ID = MV_STR(target)};
	buf_init(&b, 256);
	if (msgenc_RDV_CONNECT_REQ(&b, &q, &e) == -1) {
		buf_free(&b);
		return print_enc(&e);
	}
	rc = call(v, STB_MSG_RDV_CONNECT_REQ, &b, &m, &err);
	buf_free(&b);
	if (rc == -1) {
		print_err(&err);
		return -1;
	}
	msg_get_bytes(&m, TLV_IX_RDV_SESSION_ID, &sid, &sl);
	msg_get_bytes(&m, TLV_IX_RDV_WRAPPED_CODE, &w, &wl);
	msg_get_str(&m, TLV_IX_RDV_ENDPOINT, ep, sizeof(ep));
	msg_get_str(&m, TLV_IX_RDV_OVERLAY_ADDR, addr, sizeof(addr));
	hex_encode(sid, sl, sh);
	hex_encode(w, wl, wh);
	if (rdv_unwrap(v->key, sid, v->id, target, w, code) == 0)
		hex_encode(code, sizeof(code), ch);
	OPENSSL_cleanse(code, sizeof(code));
	printf("session sid=%s target=%s endpoint=%s overlay=%s code=%s wrapped=%s\n", sh, target,
	       ep, addr, ch, wh);
	fflush(stdout);
	return 0;
}

static int
cmd_unwrap(char **a)
{
	uint8_t salt[64], sid[RDV_SID_LEN], w[RDV_WRAP_LEN], key[RDV_KEY_LEN], code[RDV_CODE_LEN];
	size_t sl, il, wl;
	char ch[65];

	if (hex_decode(a[0], strlen(a[0]), salt, sizeof(salt), &sl) == -1 ||
	    hex_decode(a[5], strlen(a[5]), sid, sizeof(sid), &il) == -1 || il != RDV_SID_LEN ||
	    hex_decode(a[8], strlen(a[8]), w, sizeof(w), &wl) == -1 || wl != RDV_WRAP_LEN ||
	    rdv_kdf_derive(a[4], strlen(a[4]), salt, sl, strtoull(a[1], NULL, 10),
	                   (uint32_t)atoi(a[2]), (uint32_t)atoi(a[3]), key) == -1) {
		printf("BAD_REQUEST bad arguments\n");
		return 2;
	}
	if (rdv_unwrap(key, sid, a[6], a[7], w, code) == -1) {
		printf("FAIL\n");
		return 1;
	}
	hex_encode(code, sizeof(code), ch);
	printf("%s\n", ch);
	return 0;
}

int
main(int argc, char **argv)
{
	rdvdev_t v;
	stb_error_t err;
	int rc = 0;

	if (argc == 11 && strcmp(argv[1], "unwrap") == 0)
		return cmd_unwrap(argv + 2);
	if (argc < 8) {
		fprintf(stderr, "usage: see the comment at the top of rdv_client.c\n");
		return 2;
	}
	memset(&v, 0, sizeof(v));
	v.id = argv[4];
	v.user = argv[5];
	v.pass = argv[6];
	v.endpoint = argv[7];
	v.mute = argc > 8 && strcmp(argv[3], "device") == 0 && strcmp(argv[8], "mute") == 0;
	v.refuse = argc > 8 && strcmp(argv[3], "device") == 0 && strcmp(argv[8], "refuse") == 0;
	if (stb_client_new(&v.c, &err) == -1 || stb_client_set_ca_file(v.c, argv[2], &err) == -1 ||
	    stb_connect_addr(v.c, argv[1], &err) == -1) {
		print_err(&err);
		stb_client_free(v.c);
		return 1;
	}
	if (dev_register(&v) == -1)
		rc = 3;
	else if (strcmp(argv[3], "device") == 0)
		rc = dev_loop(&v);
	else if (strcmp(argv[3], "connect") == 0)
		for (int i = 8; i < argc; i++)
			if (dev_connect(&v, argv[i]) == -1)
				rc = 3;
	OPENSSL_cleanse(v.key, sizeof(v.key));
	stb_client_free(v.c);
	return rc;
}
