/*
 * hss_embedded: the HSS pool in qualifyd's store (see hss.h), and the
 * dispatch to the osmo-hlr backend for the rows it hands out.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss.h"

struct hss {
	const sealed_kek_t *kek;
	hss_osmo_t *osmo; /* NULL: embedded */
};

const char hss_schema[] = "CREATE TABLE hss_rows("
                          " imsi TEXT PRIMARY KEY,"
                          " k BLOB NOT NULL, opc BLOB NOT NULL,"
                          " state INTEGER NOT NULL DEFAULT 0,"
                          " device_id TEXT,"
                          " added_at INTEGER NOT NULL,"
                          " changed_at INTEGER NOT NULL);"
                          "CREATE INDEX hss_rows_state ON hss_rows(state, imsi);"
                          "CREATE INDEX hss_rows_device ON hss_rows(device_id);";
const char hss_schema_pg[] = "CREATE TABLE hss_rows("
                             " imsi TEXT PRIMARY KEY,"
                             " k BYTEA NOT NULL, opc BYTEA NOT NULL,"
                             " state BIGINT NOT NULL DEFAULT 0,"
                             " device_id TEXT,"
                             " added_at BIGINT NOT NULL,"
                             " changed_at BIGINT NOT NULL);"
                             "CREATE INDEX hss_rows_state ON hss_rows(state, imsi);"
                             "CREATE INDEX hss_rows_device ON hss_rows(device_id);";

int
hss_open(const hss_conf_t *conf, const sealed_kek_t *kek, hss_t **out, err_t *err)
{
	hss_t *h;

	*out = NULL;
	if (strcmp(conf->backend, "embedded") != 0 && strcmp(conf->backend, "osmo-hlr") != 0)
		return err_set(err, STB_BAD_REQUEST,
		               "hss.backend: '%s' is not embedded or osmo-hlr", conf->backend);
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	h->kek = kek;
	if (strcmp(conf->backend, "osmo-hlr") == 0) {
		if (hss_osmo_open(conf, &h->osmo, err) == -1) {
			free(h);
			return -1;
		}
	}
	*out = h;
	return 0;
}

void
hss_close(hss_t *h)
{
	if (h == NULL)
		return;
	if (h->osmo != NULL)
		hss_osmo_close(h->osmo);
	free(h);
}

const char *
hss_backend(const hss_t *h)
{
	return h->osmo != NULL ? "osmo-hlr" : "embedded";
}

static void
hss_aad(char *out, size_t cap, const char *imsi, const char *what)
{
	snprintf(out, cap, "qd-hss:%s:%s", imsi, what);
}

static int
hss_seal(hss_t *h, const char *imsi, const char *what, const uint8_t v[QUALIFY_KEY_LEN], buf_t *out,
         err_t *err)
{
	char aad[64];

	hss_aad(aad, sizeof(aad), imsi, what);
	return sealed_seal(h->kek, aad, strlen(aad), v, QUALIFY_KEY_LEN, out, err);
}

static int
hss_unseal(hss_t *h, const char *imsi, const char *what, const void *blob, size_t len,
           uint8_t v[QUALIFY_KEY_LEN], err_t *err)
{
	char aad[64];
	size_t n = 0;

	hss_aad(aad, sizeof(aad), imsi, what);
	if (sealed_open(h->kek, aad, strlen(aad), blob, len, v, QUALIFY_KEY_LEN, &n, err) == -1)
		return err_set(err, STB_INTERNAL, "HSS row %s: %s does not open", imsi, what);
	if (n != QUALIFY_KEY_LEN) {
		OPENSSL_cleanse(v, QUALIFY_KEY_LEN);
		return err_set(err, STB_INTERNAL, "HSS row %s: %s is not %d bytes", imsi, what,
		               QUALIFY_KEY_LEN);
	}
	return 0;
}

int
hss_import(hss_t *h, store_conn_t *c, const hss_cred_t *cred, int64_t now, err_t *err)
{
	buf_t k, opc;
	store_stmt_t *st;
	int rc = -1, s;

	if (!qualify_imsi_valid(cred->imsi, strnlen(cred->imsi, sizeof(cred->imsi))))
		return err_set(err, STB_BAD_REQUEST, "IMSI is not 6 to 15 digits");
	buf_init(&k, 256);
	buf_init(&opc, 256);
	if (hss_seal(h, cred->imsi, "k", cred->k, &k, err) == -1 ||
	    hss_seal(h, cred->imsi, "opc", cred->opc, &opc, err) == -1)
		goto out;
	st = store_stmt(c,
	                "INSERT INTO hss_rows(imsi, k, opc, state, added_at, changed_at) "
	                "VALUES(?1, ?2, ?3, 0, ?4, ?4)",
	                err);
	if (st == NULL)
		goto out;
	store_bind_str(st, 1, cred->imsi);
	store_bind_blob(st, 2, k.data, k.len);
	store_bind_blob(st, 3, opc.data, opc.len);
	store_bind_int64(st, 4, now);
	s = store_step(st, err);
	if (s == STORE_UNIQUE) {
		err_set(err, STB_CONFLICT, "IMSI %s is in the pool already", cred->imsi);
		goto out;
	}
	if (s != STORE_DONE)
		goto out;
	rc = 0;
out:
	buf_free(&k);
	buf_free(&opc);
	return rc;
}

