/* rdv: a device's control channel to rendezvousd and the sessions offered
 * to it (flow B, PROTOCOL.md section 7). */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgenc.h"
#include "rdvc.h"
#include "tlv.h"

#define USER_MAX 64
#define PASS_MIN 8
#define PASS_MAX 256

static int64_t
now_unix(void)
{
	return (int64_t)time(NULL);
}

/* ---- the offered sessions ---- */

/* Remembers a session that is gone: status REPLAY (used), EXPIRED or
 * SUPERSEDED (dropped for newer offers). */
static void
used_add(stb_rdv_t *r, const uint8_t sid[RDV_SID_LEN], int status)
{
	memcpy(r->used[r->used_next], sid, RDV_SID_LEN);
	r->used_status[r->used_next] = status;
	r->used_next = (r->used_next + 1) % RDVC_MAX_USED;
}

static void
offer_drop(rdvc_offer_t *o)
{
	OPENSSL_cleanse(o, sizeof(*o));
}

/* How many live offers caller holds, and the oldest of them (NULL: none). */
static size_t
offers_of(stb_rdv_t *r, const char *caller, rdvc_offer_t **oldest)
{
	size_t n = 0;

	*oldest = NULL;
	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++) {
		rdvc_offer_t *o = &r->offers[i];
		if (!o->live || strcmp(o->caller, caller) != 0)
			continue;
		n++;
		if (*oldest == NULL || o->expires < (*oldest)->expires)
			*oldest = o;
	}
	return n;
}

/* The offer to drop for one more from caller, or NULL when there is room. */
static rdvc_offer_t *
offer_victim(stb_rdv_t *r, const char *caller, int full)
{
	rdvc_offer_t *mine, *best = NULL, *o;
	size_t own = offers_of(r, caller, &mine), most = 0;

	if (own >= RDVC_MAX_PER_CALLER)
		return mine;
	if (!full)
		return NULL;
	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++) {
		size_t n;
		if (!r->offers[i].live || strcmp(r->offers[i].caller, caller) == 0)
			continue;
		n = offers_of(r, r->offers[i].caller, &o);
		if (n > most) {
			most = n;
			best = o;
		}
	}
	/* the new offer's caller gives way on a tie */
	return mine != NULL && own + 1 >= most ? mine : best;
}

void
rdvc_offer_add(stb_rdv_t *r, const uint8_t sid[RDV_SID_LEN], const uint8_t code[RDV_CODE_LEN],
               const char *caller, int64_t expires)
{
	rdvc_offer_t *slot = NULL, *victim;
	int64_t now = now_unix();

	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++) {
		rdvc_offer_t *o = &r->offers[i];
		if (o->live && o->expires <= now) {
			used_add(r, o->sid, STB_EXPIRED);
			offer_drop(o);
		}
		if (!o->live && slot == NULL)
			slot = o;
	}
	if ((victim = offer_victim(r, caller, slot == NULL)) != NULL) {
		used_add(r, victim->sid, STB_SUPERSEDED);
		offer_drop(victim);
		slot = victim;
	}
	slot->live = 1;
	memcpy(slot->sid, sid, RDV_SID_LEN);
	memcpy(slot->code, code, RDV_CODE_LEN);
	snprintf(slot->caller, sizeof(slot->caller), "%s", caller);
	slot->expires = expires;
}

int
rdvc_take(stb_rdv_t *r, const uint8_t *sid, size_t sidlen, uint8_t code[RDV_CODE_LEN],
          char caller[RDVC_ID_CAP], stb_error_t *err)
{
	int64_t now = now_unix();

	if (sidlen != RDV_SID_LEN)
		return stbc_fail(err, STB_UNAUTHENTICATED, "PSK identity is not a session id");
	for (size_t i = 0; i < RDVC_MAX_OFFERS; i++) {
		rdvc_offer_t *o = &r->offers[i];
		if (!o->live || CRYPTO_memcmp(o->sid, sid, RDV_SID_LEN) != 0)
			continue;
		if (o->expires <= now) {
			used_add(r, o->sid, STB_EXPIRED);
			offer_drop(o);
			return stbc_fail(err, STB_EXPIRED, "session expired %lld s ago",
			                 (long long)(now - o->expires));
		}
		memcpy(code, o->code, RDV_CODE_LEN);
		memcpy(caller, o->caller, RDVC_ID_CAP);
		used_add(r, o->sid, STB_REPLAY);
		offer_drop(o);
		return 0;
	}
	for (size_t i = 0; i < RDVC_MAX_USED; i++)
		if (r->used_status[i] != 0 && CRYPTO_memcmp(r->used[i], sid, RDV_SID_LEN) == 0)
			return r->used_status[i] == STB_REPLAY
			           ? stbc_fail(err, STB_REPLAY, "session was already used")
			       : r->used_status[i] == STB_SUPERSEDED
			           ? stbc_fail(
			                 err, STB_SUPERSEDED,
			                 "session offer was dropped for newer offers before it "
			                 "was used; the caller asks again")
			           : stbc_fail(err, STB_EXPIRED, "session expired unused");
	return stbc_fail(err, STB_UNAUTHENTICATED, "session was never offered to this device");
}

