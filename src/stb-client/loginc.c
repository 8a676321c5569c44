/* login: stb_login, the STB's side of the certificate-proxied login
 * (flow A, PROTOCOL.md): media-gw, cert-proxyd, media-gw again. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "login.h"
#include "loginc.h"
#include "msgenc.h"
#include "tlv.h"

#define FINISH_MAX (LOGIN_SESSION_LEN + 8192 + 80 + 8 + 4 * STB_TLV_HDR_LEN)

/* What GW_LOGIN_START answered. */
struct start {
	char cert_id[STB_ID_MAX + 1];
	uint8_t sid[LOGIN_SESSION_LEN];
	uint8_t nonce[LOGIN_NONCE_LEN];
};

int
loginc_step(stb_error_t *err, const char *step)
{
	size_t cap = sizeof(err->message), sl = strlen(step), ml, keep;

	if (err == NULL || sl + 3 > cap)
		return -1;
	ml = strnlen(err->message, cap - 1);
	keep = ml < cap - 1 - sl - 2 ? ml : cap - 1 - sl - 2;
	memmove(err->message + sl + 2, err->message, keep);
	memcpy(err->message, step, sl);
	memcpy(err->message + sl, ": ", 2);
	err->message[sl + 2 + keep] = '\0';
	return -1;
}

void
loginc_wipe_rbuf(stb_client_t *c)
{
	if (c->rbuf.data != NULL)
		OPENSSL_cleanse(c->rbuf.data, c->rbuf.len);
}

/* Sends b (encoded with rc = msgenc_...) as type and waits for the answer;
 * a refusal of either names the step. */
static int
call_step(stb_client_t *c, uint16_t type, int enc, const err_t *e, const buf_t *b, msg_t *m,
          const char *step, stb_error_t *err)
{
	if (enc == -1) {
		stbc_fail(err, e->status, "%s", e->msg);
		return loginc_step(err, step);
	}
	if (stbc_call(c, type, b, m, err) == -1)
		return loginc_step(err, step);
	return 0;
}

int
loginc_auth(stb_client_t *cp, const char *device_id, const uint8_t *secret, size_t secret_len,
            stb_error_t *err)
{
	static const char step[] = "authentication at cert-proxyd";
	uint8_t cnonce[LOGIN_NONCE_LEN], mac[LOGIN_MAC_LEN];
	const uint8_t *snonce;
	size_t sl = 0;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	if (cp->ssl != NULL && strcmp(cp->auth_device, device_id) == 0)
		return 0;
	cp->auth_device[0] = '\0';
	struct msgreq_CP_AUTH_BEGIN begin = {.DEVICE_ID = MV_STR(device_id)};
	buf_init(&b, 256);
	rc = msgenc_CP_AUTH_BEGIN(&b, &begin, &e);
	rc = call_step(cp, STB_MSG_CP_AUTH_BEGIN, rc, &e, &b, &m, step, err);
	buf_free(&b);
	if (rc == -1)
		return -1;
	if (msg_get_bytes(&m, TLV_IX_SERVER_NONCE, &snonce, &sl) == -1 || sl != LOGIN_NONCE_LEN)
		return stbc_fail(err, STB_BAD_REQUEST, "%s: no server nonce", step);
	if (RAND_bytes(cnonce, sizeof(cnonce)) != 1)
		return stbc_fail(err, STB_INTERNAL, "%s: no randomness", step);
	if (login_auth_mac(secret, secret_len, snonce, cnonce, device_id, mac, &e) == -1)
		return stbc_fail(err, e.status, "%s: %s", step, e.msg);
	struct msgreq_CP_AUTH_PROVE prove = {.CLIENT_NONCE = MV_BYTES(cnonce, sizeof(cnonce)),
	                                     .AUTH_MAC = MV_BYTES(mac, sizeof(mac))};
	buf_init(&b, 256);
	rc = msgenc_CP_AUTH_PROVE(&b, &prove, &e);
	OPENSSL_cleanse(mac, sizeof(mac));
	rc = call_step(cp, STB_MSG_CP_AUTH_PROVE, rc, &e, &b, &m, step, err);
	buf_wipe(&b);
	if (rc == -1)
		return -1;
	snprintf(cp->auth_device, sizeof(cp->auth_device), "%s", device_id);
	stbc_log(cp, STB_LOG_DEBUG, "authenticated to cert-proxyd as %s", device_id);
	return 0;
}

