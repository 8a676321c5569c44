/* keymgmtd import: KM_KEY_IMPORT batches (entries, a key file, or a key
 * file as CMS EnvelopedData), sealed at once, all or nothing. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmsmsg.h"
#include "csv.h"
#include "hex.h"
#include "km.h"
#include "log.h"
#include "tlv.h"

#define KM_SEALED_MAX (KEYSYNC_KEY_MAX + SEALED_OVERHEAD)

typedef struct km_entry {
	char key_id[KM_ID_CAP];
	char terminal_id[KM_ID_CAP];
	char app_id[KM_ID_CAP];
	uint8_t key[KEYSYNC_KEY_MAX];
	size_t keylen;
	uint8_t sealed[KM_SEALED_MAX];
	size_t sealed_len;
} km_entry_t;

typedef struct km_import {
	km_t *km;
	srv_req_t *r;
	km_entry_t *e;
	size_t n, cap;
	char file[256];
	char sha[65];
	char actor[200];
	uint32_t imported, unchanged;
} km_import_t;

static void
imp_free(km_import_t *im)
{
	if (im->e != NULL) {
		OPENSSL_cleanse(im->e, im->cap * sizeof(*im->e));
		free(im->e);
	}
	free(im);
}

static km_entry_t *
imp_add(km_import_t *im, err_t *err)
{
	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		km_entry_t *e;

		if (cap > KM_IMPORT_MAX) {
			err_set(err, STB_TOO_LARGE, "at most %d keys in one import", KM_IMPORT_MAX);
			return NULL;
		}
		if ((e = calloc(cap, sizeof(*e))) == NULL) {
			err_set(err, STB_INTERNAL, "out of memory");
			return NULL;
		}
		if (im->e != NULL) {
			memcpy(e, im->e, im->n * sizeof(*e));
			OPENSSL_cleanse(im->e, im->cap * sizeof(*im->e));
			free(im->e);
		}
		im->e = e;
		im->cap = cap;
	}
	memset(&im->e[im->n], 0, sizeof(im->e[0]));
	return &im->e[im->n++];
}

static int
id_copy(const char *s, size_t n, char *dst, int optional)
{
	if (n == 0 && optional) {
		dst[0] = '\0';
		return 0;
	}
	if (n == 0 || n > STB_ID_MAX || !proto_id_valid((const uint8_t *)s, n))
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* One entry's fields, checked; where says which line or entry. */
static int
imp_fields(km_import_t *im, const char *kid, size_t kidn, const char *hexkey, size_t hexn,
           const char *tid, size_t tidn, const char *app, size_t appn, const char *where,
           err_t *err)
{
	km_entry_t *e = imp_add(im, err);

	if (e == NULL)
		return -1;
	if (id_copy(kid, kidn, e->key_id, 0) == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: key_id is not an identifier", where);
	if (hexn < 2 * KEYSYNC_KEY_MIN || hexn > 2 * KEYSYNC_KEY_MAX ||
	    hex_decode(hexkey, hexn, e->key, sizeof e->key, &e->keylen) == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: key is not %d to %d bytes of hex", where,
		               KEYSYNC_KEY_MIN, KEYSYNC_KEY_MAX);
	if (id_copy(tid, tidn, e->terminal_id, 1) == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: terminal_id is not an identifier", where);
	if (id_copy(app, appn, e->app_id, 1) == -1)
		return err_set(err, STB_BAD_REQUEST, "%s: app_id is not an identifier", where);
	return 0;
}

/* CSV: key_id,key_hex[,terminal_id[,app_id]], an optional header line. */
static int
imp_csv(km_import_t *im, const char *text, size_t len, uint32_t first_line, err_t *err)
{
	csv_reader_t rd;
	csv_record_t rec;
	char where[320];

	csv_init(&rd, text, len);
	while (csv_next(&rd, &rec) == 1) {
		const csv_field_t empty = {"", 0};
		const csv_field_t *t, *a;

		snprintf(where, sizeof where, "%s:%zu", im->file, rec.line + first_line - 1);
		if (rec.first && csv_is(&rec, 0, "key_id"))
			continue;
		if (rec.nf < 2 || rec.nf > 4)
			return err_set(err, STB_BAD_REQUEST,
			               "%s: want key_id,key[,terminal_id[,app_id]], got %zu fields",
			               where, rec.nf);
		t = rec.nf > 2 ? &rec.f[2] : &empty;
		a = rec.nf > 3 ? &rec.f[3] : &empty;
		if (imp_fields(im, rec.f[0].s, rec.f[0].n, rec.f[1].s, rec.f[1].n, t->s, t->n, a->s,
		               a->n, where, err) == -1)
			return -1;
	}
	return 0;
}

static int
json_field(const cJSON *o, const char *k, const char **s, size_t *n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	*s = "";
	*n = 0;
	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v))
		return -1;
	*s = v->valuestring;
	*n = strlen(v->valuestring);
	return 0;
}

