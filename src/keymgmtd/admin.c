/* keymgmtd service registration (portal) and admin messages. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km.h"
#include "log.h"
#include "tlv.h"

#define KM_LIST_MAX 1000

static void
iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, 32, "-");
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
json_time(cJSON *o, const char *k, int64_t t)
{
	char s[32];

	if (t <= 0) {
		cJSON_AddNullToObject(o, k);
		return;
	}
	iso8601(t, s);
	cJSON_AddStringToObject(o, k, s);
}

typedef struct km_adm {
	km_t *km;
	srv_req_t *r;
	int op;
	char mdn[KM_MDN_CAP];
	char app_id[KM_ID_CAP];
	char key_id[KM_ID_CAP];
	int64_t push_id;
	uint32_t revokes;
	char actor[200];
} km_adm_t;

enum { ADM_REGISTER, ADM_CANCEL, ADM_UNBIND, ADM_REDELIVER };

/* Queues a KEY_REVOKE for each binding the statement's rows name (key_id,
 * app_id, mdn), then deletes them. */
static int
adm_revoke_rows(km_adm_t *a, store_conn_t *c, const char *sel, const char *del, err_t *err)
{
	struct row {
		char key_id[KM_ID_CAP], app_id[KM_ID_CAP], mdn[KM_MDN_CAP];
	} *rows = NULL;
	size_t n = 0, cap = 0;
	store_stmt_t *st;
	int rc;

	if ((st = store_stmt(c, sel, err)) == NULL)
		return -1;
	store_bind_str(st, 1, a->op == ADM_UNBIND ? a->key_id : a->mdn);
	store_bind_str(st, 2, a->app_id[0] ? a->app_id : NULL);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		if (n == cap) {
			struct row *nr = realloc(rows, (cap ? cap * 2 : 8) * sizeof(*rows));
			if (nr == NULL) {
				store_reset(st);
				free(rows);
				return err_set(err, STB_INTERNAL, "out of memory");
			}
			rows = nr;
			cap = cap ? cap * 2 : 8;
		}
		snprintf(rows[n].key_id, KM_ID_CAP, "%s", store_col_text(st, 0, NULL));
		snprintf(rows[n].app_id, KM_ID_CAP, "%s", store_col_text(st, 1, NULL));
		snprintf(rows[n].mdn, KM_MDN_CAP, "%s", store_col_text(st, 2, NULL));
		n++;
	}
	store_reset(st);
	if (rc != STORE_DONE) {
		free(rows);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t id;

		if (km_queue_revoke(a->km, c, rows[i].key_id, rows[i].mdn, rows[i].app_id, &id,
		                    err) == -1 ||
		    daemon_auditf(a->km->d, c, err, "unbind", a->actor,
		                  "key=%s mdn=%s app=%s revoke_push=%lld", rows[i].key_id,
		                  rows[i].mdn, rows[i].app_id, (long long)id) == -1) {
			free(rows);
			return -1;
		}
	}
	free(rows);
	if ((st = store_stmt(c, del, err)) == NULL)
		return -1;
	store_bind_str(st, 1, a->op == ADM_UNBIND ? a->key_id : a->mdn);
	store_bind_str(st, 2, a->app_id[0] ? a->app_id : NULL);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	a->revokes = (uint32_t)n;
	return 0;
}

