#include "audit.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "hex.h"

/* One row every append updates first: on PostgreSQL its row lock orders the
 * appends of several instances of a daemon on one database (each reads the
 * chain's head only once it holds the lock, until its COMMIT), so they never
 * draw the same seq; on SQLite (one writer) it costs one row in the same
 * transaction. */
#define AUDIT_HEAD_SCHEMA                                                                          \
	"CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, n BIGINT NOT NULL);"       \
	"INSERT INTO audit_head(id, n) VALUES(1, 0) ON CONFLICT(id) DO NOTHING"

const char audit_schema[] = "CREATE TABLE IF NOT EXISTS audit ("
                            " seq INTEGER PRIMARY KEY,"
                            " ts INTEGER NOT NULL,"
                            " event TEXT NOT NULL,"
                            " actor TEXT NOT NULL,"
                            " detail TEXT NOT NULL,"
                            " mac BLOB NOT NULL);" AUDIT_HEAD_SCHEMA;
const char audit_schema_pg[] = "CREATE TABLE IF NOT EXISTS audit ("
                               " seq BIGINT PRIMARY KEY,"
                               " ts BIGINT NOT NULL,"
                               " event TEXT NOT NULL,"
                               " actor TEXT NOT NULL,"
                               " detail TEXT NOT NULL,"
                               " mac BYTEA NOT NULL);" AUDIT_HEAD_SCHEMA;

static const char sql_lock[] = "UPDATE audit_head SET n = n + 1 WHERE id = 1";
static const char sql_last[] = "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1";
static const char sql_insert[] =
    "INSERT INTO audit(seq, ts, event, actor, detail, mac) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_walk[] =
    "SELECT seq, ts, event, actor, detail, mac FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

static int
mac_field(EVP_MAC_CTX *ctx, const void *p, size_t len)
{
	uint8_t l[4];

	store_be32(l, (uint32_t)len);
	return EVP_MAC_update(ctx, l, 4) == 1 && EVP_MAC_update(ctx, p, len) == 1;
}

/* The HMAC keyed with the audit key, kept per thread (appends run on the
 * store's writer; a verify on a reader) and copied for each record: a
 * fresh EVP_MAC_init looks the digest up and runs the key schedule again
 * every time.  The thread's copy of the key and context go with it. */
typedef struct audit_hmac {
	uint8_t key[AUDIT_KEY_LEN];
	EVP_MAC_CTX *keyed;
} audit_hmac_t;

static pthread_once_t audit_hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t audit_hmac_key;
static int audit_hmac_ok;

static void
audit_hmac_free(void *arg)
{
	audit_hmac_t *h = arg;

	EVP_MAC_CTX_free(h->keyed);
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
}

static void
audit_hmac_init(void)
{
	audit_hmac_ok = pthread_key_create(&audit_hmac_key, audit_hmac_free) == 0;
}

/* A new context keyed with key (the caller frees it), or NULL. */
static EVP_MAC_CTX *
audit_hmac_new(const uint8_t key[AUDIT_KEY_LEN])
{
	static EVP_MAC *hmac; /* fetched once; EVP_MAC objects are shareable */
	audit_hmac_t *h;
	OSSL_PARAM params[2];

	if (__atomic_load_n(&hmac, __ATOMIC_ACQUIRE) == NULL) {
		EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL), *expect = NULL;
		if (m == NULL)
			return NULL;
		if (!__atomic_compare_exchange_n(&hmac, &expect, m, 0, __ATOMIC_ACQ_REL,
		                                 __ATOMIC_ACQUIRE))
			EVP_MAC_free(m);
	}
	if (pthread_once(&audit_hmac_once, audit_hmac_init) != 0 || !audit_hmac_ok)
		return NULL;
	if ((h = pthread_getspecific(audit_hmac_key)) == NULL) {
		if ((h = calloc(1, sizeof(*h))) == NULL)
			return NULL;
		if (pthread_setspecific(audit_hmac_key, h) != 0) {
			free(h);
			return NULL;
		}
	}
	if (h->keyed == NULL || CRYPTO_memcmp(h->key, key, AUDIT_KEY_LEN) != 0) {
		EVP_MAC_CTX_free(h->keyed);
		memcpy(h->key, key, AUDIT_KEY_LEN);
		params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if ((h->keyed = EVP_MAC_CTX_new(hmac)) == NULL ||
		    EVP_MAC_init(h->keyed, key, AUDIT_KEY_LEN, params) != 1) {
			EVP_MAC_CTX_free(h->keyed);
			h->keyed = NULL;
			return NULL;
		}
	}
	return EVP_MAC_CTX_dup(h->keyed);
}

