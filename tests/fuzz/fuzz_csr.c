/*
 * fuzz_csr: ca-authd's CSR check (CA_ISSUE's CSR_DER, from cert-proxyd or
 * an admin) on arbitrary bytes.  It must refuse everything that is not one
 * self-signed P-256 PKCS#10 request, never crash or leak, and leave the
 * thread's OpenSSL error queue empty.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *pub = NULL;
	err_t err;

	if (cert_csr_check(data, size, &pub, &err) == 0) {
		if (pub == NULL || !cert_key_is_p256(pub))
			abort(); /* accepted must mean a P-256 key came out */
		EVP_PKEY_free(pub);
	} else if (pub != NULL || err.status != STB_BAD_REQUEST)
		abort();
	if (ERR_peek_error() != 0)
		abort(); /* a stale entry breaks the next SSL_get_error */
	return 0;
}