/* ---- the control channel ---- */

static int
answer_push(stb_rdv_t *r, const msg_t *m, int status, const char *why, stb_error_t *err)
{
	buf_t b;
	int rc;

	if (status == STB_OK)
		return stbc_send(r->c, m->type, STB_FRAME_F_RESPONSE, m->req_id, NULL, err);
	buf_init(&b, 1024);
	tlv_put_u16(&b, STB_TLV_STATUS, (uint16_t)status);
	tlv_put_str(&b, STB_TLV_ERROR_TEXT, why);
	rc = stbc_send(r->c, m->type, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, m->req_id, &b, err);
	buf_free(&b);
	return rc;
}

static int
on_offer(stb_rdv_t *r, const msg_t *m, stb_error_t *err)
{
	const uint8_t *sid = NULL, *w = NULL;
	size_t sl = 0, wl = 0;
	uint64_t expires = 0;
	char caller[RDVC_ID_CAP] = "";
	uint8_t code[RDV_CODE_LEN];

	/* msg_parse checked presence and lengths against the registry */
	msg_get_bytes(m, TLV_IX_RDV_SESSION_ID, &sid, &sl);
	msg_get_bytes(m, TLV_IX_RDV_WRAPPED_CODE, &w, &wl);
	msg_get_u64(m, TLV_IX_RDV_EXPIRES, &expires);
	if (msg_get_str(m, TLV_IX_RDV_CALLER_ID, caller, sizeof(caller)) == -1 ||
	    sl != RDV_SID_LEN || wl != RDV_WRAP_LEN || expires > INT64_MAX)
		return answer_push(r, m, STB_BAD_REQUEST, "malformed session offer", err);
	if (rdv_unwrap(r->key, sid, caller, r->device_id, w, code) == -1) {
		stbc_log(r->c, STB_LOG_WARNING, "session offer from %s does not open", caller);
		return answer_push(r, m, STB_UNAUTHENTICATED, "code does not open", err);
	}
	rdvc_offer_add(r, sid, code, caller, (int64_t)expires);
	OPENSSL_cleanse(code, sizeof(code));
	stbc_log(r->c, STB_LOG_DEBUG, "session offered by %s", caller);
	return answer_push(r, m, STB_OK, NULL, err);
}

static int
on_push(stb_rdv_t *r, const msg_t *m, stb_error_t *err)
{
	if (m->type == STB_MSG_RDV_SESSION_OFFER)
		return on_offer(r, m, err);
	if (m->type == STB_MSG_RDV_HEARTBEAT)
		return answer_push(r, m, STB_OK, NULL, err);
	return answer_push(r, m, STB_UNSUPPORTED, "not a push a device takes", err);
}

/* Our own heartbeat, once per interval; its answer is read and dropped. */
static int
heartbeat_due(stb_rdv_t *r, stb_error_t *err)
{
	if (r->hb_interval_ms == 0 || stbc_ms_left(&r->next_hb) > 0)
		return 0;
	stbc_deadline_in(&r->next_hb, (int)r->hb_interval_ms);
	return stbc_send(r->c, STB_MSG_RDV_HEARTBEAT, 0, ++r->c->next_id, NULL, err);
}

int
rdvc_fd(const stb_rdv_t *r, int *pending)
{
	*pending = r->c->ssl != NULL && SSL_has_pending(r->c->ssl);
	return r->c->fd;
}

int
rdvc_service(stb_rdv_t *r, int timeout_ms, stb_error_t *err)
{
	msg_t m;
	int rc;

	if (heartbeat_due(r, err) == -1)
		return -1;
	if ((rc = stbc_read(r->c, timeout_ms, &m, err)) == -1)
		return -1;
	if (rc == 0 && (m.flags & STB_FRAME_F_PUSH))
		return on_push(r, &m, err);
	return 0; /* nothing, or the answer to one of our heartbeats */
}

