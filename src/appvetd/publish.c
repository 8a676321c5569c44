/* publish: APP_PUBLISH (flag ID3, the signed payload), APP_REVET, and the
 * operator's views: list, show, findings, QR text, public key. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "av.h"
#include "hex.h"
#include "log.h"
#include "tlv.h"

#define LIST_MAX 1000

int
av_index_bump(store_conn_t *c, err_t *err)
{
	/* meta.v, not v: PostgreSQL finds a bare v ambiguous (row or excluded) */
	store_stmt_t *st = store_stmt(c,
	                              "INSERT INTO meta(k, v) VALUES('index_version', 1) "
	                              "ON CONFLICT(k) DO UPDATE SET v=meta.v+1",
	                              err);

	if (st == NULL)
		return -1;
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

/* ---- APP_PUBLISH ---- */

struct pub {
	av_t *av;
	srv_req_t *r;
	char id1[AV_ID_CAP];
	char id3[33];
	char actor[200];
	uint32_t validity;
	int flag;
	uint64_t issued, expires;
	char payload[APPPAY_TEXT_MAX + 1];
};

static int
pub_write(store_conn_t *c, void *arg, err_t *err)
{
	struct pub *p = arg;
	store_stmt_t *st;
	const char *state;
	int rc;

	st = store_stmt(c, "SELECT state, flag FROM apps WHERE id1=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, p->id1);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc == STORE_DONE ? err_set(err, STB_NOT_FOUND, "no app %s", p->id1) : -1;
	}
	state = store_col_text(st, 0, NULL);
	if (strcmp(state, "vetted") != 0) {
		store_reset(st);
		return err_set(err, STB_PENDING, "app %s is still being vetted; publish it later",
		               p->id1);
	}
	p->flag = (int)store_col_int64(st, 1);
	store_reset(st);
	p->issued = (uint64_t)time(NULL);
	p->expires = p->issued + p->validity;
	if (av_random_id(p->id3, err) == -1 ||
	    apppay_encode(p->id1, p->flag, p->issued, p->expires, p->av->pay_key, p->av->op_key,
	                  p->payload, sizeof(p->payload), err) == -1)
		return -1;
	st =
	    store_stmt(c,
	               "UPDATE apps SET id3=?2, pub_flag=?3, published=?4, expires=?5, payload=?6, "
	               "revoked=0 WHERE id1=?1",
	               err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, p->id1);
	store_bind_str(st, 2, p->id3);
	store_bind_int64(st, 3, p->flag);
	store_bind_int64(st, 4, (int64_t)p->issued);
	store_bind_int64(st, 5, (int64_t)p->expires);
	store_bind_str(st, 6, p->payload);
	if (store_step(st, err) != STORE_DONE || av_index_bump(c, err) == -1)
		return -1;
	return daemon_auditf(
	    p->av->d, c, err, "app_publish", p->actor, "id1=%s id3=%s flag=%s expires=%llu", p->id1,
	    p->id3, p->flag == AV_FLAG_SAFE ? "SAFE" : "UNSAFE", (unsigned long long)p->expires);
}

static void
pub_done(void *arg, const err_t *err)
{
	struct pub *p = arg;
	err_t e2;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(p->r, err);
	else {
		if (av_index_reload(p->av, &e2) == -1)
			log_warnx("check index not reloaded after publishing %s: %s", p->id1,
			          e2.msg);
		b = srv_reply_begin(p->r);
		tlv_put_str(b, STB_TLV_APP_ID3, p->id3);
		tlv_put_u8(b, STB_TLV_APP_FLAG, (uint8_t)p->flag);
		tlv_put_str(b, STB_TLV_APP_QR_PAYLOAD, p->payload);
		tlv_put_u64(b, STB_TLV_APP_EXPIRES, p->expires);
		srv_reply_end(p->r);
		av_metrics_publication(p->flag);
		log_info("published %s as %s (%s)", p->id1, p->id3,
		         p->flag == AV_FLAG_SAFE ? "SAFE" : "UNSAFE");
	}
	free(p);
}

