/* x509: certificate helpers (see x509.h). */
#include "x509.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"

int
crt_san_uri_each(X509 *x, const char *prefix, crt_uri_fn fn, void *arg)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t pl = strlen(prefix);
	int stopped = 0;

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !stopped; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int l;

		if (g->type != GEN_URI)
			continue;
		d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		l = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (l <= 0 || (size_t)l <= pl || (size_t)l > CRT_SAN_URI_MAX ||
		    memcmp(d, prefix, pl) != 0 || memchr(d, '\0', (size_t)l) != NULL)
			continue;
		stopped = fn((const char *)d + pl, (size_t)l - pl, arg) != 0;
	}
	GENERAL_NAMES_free(gens);
	/* a SAN that does not parse leaves an entry behind */
	ERR_clear_error();
	return stopped;
}

struct crt_first {
	char *out;
	size_t cap;
};

static int
crt_first_fits(const char *rest, size_t len, void *arg)
{
	struct crt_first *f = arg;

	if (len >= f->cap)
		return 0;
	memcpy(f->out, rest, len);
	f->out[len] = '\0';
	return 1;
}

int
crt_san_uri(X509 *x, const char *prefix, char *out, size_t cap)
{
	struct crt_first f = {out, cap};

	return crt_san_uri_each(x, prefix, crt_first_fits, &f) == 1 ? 0 : -1;
}

int
crt_time(const ASN1_TIME *t, int64_t *out, err_t *err)
{
	struct tm tm;

	/* ASN1_TIME_to_tm(NULL) would be the current time */
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return err_set(err, STB_BAD_REQUEST, "certificate time missing or malformed");
	}
	*out = (int64_t)timegm(&tm);
	return 0;
}

void
crt_serial_norm(const uint8_t **p, size_t *len)
{
	while (*len > 1 && (*p)[0] == 0) {
		(*p)++;
		(*len)--;
	}
}

int
crt_serial_get(const ASN1_INTEGER *ai, uint8_t out[CRT_SERIAL_MAX], size_t *len, err_t *err)
{
	const uint8_t *p;
	size_t n;

	if (ai == NULL)
		return err_set(err, STB_BAD_REQUEST, "no serial number");
	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER)
		return err_set(err, STB_BAD_REQUEST, "negative serial number");
	/* an ASN1_INTEGER holds the magnitude, big-endian */
	p = ASN1_STRING_get0_data(ai);
	n = (size_t)(ASN1_STRING_length(ai) > 0 ? ASN1_STRING_length(ai) : 0);
	if (n == 0) {
		out[0] = 0;
		*len = 1;
		return 0;
	}
	crt_serial_norm(&p, &n);
	if (n > CRT_SERIAL_MAX)
		return err_set(err, STB_BAD_REQUEST, "serial number longer than %d bytes",
		               CRT_SERIAL_MAX);
	memcpy(out, p, n);
	*len = n;
	return 0;
}

void
crt_serial_hex(const uint8_t *p, size_t len, char out[CRT_SERIAL_HEX])
{
	hex_encode_upper(p, len < CRT_SERIAL_MAX ? len : CRT_SERIAL_MAX, out);
}

int
crt_serial_parse(const char *hex, uint8_t out[CRT_SERIAL_MAX], size_t *len, err_t *err)
{
	uint8_t tmp[CRT_SERIAL_MAX + 1];
	const uint8_t *p = tmp;
	size_t l, n = 0, k;

	if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0)
		hex += 2;
	l = strnlen(hex, 2 * (CRT_SERIAL_MAX + 1) + 1);
	if (l == 0 || l > 2 * (CRT_SERIAL_MAX + 1))
		return err_set(err, STB_BAD_REQUEST, "serial: 1 to %d hex digits",
		               2 * CRT_SERIAL_MAX);
	if (l % 2 == 1) { /* an odd digit count has an implied leading zero */
		if (hex_digit(hex[0]) < 0)
			return err_set(err, STB_BAD_REQUEST, "serial: not hex");
		tmp[n++] = (uint8_t)hex_digit(hex[0]);
	}
	if (hex_decode(hex + n, l - n, tmp + n, sizeof(tmp) - n, &k) == -1)
		return err_set(err, STB_BAD_REQUEST, "serial: not hex");
	n += k;
	crt_serial_norm(&p, &n);
	if (n > CRT_SERIAL_MAX)
		return err_set(err, STB_BAD_REQUEST, "serial longer than %d bytes", CRT_SERIAL_MAX);
	memcpy(out, p, n);
	*len = n;
	return 0;
}