/* JSON: [{"key_id": .., "key": hex, "terminal_id": .., "app_id": ..}, ...]
 * or {"keys": [...]}. */
static int
imp_json(km_import_t *im, const char *text, size_t len, err_t *err)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0), *arr, *o;
	char where[320];
	int i = 0, rc = -1;

	/* the text is not NUL-terminated: only blanks may follow the value */
	while (root != NULL && end != NULL && end < text + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (root == NULL || end != text + len) {
		cJSON_Delete(root);
		return err_set(err, STB_BAD_REQUEST, "%s: JSON syntax error", im->file);
	}
	arr = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "keys") : root;
	if (!cJSON_IsArray(arr)) {
		err_set(err, STB_BAD_REQUEST, "%s: want an array of keys (or {\"keys\": [...]})",
		        im->file);
		goto out;
	}
	cJSON_ArrayForEach(o, arr)
	{
		const char *kid, *key, *tid, *app;
		size_t kidn, keyn, tidn, appn;
		const cJSON *f;

		snprintf(where, sizeof where, "%s: entry %d", im->file, ++i);
		if (!cJSON_IsObject(o)) {
			err_set(err, STB_BAD_REQUEST, "%s: not an object", where);
			goto out;
		}
		cJSON_ArrayForEach(f, o) if (strcmp(f->string, "key_id") != 0 &&
		                             strcmp(f->string, "key") != 0 &&
		                             strcmp(f->string, "terminal_id") != 0 &&
		                             strcmp(f->string, "app_id") != 0)
		{
			err_set(err, STB_BAD_REQUEST, "%s: unknown field '%.64s'", where,
			        f->string);
			goto out;
		}
		if (json_field(o, "key_id", &kid, &kidn) == -1 ||
		    json_field(o, "key", &key, &keyn) == -1 ||
		    json_field(o, "terminal_id", &tid, &tidn) == -1 ||
		    json_field(o, "app_id", &app, &appn) == -1) {
			err_set(err, STB_BAD_REQUEST, "%s: fields are strings", where);
			goto out;
		}
		if (imp_fields(im, kid, kidn, key, keyn, tid, tidn, app, appn, where, err) == -1)
			goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static int
imp_text(km_import_t *im, const uint8_t *p, size_t len, uint32_t first_line, err_t *err)
{
	size_t i = 0;

	if (memchr(p, '\0', len) != NULL)
		return err_set(err, STB_BAD_REQUEST, "%s: a NUL byte in the key file", im->file);
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < len && (p[i] == '[' || p[i] == '{'))
		return imp_json(im, (const char *)p, len, err);
	return imp_csv(im, (const char *)p, len, first_line, err);
}

