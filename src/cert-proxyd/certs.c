/*
 * certs: the stored certificates.  A row holds the certificate, its serial
 * and notAfter, its state, and the private key sealed under the KEK with
 * the cert_id and serial as associated data (a key moved to another row,
 * or an older key put back, does not open).  Readers go through the key
 * cache; the writers are issue.c, admin.c and scanner.c.
 *
 * Which cert_ids a box may hold is the operator's word, imported with the
 * box (table stb_certs, CP_STB_IMPORT's CERT_IDS): a box can neither fetch
 * nor renew any other, so nobody can take an ID meant for another box.
 */
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "hex.h"
#include "log.h"
#include "signer.h"
#include "x509.h"

#define KEY_DER_MAX 512 /* a P-256 private key is about 121 bytes */

int
cp_certs_key_aad(const char *cert_id, const uint8_t *serial, size_t slen, char *out, size_t cap)
{
	char hex[2 * CP_SERIAL_MAX + 1];
	int n;

	if (slen > CP_SERIAL_MAX)
		return -1;
	hex_encode(serial, slen, hex);
	n = snprintf(out, cap, "key:%s:%s", cert_id, hex);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int
cp_stb_aad(const char *device_id, char *out, size_t cap)
{
	int n = snprintf(out, cap, "stb:%s", device_id);

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int
cp_certs_not_after(const uint8_t *der, size_t len, int64_t *out)
{
	X509 *x = crt_from_der(der, len, NULL);
	int rc;

	if (x == NULL)
		return -1;
	rc = crt_time(X509_get0_notAfter(x), out, NULL);
	X509_free(x);
	return rc;
}

/* A key whose signatures the signer makes, for the stored certificate. */
static EVP_PKEY *
cp_certs_signer_key(cp_t *cp, const void *der, size_t dlen, const char *aad, const void *sealed,
                    size_t klen, err_t *err)
{
	X509 *x = crt_from_der(der, dlen, NULL);
	EVP_PKEY *k = NULL;

	if (x == NULL || X509_get0_pubkey(x) == NULL)
		err_set(err, STB_INTERNAL, "a stored certificate does not parse");
	else
		k = signer_pkey(cp->d->signer, X509_get0_pubkey(x), aad, strlen(aad), sealed, klen,
		                err);
	X509_free(x);
	return k;
}

/* The row as a cache entry: unseals and parses the key (or has the signer
 * hold it). */
static int
certs_load(cp_t *cp, const char *cert_id, cp_kent_t **out, err_t *err)
{
	store_conn_t *c = store_reader(cp->d->store, err);
	store_stmt_t *st;
	uint8_t key[KEY_DER_MAX];
	char aad[CP_ID_CAP + 2 * CP_SERIAL_MAX + 8], dev[CP_ID_CAP];
	const unsigned char *kp;
	const void *serial, *der, *sealed;
	size_t slen, dlen, klen;
	int state, rc = -1;
	int64_t not_after;
	size_t keylen = 0;
	EVP_PKEY *pkey = NULL;

	*out = NULL;
	if (c == NULL)
		return -1;
	st = store_stmt(c,
	                "SELECT device_id, cert_der, key_sealed, serial, not_after, state "
	                "FROM certs WHERE cert_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, cert_id);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc == STORE_DONE ? 0 : -1;
	}
	rc = -1;
	snprintf(dev, sizeof(dev), "%s", store_col_text(st, 0, NULL));
	der = store_col_blob(st, 1, &dlen);
	sealed = store_col_blob(st, 2, &klen);
	serial = store_col_blob(st, 3, &slen);
	not_after = store_col_int64(st, 4);
	state = (int)store_col_int64(st, 5);
	if (dlen == 0 || klen == 0 || slen == 0 || slen > CP_SERIAL_MAX ||
	    cp_certs_key_aad(cert_id, serial, slen, aad, sizeof(aad)) == -1) {
		err_set(err, STB_INTERNAL, "stored certificate %s is damaged", cert_id);
		goto out;
	}
	if (cp->d->signer != NULL) {
		/* the signer unseals it: this process keeps the public half */
		if ((pkey = cp_certs_signer_key(cp, der, dlen, aad, sealed, klen, err)) == NULL)
			goto out;
	} else if (sealed_open(cp->d->kek, aad, strlen(aad), sealed, klen, key, sizeof(key),
	                       &keylen, err) == -1) {
		err_set(err, STB_INTERNAL, "the stored key of %s does not open", cert_id);
		goto out;
	}
	kp = key;
	if (pkey == NULL && (pkey = d2i_AutoPrivateKey(NULL, &kp, (long)keylen)) == NULL) {
		err_set(err, STB_INTERNAL, "the stored key of %s does not parse", cert_id);
		goto out;
	}
	if ((*out = cp_kent_new(cert_id, dev, pkey, der, (size_t)dlen, serial, (size_t)slen,
	                        not_after, state)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	store_reset(st);
	EVP_PKEY_free(pkey);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
cp_certs_get(cp_t *cp, const char *cert_id, cp_kent_t **out, err_t *err)
{
	uint64_t gen;

	if ((*out = cp_kc_get(cp->kc, cert_id)) != NULL)
		return 0;
	/* a change committed after this read makes the insert below stale */
	gen = cp_kc_gen(cp->kc);
	if (certs_load(cp, cert_id, out, err) == -1)
		return -1;
	if (*out != NULL)
		cp_kc_put(cp->kc, *out, gen);
	return 0;
}

int
cp_certs_pending(cp_t *cp, const char *cert_id, err_t *err)
{
	store_conn_t *c = store_reader(cp->d->store, err);
	store_stmt_t *st;
	int found;

	if (c == NULL ||
	    (st = store_stmt(c, "SELECT 1 FROM pending WHERE cert_id=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, cert_id);
	found = store_step(st, err);
	store_reset(st);
	return found == STORE_ROW ? 1 : found == STORE_DONE ? 0 : -1;
}

void
cp_certs_push_pending(cp_t *cp, srv_conn_t *conn, const char *device_id)
{
	store_conn_t *c;
	store_stmt_t *st;
	err_t err;
	buf_t b;
	int rc;

	if ((c = store_reader(cp->d->store, &err)) == NULL ||
	    (st = store_stmt(c,
	                     "SELECT cert_id, reason FROM pending WHERE device_id=?1 "
	                     "ORDER BY created, cert_id LIMIT 1000",
	                     &err)) == NULL) {
		log_warnx("pending updates of %s: %s", device_id, err.msg);
		return;
	}
	store_bind_str(st, 1, device_id);
	buf_init(&b, 512);
	while ((rc = store_step(st, &err)) == STORE_ROW) {
		const char *cert_id = store_col_text(st, 0, NULL);

		buf_reset(&b);
		if (cp_online_needed_enc(&b, cert_id != NULL ? cert_id : "", store_col_int64(st, 1),
		                         &err) == -1) {
			log_warnx("pending update of %s for %s skipped (%s): %s",
			          cert_id != NULL ? cert_id : "?", device_id,
			          stb_status_name(err.status), err.msg);
			continue;
		}
		if (srv_conn_push(conn, STB_MSG_CP_CERT_UPDATE_NEEDED, &b, NULL) == -1)
			break;
	}
	store_reset(st);
	buf_free(&b);
	if (rc != STORE_ROW && rc != STORE_DONE)
		log_warnx("pending updates of %s: %s", device_id, err.msg);
}

int
cp_certs_owner(cp_t *cp, const char *cert_id, char owner[CP_ID_CAP], err_t *err)
{
	store_conn_t *c = store_reader(cp->d->store, err);
	store_stmt_t *st;
	int rc;

	owner[0] = '\0';
	if (c == NULL ||
	    (st = store_stmt(c, "SELECT device_id FROM stb_certs WHERE cert_id=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, cert_id);
	if ((rc = store_step(st, err)) == STORE_ROW)
		snprintf(owner, CP_ID_CAP, "%s", store_col_text(st, 0, NULL));
	store_reset(st);
	return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

int
cp_certs_held(cp_t *cp, const char *device_id, int64_t *n, err_t *err)
{
	store_conn_t *c = store_reader(cp->d->store, err);
	store_stmt_t *st;
	int rc;

	*n = 0;
	if (c == NULL ||
	    (st = store_stmt(c, "SELECT count(*) FROM certs WHERE device_id=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, device_id);
	if ((rc = store_step(st, err)) == STORE_ROW)
		*n = store_col_int64(st, 0);
	store_reset(st);
	return rc == STORE_ROW ? 0 : -1;
}
