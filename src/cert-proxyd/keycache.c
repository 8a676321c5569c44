/* keycache: parsed keys by cert_id (see keycache.h), on the common lru. */
#include "keycache.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct cp_kc {
	lru_t *lru;
};

cp_kent_t *
cp_kent_new(const char *cert_id, const char *device_id, EVP_PKEY *pkey, const uint8_t *der,
            size_t derlen, const uint8_t *serial, size_t serial_len, int64_t not_after, int state)
{
	cp_kent_t *e;

	if (strlen(cert_id) > STB_ID_MAX || strlen(device_id) > STB_ID_MAX ||
	    serial_len > sizeof(e->serial) || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->der = malloc(derlen > 0 ? derlen : 1)) == NULL || EVP_PKEY_up_ref(pkey) != 1) {
		free(e->der);
		free(e);
		return NULL;
	}
	memcpy(e->cert_id, cert_id, strlen(cert_id) + 1);
	memcpy(e->device_id, device_id, strlen(device_id) + 1);
	memcpy(e->der, der, derlen);
	e->derlen = derlen;
	memcpy(e->serial, serial, serial_len);
	e->serial_len = serial_len;
	e->pkey = pkey;
	e->not_after = not_after;
	e->state = state;
	e->refs = 1;
	lru_node_init(&e->lru, e->cert_id, strlen(e->cert_id), 0);
	return e;
}

void
cp_kent_ref(cp_kent_t *e)
{
	__atomic_fetch_add(&e->refs, 1, __ATOMIC_RELAXED);
}

void
cp_kent_unref(cp_kent_t *e)
{
	if (e == NULL || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	EVP_PKEY_free(e->pkey);
	free(e->der);
	free(e);
}

static void
kc_release(lru_node_t *n)
{
	cp_kent_unref(LRU_ENTRY(n, cp_kent_t, lru));
}

static int
kc_hold(lru_node_t *n, void *arg)
{
	cp_kent_t *e = LRU_ENTRY(n, cp_kent_t, lru);

	cp_kent_ref(e);
	*(cp_kent_t **)arg = e;
	return 0;
}

cp_kc_t *
cp_kc_new(size_t max)
{
	cp_kc_t *kc = calloc(1, sizeof(*kc));
	lru_conf_t lc = {.max = max, .shards = 1, .release = kc_release};

	if (kc == NULL)
		return NULL;
	if ((kc->lru = lru_new(&lc, NULL)) == NULL) {
		free(kc);
		return NULL;
	}
	return kc;
}

void
cp_kc_free(cp_kc_t *kc)
{
	if (kc == NULL)
		return;
	lru_free(kc->lru);
	free(kc);
}

cp_kent_t *
cp_kc_get(cp_kc_t *kc, const char *cert_id)
{
	cp_kent_t *e = NULL;

	if (!lru_get(kc->lru, cert_id, strlen(cert_id), 0, kc_hold, &e))
		return NULL;
	return e;
}

uint64_t
cp_kc_gen(cp_kc_t *kc)
{
	return lru_gen(kc->lru);
}

int
cp_kc_put(cp_kc_t *kc, cp_kent_t *e, uint64_t gen)
{
	/* the cache's own reference, given back if refused */
	cp_kent_ref(e);
	if (lru_put(kc->lru, &e->lru, gen, LRU_PUT_REPLACE | LRU_PUT_IF_GEN) == 1)
		return 1;
	__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL); /* the caller still holds one */
	return 0;
}

void
cp_kc_invalidate(cp_kc_t *kc, const char *cert_id)
{
	lru_invalidate(kc->lru, cert_id, strlen(cert_id));
}

size_t
cp_kc_size(cp_kc_t *kc)
{
	return lru_count(kc->lru);
}
