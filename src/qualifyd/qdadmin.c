/* qdadmin: qualifyd's admin messages: devices, packages, the HSS pool. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "milenage.h"
#include "qd.h"
#include "tlv.h"

#define QD_LIST_MAX     1000
#define QD_GENERATE_MAX 100000 /* rows per QD_HSS_GENERATE */

static const char *
dev_state_name(int state, int64_t nonce_exp, int64_t pkg_exp, int64_t now)
{
	switch (state) {
	case QD_DEV_ENROLLED:
		return nonce_exp <= now ? "nonce_expired" : "enrolled";
	case QD_DEV_CREDENTIALED:
		return pkg_exp <= now ? "package_expired" : "package_waiting";
	case QD_DEV_DELIVERED:
		return "delivered";
	default:
		return "unknown";
	}
}

#define DEV_COLS                                                                                   \
	"SELECT d.device_id, d.state, COALESCE(d.routing, ''), d.enrolled_at, d.nonce_expires, "   \
	"COALESCE(d.imsi, ''), COALESCE(d.pkg_expires, 0), d.changed_at, COALESCE(h.state, -1) "   \
	"FROM qd_devices d LEFT JOIN hss_rows h ON h.imsi = d.imsi "

static const char *
hss_state_name(int s)
{
	switch (s) {
	case HSS_FREE:
		return "free";
	case HSS_HELD:
		return "held";
	case HSS_DELIVERED:
		return "delivered";
	case HSS_RETIRED:
		return "retired";
	default:
		return "";
	}
}

static cJSON *
dev_json(store_stmt_t *st, void *arg)
{
	int64_t now = qd_now();
	cJSON *o = cJSON_CreateObject();

	(void)arg;
	cJSON_AddStringToObject(o, "device_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "state",
	                        dev_state_name((int)store_col_int64(st, 1), store_col_int64(st, 4),
	                                       store_col_int64(st, 6), now));
	cJSON_AddStringToObject(o, "routing", store_col_text(st, 2, NULL));
	cJSON_AddNumberToObject(o, "enrolled_at", (double)store_col_int64(st, 3));
	cJSON_AddNumberToObject(o, "nonce_expires", (double)store_col_int64(st, 4));
	cJSON_AddStringToObject(o, "imsi", store_col_text(st, 5, NULL));
	cJSON_AddNumberToObject(o, "package_expires", (double)store_col_int64(st, 6));
	cJSON_AddNumberToObject(o, "changed_at", (double)store_col_int64(st, 7));
	cJSON_AddStringToObject(o, "hss_row", hss_state_name((int)store_col_int64(st, 8)));
	return o;
}

static int64_t
list_limit(const msg_t *m)
{
	uint32_t limit = 100;

	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	return limit == 0 || limit > QD_LIST_MAX ? QD_LIST_MAX : limit;
}

static void
qd_devices(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_list_reply(r, ctx, DEV_COLS "ORDER BY d.changed_at DESC, d.device_id LIMIT ?1",
	                  list_limit(m), NULL, STB_TLV_ENTRY, QD_LIST_BYTES, dev_json, NULL);
}