static void
av_publish(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	struct pub *p = calloc(1, sizeof(*p));
	uint32_t validity = (uint32_t)av->conf->validity_s;

	if (p == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	p->av = av;
	msg_get_str(m, TLV_IX_APP_ID1, p->id1, sizeof(p->id1));
	msg_get_u32(m, TLV_IX_APP_VALIDITY_S, &validity);
	if (validity == 0 || validity > (uint64_t)av->conf->max_validity_s) {
		free(p);
		srv_reply_err(r, STB_BAD_REQUEST,
		              "validity must be 1..%lld s (publish.max_validity_s)",
		              av->conf->max_validity_s);
		return;
	}
	p->validity = validity;
	snprintf(p->actor, sizeof(p->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	if (daemon_write_deferred(d, r, pub_write, pub_done, p, &p->r) == -1)
		free(p);
}

/* ---- APP_REVET ---- */

struct rv {
	srv_req_t *r;
};

static void
revet_done(void *arg, const err_t *err, const av_verdict_t *v)
{
	struct rv *q = arg;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(q->r, err);
	else {
		b = srv_reply_begin(q->r);
		tlv_put_str(b, STB_TLV_APP_ID2, v->id2);
		tlv_put_u8(b, STB_TLV_APP_FLAG, (uint8_t)v->flag);
		srv_reply_end(q->r);
	}
	free(q);
}

/* 1 when id1 is a stored app (on the caller's reader). */
static int
app_exists(daemon_t *d, const char *id1, err_t *err)
{
	store_conn_t *c = store_reader(d->store, err);
	store_stmt_t *st;
	int rc;

	if (c == NULL || (st = store_stmt(c, "SELECT 1 FROM apps WHERE id1=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, id1);
	rc = store_step(st, err);
	store_reset(st);
	if (rc == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "no app %s", id1);
	return rc == STORE_ROW ? 0 : -1;
}

static void
av_revet(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char id1[AV_ID_CAP];
	struct rv *q;
	err_t err;

	msg_get_str(m, TLV_IX_APP_ID1, id1, sizeof(id1));
	if (app_exists(d, id1, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	/* the newest blocklist, for this and every later verdict */
	if (av->apk != NULL && apk_ctx_reload_blocklist(av->apk, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL || (q->r = srv_req_defer(r)) == NULL) {
		free(q);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (av_vet_queue(av, id1, srv_conn_base(q->r->conn), srv_req_mbox(q->r), revet_done, q,
	                 &err) == -1) {
		srv_reply_errt(q->r, &err);
		free(q);
	}
}

/* ---- views ---- */

static const char *
flag_name(store_stmt_t *st, int col)
{
	if (store_col_is_null(st, col))
		return NULL;
	return store_col_int64(st, col) == AV_FLAG_SAFE ? "SAFE" : "UNSAFE";
}

static void
add_opt_str(cJSON *o, const char *k, store_stmt_t *st, int col)
{
	if (!store_col_is_null(st, col))
		cJSON_AddStringToObject(o, k, store_col_text(st, col, NULL));
	else
		cJSON_AddNullToObject(o, k);
}

static void
add_opt_num(cJSON *o, const char *k, store_stmt_t *st, int col)
{
	if (!store_col_is_null(st, col))
		cJSON_AddNumberToObject(o, k, (double)store_col_int64(st, col));
	else
		cJSON_AddNullToObject(o, k);
}

#define APP_COLS                                                                                   \
	"id1, name, version, state, flag, id2, id3, submitted, vet_time, published, expires, "     \
	"revoked, size, sha256, submitter, pub_flag, warning, report"

static cJSON *
app_json(store_stmt_t *st, void *arg)
{
	cJSON *o = cJSON_CreateObject(), *rep;
	const char *f = flag_name(st, 4), *pf = flag_name(st, 15);
	char hex[65] = "";
	const void *sha;
	size_t len;
	int full = arg != NULL;

	cJSON_AddStringToObject(o, "id1", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "name", store_col_text(st, 1, NULL));
	cJSON_AddStringToObject(o, "version", store_col_text(st, 2, NULL));
	cJSON_AddStringToObject(o, "state",
	                        store_col_int64(st, 11)     ? "revoked"
	                        : !store_col_is_null(st, 6) ? "published"
	                                                    : store_col_text(st, 3, NULL));
	if (f != NULL)
		cJSON_AddStringToObject(o, "flag", f);
	else
		cJSON_AddNullToObject(o, "flag");
	add_opt_str(o, "id2", st, 5);
	add_opt_str(o, "id3", st, 6);
	add_opt_num(o, "submitted", st, 7);
	add_opt_num(o, "vet_time", st, 8);
	add_opt_num(o, "published", st, 9);
	add_opt_num(o, "expires", st, 10);
	if (!full)
		return o;
	cJSON_AddNumberToObject(o, "size", (double)store_col_int64(st, 12));
	sha = store_col_blob(st, 13, &len);
	if (len == 32)
		hex_encode(sha, 32, hex);
	cJSON_AddStringToObject(o, "sha256", hex);
	add_opt_str(o, "submitter", st, 14);
	if (pf != NULL)
		cJSON_AddStringToObject(o, "published_flag", pf);
	add_opt_str(o, "warning", st, 16);
	if (!store_col_is_null(st, 17) &&
	    (rep = cJSON_Parse(store_col_text(st, 17, NULL))) != NULL) {
		/* what show needs of the report; findings have their own message */
		cJSON_DeleteItemFromObject(rep, "findings");
		cJSON_AddItemToObject(o, "report", rep);
	}
	return o;
}

static void
av_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	uint32_t limit = 100;

	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > LIST_MAX)
		limit = LIST_MAX;
	daemon_list_reply(r, ctx,
	                  "SELECT " APP_COLS " FROM apps ORDER BY submitted DESC, rowid DESC "
	                  "LIMIT ?1",
	                  limit, NULL, STB_TLV_ENTRY, AV_LIST_BYTES, app_json, NULL);
}

/* One app's row on the caller's reader, *out positioned on it; sql is a
 * literal (the statement cache is keyed by its address) with ?1 the ID1. */
static int
app_row(daemon_t *d, const char *sql, const char *id1, store_stmt_t **out, err_t *err)
{
	store_conn_t *c = store_reader(d->store, err);
	int rc;

	if (c == NULL || (*out = store_stmt(c, sql, err)) == NULL)
		return -1;
	store_bind_str(*out, 1, id1);
	if ((rc = store_step(*out, err)) == STORE_ROW)
		return 0;
	store_reset(*out);
	return rc == STORE_DONE ? err_set(err, STB_NOT_FOUND, "no app %s", id1) : -1;
}

static void
av_show(srv_req_t *r, const msg_t *m, void *ctx)
{
	char id1[AV_ID_CAP];
	store_stmt_t *st;
	cJSON *o, *rep;
	err_t err;
	buf_t *b;

	msg_get_str(m, TLV_IX_APP_ID1, id1, sizeof(id1));
	if (app_row(ctx, "SELECT " APP_COLS " FROM apps WHERE id1=?1", id1, &st, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	o = app_json(st, "full");
	store_reset(st);
	b = srv_reply_begin(r);
	if (daemon_entry_put(b, STB_TLV_ENTRY, cJSON_Duplicate(o, 1), 8192) == -1) {
		/* too large with the report: without it */
		b->len = 0;
		b->failed = 0;
		if ((rep = cJSON_DetachItemFromObject(o, "report")) != NULL)
			cJSON_Delete(rep);
		daemon_entry_put(b, STB_TLV_ENTRY, cJSON_Duplicate(o, 1), 8192);
	}
	cJSON_Delete(o);
	srv_reply_end(r);
}

static void
av_findings(srv_req_t *r, const msg_t *m, void *ctx)
{
	char id1[AV_ID_CAP];
	store_stmt_t *st;
	cJSON *arr, *f;
	err_t err;
	buf_t *b;

	msg_get_str(m, TLV_IX_APP_ID1, id1, sizeof(id1));
	if (app_row(ctx, "SELECT COALESCE(findings, '[]') FROM apps WHERE id1=?1", id1, &st,
	            &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	arr = cJSON_Parse(store_col_text(st, 0, NULL));
	store_reset(st);
	b = srv_reply_begin(r);
	cJSON_ArrayForEach(f, arr)
	{
		if (daemon_entry_put(b, STB_TLV_APP_FINDING, cJSON_Duplicate(f, 1),
		                     AV_LIST_BYTES) == -1)
			break;
	}
	cJSON_Delete(arr);
	srv_reply_end(r);
}

static void
av_qr(srv_req_t *r, const msg_t *m, void *ctx)
{
	char id1[AV_ID_CAP], text[APPPAY_TEXT_MAX + 1];
	uint8_t kind = 2;
	store_stmt_t *st;
	err_t err;
	buf_t *b;
	int none;

	msg_get_str(m, TLV_IX_APP_ID1, id1, sizeof(id1));
	msg_get_u8(m, TLV_IX_APP_QR_KIND, &kind);
	if (kind != 1 && kind != 2) {
		srv_reply_err(r, STB_BAD_REQUEST, "QR kind is 1 (submitted) or 2 (published)");
		return;
	}
	if (app_row(ctx, "SELECT payload FROM apps WHERE id1=?1", id1, &st, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	none = store_col_is_null(st, 0);
	snprintf(text, sizeof(text), "%s",
	         kind == 1 ? id1
	         : none    ? ""
	                   : store_col_text(st, 0, NULL));
	store_reset(st);
	if (kind == 2 && none) {
		srv_reply_err(r, STB_CONFLICT, "app %s is not published yet", id1);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_APP_QR_PAYLOAD, text);
	srv_reply_end(r);
}

static void
av_pubkey(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	buf_t *b;

	(void)m;
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_APP_PUBKEY, av->op_pub_pem);
	srv_reply_end(r);
}

void
av_publish_register(daemon_t *d)
{
	if (!((av_t *)d->priv)->operator_role)
		return;
	srv_handle(d->srv, MSG_IX_APP_PUBLISH, av_publish);
	srv_handle(d->srv, MSG_IX_APP_REVET, av_revet);
	srv_handle(d->srv, MSG_IX_APP_LIST, av_list);
	srv_handle(d->srv, MSG_IX_APP_SHOW, av_show);
	srv_handle(d->srv, MSG_IX_APP_FINDINGS, av_findings);
	srv_handle(d->srv, MSG_IX_APP_QR, av_qr);
	srv_handle(d->srv, MSG_IX_APP_PUBKEY, av_pubkey);
}