int
hss_allocate(hss_t *h, store_conn_t *c, const char *device_id, int64_t now, hss_cred_t *out,
             err_t *err)
{
	const void *k, *opc;
	size_t klen, opclen, ilen;
	const char *imsi;
	store_stmt_t *st;
	int s;

	memset(out, 0, sizeof(*out));
	st = store_stmt(c, "SELECT imsi, k, opc FROM hss_rows WHERE state=0 ORDER BY imsi LIMIT 1",
	                err);
	if (st == NULL)
		return -1;
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_UNAVAILABLE, "the HSS pool has no free row");
	if (s != STORE_ROW)
		return -1;
	imsi = store_col_text(st, 0, &ilen);
	k = store_col_blob(st, 1, &klen);
	opc = store_col_blob(st, 2, &opclen);
	if (ilen >= sizeof(out->imsi)) {
		store_reset(st);
		return err_set(err, STB_INTERNAL, "HSS row with a bad IMSI");
	}
	memcpy(out->imsi, imsi, ilen + 1);
	if (hss_unseal(h, out->imsi, "k", k, klen, out->k, err) == -1 ||
	    hss_unseal(h, out->imsi, "opc", opc, opclen, out->opc, err) == -1) {
		store_reset(st);
		hss_cred_wipe(out);
		return -1;
	}
	store_reset(st);
	st = store_stmt(c,
	                "UPDATE hss_rows SET state=1, device_id=?2, changed_at=?3 "
	                "WHERE imsi=?1 AND state=0",
	                err);
	if (st == NULL) {
		hss_cred_wipe(out);
		return -1;
	}
	store_bind_str(st, 1, out->imsi);
	store_bind_str(st, 2, device_id);
	store_bind_int64(st, 3, now);
	if (store_step(st, err) != STORE_DONE) {
		hss_cred_wipe(out);
		return -1;
	}
	if (store_changes(st) != 1) { /* one writer: cannot happen */
		hss_cred_wipe(out);
		return err_set(err, STB_INTERNAL, "HSS row %s was taken meanwhile", out->imsi);
	}
	return 0;
}

/* One state change from the states in mask to to; for_dev (may be NULL)
 * must hold the row. */
static int
hss_move(store_conn_t *c, const char *imsi, unsigned mask, int to, const char *for_dev,
         int clear_dev, int64_t now, err_t *err)
{
	store_stmt_t *st;
	int state, s;

	st =
	    store_stmt(c, "SELECT state, COALESCE(device_id, '') FROM hss_rows WHERE imsi=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, imsi);
	if ((s = store_step(st, err)) == STORE_DONE)
		return err_set(err, STB_NOT_FOUND, "IMSI %s is not in the pool", imsi);
	if (s != STORE_ROW)
		return -1;
	state = (int)store_col_int64(st, 0);
	if (for_dev != NULL && strcmp(store_col_text(st, 1, NULL), for_dev) != 0) {
		store_reset(st);
		return err_set(err, STB_CONFLICT, "IMSI %s is not held for %s", imsi, for_dev);
	}
	store_reset(st);
	if (state < 0 || state > 3 || !(mask & (1u << state)))
		return err_set(err, STB_CONFLICT, "IMSI %s is %s", imsi,
		               state == HSS_FREE        ? "free"
		               : state == HSS_HELD      ? "held"
		               : state == HSS_DELIVERED ? "delivered"
		                                        : "retired");
	st = store_stmt(c,
	                "UPDATE hss_rows SET state=?2, changed_at=?3, "
	                "device_id=CASE WHEN ?4=1 THEN NULL ELSE device_id END WHERE imsi=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, imsi);
	store_bind_int64(st, 2, to);
	store_bind_int64(st, 3, now);
	store_bind_int64(st, 4, clear_dev);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

int
hss_deliver(hss_t *h, store_conn_t *c, const char *imsi, const char *device_id, int64_t now,
            err_t *err)
{
	(void)h;
	return hss_move(c, imsi, 1u << HSS_HELD, HSS_DELIVERED, device_id, 0, now, err);
}

int
hss_release(hss_t *h, store_conn_t *c, const char *imsi, int64_t now, err_t *err)
{
	(void)h;
	return hss_move(c, imsi, 1u << HSS_HELD, HSS_FREE, NULL, 1, now, err);
}

int
hss_retire(hss_t *h, store_conn_t *c, const char *imsi, int64_t now, err_t *err)
{
	(void)h;
	return hss_move(c, imsi, 1u << HSS_FREE | 1u << HSS_HELD, HSS_RETIRED, NULL, 0, now, err);
}

int
hss_counts(hss_t *h, store_conn_t *c, hss_counts_t *out, err_t *err)
{
	store_stmt_t *st;
	int s;

	(void)h;
	memset(out, 0, sizeof(*out));
	st = store_stmt(c, "SELECT state, count(*) FROM hss_rows GROUP BY state", err);
	if (st == NULL)
		return -1;
	while ((s = store_step(st, err)) == STORE_ROW) {
		uint64_t n = (uint64_t)store_col_int64(st, 1);
		switch ((int)store_col_int64(st, 0)) {
		case HSS_FREE:
			out->free = n;
			break;
		case HSS_HELD:
			out->held = n;
			break;
		case HSS_DELIVERED:
			out->delivered = n;
			break;
		case HSS_RETIRED:
			out->retired = n;
			break;
		default:
			break;
		}
	}
	return s == STORE_DONE ? 0 : -1;
}

int
hss_activate(hss_t *h, const hss_cred_t *cred, err_t *err)
{
	return h->osmo != NULL ? hss_osmo_provision(h->osmo, cred, err) : 0;
}

int
hss_deactivate(hss_t *h, const char *imsi, err_t *err)
{
	return h->osmo != NULL ? hss_osmo_remove(h->osmo, imsi, err) : 0;
}

void
hss_cred_wipe(hss_cred_t *cred)
{
	OPENSSL_cleanse(cred, sizeof(*cred));
}
