/* avkeys: appvetd's keys, made on first start and sealed in the store. */
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "av.h"
#include "hex.h"
#include "log.h"

#define KEY_DER_MAX 512

struct keyrow {
	av_t *av;
	const char *name;
	uint8_t pt[KEY_DER_MAX];
	size_t ptlen;
	buf_t blob;
};

static void
key_aad(const char *name, char *aad, size_t cap)
{
	snprintf(aad, cap, "appvetd:keys:%s", name);
}

static int
key_put(store_conn_t *c, void *arg, err_t *err)
{
	struct keyrow *k = arg;
	store_stmt_t *st =
	    store_stmt(c, "INSERT INTO keys(name, blob, created) VALUES(?1, ?2, ?3)", err);

	if (st == NULL)
		return -1;
	store_bind_str(st, 1, k->name);
	store_bind_blob(st, 2, k->blob.data, k->blob.len);
	store_bind_int64(st, 3, (int64_t)time(NULL));
	/* logged, not audited: a fresh daemon's audit chain starts empty
	 * (test_daemons), and the key exists from its first start on */
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

/* The key row's plaintext into k->pt: opened when it exists, else gen()
 * fills it and it is sealed and stored. */
static int
key_get(av_t *av, struct keyrow *k, int (*gen)(struct keyrow *k, err_t *err), err_t *err)
{
	char aad[64];
	store_conn_t *c;
	store_stmt_t *st;
	const void *blob;
	size_t len;
	int rc, ret = -1;

	key_aad(k->name, aad, sizeof(aad));
	if ((c = store_reader(av->d->store, err)) == NULL)
		return -1;
	if ((st = store_stmt(c, "SELECT blob FROM keys WHERE name=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, k->name);
	rc = store_step(st, err);
	if (rc == STORE_ROW) {
		blob = store_col_blob(st, 0, &len);
		ret = sealed_open(av->d->kek, aad, strlen(aad), blob, len, k->pt, sizeof(k->pt),
		                  &k->ptlen, err);
		store_reset(st);
		return ret;
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (gen(k, err) == -1)
		return -1;
	buf_init(&k->blob, 4096);
	if (sealed_seal(av->d->kek, aad, strlen(aad), k->pt, k->ptlen, &k->blob, err) == 0 &&
	    store_write_sync(av->d->store, key_put, k, err) == 0) {
		log_info("made the %s key", k->name);
		ret = 0;
	}
	buf_free(&k->blob);
	return ret;
}

static int
gen_secret(struct keyrow *k, err_t *err)
{
	if (RAND_bytes(k->pt, 32) != 1)
		return err_set_ossl(err, STB_INTERNAL, "RAND_bytes");
	k->ptlen = 32;
	return 0;
}

static int
gen_p256(struct keyrow *k, err_t *err)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	unsigned char *p = k->pt;
	int n;

	if (key == NULL)
		return err_set_ossl(err, STB_INTERNAL, "cannot make a P-256 key");
	n = i2d_PrivateKey(key, NULL);
	if (n <= 0 || (size_t)n > sizeof(k->pt) || i2d_PrivateKey(key, &p) != n) {
		EVP_PKEY_free(key);
		return err_set_ossl(err, STB_INTERNAL, "cannot encode the P-256 key");
	}
	k->ptlen = (size_t)n;
	EVP_PKEY_free(key);
	return 0;
}

static int
secret_load(av_t *av, const char *name, uint8_t out[32], err_t *err)
{
	struct keyrow k = {.av = av, .name = name};
	int rc = key_get(av, &k, gen_secret, err);

	if (rc == 0 && k.ptlen != 32)
		rc = err_set(err, STB_INTERNAL, "key %s: stored secret has %zu bytes", name,
		             k.ptlen);
	if (rc == 0)
		memcpy(out, k.pt, 32);
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

static int
op_key_load(av_t *av, err_t *err)
{
	struct keyrow k = {.av = av, .name = "operator-sign"};
	const unsigned char *p = k.pt;
	BIO *bio;
	BUF_MEM *mem;

	if (key_get(av, &k, gen_p256, err) == -1) {
		OPENSSL_cleanse(&k, sizeof(k));
		return -1;
	}
	av->op_key = d2i_AutoPrivateKey(NULL, &p, (long)k.ptlen);
	OPENSSL_cleanse(&k, sizeof(k));
	if (av->op_key == NULL || !sig_key_is_p256(av->op_key))
		return err_set_ossl(err, STB_INTERNAL, "the stored operator key is not P-256");
	if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(bio, av->op_key) != 1) {
		BIO_free(bio);
		return err_set_ossl(err, STB_INTERNAL, "cannot write the operator public key");
	}
	BIO_get_mem_ptr(bio, &mem);
	if ((av->op_pub_pem = calloc(1, mem->length + 1)) != NULL)
		memcpy(av->op_pub_pem, mem->data, mem->length);
	BIO_free(bio);
	if (av->op_pub_pem == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	return 0;
}

static int
vet_key_load(av_t *av, err_t *err)
{
	const char *kp = av->conf->vetter_key[0] ? av->conf->vetter_key : av->d->conf.tls_key;
	const char *cp = av->conf->vetter_cert[0] ? av->conf->vetter_cert : av->d->conf.tls_cert;
	FILE *f;
	unsigned char *der = NULL;
	int n;

	/* an operator with a remote vetter holds only its certificate */
	if (av->vetter_role) {
		if ((f = fopen(kp, "r")) == NULL)
			return err_set(err, STB_INTERNAL, "vet.key %s: cannot open", kp);
		av->vet_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (av->vet_key == NULL || !sig_key_is_p256(av->vet_key))
			return err_set_ossl(err, STB_BAD_REQUEST,
			                    "vet.key %s: not a P-256 private key", kp);
	}
	if ((f = fopen(cp, "r")) == NULL)
		return err_set(err, STB_INTERNAL, "vet.cert %s: cannot open", cp);
	av->vet_cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (av->vet_cert == NULL)
		return err_set_ossl(err, STB_BAD_REQUEST, "vet.cert %s: not a certificate", cp);
	if (av->vet_key != NULL && X509_check_private_key(av->vet_cert, av->vet_key) != 1)
		return err_set_ossl(err, STB_BAD_REQUEST,
		                    "vet.cert %s: not a certificate of vet.key", cp);
	if ((n = i2d_X509(av->vet_cert, &der)) <= 0)
		return err_set_ossl(err, STB_INTERNAL, "vet.cert: cannot encode");
	av->vet_cert_der = der;
	av->vet_cert_der_len = (size_t)n;
	return 0;
}

int
av_keys_load(av_t *av, err_t *err)
{
	if (av->operator_role &&
	    (secret_load(av, "id", av->id_key, err) == -1 ||
	     secret_load(av, "payload", av->pay_key, err) == -1 || op_key_load(av, err) == -1))
		return -1;
	if ((av->vetter_role || av->conf->vet_peer[0]) && vet_key_load(av, err) == -1)
		return -1;
	return 0;
}

void
av_keys_free(av_t *av)
{
	OPENSSL_cleanse(av->id_key, sizeof(av->id_key));
	OPENSSL_cleanse(av->pay_key, sizeof(av->pay_key));
	EVP_PKEY_free(av->op_key);
	EVP_PKEY_free(av->vet_key);
	X509_free(av->vet_cert);
	OPENSSL_free(av->vet_cert_der);
	free(av->op_pub_pem);
	av->op_key = av->vet_key = NULL;
	av->vet_cert = NULL;
	av->vet_cert_der = NULL;
	av->op_pub_pem = NULL;
}

int
av_id1(const av_t *av, const uint8_t sha256[32], const char *name, const char *version,
       char out[65], err_t *err)
{
	buf_t tbs;
	uint8_t mac[32];
	unsigned int maclen = 0;
	int ret = -1;

	buf_init(&tbs, 4096);
	if (sig_tbs_label(&tbs, "STB-APPID-V1", err) == 0 &&
	    sig_tbs_bytes(&tbs, sha256, 32, err) == 0 && sig_tbs_str(&tbs, name, err) == 0 &&
	    sig_tbs_str(&tbs, version, err) == 0) {
		if (HMAC(EVP_sha256(), av->id_key, sizeof(av->id_key), tbs.data, tbs.len, mac,
		         &maclen) == NULL ||
		    maclen != 32)
			err_set_ossl(err, STB_INTERNAL, "HMAC");
		else {
			hex_encode(mac, 32, out);
			ret = 0;
		}
	}
	buf_free(&tbs);
	return ret;
}

int
av_random_id(char out[33], err_t *err)
{
	uint8_t r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return err_set_ossl(err, STB_INTERNAL, "RAND_bytes");
	hex_encode(r, sizeof(r), out);
	return 0;
}

int
av_pkg_path(const av_t *av, const char *id1, char *out, size_t cap, err_t *err)
{
	int n = snprintf(out, cap, "%s/%s.apk", av->pkgdir, id1);

	if (n < 0 || (size_t)n >= cap)
		return err_set(err, STB_INTERNAL, "package path of %s is too long", id1);
	return 0;
}
