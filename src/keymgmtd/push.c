/* keymgmtd push: the outbox's send callback (KEY_PUSH and KEY_REVOKE to
 * the app platform over mutual TLS), revoke pushes, and the push metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "cmsmsg.h"
#include "km.h"
#include "log.h"
#include "metrics.h"
#include "msgenc.h"
#include "tlv.h"

typedef struct km_call {
	km_t *km;
	int64_t push_id;
	int64_t queued_ms; /* for the latency */
	outbox_result_fn done;
	void *done_arg;
	char dest[KM_ID_CAP];
	char key_id[KM_ID_CAP];
	char mdn[KM_MDN_CAP];
	int64_t tries; /* attempts before this one */
	int revoke;
} km_call_t;

/* KEY_PUSHes for one platform, gathered while the outbox hands out a claim
 * and sent as one KEY_PUSH_BATCH (one envelope) when push.batch are there
 * or the loop comes round (km_push_flush). */
struct km_batch {
	km_t *km;
	int plat; /* index in km->plat */
	int n;
	int64_t last_id;
	km_call_t *calls[KM_BATCH_MAX];
};

/* The outbox's recorded hook: a push delivered or failed for good is
 * audited in the write that marks it (the outbox's record write). */
int
km_push_recorded(void *arg, store_conn_t *c, const outbox_item_t *it, int state, const char *error,
                 err_t *err)
{
	km_t *km = arg;
	char detail[640];

	if (state == OUTBOX_PENDING)
		return 0;
	snprintf(detail, sizeof detail, "push=%lld kind=%s app=%s key=%s tries=%lld%s%.200s",
	         (long long)it->id, it->msg_type == STB_MSG_KM_KEY_REVOKE ? "revoke" : "key",
	         it->dest, it->ref, (long long)it->tries + 1, error ? " error=" : "",
	         error ? error : "");
	return daemon_audit(km->d, c, state == OUTBOX_DELIVERED ? "push_delivered" : "push_failed",
	                    "keymgmtd", detail, NULL, err);
}

/* The stored body's fields (encoded with push_id 0). */
typedef struct km_body {
	const uint8_t *mdn, *key_id, *app_id, *wrapped;
	uint32_t mdn_n, key_id_n, app_id_n, wrapped_n;
} km_body_t;

static int
body_read(const uint8_t *p, size_t len, km_body_t *b)
{
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *v;
	uint32_t vl;
	int rc;

	memset(b, 0, sizeof *b);
	tlv_cursor_init(&c, p, len);
	while ((rc = tlv_next(&c, &type, &v, &vl)) == TLV_NEXT) {
		switch (type) {
		case STB_TLV_KM_MDN:
			b->mdn = v, b->mdn_n = vl;
			break;
		case STB_TLV_KM_KEY_ID:
			b->key_id = v, b->key_id_n = vl;
			break;
		case STB_TLV_KM_APP_ID:
			b->app_id = v, b->app_id_n = vl;
			break;
		case STB_TLV_KM_WRAPPED_KEY:
			b->wrapped = v, b->wrapped_n = vl;
			break;
		default:
			break;
		}
	}
	return rc == TLV_END && b->mdn && b->key_id && b->app_id ? 0 : -1;
}

/* A call's end: its latency, then the outbox's done (which records and
 * audits it). */
static void
call_finish(km_call_t *c, const err_t *e)
{
	if (e->status == STB_OK) {
		int64_t ms = km_now_ms() - c->queued_ms;

		hist_observe(&c->km->latency, (uint64_t)(ms < 0 ? 0 : ms) * 1000);
	}
	c->done(c->done_arg, e, NULL, 0);
	free(c);
}

static void
call_done(void *arg, const msg_t *rsp, const err_t *err)
{
	km_call_t *c = arg;
	uint64_t acked = 0;
	err_t e;

	err_clear(&e);
	if (err->status != STB_OK) {
		e = *err;
	} else if (msg_get_u64(rsp, TLV_IX_KM_PUSH_ID, &acked) == -1 ||
	           acked != (uint64_t)c->push_id) {
		err_set(&e, STB_UNAVAILABLE, "%s acknowledged push %llu, not %lld", c->dest,
		        (unsigned long long)acked, (long long)c->push_id);
	}
	call_finish(c, &e);
}