X509 *
crt_from_der(const uint8_t *der, size_t len, err_t *err)
{
	const unsigned char *p = der;
	X509 *x;

	if (der == NULL || len == 0 || len > CRT_DER_MAX) {
		err_set(err, STB_BAD_REQUEST, "a certificate is 1 to %d DER bytes", CRT_DER_MAX);
		return NULL;
	}
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		err_set(err, STB_BAD_REQUEST, "not one DER certificate");
		return NULL;
	}
	return x;
}

/* ---- a memo of recently parsed certificates ----
 * The same few certificates come back in every message of a kind (the
 * OCSP responder's in each answer): parsing one costs a decoder context
 * per public key in OpenSSL 3, far more than comparing its bytes.  Entries
 * are matched on the whole DER, so a hit is exactly what d2i would give;
 * a handful of slots, replaced in turn, bounds what a stranger can fill. */
#define CRT_MEMO_SLOTS 8

static struct {
	pthread_mutex_t lock;
	struct {
		uint8_t *der;
		size_t len;
		X509 *x;
	} e[CRT_MEMO_SLOTS];
	unsigned next;
} crt_memo = {.lock = PTHREAD_MUTEX_INITIALIZER};

X509 *
crt_from_der_memo(const uint8_t *der, size_t len, err_t *err)
{
	X509 *x = NULL;
	uint8_t *copy;
	unsigned i;

	if (der == NULL || len == 0 || len > CRT_DER_MAX)
		return crt_from_der(der, len, err);
	pthread_mutex_lock(&crt_memo.lock);
	for (i = 0; i < CRT_MEMO_SLOTS && x == NULL; i++)
		if (crt_memo.e[i].x != NULL && crt_memo.e[i].len == len &&
		    memcmp(crt_memo.e[i].der, der, len) == 0 && X509_up_ref(crt_memo.e[i].x) == 1)
			x = crt_memo.e[i].x;
	pthread_mutex_unlock(&crt_memo.lock);
	if (x != NULL)
		return x;
	if ((x = crt_from_der(der, len, err)) == NULL)
		return NULL;
	if ((copy = malloc(len)) == NULL || X509_up_ref(x) != 1) {
		free(copy);
		return x; /* parsed; just not remembered */
	}
	memcpy(copy, der, len);
	pthread_mutex_lock(&crt_memo.lock);
	i = crt_memo.next++ % CRT_MEMO_SLOTS;
	free(crt_memo.e[i].der);
	X509_free(crt_memo.e[i].x);
	crt_memo.e[i].der = copy;
	crt_memo.e[i].len = len;
	crt_memo.e[i].x = x;
	pthread_mutex_unlock(&crt_memo.lock);
	return x;
}

int
crt_der_tlv(const uint8_t **p, const uint8_t *end, int tag, int cls, const uint8_t **c,
            size_t *clen)
{
	const unsigned char *q = *p;
	long len = 0;
	int t = 0, k = 0, r;

	if (*p >= end)
		return -1;
	r = ASN1_get_object(&q, &len, &t, &k, end - *p);
	if ((r & 0x80) || (r & 0x01) || t != tag || k != cls || len < 0 || len > end - q)
		return -1;
	*c = q;
	*clen = (size_t)len;
	*p = q + len;
	return 0;
}

int
crt_der_certs_memo(const uint8_t *der, size_t len, X509 **x, int cap)
{
	const uint8_t *p = der, *end = der + len, *c;
	size_t n;
	int nx = 0;

	while (p < end) {
		const uint8_t *start = p;

		if (nx == cap ||
		    crt_der_tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n) == -1 ||
		    (x[nx] = crt_from_der_memo(start, (size_t)(p - start), NULL)) == NULL) {
			while (nx > 0)
				X509_free(x[--nx]);
			return -1;
		}
		nx++;
	}
	return nx;
}
