/* appindex: the signed index snapshot (see appindex.h). */
#include "appindex.h"

#include <stdlib.h>
#include <string.h>

#define APPINDEX_FORMAT 1

enum { X_FORMAT = 1, X_VERSION, X_ISSUED, X_EXPIRES, X_ENTRIES, X_COUNT };
enum { E_REF, E_FLAG, E_ISSUED, E_EXPIRES, E_WARNING, E_COUNT };

void
appindex_init(appindex_t *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void
appindex_clear(appindex_t *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->n; i++)
		free(ix->entries[i].warning);
	free(ix->entries);
	appindex_init(ix);
}

/* Valid UTF-8 without NUL or other C0 controls but tab and newline. */
static int
appindex_text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t k = c < 0x80             ? 1
		           : (c & 0xe0) == 0xc0 ? 2
		           : (c & 0xf0) == 0xe0 ? 3
		           : (c & 0xf8) == 0xf0 ? 4
		                                : 0;
		if (k == 0 || n - i < k || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f ||
		    c == 0xc0 || c == 0xc1 || c > 0xf4)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

static int
appindex_add_n(appindex_t *ix, const uint8_t ref[APPPAY_REF_LEN], int flag, uint64_t issued,
               uint64_t expires, const char *warning, size_t wlen, err_t *err)
{
	appindex_entry_t *e;

	if (flag != APPPAY_SAFE && flag != APPPAY_UNSAFE)
		return err_set(err, STB_BAD_REQUEST, "index entry: flag %d is unknown", flag);
	if (expires <= issued)
		return err_set(err, STB_BAD_REQUEST, "index entry: expires before it is issued");
	if (wlen > APPINDEX_WARNING_MAX || !appindex_text_ok(warning, wlen))
		return err_set(err, STB_BAD_REQUEST,
		               "index entry: a warning is UTF-8 text of at most %d bytes",
		               APPINDEX_WARNING_MAX);
	if (ix->n >= APPINDEX_ENTRIES_MAX)
		return err_set(err, STB_TOO_LARGE, "an index holds at most %d entries",
		               APPINDEX_ENTRIES_MAX);
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		appindex_entry_t *grown;

		if (cap > APPINDEX_ENTRIES_MAX)
			cap = APPINDEX_ENTRIES_MAX;
		if ((grown = realloc(ix->entries, cap * sizeof(*grown))) == NULL)
			return err_set(err, STB_INTERNAL, "out of memory");
		ix->entries = grown;
		ix->cap = cap;
	}
	e = &ix->entries[ix->n];
	if ((e->warning = malloc(wlen + 1)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	memcpy(e->warning, warning, wlen);
	e->warning[wlen] = '\0';
	memcpy(e->ref, ref, APPPAY_REF_LEN);
	e->flag = flag;
	e->issued = issued;
	e->expires = expires;
	ix->n++;
	return 0;
}

int
appindex_add(appindex_t *ix, const uint8_t ref[APPPAY_REF_LEN], int flag, uint64_t issued,
             uint64_t expires, const char *warning, err_t *err)
{
	if (warning == NULL)
		warning = "";
	return appindex_add_n(ix, ref, flag, issued, expires, warning,
	                      strnlen(warning, APPINDEX_WARNING_MAX + 1), err);
}

static int
appindex_cmp(const void *a, const void *b)
{
	return memcmp(((const appindex_entry_t *)a)->ref, ((const appindex_entry_t *)b)->ref,
	              APPPAY_REF_LEN);
}

static cbor_item_t *
appindex_entry_item(const appindex_entry_t *e)
{
	cbor_item_t *a = cbor_new_definite_array(E_COUNT);

	if (a == NULL)
		return NULL;
	if (!cose_cbor_push(a, cbor_build_bytestring(e->ref, APPPAY_REF_LEN)) ||
	    !cose_cbor_push(a, cbor_build_uint8((uint8_t)e->flag)) ||
	    !cose_cbor_push(a, cose_cbor_build_uint(e->issued)) ||
	    !cose_cbor_push(a, cose_cbor_build_uint(e->expires)) ||
	    !cose_cbor_push(a, cbor_build_stringn(e->warning, strlen(e->warning))))
		cbor_decref(&a);
	return a;
}

int
appindex_encode(appindex_t *ix, EVP_PKEY *key, buf_t *out, err_t *err)
{
	cbor_item_t *m = NULL, *list = NULL;
	buf_t body;
	bool ok;
	int rc = -1;

	if (ix->version == 0)
		return err_set(err, STB_BAD_REQUEST, "an index version starts at 1");
	if (ix->expires <= ix->issued)
		return err_set(err, STB_BAD_REQUEST, "an index expires after it is issued");
	if (ix->n > 1)
		qsort(ix->entries, ix->n, sizeof(*ix->entries), appindex_cmp);
	for (size_t i = 1; i < ix->n; i++)
		if (appindex_cmp(&ix->entries[i - 1], &ix->entries[i]) == 0)
			return err_set(err, STB_CONFLICT, "two index entries for one app");
	buf_init(&body, APPINDEX_MAX);
	if ((list = cbor_new_definite_array(ix->n)) == NULL ||
	    (m = cbor_new_definite_map(X_COUNT - 1)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < ix->n; i++)
		if (!cose_cbor_push(list, appindex_entry_item(&ix->entries[i]))) {
			err_set(err, STB_INTERNAL, "out of memory");
			goto done;
		}
	if (!cose_cbor_put(m, X_FORMAT, cbor_build_uint8(APPINDEX_FORMAT)) ||
	    !cose_cbor_put(m, X_VERSION, cose_cbor_build_uint(ix->version)) ||
	    !cose_cbor_put(m, X_ISSUED, cose_cbor_build_uint(ix->issued)) ||
	    !cose_cbor_put(m, X_EXPIRES, cose_cbor_build_uint(ix->expires))) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	ok = cose_cbor_put(m, X_ENTRIES, list); /* takes list, also on failure */
	list = NULL;
	if (!ok) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto done;
	}
	if (cose_cbor_serialize(m, &body, err) == -1)
		goto done;
	rc = cose_sign1_encode(key, body.data, body.len, (const uint8_t *)APPINDEX_AAD,
	                       strlen(APPINDEX_AAD), out, err);
done:
	if (list != NULL)
		cbor_decref(&list);
	if (m != NULL)
		cbor_decref(&m);
	buf_free(&body);
	return rc;
}

static int
appindex_parse_entry(appindex_t *ix, const cbor_item_t *e, err_t *err)
{
	cbor_item_t **f;
	const uint8_t *ref;
	const char *w;
	uint64_t flag, issued, expires;
	size_t n, wlen;

	if (!cbor_isa_array(e) || !cbor_array_is_definite(e) || cbor_array_size(e) != E_COUNT)
		return err_set(err, STB_BAD_REQUEST, "an index entry is not an array of %d",
		               E_COUNT);
	f = cbor_array_handle(e);
	if (cose_cbor_bstr(f[E_REF], APPPAY_REF_LEN, APPPAY_REF_LEN, &ref, &n, "index entry ref",
	                   err) == -1 ||
	    cose_cbor_uint(f[E_FLAG], &flag, "index entry flag", err) == -1 ||
	    cose_cbor_uint(f[E_ISSUED], &issued, "index entry issued", err) == -1 ||
	    cose_cbor_uint(f[E_EXPIRES], &expires, "index entry expires", err) == -1 ||
	    cose_cbor_tstr(f[E_WARNING], 0, APPINDEX_WARNING_MAX, &w, &wlen, "index entry warning",
	                   err) == -1)
		return -1;
	if (flag != APPPAY_SAFE && flag != APPPAY_UNSAFE)
		return err_set(err, STB_BAD_REQUEST, "index entry: flag %llu is unknown",
		               (unsigned long long)flag);
	if (ix->n > 0 && memcmp(ix->entries[ix->n - 1].ref, ref, APPPAY_REF_LEN) >= 0)
		return err_set(err, STB_BAD_REQUEST, "index entries out of order or repeated");
	return appindex_add_n(ix, ref, (int)flag, issued, expires, w, wlen, err);
}

static int
appindex_parse(const uint8_t *in, size_t len, appindex_t *ix, err_t *err)
{
	const cbor_item_t *v[X_COUNT];
	cbor_item_t *m = NULL, **list;
	uint64_t fmt = 0;
	size_t n;
	int rc = -1;

	if (cose_cbor_load(in, len, &m, err) == -1)
		return -1;
	if (cose_cbor_fields(m, v, X_COUNT, "index", err) == -1 ||
	    cose_cbor_uint(v[X_FORMAT], &fmt, "index format", err) == -1)
		goto done;
	if (fmt != APPINDEX_FORMAT) {
		err_set(err, STB_BAD_REQUEST, "index format %llu is not %d",
		        (unsigned long long)fmt, APPINDEX_FORMAT);
		goto done;
	}
	if (cose_cbor_uint(v[X_VERSION], &ix->version, "index version", err) == -1 ||
	    cose_cbor_uint(v[X_ISSUED], &ix->issued, "index issued", err) == -1 ||
	    cose_cbor_uint(v[X_EXPIRES], &ix->expires, "index expires", err) == -1)
		goto done;
	if (ix->version == 0 || ix->expires <= ix->issued) {
		err_set(err, STB_BAD_REQUEST, "index version 0, or expires before issued");
		goto done;
	}
	if (v[X_ENTRIES] == NULL || !cbor_isa_array(v[X_ENTRIES]) ||
	    !cbor_array_is_definite(v[X_ENTRIES])) {
		err_set(err, STB_BAD_REQUEST, "index entries: an array is missing");
		goto done;
	}
	n = cbor_array_size(v[X_ENTRIES]);
	if (n > APPINDEX_ENTRIES_MAX) {
		err_set(err, STB_TOO_LARGE, "an index holds at most %d entries",
		        APPINDEX_ENTRIES_MAX);
		goto done;
	}
	list = cbor_array_handle(v[X_ENTRIES]);
	for (size_t i = 0; i < n; i++)
		if (appindex_parse_entry(ix, list[i], err) == -1)
			goto done;
	rc = 0;
done:
	cbor_decref(&m);
	return rc;
}

int
appindex_verify(const uint8_t *in, size_t len, EVP_PKEY *pub, uint64_t now, uint64_t last_seen,
                appindex_t *out, err_t *err)
{
	cose_sign1_t m;
	int rc = -1;

	appindex_init(out);
	if (cose_sign1_decode(in, len, APPINDEX_MAX, &m, err) == -1) {
		cose_sign1_clear(&m);
		return -1;
	}
	/* the signature first: the body of a snapshot nobody signed is never
	 * built into a tree */
	if (cose_sign1_verify(&m, pub, (const uint8_t *)APPINDEX_AAD, strlen(APPINDEX_AAD), err) ==
	        -1 ||
	    appindex_parse(m.payload, m.payload_len, out, err) == -1)
		goto done;
	if (out->version < last_seen)
		err_set(err, STB_REPLAY, "index version %llu is older than %llu, seen before",
		        (unsigned long long)out->version, (unsigned long long)last_seen);
	else if (now >= out->expires)
		err_set(err, STB_EXPIRED, "the index expired");
	else
		rc = 0;
done:
	cose_sign1_clear(&m);
	if (rc == -1)
		appindex_clear(out);
	return rc;
}

const appindex_entry_t *
appindex_find(const appindex_t *ix, const uint8_t ref[APPPAY_REF_LEN])
{
	appindex_entry_t key;

	if (ix->n == 0)
		return NULL;
	memcpy(key.ref, ref, APPPAY_REF_LEN);
	return bsearch(&key, ix->entries, ix->n, sizeof(*ix->entries), appindex_cmp);
}