static void
qd_show(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char id[STB_ID_MAX + 1];
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	buf_t *b;
	int s;

	msg_get_str(m, TLV_IX_DEVICE_ID, id, sizeof(id));
	if ((c = store_reader(d->store, &err)) == NULL ||
	    (st = store_stmt(c, DEV_COLS "WHERE d.device_id=?1", &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_str(st, 1, id);
	if ((s = store_step(st, &err)) != STORE_ROW) {
		if (s == STORE_DONE)
			srv_reply_err(r, STB_NOT_FOUND, "device %s is not enrolled here", id);
		else
			srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	daemon_entry_put(b, STB_TLV_ENTRY, dev_json(st, NULL), QD_LIST_BYTES);
	store_reset(st);
	srv_reply_end(r);
}

static cJSON *
pkg_json(store_stmt_t *st, void *arg)
{
	cJSON *o = cJSON_CreateObject();
	int64_t now = qd_now(), exp = store_col_int64(st, 3);
	int state = (int)store_col_int64(st, 4);
	char hex[2 * QUALIFY_DIGEST_LEN + 1] = "";
	size_t n;
	const void *dg = store_col_blob(st, 1, &n);

	(void)arg;
	if (n == QUALIFY_DIGEST_LEN)
		hex_encode(dg, n, hex);
	cJSON_AddStringToObject(o, "device_id", store_col_text(st, 0, NULL));
	cJSON_AddStringToObject(o, "digest", hex);
	cJSON_AddNumberToObject(o, "issued", (double)store_col_int64(st, 2));
	cJSON_AddNumberToObject(o, "expires", (double)exp);
	cJSON_AddStringToObject(o, "state",
	                        state == 2   ? "confirmed"
	                        : exp <= now ? "expired"
	                                     : "ready");
	cJSON_AddNumberToObject(o, "confirmed_at", (double)store_col_int64(st, 5));
	cJSON_AddNumberToObject(o, "size", (double)store_col_int64(st, 6));
	return o;
}

static void
qd_packages(srv_req_t *r, const msg_t *m, void *ctx)
{
	char id[STB_ID_MAX + 1] = "";

	msg_get_str(m, TLV_IX_DEVICE_ID, id, sizeof(id));
	daemon_list_reply(r, ctx,
	                  id[0] ? "SELECT device_id, digest, issued, expires, state, "
	                          "COALESCE(confirmed_at, 0), length(package) FROM qd_packages "
	                          "WHERE device_id=?2 ORDER BY issued DESC LIMIT ?1"
	                        : "SELECT device_id, digest, issued, expires, state, "
	                          "COALESCE(confirmed_at, 0), length(package) FROM qd_packages "
	                          "ORDER BY issued DESC LIMIT ?1",
	                  list_limit(m), id[0] ? id : NULL, STB_TLV_ENTRY, QD_LIST_BYTES, pkg_json,
	                  NULL);
}

/* ---- the HSS pool ---- */

struct hadm {
	qd_t *qd;
	srv_req_t *r;
	int op; /* STB_MSG_QD_HSS_* */
	char actor[160];
	hss_cred_t cred;
	uint8_t op_key[QUALIFY_KEY_LEN];
	uint32_t count, done;
};

static void
hadm_free(struct hadm *h)
{
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
}

/* IMSI + i as digits of the same length; -1 past the last one. */
static int
imsi_add(const char *first, uint32_t i, char out[QUALIFY_IMSI_MAX + 1])
{
	size_t n = strlen(first);
	uint32_t carry = i;

	memcpy(out, first, n + 1);
	for (size_t k = n; k-- > 0 && carry > 0;) {
		uint32_t v = (uint32_t)(out[k] - '0') + carry % 10;
		carry /= 10;
		if (v >= 10) {
			v -= 10;
			carry++;
		}
		out[k] = (char)('0' + v);
	}
	return carry > 0 ? -1 : 0;
}

static int
hadm_generate(struct hadm *h, store_conn_t *c, err_t *err)
{
	char first[QUALIFY_IMSI_MAX + 1];
	hss_cred_t row;
	int rc = 0;

	snprintf(first, sizeof(first), "%s", h->cred.imsi);
	for (uint32_t i = 0; i < h->count && rc == 0; i++) {
		memset(&row, 0, sizeof(row));
		if (imsi_add(first, i, row.imsi) == -1)
			rc = err_set(err, STB_BAD_REQUEST, "the range runs past the last IMSI");
		else if (RAND_bytes(row.k, sizeof(row.k)) != 1)
			rc = err_set(err, STB_INTERNAL, "cannot draw K");
		else if (milenage_opc(row.k, h->op_key, row.opc, err) == -1 ||
		         hss_import(h->qd->hss, c, &row, qd_now(), err) == -1)
			rc = -1;
		else
			h->done++;
	}
	hss_cred_wipe(&row);
	return rc;
}

static int
hadm_write(store_conn_t *c, void *arg, err_t *err)
{
	struct hadm *h = arg;
	hss_t *hss = h->qd->hss;
	int64_t now = qd_now();
	const char *ev;
	int rc;

	switch (h->op) {
	case STB_MSG_QD_HSS_IMPORT:
		rc = hss_import(hss, c, &h->cred, now, err);
		ev = "hss_import";
		break;
	case STB_MSG_QD_HSS_GENERATE:
		rc = hadm_generate(h, c, err);
		ev = "hss_generate";
		break;
	case STB_MSG_QD_HSS_RELEASE:
		rc = hss_release(hss, c, h->cred.imsi, now, err);
		ev = "hss_release";
		break;
	default:
		rc = hss_retire(hss, c, h->cred.imsi, now, err);
		ev = "hss_retire";
		break;
	}
	if (rc == -1)
		return -1;
	return daemon_auditf(h->qd->d, c, err, ev, h->actor, "imsi=%s count=%u", h->cred.imsi,
	                     h->op == STB_MSG_QD_HSS_GENERATE ? h->done : 1u);
}

static void
hadm_reply(struct hadm *h)
{
	buf_t *b;

	if (h->op == STB_MSG_QD_HSS_GENERATE) {
		b = srv_reply_begin(h->r);
		tlv_put_u32(b, STB_TLV_QD_COUNT, h->done);
		srv_reply_end(h->r);
	} else
		srv_reply_ok(h->r);
}

static void
hadm_deactivate_work(void *arg)
{
	struct hadm *h = arg;
	err_t err;

	if (hss_deactivate(h->qd->hss, h->cred.imsi, &err) == -1)
		log_warnx("retired IMSI %s is still in the HLR: %s", h->cred.imsi, err.msg);
}

static void
hadm_deactivate_done(void *arg)
{
	struct hadm *h = arg;

	hadm_reply(h);
	hadm_free(h);
}

static void
hadm_done(void *arg, const err_t *err)
{
	struct hadm *h = arg;
	err_t e;

	if (err->status != STB_OK) {
		srv_reply_errt(h->r, err);
		hadm_free(h);
		return;
	}
	if (h->op == STB_MSG_QD_HSS_RETIRE && strcmp(hss_backend(h->qd->hss), "embedded") != 0 &&
	    workpool_submit(h->qd->hss_jobs, hadm_deactivate_work, srv_req_mbox(h->r),
	                    hadm_deactivate_done, h, &e) == 0)
		return;
	hadm_reply(h);
	hadm_free(h);
}

static void
qd_hss_admin(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct hadm *h = calloc(1, sizeof(*h));
	const uint8_t *v;
	size_t n;

	if (h == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	h->qd = d->priv;
	h->op = r->type;
	qd_actor(r, h->actor, sizeof(h->actor));
	msg_get_str(m, TLV_IX_QD_IMSI, h->cred.imsi, sizeof(h->cred.imsi));
	if (!qualify_imsi_valid(h->cred.imsi, strlen(h->cred.imsi))) {
		srv_reply_err(r, STB_BAD_REQUEST, "IMSI is not 6 to 15 digits");
		hadm_free(h);
		return;
	}
	if (msg_get_bytes(m, TLV_IX_QD_K, &v, &n) == 0)
		memcpy(h->cred.k, v, sizeof(h->cred.k));
	if (msg_get_bytes(m, TLV_IX_QD_OPC, &v, &n) == 0)
		memcpy(h->cred.opc, v, sizeof(h->cred.opc));
	if (msg_get_bytes(m, TLV_IX_QD_OP, &v, &n) == 0)
		memcpy(h->op_key, v, sizeof(h->op_key));
	msg_get_u32(m, TLV_IX_QD_COUNT, &h->count);
	if (h->op == STB_MSG_QD_HSS_GENERATE && (h->count == 0 || h->count > QD_GENERATE_MAX)) {
		srv_reply_err(r, STB_BAD_REQUEST, "a range is 1 to %d IMSIs", QD_GENERATE_MAX);
		hadm_free(h);
		return;
	}
	if (daemon_write_deferred(d, r, hadm_write, hadm_done, h, &h->r) == -1)
		hadm_free(h);
}

static void
qd_hss_pool(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	qd_t *qd = d->priv;
	hss_counts_t hc;
	store_conn_t *c;
	err_t err;
	buf_t *b;

	(void)m;
	if ((c = store_reader(d->store, &err)) == NULL || hss_counts(qd->hss, c, &hc, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_QD_HSS_BACKEND, hss_backend(qd->hss));
	tlv_put_u64(b, STB_TLV_QD_POOL_FREE, hc.free);
	tlv_put_u64(b, STB_TLV_QD_POOL_HELD, hc.held);
	tlv_put_u64(b, STB_TLV_QD_POOL_DELIVERED, hc.delivered);
	tlv_put_u64(b, STB_TLV_QD_POOL_RETIRED, hc.retired);
	srv_reply_end(r);
}

void
qd_admin_register(qd_t *qd)
{
	srv_t *s = qd->d->srv;

	if (qd->roles & QD_ROLE_CRED) {
		srv_handle(s, MSG_IX_QD_DEVICES, qd_devices);
		srv_handle(s, MSG_IX_QD_SHOW, qd_show);
		srv_handle(s, MSG_IX_QD_HSS_IMPORT, qd_hss_admin);
		srv_handle(s, MSG_IX_QD_HSS_GENERATE, qd_hss_admin);
		srv_handle(s, MSG_IX_QD_HSS_RELEASE, qd_hss_admin);
		srv_handle(s, MSG_IX_QD_HSS_RETIRE, qd_hss_admin);
		srv_handle(s, MSG_IX_QD_HSS_POOL, qd_hss_pool);
	}
	if (qd->roles & QD_ROLE_PROV)
		srv_handle(s, MSG_IX_QD_PACKAGES, qd_packages);
}
