/* keycache: parsed keys by cert_id (see keycache.h). */
#include "keycache.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct cp_kc {
	pthread_mutex_t mu;
	cp_kent_t **buckets;
	size_t nbuckets;
	size_t n, max;
	uint64_t gen;
	cp_kent_t *head, *tail; /* head: most recently used */
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

cp_kc_t *
cp_kc_new(size_t max)
{
	cp_kc_t *kc = calloc(1, sizeof(*kc));
	size_t nb = 64;

	if (kc == NULL)
		return NULL;
	while (nb < max && nb < ((size_t)1 << 24))
		nb <<= 1;
	if ((kc->buckets = calloc(nb, sizeof(*kc->buckets))) == NULL) {
		free(kc);
		return NULL;
	}
	kc->nbuckets = nb;
	kc->max = max;
	pthread_mutex_init(&kc->mu, NULL);
	return kc;
}

void
cp_kc_free(cp_kc_t *kc)
{
	cp_kent_t *e, *next;

	if (kc == NULL)
		return;
	for (e = kc->head; e != NULL; e = next) {
		next = e->next;
		cp_kent_unref(e);
	}
	pthread_mutex_destroy(&kc->mu);
	free(kc->buckets);
	free(kc);
}

static cp_kent_t **
kc_slot(cp_kc_t *kc, const char *cert_id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	cp_kent_t **pp;

	for (const char *p = cert_id; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	pp = &kc->buckets[h & (kc->nbuckets - 1)];
	while (*pp != NULL && strcmp((*pp)->cert_id, cert_id) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
kc_unlink(cp_kc_t *kc, cp_kent_t *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		kc->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		kc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
kc_front(cp_kc_t *kc, cp_kent_t *e)
{
	e->prev = NULL;
	e->next = kc->head;
	if (kc->head != NULL)
		kc->head->prev = e;
	kc->head = e;
	if (kc->tail == NULL)
		kc->tail = e;
}

/* Unlinks e everywhere and drops the cache's reference. */
static void
kc_drop(cp_kc_t *kc, cp_kent_t *e)
{
	cp_kent_t **pp = kc_slot(kc, e->cert_id);

	if (*pp == e)
		*pp = e->hnext;
	e->hnext = NULL;
	kc_unlink(kc, e);
	e->cached = 0;
	kc->n--;
	cp_kent_unref(e);
}

cp_kent_t *
cp_kc_get(cp_kc_t *kc, const char *cert_id)
{
	cp_kent_t *e;

	pthread_mutex_lock(&kc->mu);
	if ((e = *kc_slot(kc, cert_id)) != NULL) {
		if (kc->head != e) {
			kc_unlink(kc, e);
			kc_front(kc, e);
		}
		cp_kent_ref(e);
	}
	pthread_mutex_unlock(&kc->mu);
	return e;
}

uint64_t
cp_kc_gen(cp_kc_t *kc)
{
	uint64_t g;

	pthread_mutex_lock(&kc->mu);
	g = kc->gen;
	pthread_mutex_unlock(&kc->mu);
	return g;
}

int
cp_kc_put(cp_kc_t *kc, cp_kent_t *e, uint64_t gen)
{
	cp_kent_t *old;
	int rc = 0;

	if (kc->max == 0)
		return 0;
	pthread_mutex_lock(&kc->mu);
	if (kc->gen == gen && !e->cached) {
		if ((old = *kc_slot(kc, e->cert_id)) != NULL)
			kc_drop(kc, old);
		while (kc->n >= kc->max && kc->tail != NULL)
			kc_drop(kc, kc->tail);
		cp_kent_ref(e);
		e->cached = 1;
		e->hnext = NULL;
		*kc_slot(kc, e->cert_id) = e;
		kc_front(kc, e);
		kc->n++;
		rc = 1;
	}
	pthread_mutex_unlock(&kc->mu);
	return rc;
}

void
cp_kc_invalidate(cp_kc_t *kc, const char *cert_id)
{
	cp_kent_t *e;

	pthread_mutex_lock(&kc->mu);
	kc->gen++;
	if ((e = *kc_slot(kc, cert_id)) != NULL)
		kc_drop(kc, e);
	pthread_mutex_unlock(&kc->mu);
}

size_t
cp_kc_size(cp_kc_t *kc)
{
	size_t n;

	pthread_mutex_lock(&kc->mu);
	n = kc->n;
	pthread_mutex_unlock(&kc->mu);
	return n;
}
