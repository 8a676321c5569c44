/* revoke: CA_REVOKE (recorded, audited, then the CRL is rebuilt),
 * CA_STATUS and CA_LIST. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "tlv.h"
#include "x509.h"

/* RFC 5280 CRLReason.  certificateHold (6) is not offered: nothing here
 * takes a revocation back; removeFromCRL (8) only exists in delta CRLs. */
static const struct {
	int code;
	const char *name;
	int allowed;
} reasons[] = {
    {0, "unspecified", 1},        {1, "keyCompromise", 1}, {2, "cACompromise", 1},
    {3, "affiliationChanged", 1}, {4, "superseded", 1},    {5, "cessationOfOperation", 1},
    {6, "certificateHold", 0},    {8, "removeFromCRL", 0}, {9, "privilegeWithdrawn", 1},
    {10, "aACompromise", 0},
};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

static int
revoke_reason_allowed(int code)
{
	for (size_t i = 0; i < NREASONS; i++)
		if (reasons[i].code == code)
			return reasons[i].allowed;
	return 0;
}

int
revoke_reason_parse(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	for (size_t i = 0; i < NREASONS; i++)
		if ((*s != '\0' && *end == '\0' && v == reasons[i].code) ||
		    strcmp(s, reasons[i].name) == 0)
			return reasons[i].allowed ? reasons[i].code : -1;
	return -1;
}

const char *
revoke_reason_name(int reason)
{
	for (size_t i = 0; i < NREASONS; i++)
		if (reasons[i].code == reason)
			return reasons[i].name;
	return "unknown";
}

static int
revoke_ready(ca_t *ca, srv_req_t *r)
{
	if (!ca->ready)
		srv_reply_err(r, STB_UNAVAILABLE, "no CA here yet (ca-authd init)");
	return ca->ready;
}

/* ---- CA_REVOKE ---- */

struct rev {
	ca_t *ca;
	srv_req_t *r;
	uint8_t serial[CA_SERIAL_MAX];
	size_t serial_len;
	int reason;
	int64_t at;
	char actor[160];
};

static int
rev_write(store_conn_t *c, void *arg, err_t *err)
{
	struct rev *a = arg;
	char hex[CA_SERIAL_HEX];

	crt_serial_hex(a->serial, a->serial_len, hex);
	if (certdb_revoke(c, a->serial, a->serial_len, a->at, a->reason, err) == -1)
		return -1;
	return daemon_auditf(a->ca->d, c, err, "revoke", a->actor, "serial=%s reason=%s", hex,
	                     revoke_reason_name(a->reason));
}

static void
rev_done(void *arg, const err_t *err)
{
	struct rev *a = arg;
	char hex[CA_SERIAL_HEX];
	store_conn_t *c;
	err_t cerr;
	buf_t *b;

	if (err->status != STB_OK) {
		srv_reply_errt(a->r, err);
		goto out;
	}
	/* before the answer: a login after it must see the revocation */
	revset_add(a->ca->revoked, a->serial, a->serial_len);
	ocache_revoked(a->ca, a->serial, a->serial_len);
	crt_serial_hex(a->serial, a->serial_len, hex);
	log_info("revoked serial %s (%s) by %s", hex, revoke_reason_name(a->reason), a->actor);
	if ((c = store_reader(a->ca->d->store, &cerr)) == NULL ||
	    crl_refresh(a->ca, c, &cerr) == -1)
		log_warnx("CRL not rebuilt after revoking %s: %s", hex, cerr.msg);
	b = srv_reply_begin(a->r);
	tlv_put_u64(b, STB_TLV_REVOKED_AT, (uint64_t)a->at);
	srv_reply_end(a->r);
out:
	ca_unref(a->ca);
	free(a);
}

