/*
 * cpsecret: device secrets at rest.  With a signer (the running daemon) the
 * signer seals and opens them, so this process holds no KEK after start;
 * without one (the unit tests' daemon) the KEK does it here.
 */
#include <string.h>

#include "cp.h"
#include "signer.h"

int
cp_secret_seal(cp_t *cp, const char *aad, const void *pt, size_t ptlen, buf_t *out, err_t *err)
{
	if (cp->d->signer != NULL)
		return signer_seal(cp->d->signer, aad, strlen(aad), pt, ptlen, out, err);
	return sealed_seal(cp->d->kek, aad, strlen(aad), pt, ptlen, out, err);
}

int
cp_secret_open(cp_t *cp, const char *aad, const void *blob, size_t blen, uint8_t *pt, size_t cap,
               size_t *ptlen, err_t *err)
{
	if (cp->d->signer != NULL)
		return signer_open(cp->d->signer, aad, strlen(aad), blob, blen, pt, cap, ptlen,
		                   err);
	return sealed_open(cp->d->kek, aad, strlen(aad), blob, blen, pt, cap, ptlen, err);
}