/* Nested TLVs of one KM_KEY_ENTRY. */
static int
imp_entry(km_import_t *im, const uint8_t *p, size_t len, int ix, err_t *err)
{
	tlv_cursor_t c;
	uint16_t type;
	const uint8_t *v;
	uint32_t vl;
	const uint8_t *kid = NULL, *key = NULL, *tid = NULL, *app = NULL;
	size_t kidn = 0, keyn = 0, tidn = 0, appn = 0;
	char hexkey[2 * KEYSYNC_KEY_MAX + 1], where[64];
	int rc;

	snprintf(where, sizeof where, "entry %d", ix);
	tlv_cursor_init(&c, p, len);
	while ((rc = tlv_next(&c, &type, &v, &vl)) == TLV_NEXT) {
		const uint8_t **dst;
		size_t *dn;

		switch (type) {
		case STB_TLV_KM_KEY_ID:
			dst = &kid, dn = &kidn;
			break;
		case STB_TLV_KM_KEY:
			dst = &key, dn = &keyn;
			break;
		case STB_TLV_KM_TERMINAL_ID:
			dst = &tid, dn = &tidn;
			break;
		case STB_TLV_KM_APP_ID:
			dst = &app, dn = &appn;
			break;
		default:
			return err_set(err, STB_BAD_REQUEST, "%s: TLV 0x%04x does not belong here",
			               where, type);
		}
		if (*dst != NULL)
			return err_set(err, STB_BAD_REQUEST, "%s: TLV 0x%04x twice", where, type);
		*dst = v;
		*dn = vl;
	}
	if (rc != TLV_END)
		return err_set(err, STB_BAD_REQUEST, "%s: truncated TLVs", where);
	if (kid == NULL || key == NULL)
		return err_set(err, STB_BAD_REQUEST, "%s: KM_KEY_ID and KM_KEY are required",
		               where);
	if (keyn < KEYSYNC_KEY_MIN || keyn > KEYSYNC_KEY_MAX)
		return err_set(err, STB_BAD_REQUEST, "%s: a key is %d to %d bytes", where,
		               KEYSYNC_KEY_MIN, KEYSYNC_KEY_MAX);
	hex_encode(key, keyn, hexkey);
	rc = imp_fields(im, (const char *)kid, kidn, hexkey, 2 * keyn, tid ? (const char *)tid : "",
	                tidn, app ? (const char *)app : "", appn, where, err);
	OPENSSL_cleanse(hexkey, sizeof hexkey);
	return rc;
}