static void
ca_revoke(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ca_t *ca = d->priv;
	const uint8_t *p;
	uint8_t reason = 0;
	struct rev *a;
	size_t len;

	if (!revoke_ready(ca, r))
		return;
	msg_get_bytes(m, TLV_IX_CERT_SERIAL, &p, &len);
	msg_get_u8(m, TLV_IX_REVOKE_REASON, &reason);
	crt_serial_norm(&p, &len);
	if (!revoke_reason_allowed(reason)) {
		srv_reply_err(r, STB_BAD_REQUEST, "revocation reason %u is not offered", reason);
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	a->ca = ca;
	memcpy(a->serial, p, len);
	a->serial_len = len;
	a->reason = reason;
	a->at = (int64_t)time(NULL);
	snprintf(a->actor, sizeof(a->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	ca_ref(ca);
	if (daemon_write_deferred(d, r, rev_write, rev_done, a, &a->r) == -1) {
		ca_unref(ca);
		free(a);
	}
}

/* ---- CA_STATUS ---- */

static void
ca_status(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ca_t *ca = d->priv;
	const uint8_t *p;
	certdb_row_t row;
	store_conn_t *c;
	size_t len;
	err_t err;
	buf_t *b;
	int rc, state;

	if (!revoke_ready(ca, r))
		return;
	msg_get_bytes(m, TLV_IX_CERT_SERIAL, &p, &len);
	crt_serial_norm(&p, &len);
	if ((c = store_reader(d->store, &err)) == NULL ||
	    (rc = certdb_get(c, p, len, &row, NULL, &err)) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	if (rc == 1) {
		tlv_put_u8(b, STB_TLV_CERT_STATE, CERT_UNKNOWN);
		srv_reply_end(r);
		return;
	}
	state = certdb_state(&row, (int64_t)time(NULL));
	tlv_put_u8(b, STB_TLV_CERT_STATE, (uint8_t)state);
	tlv_put_u64(b, STB_TLV_NOT_AFTER, (uint64_t)row.not_after);
	if (row.revoked) {
		tlv_put_u64(b, STB_TLV_REVOKED_AT, (uint64_t)row.revoked_at);
		tlv_put_u8(b, STB_TLV_REVOKE_REASON, (uint8_t)row.reason);
	}
	if (row.device_id[0] != '\0')
		tlv_put_str(b, STB_TLV_DEVICE_ID, row.device_id);
	if (row.cert_id[0] != '\0')
		tlv_put_str(b, STB_TLV_CERT_ID, row.cert_id);
	srv_reply_end(r);
}

/* ---- CA_LIST ---- */

struct lst {
	buf_t *b;
	int64_t now;
};

static int
lst_row(const certdb_row_t *row, void *arg)
{
	struct lst *l = arg;
	cJSON *o = cJSON_CreateObject();
	char hex[CA_SERIAL_HEX];
	int state = certdb_state(row, l->now);

	if (o == NULL)
		return -1;
	crt_serial_hex(row->serial, row->serial_len, hex);
	cJSON_AddStringToObject(o, "serial", hex);
	cJSON_AddStringToObject(o, "profile", row->profile);
	cJSON_AddStringToObject(o, "subject", row->subject);
	if (row->device_id[0] != '\0')
		cJSON_AddStringToObject(o, "device_id", row->device_id);
	if (row->cert_id[0] != '\0')
		cJSON_AddStringToObject(o, "cert_id", row->cert_id);
	cJSON_AddNumberToObject(o, "not_before", (double)row->not_before);
	cJSON_AddNumberToObject(o, "not_after", (double)row->not_after);
	cJSON_AddNumberToObject(o, "issued_at", (double)row->issued_at);
	cJSON_AddStringToObject(o, "state", certdb_state_name(state));
	if (row->revoked) {
		cJSON_AddNumberToObject(o, "revoked_at", (double)row->revoked_at);
		cJSON_AddStringToObject(o, "reason", revoke_reason_name(row->reason));
	}
	cJSON_AddStringToObject(o, "requester", row->requester);
	/* a full page simply ends */
	return daemon_entry_put(l->b, STB_TLV_ENTRY, o, CA_LIST_BYTES);
}

static void
ca_list(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char dev[CA_ID_CAP];
	uint32_t limit = 100;
	int have_dev = msg_get_str(m, TLV_IX_DEVICE_ID, dev, sizeof(dev)) == 0;
	store_conn_t *c;
	struct lst l;
	err_t err;

	msg_get_u32(m, TLV_IX_LIMIT, &limit);
	if (limit == 0 || limit > CA_LIST_MAX)
		limit = CA_LIST_MAX;
	if ((c = store_reader(d->store, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	l.b = srv_reply_begin(r);
	l.now = (int64_t)time(NULL);
	if (certdb_list(c, have_dev ? dev : NULL, limit, lst_row, &l, &err) == -1)
		srv_reply_errt(r, &err);
	else
		srv_reply_end(r);
}

void
revoke_register(ca_t *ca)
{
	srv_handle(ca->d->srv, MSG_IX_CA_REVOKE, ca_revoke);
	srv_handle(ca->d->srv, MSG_IX_CA_STATUS, ca_status);
	srv_handle(ca->d->srv, MSG_IX_CA_LIST, ca_list);
}
