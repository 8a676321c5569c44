/*
 * ocache: pre-signed OCSP answers (RFC 5019) for requests without a nonce.
 * One answer per (CertID hash, serial) of a certificate this CA issued,
 * signed on the first ask and kept in a bounded sharded LRU (lru.h) until
 * its nextUpdate.  An answer older than ocsp.cache_refresh_s is still
 * served, and queued once for the refresher thread, which re-signs it off
 * the request path.  A revocation, once durable, drops the serial's answers
 * and signs the revoked ones before the admin hears OK; loads under way
 * when it happened cannot put their (good) answer back (LRU_PUT_IF_GEN).
 * Unknown serials are not cached: the fresh path answers them.
 */
#include <openssl/err.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "hex.h"
#include "log.h"
#include "lru.h"
#include "x509.h"

#define OCACHE_QUEUE  1024 /* refreshes waiting; more are tried on a later hit */
#define OCACHE_SHARDS 16

enum { OCACHE_SHA1 = 1, OCACHE_SHA256 = 2 };

struct ocache {
	lru_t *lru;
	OCSP_CERTID *ours[3]; /* this CA as issuer, by OCACHE_ hash */
	const EVP_MD *md[3];
	int64_t refresh_s;
	uint64_t hits, misses, refreshed; /* atomic */
	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	ocache_ent_t *queue[OCACHE_QUEUE]; /* each a reference */
	size_t head, n;
};