static int
adm_write(store_conn_t *c, void *arg, err_t *err)
{
	km_adm_t *a = arg;
	store_stmt_t *st;

	switch (a->op) {
	case ADM_REGISTER:
		st = store_stmt(c,
		                "INSERT INTO services(mdn, app_id, created_at) VALUES(?1, ?2, ?3)"
		                " ON CONFLICT (mdn, app_id) DO NOTHING",
		                err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, a->mdn);
		store_bind_str(st, 2, a->app_id);
		store_bind_int64(st, 3, (int64_t)time(NULL));
		if (store_step(st, err) != STORE_DONE)
			return -1;
		if (store_changes(st) == 0)
			return 0; /* open already: nothing to record */
		return daemon_auditf(a->km->d, c, err, "register", a->actor, "mdn=%s app=%s",
		                     a->mdn, a->app_id);
	case ADM_CANCEL:
		st = store_stmt(c, "DELETE FROM services WHERE mdn=?1 AND app_id=?2", err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, a->mdn);
		store_bind_str(st, 2, a->app_id);
		if (store_step(st, err) != STORE_DONE)
			return -1;
		if (store_changes(st) == 0)
			return err_set(err, STB_NOT_FOUND, "MDN %s has not opened app %s", a->mdn,
			               a->app_id);
		if (adm_revoke_rows(a, c,
		                    "SELECT key_id, app_id, mdn FROM bindings WHERE mdn=?1 AND "
		                    "app_id=?2",
		                    "DELETE FROM bindings WHERE mdn=?1 AND app_id=?2", err) == -1)
			return -1;
		return daemon_auditf(a->km->d, c, err, "cancel", a->actor,
		                     "mdn=%s app=%s revokes=%u", a->mdn, a->app_id, a->revokes);
	case ADM_UNBIND:
		if (adm_revoke_rows(
		        a, c,
		        "SELECT key_id, app_id, mdn FROM bindings WHERE key_id=?1 AND "
		        "(?2 IS NULL OR app_id=?2)",
		        "DELETE FROM bindings WHERE key_id=?1 AND (?2 IS NULL OR app_id=?2)",
		        err) == -1)
			return -1;
		if (a->revokes == 0)
			return err_set(err, STB_NOT_FOUND, "key %s has no binding%s%s", a->key_id,
			               a->app_id[0] ? " for app " : "", a->app_id);
		return 0;
	default:
		if (outbox_retry(a->km->ob, c, a->push_id, km_now_ms(), err) == -1)
			return -1;
		return daemon_auditf(a->km->d, c, err, "redeliver", a->actor, "push=%lld",
		                     (long long)a->push_id);
	}
}

static void
adm_done(void *arg, const err_t *err)
{
	km_adm_t *a = arg;
	buf_t *b;

	if (err->status != STB_OK) {
		srv_reply_errt(a->r, err);
	} else if (a->op == ADM_CANCEL || a->op == ADM_UNBIND) {
		b = srv_reply_begin(a->r);
		tlv_put_u32(b, STB_TLV_KM_REVOKES, a->revokes);
		srv_reply_end(a->r);
	} else {
		srv_reply_ok(a->r);
	}
	if (err->status == STB_OK && a->op != ADM_REGISTER)
		outbox_kick(a->km->ob);
	free(a);
}

static void
adm_start(srv_req_t *r, const msg_t *m, daemon_t *d, int op)
{
	km_adm_t *a = calloc(1, sizeof(*a));
	uint64_t id = 0;
	err_t err;

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->km = d->priv;
	a->op = op;
	km_actor(r, a->actor, sizeof a->actor);
	msg_get_str(m, TLV_IX_KM_MDN, a->mdn, sizeof a->mdn);
	msg_get_str(m, TLV_IX_KM_APP_ID, a->app_id, sizeof a->app_id);
	msg_get_str(m, TLV_IX_KM_KEY_ID, a->key_id, sizeof a->key_id);
	msg_get_u64(m, TLV_IX_KM_PUSH_ID, &id);
	a->push_id = (int64_t)id;
	if ((op == ADM_REGISTER || op == ADM_CANCEL) && keysync_mdn_check(a->mdn, &err) == -1) {
		srv_reply_errt(r, &err);
		free(a);
		return;
	}
	if (op == ADM_REGISTER && km_platform(a->km, a->app_id) == NULL) {
		srv_reply_err(r, STB_NOT_FOUND, "app %s is not a configured platform", a->app_id);
		free(a);
		return;
	}
	if (daemon_write_deferred(d, r, adm_write, adm_done, a, &a->r) == -1)
		free(a);
}

static void
km_service_register(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_start(r, m, ctx, ADM_REGISTER);
}

static void
km_service_cancel(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_start(r, m, ctx, ADM_CANCEL);
}

static void
km_unbind(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_start(r, m, ctx, ADM_UNBIND);
}

static void
km_redeliver(srv_req_t *r, const msg_t *m, void *ctx)
{
	adm_start(r, m, ctx, ADM_REDELIVER);
}