static int
rdv_push(void *arg, const msg_t *m, stb_error_t *err)
{
	return on_push(arg, m, err);
}

/* A request on the control channel; pushes that come first are handled. */
static int
rdv_call(stb_rdv_t *r, uint16_t type, const buf_t *tlvs, msg_t *m, stb_error_t *err)
{
	return stbc_call_pushes(r->c, type, tlvs, m, r->c->timeout_ms, rdv_push, r, err);
}

/* An enrolment code as stbctl shows it: 32 hex digits. */
static int
enrol_code_ok(const char *code)
{
	size_t n = strlen(code);

	if (n != 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr("0123456789abcdefABCDEF", code[i]) == NULL)
			return 0;
	return 1;
}

static int
reg_args_ok(const char *device_id, const char *username, const char *password, const char *endpoint,
            const char *enrol_code, stb_error_t *err)
{
	size_t pl;

	if (enrol_code != NULL && !enrol_code_ok(enrol_code))
		return stbc_fail(err, STB_BAD_REQUEST, "an enrolment code is 32 hex digits");

	if (device_id == NULL || username == NULL || password == NULL || endpoint == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "missing argument");
	if (strlen(device_id) == 0 || strlen(device_id) > STB_ID_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "device id must be 1..%d bytes", STB_ID_MAX);
	if (strlen(username) == 0 || strlen(username) > USER_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "username must be 1..%d bytes", USER_MAX);
	pl = strlen(password);
	if (pl < PASS_MIN || pl > PASS_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "password must be %d..%d bytes", PASS_MIN,
		                 PASS_MAX);
	if (strlen(endpoint) >= RDVC_EP_CAP)
		return stbc_fail(err, STB_BAD_REQUEST, "endpoint too long");
	return 0;
}

static int
reg_finish(stb_rdv_t *r, const msg_t *m, const char *password, stb_error_t *err)
{
	const uint8_t *salt = NULL;
	size_t sl = 0;
	uint64_t n = 0;
	uint32_t kr = 0, kp = 0, hb = 0;

	msg_get_bytes(m, TLV_IX_RDV_KDF_SALT, &salt, &sl);
	msg_get_u64(m, TLV_IX_RDV_KDF_N, &n);
	msg_get_u32(m, TLV_IX_RDV_KDF_R, &kr);
	msg_get_u32(m, TLV_IX_RDV_KDF_P, &kp);
	msg_get_u32(m, TLV_IX_RDV_HB_INTERVAL_MS, &hb);
	if (msg_get_str(m, TLV_IX_RDV_OVERLAY_ADDR, r->overlay, sizeof(r->overlay)) == -1)
		return stbc_fail(err, STB_BAD_REQUEST, "RDV_REGISTER answer lacks the address");
	if (!rdv_kdf_params_ok(n, kr, kp))
		return stbc_fail(err, STB_BAD_REQUEST,
		                 "server sent unacceptable scrypt parameters N=%llu r=%u p=%u",
		                 (unsigned long long)n, kr, kp);
	if (rdv_kdf_derive(password, strlen(password), salt, sl, n, kr, kp, r->key) == -1)
		return stbc_fail(err, STB_INTERNAL, "cannot derive the wrap key");
	/* answer well inside the server's interval; send our own at that pace */
	r->hb_interval_ms = hb;
	stbc_deadline_in(&r->next_hb, (int)hb);
	return 0;
}

static int
rdv_register(stb_client_t *c, const char *device_id, const char *enrol_code, const char *username,
             const char *password, const char *endpoint, stb_rdv_t **out, stb_error_t *err)
{
	stb_rdv_t *r;
	buf_t b;
	msg_t m;
	int rc;

	if (reg_args_ok(device_id, username, password, endpoint, enrol_code, err) == -1)
		return -1;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	r->c = c;
	snprintf(r->device_id, sizeof(r->device_id), "%s", device_id);
	snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
	struct msgreq_RDV_REGISTER q = {.RDV_DEVICE_ID = MV_STR(device_id),
	                                .RDV_USERNAME = MV_STR(username),
	                                .RDV_PASSWORD = MV_STR(password),
	                                .RDV_ENDPOINT = MV_STR(endpoint)};
	err_t e;

	if (enrol_code != NULL)
		q.RDV_ENROL_CODE = MV_STR(enrol_code);
	buf_init(&b, 1024);
	rc = msgenc_RDV_REGISTER(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "registration: %s", e.msg)
	         : rdv_call(r, STB_MSG_RDV_REGISTER, &b, &m, err);
	buf_wipe(&b);
	if (rc == 0)
		rc = reg_finish(r, &m, password, err);
	if (rc == -1) {
		stb_rdv_free(r);
		return -1;
	}
	stbc_log(c, STB_LOG_INFO, "registered %s at overlay %s", r->device_id, r->overlay);
	*out = r;
	return 0;
}

