/*
 * fuzz_apksig: appvetd's APK Signing Block parser (src/appvetd/apksig.c,
 * apksig_parse) on arbitrary bytes.  Any crash or sanitizer report is a
 * finding, and so is a parse that breaks its promises: every span it hands
 * out lies inside the block, counts within their caps, and a scheme is
 * either malformed or has signers.  Corpus: the signing blocks of the
 * fixture APKs (tests/fixtures/make-apks.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "apksig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_span(const apksig_span_t *s, size_t n)
{
	if (s->off > n || s->len > n - s->off)
		abort();
}

static void
fuzz_scheme(const apksig_scheme_t *sc, size_t n)
{
	if (!sc->present)
		return;
	if (sc->n_signers > APKSIG_SIGNERS_MAX || (!sc->malformed && sc->n_signers == 0))
		abort();
	for (size_t i = 0; i < sc->n_signers; i++) {
		const apksig_signer_t *s = &sc->signers[i];

		if (s->n_digests > APKSIG_ITEMS_MAX || s->n_certs > APKSIG_ITEMS_MAX ||
		    s->n_attrs > APKSIG_ITEMS_MAX || s->n_sigs > APKSIG_ITEMS_MAX)
			abort();
		fuzz_span(&s->signed_data, n);
		fuzz_span(&s->pubkey, n);
		for (size_t j = 0; j < s->n_digests; j++)
			fuzz_span(&s->digests[j].v, n);
		for (size_t j = 0; j < s->n_certs; j++)
			fuzz_span(&s->certs[j], n);
		for (size_t j = 0; j < s->n_attrs; j++)
			fuzz_span(&s->attrs[j].v, n);
		for (size_t j = 0; j < s->n_sigs; j++)
			fuzz_span(&s->sigs[j].v, n);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	apksig_block_t b;
	err_t err;

	if (apksig_parse(data, size, &b, &err) < 0)
		return 0;
	fuzz_scheme(&b.v2, size);
	fuzz_scheme(&b.v3, size);
	return 0;
}
