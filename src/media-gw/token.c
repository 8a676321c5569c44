/* token: access tokens, stored as SHA-256 only, and GW_TOKEN_INTROSPECT
 * for media servers. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "tlv.h"

int
gw_token_hash(gw_t *gw, const uint8_t token[GW_TOKEN_LEN], uint8_t hash[GW_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(token, GW_TOKEN_LEN, hash, &n, gw->sha256, NULL) != 1 || n != GW_HASH_LEN)
		return -1;
	return 0;
}

int
gw_token_store(gw_t *gw, store_conn_t *c, const uint8_t hash[GW_HASH_LEN], const char *device_id,
               const char *cert_id, const uint8_t *serial, size_t serial_len, int64_t issued,
               int64_t expires, err_t *err)
{
	store_stmt_t *st;

	(void)gw;
	st = store_stmt(c,
	                "INSERT INTO tokens(hash, device_id, cert_id, serial, issued, expires) "
	                "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	                err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, hash, GW_HASH_LEN);
	store_bind_str(st, 2, device_id);
	store_bind_str(st, 3, cert_id);
	if (serial_len > 0)
		store_bind_blob(st, 4, serial, serial_len);
	store_bind_int64(st, 5, issued);
	store_bind_int64(st, 6, expires);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return 0;
}

/* Active: known, not expired, and its subscriber still active. */
static void
gw_token_introspect(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	gw_t *gw = d->priv;
	const uint8_t *tok;
	size_t len;
	uint8_t hash[GW_HASH_LEN];
	char device_id[GW_ID_CAP] = "", cert_id[GW_ID_CAP] = "";
	int64_t expires = 0;
	int active = 0;
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	buf_t *b;
	int rc;

	msg_get_bytes(m, TLV_IX_ACCESS_TOKEN, &tok, &len); /* 32 bytes: the registry's */
	if (len != GW_TOKEN_LEN || gw_token_hash(gw, tok, hash) == -1) {
		srv_reply_err(r, STB_INTERNAL, "cannot hash the token");
		return;
	}
	if ((c = store_reader(d->store, &err)) == NULL ||
	    (st = store_stmt(c,
	                     "SELECT t.device_id, t.cert_id, t.expires, "
	                     "CASE WHEN t.expires > ?2 AND COALESCE(s.active, 0) = 1 "
	                     "THEN 1 ELSE 0 END "
	                     "FROM tokens t LEFT JOIN subscribers s ON s.device_id = t.device_id "
	                     "WHERE t.hash = ?1",
	                     &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	store_bind_blob(st, 1, hash, GW_HASH_LEN);
	store_bind_int64(st, 2, (int64_t)time(NULL));
	if ((rc = store_step(st, &err)) == STORE_ROW && store_col_int64(st, 3) == 1) {
		active = 1;
		snprintf(device_id, sizeof(device_id), "%s", store_col_text(st, 0, NULL));
		snprintf(cert_id, sizeof(cert_id), "%s", store_col_text(st, 1, NULL));
		expires = store_col_int64(st, 2);
	}
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_u8(b, STB_TLV_TOKEN_ACTIVE, (uint8_t)active);
	/* an inactive token says nothing about whose it was */
	if (active) {
		tlv_put_str(b, STB_TLV_DEVICE_ID, device_id);
		tlv_put_str(b, STB_TLV_CERT_ID, cert_id);
		tlv_put_u64(b, STB_TLV_TOKEN_EXPIRES, (uint64_t)expires);
	}
	srv_reply_end(r);
}

void
gw_token_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_GW_TOKEN_INTROSPECT, gw_token_introspect);
}