/* ---- lists ---- */

static const char sql_bindings[] =
    "SELECT b.key_id, b.app_id, b.mdn, b.push_id, b.bound_at, o.state, o.tries,"
    " o.last_error, o.delivered_at FROM bindings b LEFT JOIN outbox o ON o.id = b.push_id"
    " WHERE (?2 IS NULL OR b.mdn = ?2) AND (?3 IS NULL OR o.state = ?3)"
    " AND (?4 IS NULL OR b.key_id = ?4) ORDER BY b.bound_at DESC, b.push_id DESC LIMIT ?1";

static cJSON *
binding_json(store_stmt_t *st)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "key_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "app_id", store_col_text(st, 1, NULL));
	cJSON_AddStringToObject(o, "mdn", store_col_text(st, 2, NULL));
	cJSON_AddNumberToObject(o, "push_id", (double)store_col_int64(st, 3));
	json_time(o, "bound_at", store_col_int64(st, 4));
	cJSON_AddStringToObject(o, "state",
	                        store_col_is_null(st, 5) ? "unknown" : store_col_text(st, 5, NULL));
	cJSON_AddNumberToObject(o, "tries", (double)store_col_int64(st, 6));
	if (!store_col_is_null(st, 7))
		cJSON_AddStringToObject(o, "last_error", store_col_text(st, 7, NULL));
	json_time(o, "delivered_at", store_col_int64(st, 8) / 1000);
	return o;
}

static int
bindings_query(store_conn_t *c, int64_t limit, const char *mdn, const char *state,
               const char *key_id, cJSON *arr, buf_t *b, err_t *err)
{
	store_stmt_t *st = store_stmt(c, sql_bindings, err);
	int rc;

	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, limit);
	store_bind_str(st, 2, mdn);
	store_bind_str(st, 3, state);
	store_bind_str(st, 4, key_id);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		cJSON *o = binding_json(st);

		if (arr != NULL)
			cJSON_AddItemToArray(arr, o);
		else if (daemon_entry_put(b, STB_TLV_ENTRY, o, KM_LIST_BYTES) == -1)
			break;
	}
	store_reset(st);
	return rc == STORE_ERROR ? -1 : 0;
}

