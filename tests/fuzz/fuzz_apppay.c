/*
 * fuzz_apppay: the QR payload decoder (src/core apppay.c: base45, COSE,
 * CBOR through libcbor) and the index snapshot reader (appindex.c) on
 * arbitrary bytes.  The first byte picks what the rest is:
 *   0  the payload text, as a TV scans it
 *   1  COSE bytes, base45-encoded behind the prefix here
 *   2  an index snapshot file
 *   3  a payload body, signed here with the fuzzer's key (the parser
 *      behind the signature check, which a fuzzer cannot forge)
 *   4  an index body, signed here
 * Any crash, leak or sanitizer report is a finding, and so is a broken
 * promise: base45 that decodes must encode back to the same text, a
 * payload that verifies must have sane fields, an index sorted entries.
 */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "appindex.h"
#include "apppay.h"
#include "base45.h"

#define NOW 1800000000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_key;

static void
fuzz_check_pay(const char *text, size_t len)
{
	static const uint8_t enc_key[APPPAY_KEY_LEN] = {0x42};
	char id1[STB_ID_MAX + 1];
	apppay_t p;
	err_t err;

	if (apppay_verify(text, len, fuzz_key, NOW, &p, &err) == 0) {
		if ((p.flag != APPPAY_SAFE && p.flag != APPPAY_UNSAFE) || p.expires <= p.issued ||
		    p.ct_len > APPPAY_CT_MAX)
			abort();
		if (apppay_open(&p, enc_key, id1, &err) == 0 && strlen(id1) > STB_ID_MAX)
			abort();
	}
}

static void
fuzz_check_index(const uint8_t *in, size_t len)
{
	appindex_t ix;
	err_t err;

	if (appindex_verify(in, len, fuzz_key, NOW, 0, &ix, &err) == 0) {
		for (size_t i = 1; i < ix.n; i++)
			if (memcmp(ix.entries[i - 1].ref, ix.entries[i].ref, APPPAY_REF_LEN) >= 0)
				abort();
		for (size_t i = 0; i < ix.n; i++)
			if (appindex_find(&ix, ix.entries[i].ref) != &ix.entries[i])
				abort();
	}
	appindex_clear(&ix);
}

/* prefix + base45(raw) into text; its length, or 0 when it does not fit. */
static size_t
fuzz_text(const uint8_t *raw, size_t n, char *text, size_t cap)
{
	size_t tl;
	err_t err;

	memcpy(text, APPPAY_PREFIX, sizeof(APPPAY_PREFIX) - 1);
	if (base45_encode(raw, n, text + sizeof(APPPAY_PREFIX) - 1,
	                  cap - (sizeof(APPPAY_PREFIX) - 1), &tl, &err) == -1)
		return 0;
	return tl + sizeof(APPPAY_PREFIX) - 1;
}

static void
fuzz_base45(const uint8_t *data, size_t size)
{
	uint8_t out[APPPAY_TEXT_MAX];
	char back[APPPAY_TEXT_MAX * 2];
	size_t n, m;
	err_t err;

	if (size > APPPAY_TEXT_MAX)
		return;
	if (base45_decode((const char *)data, size, out, sizeof(out), &n, &err) == 0) {
		if (base45_encode(out, n, back, sizeof(back), &m, &err) == -1 || m != size ||
		    memcmp(back, data, size) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[APPPAY_TEXT_MAX * 2 + 16];
	size_t tl;
	buf_t b;
	err_t err;

	if (fuzz_key == NULL && (fuzz_key = EVP_EC_gen("P-256")) == NULL)
		abort();
	if (size < 1)
		return 0;
	switch (data[0]) {
	case 0:
		fuzz_base45(data + 1, size - 1);
		fuzz_check_pay((const char *)data + 1, size - 1);
		break;
	case 1:
		if ((tl = fuzz_text(data + 1, size - 1, text, sizeof(text))) > 0)
			fuzz_check_pay(text, tl);
		break;
	case 2:
		fuzz_check_index(data + 1, size - 1);
		break;
	case 3:
	case 4:
		buf_init(&b, size + 512);
		if (cose_sign1_encode(fuzz_key, data + 1, size - 1,
		                      (const uint8_t *)(data[0] == 3 ? APPPAY_AAD : APPINDEX_AAD),
		                      strlen(data[0] == 3 ? APPPAY_AAD : APPINDEX_AAD), &b,
		                      &err) == 0) {
			if (data[0] == 4)
				fuzz_check_index(b.data, b.len);
			else if ((tl = fuzz_text(b.data, b.len, text, sizeof(text))) > 0)
				fuzz_check_pay(text, tl);
		}
		buf_free(&b);
		break;
	default:
		break;
	}
	return 0;
}
