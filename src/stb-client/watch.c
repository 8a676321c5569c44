/* watch: stb_watch, an STB's open connection to cert-proxyd that answers
 * certificate update pushes (flow A step 6). */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "loginc.h"
#include "msgenc.h"
#include "tlv.h"

#define WATCH_PING_MS 30000 /* well inside a daemon's idle timeout */
#define WATCH_ACKS    8     /* acknowledgements awaiting their answer */

typedef struct watch {
	stb_client_t *cp;
	stb_watch_fn fn;
	void *ctx;
	uint32_t ack_id[WATCH_ACKS];
	char ack_cert[WATCH_ACKS][STB_ID_MAX + 1];
	size_t ack_next;
} watch_t;

static int
watch_answer(watch_t *w, const msg_t *m, int status, const char *why, stb_error_t *err)
{
	buf_t b;
	int rc;

	if (status == STB_OK)
		return stbc_send(w->cp, m->type, STB_FRAME_F_RESPONSE, m->req_id, NULL, err);
	buf_init(&b, 1024);
	tlv_put_u16(&b, STB_TLV_STATUS, (uint16_t)status);
	tlv_put_str(&b, STB_TLV_ERROR_TEXT, why);
	rc =
	    stbc_send(w->cp, m->type, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, m->req_id, &b, err);
	buf_free(&b);
	return rc;
}

/* 1: the callback wants to stop. */
static int
watch_event(watch_t *w, const stb_watch_event_t *ev)
{
	return w->fn != NULL && w->fn(w->ctx, ev) != 0;
}

/* CP_CERT_UPDATE_NEEDED: take the push, agree to the renewal. */
static int
watch_needed(watch_t *w, const msg_t *m, int *stop, stb_error_t *err)
{
	char cert_id[STB_ID_MAX + 1] = "";
	uint8_t reason = 0;
	stb_watch_event_t ev;
	uint32_t id;
	err_t e;
	buf_t b;
	int rc;

	msg_get_u8(m, TLV_IX_UPDATE_REASON, &reason);
	if (msg_get_str(m, TLV_IX_CERT_ID, cert_id, sizeof(cert_id)) == -1)
		return watch_answer(w, m, STB_BAD_REQUEST, "no certificate id", err);
	if (watch_answer(w, m, STB_OK, NULL, err) == -1)
		return -1;
	struct msgreq_CP_CERT_UPDATE_ACK q = {.CERT_ID = MV_STR(cert_id)};
	id = ++w->cp->next_id;
	buf_init(&b, 256);
	rc = msgenc_CP_CERT_UPDATE_ACK(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "%s", e.msg)
	         : stbc_send(w->cp, STB_MSG_CP_CERT_UPDATE_ACK, 0, id, &b, err);
	buf_free(&b);
	if (rc == -1)
		return loginc_step(err, "update acknowledgement to cert-proxyd");
	w->ack_id[w->ack_next] = id;
	memcpy(w->ack_cert[w->ack_next], cert_id, sizeof(cert_id));
	w->ack_next = (w->ack_next + 1) % WATCH_ACKS;
	stbc_log(w->cp, STB_LOG_INFO, "certificate %s needs renewal (reason %u): acknowledged",
	         cert_id, reason);
	ev = (stb_watch_event_t){STB_WATCH_UPDATE_NEEDED, cert_id, reason, 0, STB_OK, ""};
	*stop = watch_event(w, &ev);
	return 0;
}

static int
watch_updated(watch_t *w, const msg_t *m, int *stop, stb_error_t *err)
{
	char cert_id[STB_ID_MAX + 1] = "";
	stb_watch_event_t ev;
	uint64_t not_after = 0;

	msg_get_u64(m, TLV_IX_NOT_AFTER, &not_after);
	if (msg_get_str(m, TLV_IX_CERT_ID, cert_id, sizeof(cert_id)) == -1)
		return watch_answer(w, m, STB_BAD_REQUEST, "no certificate id", err);
	if (watch_answer(w, m, STB_OK, NULL, err) == -1)
		return -1;
	stbc_log(w->cp, STB_LOG_INFO, "certificate %s renewed", cert_id);
	ev = (stb_watch_event_t){STB_WATCH_UPDATED, cert_id, 0, not_after, STB_OK, ""};
	*stop = watch_event(w, &ev);
	return 0;
}

