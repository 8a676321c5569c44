/* subadmin: the operator's changes to one subscriber or its tokens:
 * GW_SUB_ENABLE (activate or suspend), GW_SUB_DELETE (with its tokens) and
 * GW_TOKEN_REVOKE (one token by value, or every token of a device).  A
 * token is stored as its SHA-256 only; revoking deletes the row, so
 * introspection says inactive at once. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "log.h"
#include "tlv.h"

enum { SUBADM_ENABLE, SUBADM_DELETE, SUBADM_REVOKE };

struct subadm {
	gw_t *gw;
	srv_req_t *r;
	int op;
	int active;
	int by_token;
	uint8_t hash[GW_HASH_LEN];
	char device_id[GW_ID_CAP];
	char actor[160];
	int64_t changed; /* subscriber rows */
	int64_t tokens;  /* token rows removed */
};

static int
subadm_exec(store_conn_t *c, const char *sql, struct subadm *a, int64_t *changes, err_t *err)
{
	store_stmt_t *st = store_stmt(c, sql, err);

	if (st == NULL)
		return -1;
	if (a->by_token)
		store_bind_blob(st, 1, a->hash, GW_HASH_LEN);
	else
		store_bind_str(st, 1, a->device_id);
	if (a->op == SUBADM_ENABLE) {
		store_bind_int64(st, 2, a->active);
		store_bind_int64(st, 3, (int64_t)time(NULL));
	}
	if (store_step(st, err) != STORE_DONE)
		return -1;
	*changes = store_changes(st);
	return 0;
}

static int
subadm_write(store_conn_t *c, void *arg, err_t *err)
{
	struct subadm *a = arg;
	char fp[17];

	switch (a->op) {
	case SUBADM_ENABLE:
		if (subadm_exec(c,
		                "UPDATE subscribers SET active=?2, updated=?3 WHERE device_id=?1",
		                a, &a->changed, err) == -1)
			return -1;
		if (a->changed == 0)
			return err_set(err, STB_NOT_FOUND, "no subscriber %s", a->device_id);
		return daemon_auditf(a->gw->d, c, err, "subscriber_enable", a->actor,
		                     "device=%s %s", a->device_id,
		                     a->active ? "active" : "suspended");
	case SUBADM_DELETE:
		if (subadm_exec(c, "DELETE FROM subscribers WHERE device_id=?1", a, &a->changed,
		                err) == -1)
			return -1;
		if (a->changed == 0)
			return err_set(err, STB_NOT_FOUND, "no subscriber %s", a->device_id);
		if (subadm_exec(c, "DELETE FROM tokens WHERE device_id=?1", a, &a->tokens, err) ==
		    -1)
			return -1;
		return daemon_auditf(a->gw->d, c, err, "subscriber_delete", a->actor,
		                     "device=%s tokens=%lld", a->device_id, (long long)a->tokens);
	default:
		if (subadm_exec(c,
		                a->by_token ? "DELETE FROM tokens WHERE hash=?1"
		                            : "DELETE FROM tokens WHERE device_id=?1",
		                a, &a->tokens, err) == -1)
			return -1;
		if (a->by_token && a->tokens == 0)
			return err_set(err, STB_NOT_FOUND, "no such access token");
		if (!a->by_token)
			return daemon_auditf(a->gw->d, c, err, "token_revoke", a->actor,
			                     "device=%s tokens=%lld", a->device_id,
			                     (long long)a->tokens);
		/* the audit names the token by its hash's fingerprint, never itself */
		log_fingerprint(a->hash, sizeof(a->hash), fp);
		return daemon_auditf(a->gw->d, c, err, "token_revoke", a->actor, "token_sha256=%s",
		                     fp);
	}
}

static void
subadm_done(void *arg, const err_t *err)
{
	struct subadm *a = arg;
	gw_t *gw = a->gw;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(a->r, err);
	else if (a->op == SUBADM_ENABLE)
		srv_reply_ok(a->r);
	else {
		b = srv_reply_begin(a->r);
		tlv_put_u32(b, STB_TLV_TOKEN_COUNT, (uint32_t)a->tokens);
		srv_reply_end(a->r);
	}
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	gw_unref(gw);
}

static void
subadm_start(srv_req_t *r, const msg_t *m, daemon_t *d, int op)
{
	struct subadm *a = calloc(1, sizeof(*a));
	const uint8_t *tok = NULL;
	size_t tlen = 0;
	uint8_t en = 1;

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->gw = d->priv;
	a->op = op;
	msg_get_str(m, TLV_IX_DEVICE_ID, a->device_id, sizeof(a->device_id));
	if (op == SUBADM_ENABLE) {
		msg_get_u8(m, TLV_IX_ENABLED, &en);
		if (en > 1) {
			free(a);
			srv_reply_err(r, STB_BAD_REQUEST,
			              "ENABLED must be 0 (suspended) or 1 (active)");
			return;
		}
		a->active = en;
	}
	if (op == SUBADM_REVOKE) {
		int has_tok = msg_get_bytes(m, TLV_IX_ACCESS_TOKEN, &tok, &tlen) == 0;
		if (has_tok == (a->device_id[0] != '\0')) {
			free(a);
			srv_reply_err(r, STB_BAD_REQUEST,
			              "name either ACCESS_TOKEN or DEVICE_ID, not both or neither");
			return;
		}
		if (has_tok && (tlen != GW_TOKEN_LEN || gw_token_hash(a->gw, tok, a->hash) == -1)) {
			free(a);
			srv_reply_err(r, STB_INTERNAL, "cannot hash the token");
			return;
		}
		a->by_token = has_tok;
	}
	gw_actor(r, a->actor, sizeof(a->actor));
	gw_ref(a->gw);
	if (daemon_write_deferred(d, r, subadm_write, subadm_done, a, &a->r) == -1) {
		gw_unref(a->gw);
		free(a);
	}
}

static void
gw_sub_enable(srv_req_t *r, const msg_t *m, void *ctx)
{
	subadm_start(r, m, ctx, SUBADM_ENABLE);
}

static void
gw_sub_delete(srv_req_t *r, const msg_t *m, void *ctx)
{
	subadm_start(r, m, ctx, SUBADM_DELETE);
}

static void
gw_token_revoke(srv_req_t *r, const msg_t *m, void *ctx)
{
	subadm_start(r, m, ctx, SUBADM_REVOKE);
}

void
gw_subadmin_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_GW_SUB_ENABLE, gw_sub_enable);
	srv_handle(d->srv, MSG_IX_GW_SUB_DELETE, gw_sub_delete);
	srv_handle(d->srv, MSG_IX_GW_TOKEN_REVOKE, gw_token_revoke);
}