/* When the push was queued (unix ms), for the delivery latency. */
static int64_t
push_created(km_t *km, int64_t id)
{
	store_conn_t *c;
	store_stmt_t *st;
	int64_t t = km_now_ms();
	err_t err;

	if ((c = store_reader(km->d->store, &err)) == NULL ||
	    (st = store_stmt(c, "SELECT created_at FROM outbox WHERE id=?1", &err)) == NULL)
		return t;
	store_bind_int64(st, 1, id);
	if (store_step(st, &err) == STORE_ROW)
		t = store_col_int64(st, 0);
	store_reset(st);
	return t;
}

/* ---- batches ---- */

/* Every call of bt ends with e (the outbox records them in one write). */
static void
batch_finish(km_batch_t *bt, const err_t *e)
{
	for (int i = 0; i < bt->n; i++)
		call_finish(bt->calls[i], e);
	free(bt);
}

static void
batch_done(void *arg, const msg_t *rsp, const err_t *err)
{
	km_batch_t *bt = arg;
	uint64_t last = 0;
	uint32_t n = 0;
	err_t e;

	err_clear(&e);
	if (err->status != STB_OK)
		e = *err;
	else if (msg_get_u32(rsp, TLV_IX_KM_PUSH_COUNT, &n) == -1 ||
	         msg_get_u64(rsp, TLV_IX_KM_PUSH_ID, &last) == -1 || n != (uint32_t)bt->n ||
	         last != (uint64_t)bt->last_id)
		err_set(&e, STB_UNAVAILABLE,
		        "%s acknowledged %u pushes up to %llu, not %d up to %lld",
		        bt->km->plat[bt->plat].app_id, n, (unsigned long long)last, bt->n,
		        (long long)bt->last_id);
	batch_finish(bt, &e);
}

/* The key of c, unsealed, as one KM_PUSH_ENTRY of the batch's plaintext:
 * KM_KEY_PUSH's fields with the key itself (only ever inside the envelope). */
