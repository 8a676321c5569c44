/* check: APP_CHECK against the in-memory index of published apps (one
 * signature verification, one AES-GCM open, a binary search; no write),
 * and the signed index snapshot for offline checks. */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "av.h"
#include "log.h"
#include "lru.h"
#include "tlv.h"

#define VERIFIED_SHARDS 16

/* A payload that verified, and its ID1: a hit skips the verify and the
 * AES-GCM open, never the index (a withdrawn app is refused as before),
 * and goes at the payload's own expiry. */
typedef struct av_verified {
	lru_node_t node;
	uint8_t key[SHA256_DIGEST_LENGTH]; /* of the payload's text */
	apppay_t p;
	char id1[STB_ID_MAX + 1];
} av_verified_t;

typedef struct av_verified_out {
	apppay_t *p;
	char *id1;
} av_verified_out_t;

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static buf_t snap;            /* the encoded snapshot, cached */
static uint64_t snap_version; /* its version */
static uint64_t snap_issued, snap_expires;

static int
ref_cmp(const void *a, const void *b)
{
	return memcmp(((const av_entry_t *)a)->ref, ((const av_entry_t *)b)->ref, APPPAY_REF_LEN);
}

static void
entries_free(av_entry_t *ix, size_t n)
{
	for (size_t i = 0; i < n && ix != NULL; i++) {
		free(ix[i].answer[0]);
		free(ix[i].answer[1]);
	}
	free(ix);
}

/* The answer TLVs to a check of e's payload published with flag. */
static int
entry_answer(av_entry_t *e, int flag, err_t *err)
{
	int i = flag == AV_FLAG_SAFE ? 0 : 1;
	buf_t b;

	buf_init(&b, 2 * AV_NAME_CAP + 2 * AV_VERSION_CAP + APPINDEX_WARNING_MAX + 64);
	tlv_put_u8(&b, STB_TLV_APP_RESULT, flag == AV_FLAG_SAFE ? AV_RESULT_ALLOW : AV_RESULT_DENY);
	tlv_put_u8(&b, STB_TLV_APP_FLAG, (uint8_t)flag);
	tlv_put_str(&b, STB_TLV_APP_NAME, e->name);
	tlv_put_str(&b, STB_TLV_APP_VERSION, e->version);
	if (flag != AV_FLAG_SAFE)
		tlv_put_str(&b, STB_TLV_APP_WARNING,
		            e->warning[0] ? e->warning : "the vetter found this app unsafe");
	if (b.failed) {
		buf_free(&b);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	e->answer[i] = b.data; /* the buffer's bytes are the entry's now */
	e->answer_len[i] = b.len;
	return 0;
}

int
av_index_reload(av_t *av, err_t *err)
{
	store_conn_t *c;
	store_stmt_t *st;
	av_entry_t *ix = NULL, *e, *grown;
	size_t n = 0, cap = 0, old_n;
	uint64_t version = 0;
	int rc;

	if ((c = store_reader(av->d->store, err)) == NULL)
		return -1;
	if ((st = store_stmt(c, "SELECT v FROM meta WHERE k='index_version'", err)) == NULL)
		return -1;
	if ((rc = store_step(st, err)) == STORE_ROW)
		version = (uint64_t)store_col_int64(st, 0);
	store_reset(st);
	if (rc != STORE_ROW && rc != STORE_DONE)
		return -1;
	st = store_stmt(c,
	                "SELECT id1, name, version, flag, revoked, published, expires, "
	                "COALESCE(warning, '') FROM apps WHERE id3 IS NOT NULL",
	                err);
	if (st == NULL)
		return -1;
	while ((rc = store_step(st, err)) == STORE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((grown = realloc(ix, cap * sizeof(*ix))) == NULL) {
				store_reset(st);
				entries_free(ix, n);
				return err_set(err, STB_INTERNAL, "out of memory");
			}
			ix = grown;
		}
		e = &ix[n];
		memset(e, 0, sizeof(*e));
		snprintf(e->id1, sizeof(e->id1), "%s", store_col_text(st, 0, NULL));
		snprintf(e->name, sizeof(e->name), "%s", store_col_text(st, 1, NULL));
		snprintf(e->version, sizeof(e->version), "%s", store_col_text(st, 2, NULL));
		e->flag = (int)store_col_int64(st, 3);
		e->revoked = (int)store_col_int64(st, 4);
		e->published = (uint64_t)store_col_int64(st, 5);
		e->expires = (uint64_t)store_col_int64(st, 6);
		snprintf(e->warning, sizeof(e->warning), "%s", store_col_text(st, 7, NULL));
		n++; /* the entry's answers are freed with the others from here */
		if (apppay_ref(e->id1, e->ref, err) == -1 ||
		    entry_answer(e, AV_FLAG_SAFE, err) == -1 ||
		    entry_answer(e, AV_FLAG_UNSAFE, err) == -1) {
			store_reset(st);
			entries_free(ix, n);
			return -1;
		}
	}
	store_reset(st);
	if (rc != STORE_DONE) {
		entries_free(ix, n);
		return -1;
	}
	if (n > 1)
		qsort(ix, n, sizeof(*ix), ref_cmp);
	pthread_rwlock_wrlock(&av->ix_lock);
	e = av->ix;
	old_n = av->nix;
	av->ix = ix;
	av->nix = n;
	av->ix_version = version;
	pthread_rwlock_unlock(&av->ix_lock);
	entries_free(e, old_n);
	return 0;
}

