/*
 * admin: the operator's messages.  STB import seals the device secret
 * under the KEK with the device ID as associated data and, given CERT_IDS,
 * sets the cert_ids the box may hold (certs.c); lists never carry
 * secrets or keys.  A revocation goes to ca-authd first and is recorded
 * here only once ca-authd has it, guarded by the serial so a renewal in
 * between is not marked revoked by mistake.
 */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "hex.h"
#include "log.h"
#include "msgenc.h"
#include "tlv.h"
#include "x509.h"

/* ---- CP_STB_IMPORT ---- */

#define IMP_IDS_MAX 256 /* cert_ids of one STB; its list entry stays under ENTRY's 8192 */

struct imp {
	cp_t *cp;
	srv_req_t *r;
	char device_id[CP_ID_CAP];
	char actor[CP_ACTOR_CAP];
	int enabled;
	buf_t sealed;
	uint8_t secret[CP_SECRET_MAX]; /* until the write compared it */
	size_t slen;
	int created;
	int changed; /* the secret is not the stored one */
	int has_ids; /* CERT_IDS given: ids replaces the STB's list */
	char ids[4097];
	size_t nids;
};

/* The next space-separated ID of *p into out; 0 at the end. */
static int
imp_id_next(const char **p, char out[CP_ID_CAP])
{
	const char *s = *p, *e;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return 0;
	for (e = s; *e != '\0' && *e != ' '; e++)
		;
	snprintf(out, CP_ID_CAP, "%.*s", (int)(e - s < CP_ID_CAP ? e - s : CP_ID_CAP - 1), s);
	*p = e;
	return 1;
}

static int
imp_ids_have(const char *ids, const char *id)
{
	char t[CP_ID_CAP];

	while (imp_id_next(&ids, t))
		if (strcmp(t, id) == 0)
			return 1;
	return 0;
}

/* CERT_IDS: identifiers separated by single spaces, none twice; "" for
 * none. */
static int
imp_ids_check(struct imp *a, err_t *err)
{
	char t[CP_ID_CAP];
	const char *s;

	for (s = a->ids; *s != '\0'; s++)
		if (*s == ' ' && (s == a->ids || s[1] == ' ' || s[1] == '\0'))
			return err_set(err, STB_BAD_REQUEST,
			               "CERT_IDS: IDs are separated by single spaces");
	a->nids = 0;
	for (s = a->ids; *s != '\0';) {
		size_t n = strcspn(s, " ");

		if (n > STB_ID_MAX || !proto_id_valid((const uint8_t *)s, n))
			return err_set(err, STB_BAD_REQUEST,
			               "CERT_IDS: '%.*s' is not an identifier",
			               (int)(n > 64 ? 64 : n), s);
		memcpy(t, s, n);
		t[n] = '\0';
		s += n + (s[n] == ' ');
		if (++a->nids > IMP_IDS_MAX)
			return err_set(err, STB_BAD_REQUEST, "CERT_IDS: more than %d IDs",
			               IMP_IDS_MAX);
		if (imp_ids_have(s, t))
			return err_set(err, STB_BAD_REQUEST, "CERT_IDS: %s is listed twice", t);
	}
	return 0;
}

/* Replaces the STB's cert_ids: each free or already its own, and every
 * certificate it holds still listed (a stored certificate stays with its
 * holder). */