/* An answer to one of our requests: only a refused acknowledgement matters. */
static void
watch_answered(watch_t *w, const msg_t *m, int *stop)
{
	char text[256] = "";
	stb_watch_event_t ev;

	if (!(m->flags & STB_FRAME_F_ERROR) || m->type != STB_MSG_CP_CERT_UPDATE_ACK)
		return;
	for (size_t i = 0; i < WATCH_ACKS; i++) {
		if (w->ack_id[i] != m->req_id || w->ack_id[i] == 0)
			continue;
		w->ack_id[i] = 0;
		msg_get_str(m, TLV_IX_ERROR_TEXT, text, sizeof(text));
		stbc_log(w->cp, STB_LOG_WARNING, "renewal of %s refused: %s", w->ack_cert[i], text);
		ev = (stb_watch_event_t){
		    STB_WATCH_UPDATE_FAILED, w->ack_cert[i], 0, 0, msg_status(m), text};
		*stop = watch_event(w, &ev);
		return;
	}
}

static int
watch_frame(watch_t *w, const msg_t *m, int *stop, stb_error_t *err)
{
	if (!(m->flags & STB_FRAME_F_PUSH)) {
		watch_answered(w, m, stop);
		return 0;
	}
	if (m->type == STB_MSG_CP_CERT_UPDATE_NEEDED)
		return watch_needed(w, m, stop, err);
	if (m->type == STB_MSG_CP_CERT_UPDATED)
		return watch_updated(w, m, stop, err);
	return watch_answer(w, m, STB_UNSUPPORTED, "not a push an STB takes", err);
}

static int
watch_run(watch_t *w, int timeout_ms, stb_error_t *err)
{
	struct timespec end, ping;
	int stop = 0;

	stbc_deadline_in(&end, timeout_ms > 0 ? timeout_ms : 0);
	stbc_deadline_in(&ping, WATCH_PING_MS);
	stop = watch_event(w, &(stb_watch_event_t){STB_WATCH_READY, "", 0, 0, STB_OK, ""});
	while (!stop) {
		int64_t wait = stbc_ms_left(&ping), left = stbc_ms_left(&end);
		msg_t m;
		int rc;

		if (timeout_ms > 0 && left <= 0)
			return stbc_fail(err, STB_TIMEOUT, "watch: no more updates within %d ms",
			                 timeout_ms);
		if (timeout_ms > 0 && left < wait)
			wait = left;
		if ((rc = stbc_read(w->cp, wait > 0 ? (int)wait : 0, &m, err)) == -1)
			return loginc_step(err, "watch: connection to cert-proxyd");
		if (rc == 1) {
			if (stbc_ms_left(&ping) > 0)
				continue;
			/* silence: keep the connection from idling out */
			stbc_deadline_in(&ping, WATCH_PING_MS);
			if (stbc_send(w->cp, STB_MSG_PING, 0, ++w->cp->next_id, NULL, err) == -1)
				return loginc_step(err, "watch: connection to cert-proxyd");
			continue;
		}
		if (watch_frame(w, &m, &stop, err) == -1)
			return -1;
	}
	return 0;
}

int
stb_watch(stb_client_t *cp, const char *device_id, const unsigned char *secret, size_t secret_len,
          int timeout_ms, stb_watch_fn fn, void *ctx, stb_error_t *err)
{
	watch_t w;
	stbc_sigpipe_t g;
	int rc;

	if (cp == NULL || device_id == NULL || secret == NULL)
		return stbc_fail(err, STB_BAD_REQUEST, "missing argument");
	if (strlen(device_id) == 0 || strlen(device_id) > STB_ID_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "device id must be 1..%d bytes", STB_ID_MAX);
	memset(&w, 0, sizeof(w));
	w.cp = cp;
	w.fn = fn;
	w.ctx = ctx;
	stbc_sigpipe_block(&g);
	rc = loginc_auth(cp, device_id, secret, secret_len, err);
	if (rc == 0)
		rc = watch_run(&w, timeout_ms, err);
	stbc_sigpipe_restore(&g);
	return rc;
}