static void
km_bindings(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char mdn[KM_MDN_CAP] = "";
	uint8_t state = 0;
	uint32_t limit = 100;
	int has_state = msg_get_u8(m, TLV_IX_KM_PUSH_STATE, &state) == 0;
	store_conn_t *c;
	buf_t *b;
	err_t err;

	msg_get_str(m, TLV_IX_KM_MDN, mdn, sizeof mdn);
	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > KM_LIST_MAX)
		limit = KM_LIST_MAX;
	if (has_state && state > OUTBOX_FAILED) {
		srv_reply_err(r, STB_BAD_REQUEST, "KM_PUSH_STATE is 0, 1 or 2");
		return;
	}
	if ((c = store_reader(d->store, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	if (bindings_query(c, limit, mdn[0] ? mdn : NULL,
	                   has_state ? outbox_state_name(state) : NULL, NULL, NULL, b,
	                   &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	srv_reply_end(r);
}

static cJSON *
key_json(store_stmt_t *st)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "key_id", store_col_text(st, 0, NULL));
	if (!store_col_is_null(st, 1))
		cJSON_AddStringToObject(o, "terminal_id", store_col_text(st, 1, NULL));
	if (!store_col_is_null(st, 2))
		cJSON_AddStringToObject(o, "app_hint", store_col_text(st, 2, NULL));
	json_time(o, "imported_at", store_col_int64(st, 3));
	cJSON_AddNumberToObject(o, "bindings", (double)store_col_int64(st, 4));
	return o;
}

#define SQL_KEYS                                                                                   \
	"SELECT k.key_id, k.terminal_id, k.app_hint, k.imported_at,"                               \
	" (SELECT count(*) FROM bindings b WHERE b.key_id = k.key_id) FROM keys k"

static void
km_key_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	static const char sql[] = SQL_KEYS " WHERE (?2 IS NULL OR k.terminal_id = ?2)"
	                                   " ORDER BY k.imported_at DESC, k.key_id LIMIT ?1";
	daemon_t *d = ctx;
	char tid[KM_ID_CAP] = "";
	uint32_t limit = 100;
	store_conn_t *c;
	store_stmt_t *st;
	buf_t *b;
	err_t err;
	int rc;

	msg_get_str(m, TLV_IX_KM_TERMINAL_ID, tid, sizeof tid);
	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > KM_LIST_MAX)
		limit = KM_LIST_MAX;
	if ((c = store_reader(d->store, &err)) == NULL || (st = store_stmt(c, sql, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_int64(st, 1, limit);
	store_bind_str(st, 2, tid[0] ? tid : NULL);
	b = srv_reply_begin(r);
	while ((rc = store_step(st, &err)) == STORE_ROW)
		if (daemon_entry_put(b, STB_TLV_ENTRY, key_json(st), KM_LIST_BYTES) == -1)
			break;
	store_reset(st);
	if (rc == STORE_ERROR) {
		srv_reply_errt(r, &err);
		return;
	}
	srv_reply_end(r);
}

static void
km_key_show(srv_req_t *r, const msg_t *m, void *ctx)
{
	static const char sql[] = SQL_KEYS " WHERE k.key_id = ?1";
	daemon_t *d = ctx;
	char kid[KM_ID_CAP];
	store_conn_t *c;
	store_stmt_t *st;
	cJSON *o, *arr;
	buf_t *b;
	err_t err;

	msg_get_str(m, TLV_IX_KM_KEY_ID, kid, sizeof kid);
	if ((st = daemon_row_by_id(r, d, sql, "key", kid, &c)) == NULL)
		return;
	o = key_json(st);
	store_reset(st);
	arr = cJSON_AddArrayToObject(o, "binding_list");
	if (bindings_query(c, KM_LIST_MAX, NULL, NULL, kid, arr, NULL, &err) == -1) {
		cJSON_Delete(o);
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	if (daemon_entry_put(b, STB_TLV_ENTRY, o, KM_LIST_BYTES) == -1) {
		srv_reply_err(r, STB_TOO_LARGE, "key %s has too many bindings to show", kid);
		return;
	}
	srv_reply_end(r);
}

static void
km_platforms(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	km_t *km = d->priv;
	store_conn_t *c;
	buf_t *b;
	err_t err;

	(void)m;
	if ((c = store_reader(d->store, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	for (int i = 0; i < km->nplat; i++) {
		const km_platform_t *p = &km->plat[i];
		int64_t pend = 0, del = 0, fail = 0;
		cJSON *o = cJSON_CreateObject();
		char subj[256] = "";

		outbox_counts(km->ob, c, p->app_id, &pend, &del, &fail, &err);
		X509_NAME_oneline(X509_get_subject_name(p->enc_cert), subj, sizeof subj);
		cJSON_AddStringToObject(o, "app_id", p->app_id);
		cJSON_AddStringToObject(o, "address", p->address);
		cJSON_AddStringToObject(o, "cert_subject", subj);
		cJSON_AddNumberToObject(o, "pending", (double)pend);
		cJSON_AddNumberToObject(o, "delivered", (double)del);
		cJSON_AddNumberToObject(o, "failed", (double)fail);
		if (daemon_entry_put(b, STB_TLV_ENTRY, o, KM_LIST_BYTES) == -1)
			break;
	}
	srv_reply_end(r);
}

void
km_admin_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_KM_SERVICE_REGISTER, km_service_register);
	srv_handle(d->srv, MSG_IX_KM_SERVICE_CANCEL, km_service_cancel);
	srv_handle(d->srv, MSG_IX_KM_KEY_LIST, km_key_list);
	srv_handle(d->srv, MSG_IX_KM_KEY_SHOW, km_key_show);
	srv_handle(d->srv, MSG_IX_KM_UNBIND, km_unbind);
	srv_handle(d->srv, MSG_IX_KM_BINDINGS, km_bindings);
	srv_handle(d->srv, MSG_IX_KM_REDELIVER, km_redeliver);
	srv_handle(d->srv, MSG_IX_KM_PLATFORMS, km_platforms);
}