/* mac = HMAC(key, prev_mac | seq | ts | len|event | len|actor | len|detail) */
static int
audit_mac(const uint8_t key[AUDIT_KEY_LEN], const uint8_t prev[AUDIT_MAC_LEN], uint64_t seq,
          int64_t ts, const char *event, const char *actor, const char *detail,
          uint8_t out[AUDIT_MAC_LEN])
{
	EVP_MAC_CTX *ctx;
	uint8_t num[16];
	size_t outl = 0;
	int ok;

	if ((ctx = audit_hmac_new(key)) == NULL)
		return -1;
	store_be64(num, seq);
	store_be64(num + 8, (uint64_t)ts);
	ok = EVP_MAC_update(ctx, prev, AUDIT_MAC_LEN) == 1 && EVP_MAC_update(ctx, num, 16) == 1 &&
	     mac_field(ctx, event, strlen(event)) && mac_field(ctx, actor, strlen(actor)) &&
	     mac_field(ctx, detail, strlen(detail)) &&
	     EVP_MAC_final(ctx, out, &outl, AUDIT_MAC_LEN) == 1 && outl == AUDIT_MAC_LEN;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
audit_append(store_conn_t *c, const uint8_t key[AUDIT_KEY_LEN], const char *event,
             const char *actor, const char *detail, uint64_t *seq, err_t *err)
{
	uint8_t prev[AUDIT_MAC_LEN] = {0}, mac[AUDIT_MAC_LEN];
	store_stmt_t *st;
	uint64_t next = 1;
	int64_t ts = (int64_t)time(NULL);
	int rc;

	if (strlen(event) >= sizeof(((audit_rec_t *)0)->event) ||
	    strlen(actor) >= sizeof(((audit_rec_t *)0)->actor) || strlen(detail) > AUDIT_FIELD_MAX)
		return err_set(err, STB_TOO_LARGE, "audit record field too long");
	if ((st = store_stmt(c, sql_lock, err)) == NULL || store_step(st, err) != STORE_DONE)
		return -1;
	if ((st = store_stmt(c, sql_last, err)) == NULL)
		return -1;
	rc = store_step(st, err);
	if (rc == STORE_ROW) {
		size_t ml;
		const void *m = store_col_blob(st, 1, &ml);
		next = (uint64_t)store_col_int64(st, 0) + 1;
		if (ml == AUDIT_MAC_LEN)
			memcpy(prev, m, AUDIT_MAC_LEN);
	} else if (rc != STORE_DONE)
		return -1;
	store_reset(st);
	if (audit_mac(key, prev, next, ts, event, actor, detail, mac) == -1)
		return err_set(err, STB_INTERNAL, "audit: HMAC failed");
	if ((st = store_stmt(c, sql_insert, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, (int64_t)next);
	store_bind_int64(st, 2, ts);
	store_bind_str(st, 3, event);
	store_bind_str(st, 4, actor);
	store_bind_str(st, 5, detail);
	store_bind_blob(st, 6, mac, AUDIT_MAC_LEN);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (seq != NULL)
		*seq = next;
	return 0;
}

static void
col_text(store_stmt_t *st, int col, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s", store_col_text(st, col, NULL));
}

static int
audit_row(store_stmt_t *st, audit_rec_t *r)
{
	size_t ml;
	const void *m = store_col_blob(st, 5, &ml);

	r->seq = (uint64_t)store_col_int64(st, 0);
	r->ts = store_col_int64(st, 1);
	col_text(st, 2, r->event, sizeof(r->event));
	col_text(st, 3, r->actor, sizeof(r->actor));
	col_text(st, 4, r->detail, sizeof(r->detail));
	if (ml != AUDIT_MAC_LEN) {
		memset(r->mac, 0, AUDIT_MAC_LEN);
		return -1;
	}
	memcpy(r->mac, m, AUDIT_MAC_LEN);
	return 0;
}

int
audit_verify(store_conn_t *c, const uint8_t key[AUDIT_KEY_LEN], uint64_t *count, uint64_t *bad_seq,
             uint8_t head[AUDIT_MAC_LEN], err_t *err)
{
	uint8_t prev[AUDIT_MAC_LEN] = {0}, want[AUDIT_MAC_LEN];
	uint64_t expect = 1, n = 0;
	audit_rec_t r;
	store_stmt_t *st;
	int rc;

	*bad_seq = 0;
	if ((st = store_stmt(c, sql_walk, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, 0);
	store_bind_int64(st, 2, INT64_MAX); /* no limit */
	while ((rc = store_step(st, err)) == STORE_ROW) {
		int shape = audit_row(st, &r);
		n++;
		/* a gap in seq is a deleted row */
		if (shape == -1 || r.seq != expect ||
		    audit_mac(key, prev, r.seq, r.ts, r.event, r.actor, r.detail, want) == -1 ||
		    CRYPTO_memcmp(want, r.mac, AUDIT_MAC_LEN) != 0) {
			*bad_seq = r.seq != expect && shape == 0 ? expect : r.seq;
			break;
		}
		memcpy(prev, r.mac, AUDIT_MAC_LEN);
		expect++;
	}
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE)
		return -1;
	*count = n;
	memcpy(head, prev, AUDIT_MAC_LEN);
	return 0;
}

int
audit_export(store_conn_t *c, uint64_t since, uint32_t limit,
             int (*fn)(const audit_rec_t *r, void *arg), void *arg, err_t *err)
{
	audit_rec_t r;
	store_stmt_t *st;
	int rc;

	if ((st = store_stmt(c, sql_walk, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, (int64_t)since);
	store_bind_int64(st, 2, limit);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		audit_row(st, &r);
		if (fn(&r, arg) == -1) {
			rc = STORE_DONE;
			break;
		}
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	return 0;
}

int
audit_rec_json(const audit_rec_t *r, char *out, size_t cap)
{
	cJSON *o = cJSON_CreateObject();
	char mac[2 * AUDIT_MAC_LEN + 1];
	int ok;

	if (o == NULL)
		return -1;
	hex_encode(r->mac, AUDIT_MAC_LEN, mac);
	cJSON_AddNumberToObject(o, "seq", (double)r->seq);
	cJSON_AddNumberToObject(o, "ts", (double)r->ts);
	cJSON_AddStringToObject(o, "event", r->event);
	cJSON_AddStringToObject(o, "actor", r->actor);
	cJSON_AddStringToObject(o, "detail", r->detail);
	cJSON_AddStringToObject(o, "mac", mac);
	ok = cJSON_PrintPreallocated(o, out, (int)cap, 0);
	cJSON_Delete(o);
	return ok ? 0 : -1;
}