void
av_index_free(av_t *av)
{
	entries_free(av->ix, av->nix);
	av->ix = NULL;
	av->nix = 0;
	pthread_mutex_lock(&snap_lock);
	buf_free(&snap);
	snap_version = 0;
	pthread_mutex_unlock(&snap_lock);
}

static void
check_refused(daemon_t *d, srv_req_t *r, const err_t *err, const char *reason)
{
	daemon_refused(d, r, "app_check", reason, NULL);
	srv_reply_errt(r, err);
}

static void
verified_release(lru_node_t *n)
{
	av_verified_t *v = LRU_ENTRY(n, av_verified_t, node);

	OPENSSL_cleanse(v->id1, sizeof(v->id1));
	free(v);
}

static int
verified_copy(lru_node_t *n, void *arg)
{
	av_verified_t *v = LRU_ENTRY(n, av_verified_t, node);
	av_verified_out_t *o = arg;

	*o->p = v->p;
	memcpy(o->id1, v->id1, sizeof(v->id1));
	return 0;
}

int
av_check_start(av_t *av, err_t *err)
{
	long long n = av->conf->check_cache_size;
	lru_conf_t lc = {(size_t)n, n < VERIFIED_SHARDS ? (int)n : VERIFIED_SHARDS,
	                 verified_release};

	if (n == 0)
		return 0;
	return (av->verified = lru_new(&lc, err)) != NULL ? 0 : -1;
}

void
av_check_free(av_t *av)
{
	lru_free(av->verified);
	av->verified = NULL;
}

int
av_check_metrics(av_t *av, buf_t *out)
{
	if (av->verified == NULL)
		return 0;
	return buf_printf(
	    out,
	    "# HELP stbcred_app_check_cache_hits_total APP_CHECKs of a payload verified before\n"
	    "# TYPE stbcred_app_check_cache_hits_total counter\n"
	    "stbcred_app_check_cache_hits_total %llu\n"
	    "# HELP stbcred_app_check_cache_misses_total APP_CHECKs whose payload was verified\n"
	    "# TYPE stbcred_app_check_cache_misses_total counter\n"
	    "stbcred_app_check_cache_misses_total %llu\n"
	    "# HELP stbcred_app_check_cache_entries verified payloads remembered\n"
	    "# TYPE stbcred_app_check_cache_entries gauge\n"
	    "stbcred_app_check_cache_entries %zu\n",
	    (unsigned long long)av->verified_hits, (unsigned long long)av->verified_misses,
	    lru_count(av->verified));
}

/* The payload's verified contents and ID1 (0), else a refusal with its
 * reason for the refusal counters (-1).  Only a payload that verified is
 * remembered, so a forger pays a verify for each try as before. */
static int
check_payload(av_t *av, const uint8_t *txt, size_t len, uint64_t now, apppay_t *p,
              char id1[STB_ID_MAX + 1], const char **reason, err_t *err)
{
	av_verified_out_t o = {p, id1};
	av_verified_t *v;
	uint8_t key[SHA256_DIGEST_LENGTH];

	if (av->verified != NULL) {
		SHA256(txt, len, key);
		if (lru_get(av->verified, key, sizeof(key), (int64_t)now, verified_copy, &o)) {
			atomic_fetch_add_explicit(&av->verified_hits, 1, memory_order_relaxed);
			return 0;
		}
		atomic_fetch_add_explicit(&av->verified_misses, 1, memory_order_relaxed);
	}
	if (apppay_reader_verify(av->reader, (const char *)txt, len, now, p, err) == -1) {
		*reason = err->status == STB_EXPIRED           ? "expired"
		          : err->status == STB_UNAUTHENTICATED ? "forged"
		                                               : "malformed";
		return -1;
	}
	if (apppay_reader_open(av->reader, p, id1, err) == -1) {
		*reason = "forged";
		return -1;
	}
	if (av->verified != NULL && (v = malloc(sizeof(*v))) != NULL) {
		memcpy(v->key, key, sizeof(key));
		v->p = *p;
		memcpy(v->id1, id1, sizeof(v->id1));
		lru_node_init(&v->node, v->key, sizeof(v->key), (int64_t)p->expires);
		if (!lru_put(av->verified, &v->node, lru_gen(av->verified), 0))
			verified_release(&v->node); /* another thread put it first */
	}
	return 0;
}