static int
imp_write_ids(store_conn_t *c, struct imp *a, err_t *err)
{
	const char *p = a->ids;
	char id[CP_ID_CAP];
	store_stmt_t *st;
	int rc;

	st = store_stmt(c, "SELECT cert_id FROM certs WHERE device_id=?1 ORDER BY cert_id", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		const char *held = store_col_text(st, 0, NULL);
		if (held != NULL && !imp_ids_have(a->ids, held)) {
			err_set(err, STB_CONFLICT,
			        "%s holds certificate %s: keep it in its cert_ids", a->device_id,
			        held);
			store_reset(st);
			return -1;
		}
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	while (imp_id_next(&p, id)) {
		st = store_stmt(c, "SELECT device_id FROM stb_certs WHERE cert_id=?1", err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, id);
		if ((rc = store_step(st, err)) == STORE_ROW &&
		    strcmp(store_col_text(st, 0, NULL), a->device_id) != 0) {
			err_set(err, STB_CONFLICT, "certificate ID %s is assigned to %s", id,
			        store_col_text(st, 0, NULL));
			store_reset(st);
			return -1;
		}
		store_reset(st);
		if (rc != STORE_ROW && rc != STORE_DONE)
			return -1;
	}
	st = store_stmt(c, "DELETE FROM stb_certs WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	for (p = a->ids; imp_id_next(&p, id);) {
		st = store_stmt(c, "INSERT INTO stb_certs(cert_id, device_id) VALUES(?1, ?2)", err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, id);
		store_bind_str(st, 2, a->device_id);
		if (store_step(st, err) != STORE_DONE)
			return -1;
	}
	return 0;
}

static void
imp_free(struct imp *a)
{
	cp_t *cp = a->cp;

	buf_wipe(&a->sealed);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	cp_unref(cp);
}

static int
imp_write(store_conn_t *c, void *arg, err_t *err)
{
	struct imp *a = arg;
	int64_t now = (int64_t)time(NULL);
	store_stmt_t *st;

	uint8_t old[CP_SECRET_MAX];
	char aad[CP_ID_CAP + 8];
	size_t olen = 0, blen;
	const void *blob;
	int rc;

	st = store_stmt(c, "SELECT secret FROM stbs WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	if ((rc = store_step(st, err)) != STORE_ROW && rc != STORE_DONE)
		return -1;
	a->created = rc != STORE_ROW;
	blob = store_col_blob(st, 0, &blen);
	/* a new secret ends the sessions the old one opened */
	a->changed = !a->created &&
	             (cp_stb_aad(a->device_id, aad, sizeof(aad)) == -1 ||
	              cp_secret_open(a->cp, aad, blob, blen, old, sizeof(old), &olen, NULL) == -1 ||
	              olen != a->slen || CRYPTO_memcmp(old, a->secret, olen) != 0);
	store_reset(st);
	OPENSSL_cleanse(old, sizeof(old));
	OPENSSL_cleanse(a->secret, sizeof(a->secret));
	st =
	    store_stmt(c,
	               "INSERT INTO stbs(device_id, secret, enabled, created, updated) "
	               "VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(device_id) DO UPDATE SET "
	               "secret=excluded.secret, enabled=excluded.enabled, updated=excluded.updated",
	               err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, a->device_id);
	store_bind_blob(st, 2, a->sealed.data, a->sealed.len);
	store_bind_int64(st, 3, a->enabled);
	store_bind_int64(st, 4, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (a->has_ids && imp_write_ids(c, a, err) == -1)
		return -1;
	return daemon_auditf(a->cp->d, c, err, "stb_import", a->actor,
	                     "device=%s enabled=%d%s%s%s%zu", a->device_id, a->enabled,
	                     a->created ? " new" : " replaced", a->changed ? " secret_changed" : "",
	                     a->has_ids ? " cert_ids=" : "", a->has_ids ? a->nids : 0);
}

static void
imp_done(void *arg, const err_t *err)
{
	struct imp *a = arg;

	if (err->status != STB_OK)
		srv_reply_errt(a->r, err);
	else {
		/* a disabled box, or one with a new secret, loses its sessions */
		if (!a->enabled || a->changed)
			cp_online_kick(a->cp, a->device_id);
		srv_reply_ok(a->r);
	}
	imp_free(a);
}

static void
cp_stb_import(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	struct imp *a = calloc(1, sizeof(*a));
	char aad[CP_ID_CAP + 8];
	const uint8_t *secret;
	size_t slen;
	uint8_t en = 1;
	err_t err;

	if (a == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	cp_ref(cp);
	a->cp = cp;
	buf_init(&a->sealed, CP_SECRET_MAX + SEALED_OVERHEAD);
	msg_get_str(m, TLV_IX_DEVICE_ID, a->device_id, sizeof(a->device_id));
	msg_get_bytes(m, TLV_IX_DEVICE_SECRET, &secret, &slen);
	msg_get_u8(m, TLV_IX_ENABLED, &en);
	if (en > 1) {
		srv_reply_err(r, STB_BAD_REQUEST, "ENABLED must be 0 or 1");
		imp_free(a);
		return;
	}
	a->enabled = en;
	a->has_ids = msg_get_str(m, TLV_IX_CERT_IDS, a->ids, sizeof(a->ids)) == 0;
	if (a->has_ids && imp_ids_check(a, &err) == -1) {
		srv_reply_errt(r, &err);
		imp_free(a);
		return;
	}
	memcpy(a->secret, secret, slen);
	a->slen = slen;
	cp_actor(r->conn, NULL, a->actor);
	if (cp_stb_aad(a->device_id, aad, sizeof(aad)) == -1 ||
	    cp_secret_seal(cp, aad, secret, slen, &a->sealed, &err) == -1) {
		srv_reply_err(r, err.status == STB_UNAVAILABLE ? STB_UNAVAILABLE : STB_INTERNAL,
		              "cannot seal the device secret");
		imp_free(a);
		return;
	}
	if (daemon_write_deferred(d, r, imp_write, imp_done, a, &a->r) == -1)
		imp_free(a);
}

/* ---- lists ---- */

/* Answers a list: sql's rows (?1 the request's LIMIT, ?2 dev unless NULL)
 * as ENTRY TLVs, as many as fit in a page. */
static void
list_reply(srv_req_t *r, const msg_t *m, daemon_t *d, const char *sql, const char *dev,
           daemon_row_fn row)
{
	uint32_t limit = 1000;

	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > CP_LIST_MAX)
		limit = CP_LIST_MAX;
	daemon_list_reply(r, d, sql, limit, dev, STB_TLV_ENTRY, CP_LIST_BYTES, row, d->priv);
}

static cJSON *
stb_json(store_stmt_t *st, void *arg)
{
	cp_t *cp = arg;

	cJSON *o = cJSON_CreateObject();
	const char *id = store_col_text(st, 0, NULL);

	cJSON_AddStringToObject(o, "device_id", id);
	cJSON_AddBoolToObject(o, "enabled", (int)store_col_int64(st, 1));
	cJSON_AddNumberToObject(o, "created", (double)store_col_int64(st, 2));
	cJSON_AddNumberToObject(o, "updated", (double)store_col_int64(st, 3));
	cJSON_AddNumberToObject(o, "certs", (double)store_col_int64(st, 4));
	cJSON_AddNumberToObject(o, "online", cp_online_count(cp, id));
	{
		const char *ids = store_col_is_null(st, 5) ? "" : store_col_text(st, 5, NULL);
		cJSON *arr = cJSON_AddArrayToObject(o, "cert_ids");
		char t[CP_ID_CAP];

		while (arr != NULL && ids != NULL && imp_id_next(&ids, t))
			cJSON_AddItemToArray(arr, cJSON_CreateString(t));
	}
	return o;
}

static void
cp_stb_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	list_reply(r, m, ctx,
	           "SELECT s.device_id, s.enabled, s.created, s.updated, "
	           "(SELECT count(*) FROM certs WHERE device_id=s.device_id), "
	           "(SELECT string_agg(cert_id, ' ') FROM (SELECT cert_id FROM stb_certs "
	           "WHERE device_id=s.device_id ORDER BY cert_id) AS ids) "
	           "FROM stbs s ORDER BY s.device_id LIMIT ?1",
	           NULL, stb_json);
}

#define CERT_COLS                                                                                  \
	"SELECT c.cert_id, c.device_id, c.serial, c.not_after, c.state, c.issued_at, "             \
	"c.revoked_at, c.revoke_reason, p.reason, c.cert_der FROM certs c "                        \
	"LEFT JOIN pending p ON p.cert_id=c.cert_id "

static cJSON *
cert_json(store_stmt_t *st, void *arg)
{
	cp_t *cp = arg;

	cJSON *o = cJSON_CreateObject();
	int64_t na = store_col_int64(st, 3);
	int state = (int)store_col_int64(st, 4);
	char hex[CRT_SERIAL_HEX] = "";
	size_t len;
	const void *serial = store_col_blob(st, 2, &len);

	(void)cp;
	/* upper case, as ca-authd and `openssl x509 -serial` print it */
	if (len <= CP_SERIAL_MAX && len <= CRT_SERIAL_MAX)
		crt_serial_hex(serial, len, hex);
	cJSON_AddStringToObject(o, "cert_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "device_id", store_col_text(st, 1, NULL));
	cJSON_AddStringToObject(o, "serial", hex);
	cJSON_AddNumberToObject(o, "not_after", (double)na);
	cJSON_AddStringToObject(o, "state",
	                        state != CP_CERT_REVOKED && na <= (int64_t)time(NULL)
	                            ? "expired"
	                            : cp_due_state_name(state));
	cJSON_AddNumberToObject(o, "issued_at", (double)store_col_int64(st, 5));
	if (!store_col_is_null(st, 6))
		cJSON_AddNumberToObject(o, "revoked_at", (double)store_col_int64(st, 6));
	if (!store_col_is_null(st, 7))
		cJSON_AddNumberToObject(o, "revoke_reason", (int)store_col_int64(st, 7));
	/* JSON null when nothing is pending (the table prints "-") */
	if (store_col_is_null(st, 8))
		cJSON_AddNullToObject(o, "pending");
	else
		cJSON_AddStringToObject(o, "pending",
		                        cp_due_reason_name((int)store_col_int64(st, 8)));
	return o;
}

static void
cp_cert_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	char dev[CP_ID_CAP] = "";
	int by_dev = msg_get_str(m, TLV_IX_DEVICE_ID, dev, sizeof(dev)) == 0;

	list_reply(r, m, ctx,
	           by_dev ? CERT_COLS "WHERE c.device_id=?2 ORDER BY c.cert_id LIMIT ?1"
	                  : CERT_COLS "ORDER BY c.cert_id LIMIT ?1",
	           by_dev ? dev : NULL, cert_json);
}

static void
cp_cert_show(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char id[CP_ID_CAP];
	store_conn_t *c;
	store_stmt_t *st;
	const void *der;
	size_t dlen;
	buf_t *b;

	msg_get_str(m, TLV_IX_CERT_ID, id, sizeof(id));
	if ((st = daemon_row_by_id(r, d, CERT_COLS "WHERE c.cert_id=?1", "certificate", id, &c)) ==
	    NULL)
		return;
	b = srv_reply_begin(r);
	daemon_entry_put(b, STB_TLV_ENTRY, cert_json(st, d->priv), CP_LIST_BYTES);
	der = store_col_blob(st, 9, &dlen);
	tlv_put(b, STB_TLV_CERT_DER, der, dlen);
	store_reset(st);
	srv_reply_end(r);
}

static cJSON *
pending_json(store_stmt_t *st, void *arg)
{
	cp_t *cp = arg;

	cJSON *o = cJSON_CreateObject();
	const char *dev = store_col_text(st, 1, NULL);

	cJSON_AddStringToObject(o, "cert_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "device_id", dev);
	cJSON_AddStringToObject(o, "reason", cp_due_reason_name((int)store_col_int64(st, 2)));
	cJSON_AddNumberToObject(o, "created", (double)store_col_int64(st, 3));
	cJSON_AddNumberToObject(o, "online", cp_online_count(cp, dev));
	return o;
}

static void
cp_pending_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	list_reply(r, m, ctx,
	           "SELECT cert_id, device_id, reason, created FROM pending "
	           "ORDER BY created, cert_id LIMIT ?1",
	           NULL, pending_json);
}

static void
cp_scan_now(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;

	(void)m;
	cp_scanner_scan_now(d->priv, r);
}

/* ---- CP_CERT_REVOKE ---- */

struct rev {
	cp_t *cp;
	srv_req_t *r;
	char cert_id[CP_ID_CAP];
	char device_id[CP_ID_CAP];
	char actor[CP_ACTOR_CAP];
	uint8_t serial[CP_SERIAL_MAX];
	size_t serial_len;
	uint8_t reason;
	int64_t revoked_at;
};

static void
rev_free(struct rev *v)
{
	cp_t *cp = v->cp;

	free(v);
	cp_unref(cp);
}

static int
rev_write(store_conn_t *c, void *arg, err_t *err)
{
	struct rev *v = arg;
	char serial[2 * CP_SERIAL_MAX + 1];
	store_stmt_t *st;

	st = store_stmt(c,
	                "UPDATE certs SET state=1, revoked_at=?3, revoke_reason=?4 "
	                "WHERE cert_id=?1 AND serial=?2",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, v->cert_id);
	store_bind_blob(st, 2, v->serial, v->serial_len);
	store_bind_int64(st, 3, v->revoked_at);
	store_bind_int64(st, 4, v->reason);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	hex_encode(v->serial, v->serial_len, serial);
	if (store_changes(st) == 0)
		return err_set(err, STB_CONFLICT,
		               "certificate %s was renewed meanwhile; serial %s is revoked at "
		               "ca-authd only",
		               v->cert_id, serial);
	/* the box hears about it now or when it next authenticates */
	st = store_stmt(c,
	                "INSERT INTO pending(cert_id, device_id, reason, created) "
	                "VALUES(?1, ?2, 3, ?3) ON CONFLICT(cert_id) DO UPDATE SET reason=3",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, v->cert_id);
	store_bind_str(st, 2, v->device_id);
	store_bind_int64(st, 3, v->revoked_at);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(v->cp->d, c, err, "cert_revoke", v->actor,
	                     "cert=%s device=%s serial=%s reason=%u", v->cert_id, v->device_id,
	                     serial, v->reason);
}

static void
rev_done(void *arg, const err_t *err)
{
	struct rev *v = arg;
	buf_t *b;

	cp_kc_invalidate(v->cp->kc, v->cert_id);
	if (err->status != STB_OK)
		srv_reply_errt(v->r, err);
	else {
		cp_online_update_needed(v->cp, v->device_id, v->cert_id, CP_REASON_REVOKED);
		b = srv_reply_begin(v->r);
		tlv_put_u64(b, STB_TLV_REVOKED_AT, (uint64_t)v->revoked_at);
		srv_reply_end(v->r);
	}
	rev_free(v);
}

static void
rev_on_ca(void *arg, const msg_t *rsp, const err_t *perr)
{
	struct rev *v = arg;
	uint64_t at = 0;
	err_t err;

	if (rsp == NULL || msg_status(rsp) != STB_OK) {
		cp_ca_error(rsp, perr, &err);
		srv_reply_errt(v->r, &err);
		rev_free(v);
		return;
	}
	msg_get_u64(rsp, TLV_IX_REVOKED_AT, &at);
	v->revoked_at = at > 0 && at <= INT64_MAX ? (int64_t)at : (int64_t)time(NULL);
	if (store_write(v->cp->d->store, srv_req_mbox(v->r), rev_write, rev_done, v, &err) == -1) {
		srv_reply_errt(v->r, &err);
		rev_free(v);
	}
}

static void
cp_cert_revoke(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	cp_t *cp = d->priv;
	struct rev *v = calloc(1, sizeof(*v));
	cp_kent_t *e = NULL;
	buf_t b;
	err_t err;

	if (v == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	cp_ref(cp);
	v->cp = cp;
	msg_get_str(m, TLV_IX_CERT_ID, v->cert_id, sizeof(v->cert_id));
	msg_get_u8(m, TLV_IX_REVOKE_REASON, &v->reason);
	cp_actor(r->conn, NULL, v->actor);
	if (v->reason > 10 || v->reason == 7) {
		srv_reply_err(r, STB_BAD_REQUEST, "REVOKE_REASON %u is not an RFC 5280 CRLReason",
		              v->reason);
		goto fail;
	}
	if (cp_certs_get(cp, v->cert_id, &e, &err) == -1) {
		srv_reply_errt(r, &err);
		goto fail;
	}
	if (e == NULL) {
		srv_reply_err(r, STB_NOT_FOUND, "no certificate %s", v->cert_id);
		goto fail;
	}
	if (e->state == CP_CERT_REVOKED) {
		srv_reply_err(r, STB_CONFLICT, "certificate %s is already revoked", v->cert_id);
		goto fail;
	}
	memcpy(v->serial, e->serial, e->serial_len);
	v->serial_len = e->serial_len;
	snprintf(v->device_id, sizeof(v->device_id), "%s", e->device_id);
	cp_kent_unref(e);
	e = NULL;
	if ((v->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		goto fail;
	}
	buf_init(&b, 64);
	struct msgreq_CA_REVOKE q = {.CERT_SERIAL = MV_BYTES(v->serial, v->serial_len),
	                             .REVOKE_REASON = MV_U(v->reason)};
	if (msgenc_CA_REVOKE(&b, &q, &err) == -1 ||
	    cp_ca_call(cp, srv_conn_base(r->conn), srv_req_mbox(r), STB_MSG_CA_REVOKE, &b,
	               rev_on_ca, v, &err) == -1) {
		err_t out;
		cp_ca_error(NULL, &err, &out);
		srv_reply_errt(v->r, &out);
		buf_free(&b);
		rev_free(v);
		return;
	}
	buf_free(&b);
	return;
fail:
	cp_kent_unref(e);
	rev_free(v);
}

void
cp_admin_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_CP_STB_IMPORT, cp_stb_import);
	srv_handle(d->srv, MSG_IX_CP_STB_LIST, cp_stb_list);
	srv_handle(d->srv, MSG_IX_CP_CERT_LIST, cp_cert_list);
	srv_handle(d->srv, MSG_IX_CP_CERT_SHOW, cp_cert_show);
	srv_handle(d->srv, MSG_IX_CP_CERT_REVOKE, cp_cert_revoke);
	srv_handle(d->srv, MSG_IX_CP_PENDING_LIST, cp_pending_list);
	srv_handle(d->srv, MSG_IX_CP_SCAN_NOW, cp_scan_now);
}
