/* appcheckc: the TV's app checks (flow E): online APP_CHECK, and offline
 * against a verified signed index snapshot (stbclient.h). */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "appindex.h"
#include "apppay.h"
#include "msgenc.h"
#include "stbc.h"

struct stb_app_index {
	appindex_t ix;
	EVP_PKEY *key; /* the operator's, which signed the index */
};

/* err_t from the core into the caller's stb_error_t; -1. */
static int
appcheckc_fail(stb_error_t *err, const err_t *e, const char *what)
{
	return stbc_fail(err, e->status, "%s: %s", what, e->msg);
}

static void
appcheckc_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
stb_app_check(stb_client_t *c, const char *payload, stb_app_verdict_t *out, stb_error_t *err)
{
	uint8_t result = 0, flag = 0;
	msg_t m;
	err_t e;

	memset(out, 0, sizeof(*out));
	if (strnlen(payload, STB_APP_PAYLOAD_MAX + 1) > STB_APP_PAYLOAD_MAX)
		return stbc_fail(err, STB_BAD_REQUEST, "a QR payload is at most %d characters",
		                 STB_APP_PAYLOAD_MAX);
	struct msgreq_APP_CHECK q = {.APP_QR_PAYLOAD = MV_STR(payload)};
	/* the client's request buffer: no allocation per check */
	buf_reset(&c->qbuf);
	if (msgenc_APP_CHECK(&c->qbuf, &q, &e) == -1)
		return appcheckc_fail(err, &e, "APP_CHECK");
	if (stbc_call(c, STB_MSG_APP_CHECK, &c->qbuf, &m, err) == -1)
		return -1;
	if (msg_get_u8(&m, TLV_IX_APP_RESULT, &result) == -1 ||
	    msg_get_u8(&m, TLV_IX_APP_FLAG, &flag) == -1 || (result != 1 && result != 2) ||
	    (flag != STB_APP_SAFE && flag != STB_APP_UNSAFE) ||
	    msg_get_str(&m, TLV_IX_APP_NAME, out->name, sizeof(out->name)) == -1 ||
	    msg_get_str(&m, TLV_IX_APP_VERSION, out->version, sizeof(out->version)) == -1)
		return stbc_fail(err, STB_BAD_REQUEST, "APP_CHECK: a malformed answer");
	out->allow = result == 1;
	out->flag = flag;
	if (msg_has(&m, TLV_IX_APP_WARNING))
		msg_get_str(&m, TLV_IX_APP_WARNING, out->warning, sizeof(out->warning));
	return 0;
}

/* The file at path, at most max bytes, into a malloc'ed buffer. */
static int
appcheckc_read(const char *path, size_t max, uint8_t **out, size_t *len, stb_error_t *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *p;

	if (f == NULL)
		return stbc_fail(err, STB_NOT_FOUND, "%s: cannot open", path);
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > max) {
		fclose(f);
		return stbc_fail(err, STB_TOO_LARGE, "%s: not a file of 1 to %zu bytes", path, max);
	}
	if ((p = malloc((size_t)st.st_size)) == NULL) {
		fclose(f);
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	}
	if (fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fclose(f);
		free(p);
		return stbc_fail(err, STB_INTERNAL, "%s: short read", path);
	}
	fclose(f);
	*out = p;
	*len = (size_t)st.st_size;
	return 0;
}

/* The operator's public key: a PEM public key, or the key of a PEM
 * certificate (the trust decision is the file, not the chain). */
static EVP_PKEY *
appcheckc_key(const char *path, stb_error_t *err)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	X509 *x;

	if (f == NULL) {
		stbc_fail(err, STB_NOT_FOUND, "%s: cannot open", path);
		return NULL;
	}
	if ((k = PEM_read_PUBKEY(f, NULL, NULL, NULL)) == NULL) {
		rewind(f);
		if ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
	}
	fclose(f);
	ERR_clear_error();
	if (k == NULL)
		stbc_fail(err, STB_BAD_REQUEST, "%s: no PEM public key or certificate", path);
	return k;
}

int
stb_app_index_load(const char *index_path, const char *key_path,
                   const stb_app_version_store_t *store, void *store_ctx, uint64_t now,
                   stb_app_index_t **out, stb_error_t *err)
{
	stb_app_index_t *ix;
	uint64_t last = 0;
	uint8_t *data = NULL;
	size_t len = 0;
	err_t e;

	*out = NULL;
	if (now == 0)
		now = (uint64_t)time(NULL);
	if ((ix = calloc(1, sizeof(*ix))) == NULL)
		return stbc_fail(err, STB_INTERNAL, "out of memory");
	appindex_init(&ix->ix);
	if ((ix->key = appcheckc_key(key_path, err)) == NULL)
		goto fail;
	if (store != NULL && store->load(store_ctx, &last) == -1) {
		stbc_fail(err, STB_UNAVAILABLE, "the index version store cannot be read");
		goto fail;
	}
	if (appcheckc_read(index_path, APPINDEX_MAX, &data, &len, err) == -1)
		goto fail;
	if (appindex_verify(data, len, ix->key, now, last, &ix->ix, &e) == -1) {
		appcheckc_fail(err, &e, index_path);
		goto fail;
	}
	free(data);
	data = NULL;
	if (store != NULL && ix->ix.version > last &&
	    store->save(store_ctx, ix->ix.version) == -1) {
		/* accepting it unrecorded would let an older one back in */
		stbc_fail(err, STB_UNAVAILABLE, "the index version store cannot be written");
		goto fail;
	}
	*out = ix;
	return 0;
fail:
	free(data);
	stb_app_index_free(ix);
	return -1;
}

uint64_t
stb_app_index_version(const stb_app_index_t *ix)
{
	return ix->ix.version;
}

uint64_t
stb_app_index_expires(const stb_app_index_t *ix)
{
	return ix->ix.expires;
}

int
stb_app_check_offline(const stb_app_index_t *ix, const char *payload, uint64_t now,
                      stb_app_verdict_t *out, stb_error_t *err)
{
	const appindex_entry_t *ent;
	apppay_t p;
	err_t e;

	memset(out, 0, sizeof(*out));
	if (now == 0)
		now = (uint64_t)time(NULL);
	if (now >= ix->ix.expires)
		return stbc_fail(err, STB_EXPIRED, "the index expired: fetch a new one");
	if (apppay_verify(payload, strnlen(payload, STB_APP_PAYLOAD_MAX + 1), ix->key, now, &p,
	                  &e) == -1)
		return appcheckc_fail(err, &e, "QR payload");
	if ((ent = appindex_find(&ix->ix, p.ref)) == NULL)
		return stbc_fail(err, STB_NOT_FOUND, "the app is not in index version %llu",
		                 (unsigned long long)ix->ix.version);
	if (now >= ent->expires)
		return stbc_fail(err, STB_EXPIRED, "the app's publication expired");
	out->flag = ent->flag;
	out->allow = ent->flag == STB_APP_SAFE;
	appcheckc_copy(out->warning, sizeof(out->warning), ent->warning);
	out->expires = p.expires < ent->expires ? p.expires : ent->expires;
	out->index_version = ix->ix.version;
	return 0;
}

void
stb_app_index_free(stb_app_index_t *ix)
{
	if (ix == NULL)
		return;
	appindex_clear(&ix->ix);
	EVP_PKEY_free(ix->key);
	free(ix);
}
