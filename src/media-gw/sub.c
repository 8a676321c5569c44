/* sub: the subscriber table (device_id -> cert_id, active/suspended),
 * maintained by the operator: GW_SUB_IMPORT (upsert) and GW_SUB_LIST. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "tlv.h"

#define LIST_BYTES 60000 /* stays under a client's default max_frame */
#define LIST_MAX   10000

struct imp {
	gw_t *gw;
	srv_req_t *r;
	char device_id[GW_ID_CAP];
	char cert_id[GW_ID_CAP];
	int active;
	char actor[160];
};

static int
imp_write(store_conn_t *c, void *arg, err_t *err)
{
	struct imp *a = arg;
	store_stmt_t *st;

	st =
	    store_stmt(c,
	               "INSERT INTO subscribers(device_id, cert_id, active, updated) "
	               "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(device_id) DO UPDATE SET "
	               "cert_id=excluded.cert_id, active=excluded.active, updated=excluded.updated",
	               err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	store_bind_str(st, 2, a->cert_id);
	store_bind_int64(st, 3, a->active);
	store_bind_int64(st, 4, (int64_t)time(NULL));
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(a->gw->d, c, err, "subscriber_import", a->actor,
	                     "device=%s cert=%s %s", a->device_id, a->cert_id,
	                     a->active ? "active" : "suspended");
}

static void
imp_done(void *arg, const err_t *err)
{
	struct imp *a = arg;
	gw_t *gw = a->gw;

	srv_reply_result(a->r, err);
	free(a);
	gw_unref(gw);
}

static void
gw_sub_import(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct imp *a = calloc(1, sizeof(*a));
	uint8_t en = 1;

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->gw = d->priv;
	msg_get_str(m, TLV_IX_DEVICE_ID, a->device_id, sizeof(a->device_id));
	msg_get_str(m, TLV_IX_CERT_ID, a->cert_id, sizeof(a->cert_id));
	msg_get_u8(m, TLV_IX_ENABLED, &en);
	if (en > 1) {
		free(a);
		srv_reply_err(r, STB_BAD_REQUEST, "ENABLED must be 0 (suspended) or 1 (active)");
		return;
	}
	a->active = en;
	gw_actor(r, a->actor, sizeof(a->actor));
	gw_ref(a->gw);
	if (daemon_write_deferred(d, r, imp_write, imp_done, a, &a->r) == -1) {
		gw_unref(a->gw);
		free(a);
	}
}

static cJSON *
sub_json(store_stmt_t *st, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	(void)arg;
	cJSON_AddStringToObject(o, "device_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "cert_id", store_col_text(st, 1, NULL));
	cJSON_AddStringToObject(o, "state",
	                        (int)store_col_int64(st, 2) == 1 ? "active" : "suspended");
	cJSON_AddNumberToObject(o, "updated", (double)store_col_int64(st, 3));
	return o;
}

static void
gw_sub_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	uint32_t limit = 1000;

	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > LIST_MAX)
		limit = LIST_MAX;
	/* a full page simply ends; --limit pages are the operator's tool */
	daemon_list_reply(r, ctx,
	                  "SELECT device_id, cert_id, active, updated FROM subscribers "
	                  "ORDER BY device_id LIMIT ?1",
	                  limit, NULL, STB_TLV_ENTRY, LIST_BYTES, sub_json, NULL);
}

void
gw_sub_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_GW_SUB_IMPORT, gw_sub_import);
	srv_handle(d->srv, MSG_IX_GW_SUB_LIST, gw_sub_list);
}