static void
av_check(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	const uint8_t *txt;
	size_t len;
	apppay_t p;
	char id1[STB_ID_MAX + 1];
	av_entry_t key, *e;
	const char *reason = NULL;
	err_t err;
	buf_t *b;
	int ans;

	msg_get_bytes(m, TLV_IX_APP_QR_PAYLOAD, &txt, &len);
	if (check_payload(av, txt, len, (uint64_t)time(NULL), &p, id1, &reason, &err) == -1) {
		check_refused(d, r, &err, reason);
		return;
	}
	memcpy(key.ref, p.ref, APPPAY_REF_LEN);
	pthread_rwlock_rdlock(&av->ix_lock);
	e = av->nix ? bsearch(&key, av->ix, av->nix, sizeof(*av->ix), ref_cmp) : NULL;
	if (e == NULL || strcmp(e->id1, id1) != 0) {
		pthread_rwlock_unlock(&av->ix_lock);
		err_set(&err, STB_NOT_FOUND, "this app is not published here");
		check_refused(d, r, &err, "unknown");
		return;
	}
	if (p.flag == AV_FLAG_SAFE && e->flag != AV_FLAG_SAFE) {
		err_set(&err, STB_REVOKED, "%s %s was withdrawn: %s", e->name, e->version,
		        e->warning[0] ? e->warning : "re-vetted unsafe");
		pthread_rwlock_unlock(&av->ix_lock);
		check_refused(d, r, &err, "revoked");
		return;
	}
	/* the answer encoded at load, copied while the entry cannot go */
	ans = p.flag == AV_FLAG_SAFE ? 0 : 1;
	b = srv_reply_begin(r);
	buf_append(b, e->answer[ans], e->answer_len[ans]);
	pthread_rwlock_unlock(&av->ix_lock);
	av_metrics_check(p.flag == AV_FLAG_SAFE);
	srv_reply_end(r);
}

/* The snapshot of the current index, signed again only when the index
 * changed or half its validity has passed. */
static int
snap_build(av_t *av, uint64_t now, err_t *err)
{
	appindex_t ai;
	uint64_t version;
	int rc = 0;

	pthread_rwlock_rdlock(&av->ix_lock);
	version = av->ix_version ? av->ix_version : 1;
	if (snap.len > 0 && snap_version == version &&
	    now < snap_issued + (uint64_t)av->conf->index_validity_s / 2) {
		pthread_rwlock_unlock(&av->ix_lock);
		return 0;
	}
	appindex_init(&ai);
	ai.version = version;
	ai.issued = now;
	ai.expires = now + (uint64_t)av->conf->index_validity_s;
	for (size_t i = 0; i < av->nix && rc == 0; i++)
		rc = appindex_add(&ai, av->ix[i].ref, av->ix[i].flag, av->ix[i].published,
		                  av->ix[i].expires, av->ix[i].warning, err);
	pthread_rwlock_unlock(&av->ix_lock);
	if (rc == 0) {
		buf_reset(&snap);
		if (snap.max == 0)
			buf_init(&snap, APPINDEX_MAX);
		rc = appindex_encode(&ai, av->op_key, &snap, err);
		if (rc == 0) {
			snap_version = version;
			snap_issued = ai.issued;
			snap_expires = ai.expires;
		} else
			buf_reset(&snap);
	}
	appindex_clear(&ai);
	return rc;
}

static void
av_index_export(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	err_t err;
	buf_t *b;

	(void)m;
	pthread_mutex_lock(&snap_lock);
	if (snap_build(av, (uint64_t)time(NULL), &err) == -1) {
		pthread_mutex_unlock(&snap_lock);
		srv_reply_errt(r, &err);
		return;
	}
	if (snap.len + 256 > (size_t)d->conf.max_frame) {
		pthread_mutex_unlock(&snap_lock);
		srv_reply_err(r, STB_TOO_LARGE,
		              "the index snapshot (%zu bytes) is over this listener's max_frame",
		              snap.len);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_APP_INDEX, snap.data, snap.len);
	tlv_put_u64(b, STB_TLV_APP_INDEX_VERSION, snap_version);
	tlv_put_u64(b, STB_TLV_APP_EXPIRES, snap_expires);
	pthread_mutex_unlock(&snap_lock);
	srv_reply_end(r);
}

void
av_check_register(daemon_t *d)
{
	if (!((av_t *)d->priv)->operator_role)
		return;
	srv_handle(d->srv, MSG_IX_APP_CHECK, av_check);
	srv_handle(d->srv, MSG_IX_APP_INDEX_EXPORT, av_index_export);
}
