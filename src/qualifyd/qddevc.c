/*
 * qddevc: device certificates already checked against device_ca, so that a
 * device's requests (four per bootstrap, over up to three connections, some
 * of them resumed) pay for one chain check instead of one each.  Keyed by
 * the certificate's SHA-256, one slot per bucket (a colliding certificate
 * replaces the older one); an entry lives QD_DEVC_TTL_S or until the
 * certificate's notAfter, whichever comes first.  Only certificates that
 * passed the check get in, so an unauthenticated client cannot fill it.
 * Revocation is not cached: credentialing asks OCSP on every request.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qd.h"

#define QD_DEVC_SLOTS 1024 /* a power of two */
#define QD_DEVC_TTL_S 300

typedef struct qd_devc_ent {
	unsigned char md[32];
	char id[STB_ID_MAX + 1];
	X509 *issuer; /* NULL: free slot */
	time_t until;
} qd_devc_ent_t;

struct qd_devc {
	pthread_mutex_t mu;
	EVP_MD *sha256;
	qd_devc_ent_t ent[QD_DEVC_SLOTS];
};

int
qd_devc_new(qd_devc_t **out, err_t *err)
{
	qd_devc_t *dc = calloc(1, sizeof(*dc));

	if (dc == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((dc->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL)) == NULL) {
		free(dc);
		return err_set_ossl(err, STB_INTERNAL, "SHA-256");
	}
	pthread_mutex_init(&dc->mu, NULL);
	*out = dc;
	return 0;
}

void
qd_devc_free(qd_devc_t *dc)
{
	if (dc == NULL)
		return;
	for (size_t i = 0; i < QD_DEVC_SLOTS; i++)
		X509_free(dc->ent[i].issuer);
	EVP_MD_free(dc->sha256);
	pthread_mutex_destroy(&dc->mu);
	free(dc);
}

static qd_devc_ent_t *
qd_devc_slot(qd_devc_t *dc, X509 *cert, unsigned char md[32])
{
	unsigned int n = 0;

	if (X509_digest(cert, dc->sha256, md, &n) != 1 || n != 32)
		return NULL;
	return &dc->ent[((size_t)md[0] | (size_t)md[1] << 8) & (QD_DEVC_SLOTS - 1)];
}

int
qd_devc_get(qd_devc_t *dc, X509 *cert, char id[STB_ID_MAX + 1], X509 **issuer)
{
	unsigned char md[32];
	qd_devc_ent_t *e;
	int hit = 0;

	if (dc == NULL || (e = qd_devc_slot(dc, cert, md)) == NULL)
		return 0;
	pthread_mutex_lock(&dc->mu);
	if (e->issuer != NULL && CRYPTO_memcmp(e->md, md, sizeof(md)) == 0 &&
	    time(NULL) < e->until && (issuer == NULL || X509_up_ref(e->issuer) == 1)) {
		memcpy(id, e->id, sizeof(e->id));
		if (issuer != NULL)
			*issuer = e->issuer;
		hit = 1;
	}
	pthread_mutex_unlock(&dc->mu);
	return hit;
}

void
qd_devc_put(qd_devc_t *dc, X509 *cert, const char *id, X509 *issuer)
{
	unsigned char md[32];
	qd_devc_ent_t *e;
	time_t until = time(NULL) + QD_DEVC_TTL_S, end;
	struct tm tm;
	X509 *old;

	if (dc == NULL || issuer == NULL || strlen(id) > STB_ID_MAX ||
	    (e = qd_devc_slot(dc, cert, md)) == NULL || X509_up_ref(issuer) != 1)
		return;
	/* never past the certificate's own end */
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1 &&
	    (end = timegm(&tm)) != (time_t)-1 && end < until)
		until = end;
	pthread_mutex_lock(&dc->mu);
	old = e->issuer;
	memcpy(e->md, md, sizeof(md));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->issuer = issuer;
	e->until = until;
	pthread_mutex_unlock(&dc->mu);
	X509_free(old);
}