static int
batch_entry(km_t *km, const km_call_t *c, buf_t *plain, err_t *err)
{
	uint8_t key[KEYSYNC_KEY_MAX];
	size_t keylen = 0;
	store_conn_t *rd;
	store_stmt_t *st;
	buf_t e;
	int rc;

	if ((rd = store_reader(km->d->store, err)) == NULL ||
	    (st = store_stmt(rd, "SELECT sealed FROM keys WHERE key_id=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, c->key_id);
	if ((rc = store_step(st, err)) == STORE_ROW) {
		size_t blen;
		const void *blob = store_col_blob(st, 0, &blen);

		rc = sealed_open(km->d->kek, c->key_id, strlen(c->key_id), blob, blen, key,
		                 sizeof key, &keylen, err);
	} else if (rc == STORE_DONE)
		rc = err_set(err, STB_CONFLICT, "push %lld: key %s is no longer imported",
		             (long long)c->push_id, c->key_id);
	else
		rc = -1;
	store_reset(st);
	if (rc == -1) {
		OPENSSL_cleanse(key, sizeof key);
		return -1;
	}
	{
		struct msgreq_KM_KEY_PUSH q = {.KM_PUSH_ID = MV_U(c->push_id),
		                               .KM_MDN = MV_STR(c->mdn),
		                               .KM_KEY_ID = MV_STR(c->key_id),
		                               .KM_APP_ID = MV_STR(c->dest),
		                               .KM_KEY = MV_BYTES(key, keylen)};
		buf_init(&e, 1024);
		rc = msgenc_KM_KEY_PUSH(&e, &q, err);
	}
	OPENSSL_cleanse(key, sizeof key);
	if (rc == 0 && tlv_put(plain, STB_TLV_KM_PUSH_ENTRY, e.data, e.len) == -1)
		rc = err_set(err, STB_TOO_LARGE, "batch plaintext full");
	buf_wipe(&e);
	return rc;
}

/* Envelopes the batch's keys once and sends it. */
static void
batch_send(km_batch_t *bt)
{
	km_t *km = bt->km;
	const km_platform_t *p = &km->plat[bt->plat];
	buf_t plain, env, req;
	err_t err;
	int n = 0, rc;

	buf_init(&plain, CMSMSG_CONTENT_MAX);
	for (int i = 0; i < bt->n; i++) {
		if (batch_entry(km, bt->calls[i], &plain, &err) == -1)
			call_finish(bt->calls[i], &err); /* that push alone */
		else
			bt->calls[n++] = bt->calls[i];
	}
	if ((bt->n = n) == 0) {
		buf_wipe(&plain);
		free(bt);
		return;
	}
	bt->last_id = bt->calls[n - 1]->push_id;
	buf_init(&env, CMSMSG_DER_MAX);
	buf_init(&req, CMSMSG_DER_MAX + 1024);
	rc = cmsmsg_encrypt(p->enc_cert, plain.data, plain.len, CMSMSG_AES256_CBC, &env, &err);
	buf_wipe(&plain);
	if (rc == 0) {
		struct msgreq_KM_KEY_PUSH_BATCH q = {.KM_APP_ID = MV_STR(p->app_id),
		                                     .KM_PUSH_COUNT = MV_U(n),
		                                     .KM_WRAPPED_BATCH =
		                                         MV_BYTES(env.data, env.len)};
		rc = msgenc_KM_KEY_PUSH_BATCH(&req, &q, &err);
	}
	buf_free(&env);
	if (rc == 0)
		rc = peerpool_call(p->pool, km->d->base, NULL, STB_MSG_KM_KEY_PUSH_BATCH, &req, 0,
		                   batch_done, bt, &err);
	buf_free(&req);
	if (rc == -1)
		batch_finish(bt, &err);
}

void
km_push_flush(km_t *km)
{
	for (int i = 0; i < km->nplat; i++) {
		km_batch_t *bt = km->filling[i];

		km->filling[i] = NULL;
		if (bt != NULL)
			batch_send(bt);
	}
}

static void
batch_add(km_t *km, const km_platform_t *p, km_call_t *c)
{
	int pi = (int)(p - km->plat);
	km_batch_t *bt = km->filling[pi];
	err_t err;

	if (bt == NULL) {
		if ((bt = calloc(1, sizeof(*bt))) == NULL) {
			err_set(&err, STB_INTERNAL, "out of memory");
			call_finish(c, &err);
			return;
		}
		bt->km = km;
		bt->plat = pi;
		km->filling[pi] = bt;
		event_active(km->flush_ev, EV_TIMEOUT, 0);
	}
	bt->calls[bt->n++] = c;
	if (bt->n >= km->conf->push_batch) {
		km->filling[pi] = NULL;
		batch_send(bt);
	}
}

void
km_push_send(void *arg, const outbox_item_t *it, outbox_result_fn done, void *done_arg)
{
	km_t *km = arg;
	const km_platform_t *p = km_platform(km, it->dest);
	km_call_t *c;
	km_body_t b;
	buf_t tlvs;
	err_t err;
	int rc;

	if (p == NULL) {
		err_set(&err, STB_UNAVAILABLE, "app %s is no longer a configured platform",
		        it->dest);
		done(done_arg, &err, NULL, 0);
		return;
	}
	if (body_read(it->body, it->body_len, &b) == -1 || b.mdn_n >= KM_MDN_CAP ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		err_set(&err, STB_INTERNAL, "push %lld: unreadable body", (long long)it->id);
		done(done_arg, &err, NULL, 0);
		return;
	}
	c->km = km;
	c->push_id = it->id;
	c->done = done;
	c->done_arg = done_arg;
	c->queued_ms = push_created(km, it->id);
	c->tries = it->tries;
	snprintf(c->key_id, sizeof c->key_id, "%.*s", (int)b.key_id_n, (const char *)b.key_id);
	snprintf(c->mdn, sizeof c->mdn, "%.*s", (int)b.mdn_n, (const char *)b.mdn);
	snprintf(c->dest, sizeof c->dest, "%s", it->dest);
	if (it->msg_type == STB_MSG_KM_KEY_PUSH && b.wrapped == NULL) {
		batch_add(km, p, c); /* enveloped when the batch goes */
		return;
	}
	buf_init(&tlvs, OUTBOX_BODY_MAX);
	if (it->msg_type == STB_MSG_KM_KEY_PUSH) {
		/* a row queued enveloped (before batches): sent as it is */
		struct msgreq_KM_KEY_PUSH q = {.KM_PUSH_ID = MV_U(it->id),
		                               .KM_MDN = MV_BYTES(b.mdn, b.mdn_n),
		                               .KM_KEY_ID = MV_BYTES(b.key_id, b.key_id_n),
		                               .KM_APP_ID = MV_BYTES(b.app_id, b.app_id_n),
		                               .KM_WRAPPED_KEY = MV_BYTES(b.wrapped, b.wrapped_n)};
		rc = msgenc_KM_KEY_PUSH(&tlvs, &q, &err);
	} else {
		struct msgreq_KM_KEY_REVOKE q = {.KM_PUSH_ID = MV_U(it->id),
		                                 .KM_MDN = MV_BYTES(b.mdn, b.mdn_n),
		                                 .KM_KEY_ID = MV_BYTES(b.key_id, b.key_id_n),
		                                 .KM_APP_ID = MV_BYTES(b.app_id, b.app_id_n)};
		c->revoke = 1;
		rc = msgenc_KM_KEY_REVOKE(&tlvs, &q, &err);
	}
	if (rc == 0)
		rc = peerpool_call(p->pool, km->d->base, NULL, it->msg_type, &tlvs, 0, call_done, c,
		                   &err);
	buf_free(&tlvs);
	if (rc == -1)
		call_finish(c, &err);
}

/* The KEY_PUSH body queued with a binding: the key stays sealed in table
 * keys until its batch is enveloped. */
int
km_push_body(const char *key_id, const char *mdn, const char *app_id, buf_t *out, err_t *err)
{
	struct msgreq_KM_KEY_PUSH q = {.KM_PUSH_ID = MV_U(0),
	                               .KM_MDN = MV_STR(mdn),
	                               .KM_KEY_ID = MV_STR(key_id),
	                               .KM_APP_ID = MV_STR(app_id)};

	return msgenc_KM_KEY_PUSH(out, &q, err);
}

int
km_queue_revoke(km_t *km, store_conn_t *c, const char *key_id, const char *mdn, const char *app_id,
                int64_t *push_id, err_t *err)
{
	struct msgreq_KM_KEY_REVOKE q = {.KM_PUSH_ID = MV_U(0),
	                                 .KM_MDN = MV_STR(mdn),
	                                 .KM_KEY_ID = MV_STR(key_id),
	                                 .KM_APP_ID = MV_STR(app_id)};
	buf_t b;
	int rc;

	buf_init(&b, 4096);
	rc = msgenc_KM_KEY_REVOKE(&b, &q, err);
	if (rc == 0)
		rc = outbox_enqueue(km->ob, c, app_id, STB_MSG_KM_KEY_REVOKE, &b, key_id,
		                    km_now_ms(), push_id, err);
	buf_free(&b);
	return rc;
}

int
km_push_metrics(km_t *km, buf_t *out)
{
	int64_t pending = 0, delivered = 0, failed = 0, oldest = 0;
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	int rc = 0;

	if (km == NULL)
		return 0;
	if ((c = store_reader(km->d->store, &err)) == NULL ||
	    outbox_counts(km->ob, c, NULL, &pending, &delivered, &failed, &err) == -1)
		return 0; /* the rest of /metrics still answers */
	st = store_stmt(c, "SELECT COALESCE(MIN(created_at), 0) FROM outbox WHERE state='pending'",
	                &err);
	if (st != NULL && store_step(st, &err) == STORE_ROW)
		oldest = store_col_int64(st, 0);
	if (st != NULL)
		store_reset(st);
	rc |= buf_printf(out,
	                 "# HELP stbcred_keymgmtd_pushes key pushes by state\n"
	                 "# TYPE stbcred_keymgmtd_pushes gauge\n"
	                 "stbcred_keymgmtd_pushes{state=\"pending\"} %lld\n"
	                 "stbcred_keymgmtd_pushes{state=\"delivered\"} %lld\n"
	                 "stbcred_keymgmtd_pushes{state=\"failed\"} %lld\n"
	                 "# HELP stbcred_keymgmtd_oldest_pending_push_seconds age of the oldest "
	                 "push not yet delivered\n"
	                 "# TYPE stbcred_keymgmtd_oldest_pending_push_seconds gauge\n"
	                 "stbcred_keymgmtd_oldest_pending_push_seconds %.3f\n",
	                 (long long)pending, (long long)delivered, (long long)failed,
	                 oldest > 0 ? (double)(km_now_ms() - oldest) / 1000.0 : 0.0);
	rc |= buf_printf(out, "# HELP stbcred_keymgmtd_push_delivery_seconds from a bind to the "
	                      "platform's acknowledgement\n"
	                      "# TYPE stbcred_keymgmtd_push_delivery_seconds histogram\n");
	rc |= hist_write_prom(out, "stbcred_keymgmtd_push_delivery_seconds", "", &km->latency);
	rc |= outbox_metrics(km->ob, out);
	return rc != 0 ? -1 : 0;
}