void
ocache_ent_unref(ocache_ent_t *e)
{
	if (e == NULL || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(e->der);
	free(e);
}

static void
ocache_release(lru_node_t *n)
{
	ocache_ent_unref(LRU_ENTRY(n, ocache_ent_t, node));
}

static int
ocache_hold(lru_node_t *n, void *arg)
{
	ocache_ent_t *e = LRU_ENTRY(n, ocache_ent_t, node);

	__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	*(ocache_ent_t **)arg = e;
	return 0;
}

/* Signs the answer for key (hash tag, serial) as the store has it now:
 * 1 with a new entry (two references: the caller's and one for the
 * cache), 0 for a serial the store does not know, -1 on error. */
static int
ocache_sign(ca_t *ca, const uint8_t *key, size_t klen, int64_t now, ocache_ent_t **out, err_t *err)
{
	ocache_t *oc = ca->ocache;
	ASN1_INTEGER *serial = NULL;
	OCSP_CERTID *cid = NULL;
	BIGNUM *bn = NULL;
	store_conn_t *c;
	ocache_ent_t *e = NULL;
	uint8_t h[SHA256_DIGEST_LENGTH];
	ocsp_status_t st;
	int rc = -1;

	if ((c = store_reader(ca->d->store, err)) == NULL)
		return -1;
	if ((bn = BN_bin2bn(key + 1, (int)(klen - 1), NULL)) == NULL ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (cid = OCSP_cert_id_new(oc->md[key[0]], X509_get_subject_name(ca->pki.issuing),
	                            X509_get0_pubkey_bitstr(ca->pki.issuing), serial)) == NULL ||
	    (e = calloc(1, sizeof(*e))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	if (ocsp_sign_one(ca, c, cid, now, &e->der, &e->len, &st, err) == -1)
		goto out;
	if (st.status == V_OCSP_CERTSTATUS_UNKNOWN) {
		rc = 0;
		goto out;
	}
	memcpy(e->key, key, klen);
	lru_node_init(&e->node, e->key, klen, now + ca->conf->ocsp_validity_s);
	e->refs = 2;
	e->st = st;
	e->this_update = now;
	e->next_update = now + ca->conf->ocsp_validity_s;
	SHA256(e->der, e->len, h);
	e->etag[0] = '"';
	hex_encode(h, 8, e->etag + 1);
	memcpy(e->etag + 17, "\"", 2);
	*out = e;
	e = NULL;
	rc = 1;
out:
	if (e != NULL)
		free(e->der);
	free(e);
	OCSP_CERTID_free(cid);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}

/* Signs and puts key's answer unless an invalidation moved gen. */
static int
ocache_load(ca_t *ca, const uint8_t *key, size_t klen, int64_t now, ocache_ent_t **out, err_t *err)
{
	uint64_t gen = lru_gen(ca->ocache->lru);
	ocache_ent_t *e;
	int rc;

	if ((rc = ocache_sign(ca, key, klen, now, &e, err)) != 1)
		return rc;
	if (!lru_put(ca->ocache->lru, &e->node, gen, LRU_PUT_REPLACE | LRU_PUT_IF_GEN))
		ocache_ent_unref(e); /* served once, not kept */
	if (out != NULL)
		*out = e;
	else
		ocache_ent_unref(e);
	return 1;
}

static void *
ocache_run(void *arg)
{
	ca_t *ca = arg;
	ocache_t *oc = ca->ocache;
	ocache_ent_t *old;
	err_t err;

	for (;;) {
		pthread_mutex_lock(&oc->mu);
		while (oc->n == 0 && !oc->stopping)
			pthread_cond_wait(&oc->cv, &oc->mu);
		if (oc->stopping) {
			pthread_mutex_unlock(&oc->mu);
			return NULL;
		}
		old = oc->queue[oc->head];
		oc->head = (oc->head + 1) % OCACHE_QUEUE;
		oc->n--;
		pthread_mutex_unlock(&oc->mu);
		if (ocache_load(ca, old->key, old->node.klen, (int64_t)time(NULL), NULL, &err) ==
		    -1) {
			/* the old answer stays until its nextUpdate; a later hit tries again */
			log_warnx("OCSP cache: cannot refresh an answer: %s", err.msg);
			__atomic_store_n(&old->refreshing, 0, __ATOMIC_RELEASE);
		} else
			__atomic_add_fetch(&oc->refreshed, 1, __ATOMIC_RELAXED);
		ocache_ent_unref(old);
	}
}

/* Queues e for the refresher once (a reference goes with it). */
static void
ocache_queue(ocache_t *oc, ocache_ent_t *e)
{
	int zero = 0;

	if (!oc->running || !__atomic_compare_exchange_n(&e->refreshing, &zero, 1, 0,
	                                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&oc->mu);
	if (oc->n < OCACHE_QUEUE && !oc->stopping) {
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
		oc->queue[(oc->head + oc->n) % OCACHE_QUEUE] = e;
		oc->n++;
		pthread_cond_signal(&oc->cv);
	} else
		__atomic_store_n(&e->refreshing, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&oc->mu);
}

/* cid's cache key (hash tag, serial): its length, or 0 when the cache
 * holds no answer for it (another issuer or hash). */
static size_t
ocache_key(const ocache_t *oc, OCSP_CERTID *cid, uint8_t key[1 + CA_SERIAL_MAX])
{
	ASN1_OBJECT *md_oid = NULL;
	ASN1_INTEGER *serial = NULL;
	size_t n;
	int tag;

	OCSP_id_get0_info(NULL, &md_oid, NULL, &serial, cid);
	switch (OBJ_obj2nid(md_oid)) {
	case NID_sha1:
		tag = OCACHE_SHA1;
		break;
	case NID_sha256:
		tag = OCACHE_SHA256;
		break;
	default:
		return 0;
	}
	if (OCSP_id_issuer_cmp(oc->ours[tag], cid) != 0 ||
	    crt_serial_get(serial, key + 1, &n, NULL) == -1)
		return 0;
	key[0] = (uint8_t)tag;
	return n + 1;
}

int
ocache_lookup(ca_t *ca, OCSP_CERTID *cid, int64_t now, ocache_ent_t **out, err_t *err)
{
	ocache_t *oc = ca->ocache;
	uint8_t key[1 + CA_SERIAL_MAX];
	size_t kl;

	if (oc == NULL || (kl = ocache_key(oc, cid, key)) == 0)
		return 0;
	if (lru_get(oc->lru, key, kl, now, ocache_hold, out)) {
		__atomic_add_fetch(&oc->hits, 1, __ATOMIC_RELAXED);
		if (now - (*out)->this_update >= oc->refresh_s)
			ocache_queue(oc, *out);
		return 1;
	}
	__atomic_add_fetch(&oc->misses, 1, __ATOMIC_RELAXED);
	return ocache_load(ca, key, kl, now, out, err);
}

static int
ocache_copy_status(lru_node_t *n, void *arg)
{
	*(ocsp_status_t *)arg = LRU_ENTRY(n, ocache_ent_t, node)->st;
	return 0;
}

int
ocache_status(ca_t *ca, OCSP_CERTID *cid, int64_t now, ocsp_status_t *st)
{
	ocache_t *oc = ca->ocache;
	uint8_t key[1 + CA_SERIAL_MAX];
	size_t kl;

	if (oc == NULL || (kl = ocache_key(oc, cid, key)) == 0)
		return 0;
	return lru_get(oc->lru, key, kl, now, ocache_copy_status, st);
}

void
ocache_revoked(ca_t *ca, const uint8_t *serial, size_t len)
{
	ocache_t *oc = ca->ocache;
	uint8_t key[1 + CA_SERIAL_MAX];
	err_t err;

	if (oc == NULL || len > CA_SERIAL_MAX)
		return;
	memcpy(key + 1, serial, len);
	for (int tag = OCACHE_SHA1; tag <= OCACHE_SHA256; tag++) {
		key[0] = (uint8_t)tag;
		lru_invalidate(oc->lru, key, len + 1);
		/* the revoked answer ready for the next ask */
		if (ocache_load(ca, key, len + 1, (int64_t)time(NULL), NULL, &err) == -1)
			log_warnx("OCSP cache: revoked answer not signed ahead: %s", err.msg);
	}
}

int
ocache_start(ca_t *ca, err_t *err)
{
	const ca_conf_t *cf = ca->conf;
	int shards = cf->ocsp_cache_size < OCACHE_SHARDS ? (int)cf->ocsp_cache_size : OCACHE_SHARDS;
	lru_conf_t lc = {(size_t)cf->ocsp_cache_size, shards > 0 ? shards : 1, ocache_release};
	ocache_t *oc;

	if (!ca->ready || cf->ocsp_cache_size == 0)
		return 0;
	if ((oc = calloc(1, sizeof(*oc))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	ca->ocache = oc;
	pthread_mutex_init(&oc->mu, NULL);
	pthread_cond_init(&oc->cv, NULL);
	oc->refresh_s =
	    cf->ocsp_cache_refresh_s > 0 ? cf->ocsp_cache_refresh_s : cf->ocsp_validity_s / 2;
	oc->md[OCACHE_SHA1] = EVP_sha1();
	oc->md[OCACHE_SHA256] = EVP_sha256();
	for (int t = OCACHE_SHA1; t <= OCACHE_SHA256; t++)
		if ((oc->ours[t] = OCSP_cert_to_id(oc->md[t], NULL, ca->pki.issuing)) == NULL)
			return err_set(err, STB_INTERNAL, "cannot hash the issuing CA for OCSP");
	if ((oc->lru = lru_new(&lc, err)) == NULL)
		return -1;
	if (pthread_create(&oc->thread, NULL, ocache_run, ca) != 0)
		return err_set(err, STB_INTERNAL, "cannot start the OCSP refresher");
	oc->running = 1;
	return 0;
}

void
ocache_stop(ca_t *ca)
{
	ocache_t *oc = ca->ocache;

	if (oc == NULL || !oc->running)
		return;
	pthread_mutex_lock(&oc->mu);
	oc->stopping = 1;
	pthread_cond_signal(&oc->cv);
	pthread_mutex_unlock(&oc->mu);
	pthread_join(oc->thread, NULL);
	oc->running = 0;
	for (; oc->n > 0; oc->n--, oc->head = (oc->head + 1) % OCACHE_QUEUE)
		ocache_ent_unref(oc->queue[oc->head]);
}

void
ocache_free(ca_t *ca)
{
	ocache_t *oc = ca->ocache;

	if (oc == NULL)
		return;
	ocache_stop(ca);
	lru_free(oc->lru);
	for (int t = OCACHE_SHA1; t <= OCACHE_SHA256; t++)
		OCSP_CERTID_free(oc->ours[t]);
	pthread_mutex_destroy(&oc->mu);
	pthread_cond_destroy(&oc->cv);
	free(oc);
	ca->ocache = NULL;
}

int
ocache_metrics(ca_t *ca, buf_t *out)
{
	ocache_t *oc = ca->ocache;

	if (oc == NULL)
		return 0;
	return buf_printf(
	    out,
	    "# HELP stbcred_ca_ocsp_cache_hits_total OCSP requests answered from the cache\n"
	    "# TYPE stbcred_ca_ocsp_cache_hits_total counter\n"
	    "stbcred_ca_ocsp_cache_hits_total %llu\n"
	    "# HELP stbcred_ca_ocsp_cache_misses_total nonce-less OCSP requests signed on arrival\n"
	    "# TYPE stbcred_ca_ocsp_cache_misses_total counter\n"
	    "stbcred_ca_ocsp_cache_misses_total %llu\n"
	    "# HELP stbcred_ca_ocsp_cache_evictions_total cached OCSP answers dropped for room\n"
	    "# TYPE stbcred_ca_ocsp_cache_evictions_total counter\n"
	    "stbcred_ca_ocsp_cache_evictions_total %llu\n"
	    "# HELP stbcred_ca_ocsp_cache_refreshes_total cached OCSP answers re-signed ahead "
	    "of nextUpdate\n"
	    "# TYPE stbcred_ca_ocsp_cache_refreshes_total counter\n"
	    "stbcred_ca_ocsp_cache_refreshes_total %llu\n"
	    "# HELP stbcred_ca_ocsp_cache_entries OCSP answers in the cache\n"
	    "# TYPE stbcred_ca_ocsp_cache_entries gauge\n"
	    "stbcred_ca_ocsp_cache_entries %zu\n"
	    "# HELP stbcred_ca_ocsp_signatures_total OCSP responses signed, cached or fresh\n"
	    "# TYPE stbcred_ca_ocsp_signatures_total counter\n"
	    "stbcred_ca_ocsp_signatures_total %llu\n",
	    (unsigned long long)__atomic_load_n(&oc->hits, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&oc->misses, __ATOMIC_RELAXED),
	    (unsigned long long)lru_evictions(oc->lru),
	    (unsigned long long)__atomic_load_n(&oc->refreshed, __ATOMIC_RELAXED),
	    lru_count(oc->lru),
	    (unsigned long long)__atomic_load_n(&ca->ocsp_signed, __ATOMIC_RELAXED));
}