/* Seals each key (AAD = key_id) and wipes the plaintext. */
static int
imp_seal(km_import_t *im, err_t *err)
{
	for (size_t i = 0; i < im->n; i++) {
		km_entry_t *e = &im->e[i];
		buf_t b;
		int rc;

		for (size_t j = 0; j < i && im->n <= 4096; j++)
			if (strcmp(im->e[j].key_id, e->key_id) == 0)
				return err_set(err, STB_BAD_REQUEST,
				               "key_id %s twice in one import", e->key_id);
		buf_init(&b, KM_SEALED_MAX);
		rc = sealed_seal(im->km->d->kek, e->key_id, strlen(e->key_id), e->key, e->keylen,
		                 &b, err);
		if (rc == 0 && b.len <= sizeof e->sealed) {
			memcpy(e->sealed, b.data, b.len);
			e->sealed_len = b.len;
		}
		buf_free(&b);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* 1 when the stored sealed key opens to the same key. */
static int
imp_same(km_import_t *im, const km_entry_t *e, const void *blob, size_t blen, err_t *err)
{
	uint8_t pt[KEYSYNC_KEY_MAX];
	size_t ptlen = 0;
	int same;

	if (sealed_open(im->km->d->kek, e->key_id, strlen(e->key_id), blob, blen, pt, sizeof pt,
	                &ptlen, err) == -1)
		return -1;
	same = ptlen == e->keylen && CRYPTO_memcmp(pt, e->key, ptlen) == 0;
	OPENSSL_cleanse(pt, sizeof pt);
	return same;
}

static int
imp_write(store_conn_t *c, void *arg, err_t *err)
{
	km_import_t *im = arg;
	int64_t now = (int64_t)time(NULL);

	im->imported = im->unchanged = 0;
	for (size_t i = 0; i < im->n; i++) {
		km_entry_t *e = &im->e[i];
		store_stmt_t *st = store_stmt(c, "SELECT sealed FROM keys WHERE key_id=?1", err);
		int rc, same;

		if (st == NULL)
			return -1;
		store_bind_str(st, 1, e->key_id);
		if ((rc = store_step(st, err)) == STORE_ROW) {
			size_t blen;
			const void *blob = store_col_blob(st, 0, &blen);

			same = imp_same(im, e, blob, blen, err);
			store_reset(st);
			if (same == -1)
				return -1;
			if (!same)
				return err_set(err, STB_CONFLICT,
				               "key_id %s is already stored with another key",
				               e->key_id);
			im->unchanged++;
			continue;
		}
		store_reset(st);
		if (rc != STORE_DONE)
			return -1;
		st = store_stmt(
		    c,
		    "INSERT INTO keys(key_id, sealed, terminal_id, app_hint, imported_at)"
		    " VALUES(?1, ?2, ?3, ?4, ?5)",
		    err);
		if (st == NULL)
			return -1;
		store_bind_str(st, 1, e->key_id);
		store_bind_blob(st, 2, e->sealed, e->sealed_len);
		store_bind_str(st, 3, e->terminal_id[0] ? e->terminal_id : NULL);
		store_bind_str(st, 4, e->app_id[0] ? e->app_id : NULL);
		store_bind_int64(st, 5, now);
		if (store_step(st, err) != STORE_DONE)
			return -1;
		im->imported++;
	}
	return daemon_auditf(im->km->d, c, err, "key_import", im->actor,
	                     "file=%s sha256=%s keys=%zu imported=%u unchanged=%u", im->file,
	                     im->sha, im->n, im->imported, im->unchanged);
}

static void
imp_done(void *arg, const err_t *err)
{
	km_import_t *im = arg;
	buf_t *b;

	if (err->status != STB_OK) {
		srv_reply_errt(im->r, err);
	} else {
		log_info("imported %u key(s), %u unchanged, from %s (%s)", im->imported,
		         im->unchanged, im->file, im->actor);
		b = srv_reply_begin(im->r);
		tlv_put_u32(b, STB_TLV_KM_IMPORTED, im->imported);
		tlv_put_u32(b, STB_TLV_KM_UNCHANGED, im->unchanged);
		srv_reply_end(im->r);
	}
	imp_free(im);
}

static void
sha256_hex(const uint8_t *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		snprintf(out, 65, "-");
		return;
	}
	hex_encode(md, 32, out);
}

/* The request's one source of keys into im. */
static int
imp_collect(km_import_t *im, const msg_t *m, err_t *err)
{
	const uint8_t *p, *sha;
	size_t len, shalen, pos = 0;
	uint32_t first_line = 1;
	int sources = msg_has(m, TLV_IX_KM_KEY_ENTRY) + msg_has(m, TLV_IX_KM_IMPORT_TEXT) +
	              msg_has(m, TLV_IX_KM_IMPORT_CMS);
	int ix = 0, rc;

	if (sources != 1)
		return err_set(err, STB_BAD_REQUEST,
		               "send exactly one of KM_KEY_ENTRY, KM_IMPORT_TEXT, KM_IMPORT_CMS");
	if (msg_get_str(m, TLV_IX_KM_FILE_NAME, im->file, sizeof im->file) == -1)
		snprintf(im->file, sizeof im->file, "(request)");
	msg_get_u32(m, TLV_IX_KM_FIRST_LINE, &first_line);
	if (first_line == 0)
		first_line = 1;
	if (msg_get_bytes(m, TLV_IX_KM_FILE_SHA256, &sha, &shalen) == 0)
		hex_encode(sha, shalen, im->sha);
	if (msg_get_bytes(m, TLV_IX_KM_IMPORT_TEXT, &p, &len) == 0) {
		if (im->sha[0] == '\0')
			sha256_hex(p, len, im->sha);
		return imp_text(im, p, len, first_line, err);
	}
	if (msg_get_bytes(m, TLV_IX_KM_IMPORT_CMS, &p, &len) == 0) {
		buf_t pt;

		if (im->km->imp_key == NULL)
			return err_set(err, STB_UNSUPPORTED,
			               "no import.cert configured: CMS key files are not accepted");
		if (im->sha[0] == '\0')
			sha256_hex(p, len, im->sha);
		buf_init(&pt, CMSMSG_CONTENT_MAX);
		if (cmsmsg_decrypt(im->km->imp_key, im->km->imp_cert, p, len, &pt, err) == -1) {
			buf_wipe(&pt);
			return -1;
		}
		rc = imp_text(im, pt.data, pt.len, 1, err);
		buf_wipe(&pt);
		return rc;
	}
	snprintf(im->sha, sizeof im->sha, "-");
	while (msg_next(m, TLV_IX_KM_KEY_ENTRY, &pos, &p, &len) == 1)
		if (imp_entry(im, p, len, ++ix, err) == -1)
			return -1;
	return 0;
}

static void
km_key_import(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	km_import_t *im = calloc(1, sizeof(*im));
	err_t err;

	if (im == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	im->km = d->priv;
	km_actor(r, im->actor, sizeof im->actor);
	if (imp_collect(im, m, &err) == -1 || imp_seal(im, &err) == -1) {
		srv_reply_errt(r, &err);
		imp_free(im);
		return;
	}
	if (im->n == 0) {
		srv_reply_err(r, STB_BAD_REQUEST, "%s: no keys", im->file);
		imp_free(im);
		return;
	}
	if (daemon_write_deferred(d, r, imp_write, imp_done, im, &im->r) == -1)
		imp_free(im);
}

void
km_import_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_KM_KEY_IMPORT, km_key_import);
}
