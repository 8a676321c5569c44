/* keymgmtd push: the outbox's send callback (KEY_PUSH and KEY_REVOKE to
 * the app platform over mutual TLS), revoke pushes, and the push metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int64_t tries; /* attempts before this one */
	int revoke;
} km_call_t;

/* An audit record of a push's outcome, a write of its own (the outbox
 * records the state in its own). */
typedef struct km_push_audit {
	km_t *km;
	char event[32];
	char detail[640];
} km_push_audit_t;

static int
push_audit_write(store_conn_t *c, void *arg, err_t *err)
{
	km_push_audit_t *a = arg;

	return daemon_audit(a->km->d, c, a->event, "keymgmtd", a->detail, NULL, err);
}

static void
push_audit_done(void *arg, const err_t *err)
{
	km_push_audit_t *a = arg;

	if (err->status != STB_OK)
		log_warnx("push audit: %s", err->msg);
	free(a);
}

static void
push_audit(km_call_t *c, const char *event, const char *why)
{
	km_push_audit_t *a = calloc(1, sizeof(*a));
	err_t err;

	if (a == NULL)
		return;
	a->km = c->km;
	snprintf(a->event, sizeof a->event, "%s", event);
	snprintf(a->detail, sizeof a->detail, "push=%lld kind=%s app=%s key=%s tries=%lld%s%.200s",
	         (long long)c->push_id, c->revoke ? "revoke" : "key", c->dest, c->key_id,
	         (long long)c->tries + 1, why ? " error=" : "", why ? why : "");
	if (store_write(c->km->d->store, c->km->main_mb, push_audit_write, push_audit_done, a,
	                &err) == -1) {
		log_warnx("push audit: %s", err.msg);
		free(a);
	}
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
	if (err->status != STB_OK || e.status != STB_OK) {
		/* the outbox's rule: permanent at once, else after max_tries */
		if (outbox_status_permanent(e.status) ||
		    c->tries + 1 >= c->km->conf->push_max_tries)
			push_audit(c, "push_failed", e.msg);
		c->done(c->done_arg, &e, NULL, 0);
	} else {
		int64_t ms = km_now_ms() - c->queued_ms;

		hist_observe(&c->km->latency, (uint64_t)(ms < 0 ? 0 : ms) * 1000);
		push_audit(c, "push_delivered", NULL);
		err_clear(&e);
		c->done(c->done_arg, &e, NULL, 0);
	}
	free(c);
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
	if (body_read(it->body, it->body_len, &b) == -1 || (c = calloc(1, sizeof(*c))) == NULL) {
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
	snprintf(c->dest, sizeof c->dest, "%s", it->dest);
	buf_init(&tlvs, OUTBOX_BODY_MAX);
	if (it->msg_type == STB_MSG_KM_KEY_PUSH && b.wrapped != NULL) {
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
	if (rc == -1) {
		if (outbox_status_permanent(err.status) || c->tries + 1 >= km->conf->push_max_tries)
			push_audit(c, "push_failed", err.msg);
		free(c);
		done(done_arg, &err, NULL, 0);
	}
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