static int
login_start(stb_client_t *gw, const char *device_id, struct start *s, stb_error_t *err)
{
	static const char step[] = "login start at media-gw";
	const uint8_t *nonce, *sid;
	size_t nl = 0, sl = 0;
	struct msgreq_GW_LOGIN_START q = {.DEVICE_ID = MV_STR(device_id)};
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 256);
	rc = msgenc_GW_LOGIN_START(&b, &q, &e);
	rc = call_step(gw, STB_MSG_GW_LOGIN_START, rc, &e, &b, &m, step, err);
	buf_free(&b);
	if (rc == -1)
		return -1;
	if (msg_get_str(&m, TLV_IX_CERT_ID, s->cert_id, sizeof(s->cert_id)) == -1 ||
	    msg_get_bytes(&m, TLV_IX_GW_NONCE, &nonce, &nl) == -1 || nl != LOGIN_NONCE_LEN ||
	    msg_get_bytes(&m, TLV_IX_LOGIN_SESSION_ID, &sid, &sl) == -1 || sl != LOGIN_SESSION_LEN)
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	memcpy(s->nonce, nonce, LOGIN_NONCE_LEN);
	memcpy(s->sid, sid, LOGIN_SESSION_LEN);
	return 0;
}

/* CP_KEYINFO_REQ or CP_CERT_FETCH; on OK the GW_LOGIN_FINISH body is built
 * in fin straight from the answer, which is then wiped. */
static int
login_keyinfo(stb_client_t *cp, uint16_t type, const struct start *s, buf_t *fin, stb_error_t *err)
{
	const char *step = type == STB_MSG_CP_CERT_FETCH ? "certificate fetch at cert-proxyd"
	                                                 : "key info at cert-proxyd";
	const uint8_t *cert, *proof;
	size_t cl = 0, pl = 0;
	uint64_t ts = 0;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	buf_init(&b, 512);
	if (type == STB_MSG_CP_CERT_FETCH) {
		struct msgreq_CP_CERT_FETCH q = {.CERT_ID = MV_STR(s->cert_id),
		                                 .GW_NONCE = MV_BYTES(s->nonce, LOGIN_NONCE_LEN),
		                                 .LOGIN_SESSION_ID =
		                                     MV_BYTES(s->sid, LOGIN_SESSION_LEN)};
		rc = msgenc_CP_CERT_FETCH(&b, &q, &e);
	} else {
		struct msgreq_CP_KEYINFO_REQ q = {.CERT_ID = MV_STR(s->cert_id),
		                                  .GW_NONCE = MV_BYTES(s->nonce, LOGIN_NONCE_LEN),
		                                  .LOGIN_SESSION_ID =
		                                      MV_BYTES(s->sid, LOGIN_SESSION_LEN)};
		rc = msgenc_CP_KEYINFO_REQ(&b, &q, &e);
	}
	rc = call_step(cp, type, rc, &e, &b, &m, step, err);
	buf_wipe(&b);
	if (rc == -1)
		return -1;
	if (msg_get_bytes(&m, TLV_IX_CERT_DER, &cert, &cl) == -1 ||
	    msg_get_bytes(&m, TLV_IX_KEYINFO_PROOF, &proof, &pl) == -1 ||
	    msg_get_u64(&m, TLV_IX_KEYINFO_TIME, &ts) == -1) {
		loginc_wipe_rbuf(cp);
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	}
	struct msgreq_GW_LOGIN_FINISH q = {.LOGIN_SESSION_ID = MV_BYTES(s->sid, LOGIN_SESSION_LEN),
	                                   .CERT_DER = MV_BYTES(cert, cl),
	                                   .KEYINFO_PROOF = MV_BYTES(proof, pl),
	                                   .KEYINFO_TIME = MV_U(ts)};
	buf_reset(fin);
	rc = msgenc_GW_LOGIN_FINISH(fin, &q, &e);
	loginc_wipe_rbuf(cp);
	if (rc == -1) {
		stbc_fail(err, e.status, "%s: answer cannot be passed on: %s", step, e.msg);
		return -1;
	}
	return 0;
}

