/*
 * fuzz_ocsp: what ca-authd's public /ocsp route makes of a request before
 * any store or key is touched.  The first byte picks the transport: even,
 * the rest is a POST body (DER); odd, the rest is the path after "/ocsp/"
 * of a GET (URL-encoded base64).  A request that decodes is then read the
 * way ocsp_respond reads it (every CertID, the nonce).  Any crash, leak or
 * sanitizer report is a finding, and so is an error left on the OpenSSL
 * queue (the next SSL_get_error on that thread would see it).
 */
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "/ocsp/" and the bytes up to the first NUL: evhttp's path is a C string. */
static uint8_t *
fuzz_get(const uint8_t *data, size_t size, size_t *len)
{
	char path[2 * CA_OCSP_MAX_REQ + 16];
	size_t n = strnlen((const char *)data, size);
	uint8_t *der;

	if (n > sizeof(path) - 7)
		n = sizeof(path) - 7;
	memcpy(path, "/ocsp/", 6);
	memcpy(path + 6, data, n);
	path[6 + n] = '\0';
	der = ocsp_get_decode(path, len);
	if (der != NULL && *len > 3 * CA_OCSP_MAX_REQ)
		abort(); /* more bytes than the path could hold */
	return der;
}

/* What ocsp_respond takes from an accepted request. */
static void
fuzz_read(OCSP_REQUEST *oreq)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	int n = OCSP_request_onereq_count(oreq);

	if (n <= 0 || n > 16 || bs == NULL)
		abort();
	for (int i = 0; i < n; i++) {
		OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
		ASN1_OBJECT *md_oid = NULL;
		ASN1_INTEGER *serial = NULL;
		uint8_t sb[CRT_SERIAL_MAX];
		size_t sn;

		OCSP_id_get0_info(NULL, &md_oid, NULL, &serial, cid);
		(void)EVP_get_digestbyobj(md_oid);
		if (crt_serial_get(serial, sb, &sn, NULL) == 0 && sn > sizeof(sb))
			abort();
	}
	OCSP_copy_nonce(bs, oreq);
	OCSP_BASICRESP_free(bs);
	ERR_clear_error(); /* ocsp_respond clears after these too */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	OCSP_REQUEST *oreq;
	uint8_t *der = NULL;
	size_t len = 0;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		if ((der = fuzz_get(data + 1, size - 1, &len)) == NULL) {
			if (ERR_peek_error() != 0)
				abort();
			return 0; /* ocsp_http answers malformedRequest */
		}
		oreq = ocsp_request_decode(der, len);
	} else
		oreq = ocsp_request_decode(data + 1, size - 1);
	if (oreq == NULL && ERR_peek_error() != 0)
		abort();
	if (oreq != NULL)
		fuzz_read(oreq);
	OCSP_REQUEST_free(oreq);
	free(der);
	return 0;
}
