/* cpstb: the operator's changes to one STB: CP_STB_ENABLE (a disabled box
 * cannot authenticate and is cut off at once) and CP_STB_DELETE (the box,
 * its sealed secret, its certificate IDs and pending updates go; the
 * certificates issued to it stay on record, for revocation and audit). */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "tlv.h"

struct cpstb {
	cp_t *cp;
	srv_req_t *r;
	int del;
	int enabled;
	char device_id[CP_ID_CAP];
	char actor[CP_ACTOR_CAP];
};

static int
cpstb_exec(store_conn_t *c, const char *sql, const struct cpstb *a, int64_t *changes, err_t *err)
{
	store_stmt_t *st = store_stmt(c, sql, err);

	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if (!a->del) {
		store_bind_int64(st, 2, a->enabled);
		store_bind_int64(st, 3, (int64_t)time(NULL));
	}
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (changes != NULL)
		*changes = store_changes(st);
	return 0;
}

static int
cpstb_write(store_conn_t *c, void *arg, err_t *err)
{
	struct cpstb *a = arg;
	int64_t n = 0;

	if (!a->del) {
		if (cpstb_exec(c, "UPDATE stbs SET enabled=?2, updated=?3 WHERE device_id=?1", a,
		               &n, err) == -1)
			return -1;
		if (n == 0)
			return err_set(err, STB_NOT_FOUND, "no STB %s", a->device_id);
		return daemon_auditf(a->cp->d, c, err, "stb_enable", a->actor,
		                     "device=%s enabled=%d", a->device_id, a->enabled);
	}
	if (cpstb_exec(c, "DELETE FROM stbs WHERE device_id=?1", a, &n, err) == -1)
		return -1;
	if (n == 0)
		return err_set(err, STB_NOT_FOUND, "no STB %s", a->device_id);
	if (cpstb_exec(c, "DELETE FROM stb_certs WHERE device_id=?1", a, NULL, err) == -1 ||
	    cpstb_exec(c, "DELETE FROM pending WHERE device_id=?1", a, NULL, err) == -1)
		return -1;
	return daemon_auditf(a->cp->d, c, err, "stb_delete", a->actor, "device=%s", a->device_id);
}

static void
cpstb_done(void *arg, const err_t *err)
{
	struct cpstb *a = arg;
	cp_t *cp = a->cp;

	if (err->status != STB_OK)
		srv_reply_errt(a->r, err);
	else {
		if (a->del || !a->enabled)
			cp_online_kick(cp, a->device_id);
		srv_reply_ok(a->r);
	}
	free(a);
	cp_unref(cp);
}

static void
cpstb_start(srv_req_t *r, const msg_t *m, daemon_t *d, int del)
{
	struct cpstb *a = calloc(1, sizeof(*a));
	uint8_t en = 0;

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->cp = d->priv;
	a->del = del;
	msg_get_str(m, TLV_IX_DEVICE_ID, a->device_id, sizeof(a->device_id));
	if (!del) {
		msg_get_u8(m, TLV_IX_ENABLED, &en);
		if (en > 1) {
			free(a);
			srv_reply_err(r, STB_BAD_REQUEST, "ENABLED must be 0 or 1");
			return;
		}
		a->enabled = en;
	}
	cp_actor(r->conn, NULL, a->actor);
	cp_ref(a->cp);
	if (daemon_write_deferred(d, r, cpstb_write, cpstb_done, a, &a->r) == -1) {
		cp_unref(a->cp);
		free(a);
	}
}

static void
cp_stb_enable(srv_req_t *r, const msg_t *m, void *ctx)
{
	cpstb_start(r, m, ctx, 0);
}

static void
cp_stb_delete(srv_req_t *r, const msg_t *m, void *ctx)
{
	cpstb_start(r, m, ctx, 1);
}

void
cp_stb_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_CP_STB_ENABLE, cp_stb_enable);
	srv_handle(d->srv, MSG_IX_CP_STB_DELETE, cp_stb_delete);
}