static int
login_finish(stb_client_t *gw, const buf_t *fin, stb_login_result_t *out, stb_error_t *err)
{
	static const char step[] = "login finish at media-gw";
	const uint8_t *tok;
	size_t tl = 0;
	msg_t m;

	if (call_step(gw, STB_MSG_GW_LOGIN_FINISH, 0, NULL, fin, &m, step, err) == -1)
		return -1;
	if (msg_get_bytes(&m, TLV_IX_ACCESS_TOKEN, &tok, &tl) == -1 || tl != STB_TOKEN_LEN ||
	    msg_get_u64(&m, TLV_IX_TOKEN_EXPIRES, &out->token_expires) == -1) {
		loginc_wipe_rbuf(gw);
		return stbc_fail(err, STB_BAD_REQUEST, "%s: malformed answer", step);
	}
	memcpy(out->token, tok, STB_TOKEN_LEN);
	loginc_wipe_rbuf(gw);
	return 0;
}

static int
login_run(stb_client_t *gw, stb_client_t *cp, const char *device_id, const uint8_t *secret,
          size_t secret_len, stb_login_result_t *out, buf_t *fin, struct start *s, stb_error_t *err)
{
	int cached = cp->ssl != NULL && strcmp(cp->auth_device, device_id) == 0, rc;

	if (login_start(gw, device_id, s, err) == -1 ||
	    loginc_auth(cp, device_id, secret, secret_len, err) == -1)
		return -1;
	snprintf(out->cert_id, sizeof(out->cert_id), "%s", s->cert_id);
	rc = login_keyinfo(cp, STB_MSG_CP_KEYINFO_REQ, s, fin, err);
	if (rc == -1 && cached && err != NULL && err->status == STB_UNAUTHENTICATED) {
		/* the server forgot this connection's authentication: once more */
		cp->auth_device[0] = '\0';
		if (loginc_auth(cp, device_id, secret, secret_len, err) == -1)
			return -1;
		rc = login_keyinfo(cp, STB_MSG_CP_KEYINFO_REQ, s, fin, err);
	}
	if (rc == -1) {
		if (err == NULL || (err->status != STB_NOT_FOUND && err->status != STB_EXPIRED &&
		                    err->status != STB_REVOKED))
			return -1;
		/* missing, expired or revoked: cert-proxyd gets a fresh one */
		out->cert_status = err->status;
		stbc_log(cp, STB_LOG_INFO, "certificate %s is %s: fetching a new one", s->cert_id,
		         stb_status_name(err->status));
		if (login_keyinfo(cp, STB_MSG_CP_CERT_FETCH, s, fin, err) == -1)
			return -1;
		out->fetched = 1;
	}
	return login_finish(gw, fin, out, err);
}

int
stb_login(stb_client_t *gw, stb_client_t *cp, const char *device_id, const unsigned char *secret,
          size_t secret_len, stb_login_result_t *out, stb_error_t *err)
{
	stb_error_t local;
	struct start s;
	buf_t fin;
	int rc;

	if (gw == NULL || cp == NULL || device_id == NULL || secret == NULL || out == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "missing argument");
	if (strlen(device_id) == 0 || strlen(device_id) > STB_ID_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "device id must be 1..%d bytes", STB_ID_MAX);
	memset(out, 0, sizeof(*out));
	out->cert_status = STB_OK;
	if (err == NULL) /* the fetch decision needs the status */
		err = &local;
	buf_init(&fin, FINISH_MAX);
	rc = login_run(gw, cp, device_id, secret, secret_len, out, &fin, &s, err);
	buf_wipe(&fin);
	OPENSSL_cleanse(&s, sizeof(s));
	if (rc == -1) {
		stb_login_result_clear(out);
		return -1;
	}
	stbc_log(gw, STB_LOG_INFO, "logged in as %s with certificate %s%s", device_id, out->cert_id,
	         out->fetched ? " (freshly fetched)" : "");
	return 0;
}

void
stb_login_result_clear(stb_login_result_t *r)
{
	if (r != NULL)
		OPENSSL_cleanse(r, sizeof(*r));
}