int
stb_rdv_register(stb_client_t *c, const char *device_id, const char *username, const char *password,
                 const char *endpoint, stb_rdv_t **out, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = rdv_register(c, device_id, NULL, username, password, endpoint, out, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

int
stb_rdv_enrol(stb_client_t *c, const char *device_id, const char *enrol_code, const char *username,
              const char *password, const char *endpoint, stb_rdv_t **out, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	if (enrol_code == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "missing enrolment code");
	stbc_sigpipe_block(&g);
	rc = rdv_register(c, device_id, enrol_code, username, password, endpoint, out, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

void
stb_rdv_free(stb_rdv_t *r)
{
	if (r == NULL)
		return;
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

const char *
stb_rdv_overlay_addr(const stb_rdv_t *r)
{
	return r->overlay;
}

static int
rdv_poll(stb_rdv_t *r, int timeout_ms, stb_error_t *err)
{
	struct timespec dl;
	int64_t left;

	stbc_deadline_in(&dl, timeout_ms > 0 ? timeout_ms : 0);
	do {
		left = stbc_ms_left(&dl);
		if (rdvc_service(r, left > 0 ? (int)left : 0, err) == -1)
			return -1;
	} while (stbc_ms_left(&dl) > 0);
	return 0;
}

int
stb_rdv_poll(stb_rdv_t *r, int timeout_ms, stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = rdv_poll(r, timeout_ms, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

static int
rdv_session(stb_rdv_t *r, const char *target, uint8_t sid[RDV_SID_LEN], uint8_t code[RDV_CODE_LEN],
            char endpoint[RDVC_EP_CAP], stb_error_t *err)
{
	const uint8_t *s = NULL, *w = NULL;
	size_t sl = 0, wl = 0;
	buf_t b;
	msg_t m;
	int rc;

	if (target == NULL || strlen(target) == 0 || strlen(target) > STB_ID_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "target id must be 1..%d bytes", STB_ID_MAX);
	struct msgreq_RDV_CONNECT_REQ q = {.RDV_TARGET_ID = MV_STR(target)};
	err_t e;

	buf_init(&b, 256);
	rc = msgenc_RDV_CONNECT_REQ(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "CONNECT_REQ: %s", e.msg)
	         : rdv_call(r, STB_MSG_RDV_CONNECT_REQ, &b, &m, err);
	buf_free(&b);
	if (rc == -1)
		return -1;
	msg_get_bytes(&m, TLV_IX_RDV_SESSION_ID, &s, &sl);
	msg_get_bytes(&m, TLV_IX_RDV_WRAPPED_CODE, &w, &wl);
	if (sl != RDV_SID_LEN || wl != RDV_WRAP_LEN ||
	    msg_get_str(&m, TLV_IX_RDV_ENDPOINT, endpoint, RDVC_EP_CAP) == -1)
		return stbc_fail(err, STB_BAD_REQUEST, "malformed RDV_CONNECT_REQ answer");
	memcpy(sid, s, RDV_SID_LEN);
	if (rdv_unwrap(r->key, sid, r->device_id, target, w, code) == -1)
		return stbc_fail(err, STB_UNAUTHENTICATED,
		                 "the session code does not open under this device's key");
	return 0;
}

int
rdvc_session(stb_rdv_t *r, const char *target, uint8_t sid[RDV_SID_LEN], uint8_t code[RDV_CODE_LEN],
             char endpoint[RDVC_EP_CAP], stb_error_t *err)
{
	stbc_sigpipe_t g;
	int rc;

	stbc_sigpipe_block(&g);
	rc = rdv_session(r, target, sid, code, endpoint, err);
	stbc_sigpipe_restore(&g);
	return rc;
}

int
stb_rdv_connect(stb_rdv_t *r, const char *target_id, stb_peer_t **out, stb_error_t *err)
{
	uint8_t sid[RDV_SID_LEN], code[RDV_CODE_LEN];
	char endpoint[RDVC_EP_CAP];
	int rc;

	if (rdvc_session(r, target_id, sid, code, endpoint, err) == -1)
		return -1;
	rc = rdvc_peer_connect(r, r->c->timeout_ms, endpoint, target_id, sid, code, out, err);
	OPENSSL_cleanse(code, sizeof(code));
	return rc;
}
