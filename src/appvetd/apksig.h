/* apksig: the APK Signing Block (before the ZIP central directory) and the
 * APK Signature Schemes v2 and v3 it carries.  apksig_parse() is a pure,
 * bounds-checked parser of the block's bytes (fuzzed by
 * tests/fuzz/fuzz_apksig.c); apksig_verify() checks the signatures and the
 * 1 MiB-chunked digests of the ZIP sections. */
#ifndef STB_APPVETD_APKSIG_H
#define STB_APPVETD_APKSIG_H

#include <stddef.h>
#include <stdint.h>

#include "apkrun.h"
#include "apkzip.h"

#define APKSIG_BLOCK_MAX   (16u << 20) /* a larger block is refused */
#define APKSIG_SIGNERS_MAX 8
#define APKSIG_ITEMS_MAX   8 /* digests, certificates, signatures, attrs */

#define APKSIG_ID_V2          0x7109871au
#define APKSIG_ID_V3          0xf05368c0u
#define APKSIG_ATTR_STRIPPING 0xbeeff00du /* v2: "a v3 is there too" */

/* A piece of the block: [off, off+len) of apksig_block_t.p. */
typedef struct apksig_span {
	size_t off, len;
} apksig_span_t;

typedef struct apksig_item {
	uint32_t id; /* algorithm or attribute ID */
	apksig_span_t v;
} apksig_item_t;

typedef struct apksig_signer {
	apksig_span_t signed_data; /* what the signatures cover */
	size_t n_digests, n_certs, n_attrs, n_sigs;
	apksig_item_t digests[APKSIG_ITEMS_MAX];
	apksig_span_t certs[APKSIG_ITEMS_MAX];
	apksig_item_t attrs[APKSIG_ITEMS_MAX];
	apksig_item_t sigs[APKSIG_ITEMS_MAX];
	apksig_span_t pubkey;            /* SubjectPublicKeyInfo DER */
	uint32_t min_sdk, max_sdk;       /* v3: the signer's range */
	uint32_t sd_min_sdk, sd_max_sdk; /* v3: the signed data's copy */
} apksig_signer_t;

typedef struct apksig_scheme {
	int present;   /* its ID is in the block */
	int malformed; /* present but does not parse: why says how */
	char why[128];
	size_t n_signers;
	apksig_signer_t signers[APKSIG_SIGNERS_MAX];
} apksig_scheme_t;

typedef struct apksig_block {
	const uint8_t *p; /* the block, from its first size to the magic */
	size_t n;
	apksig_scheme_t v2, v3;
} apksig_block_t;

/* Parses the block p[0..n); -1 with err when the block itself (sizes,
 * magic, ID-value pairs) is malformed.  A scheme whose value does not
 * parse is marked malformed, the other still parses. */
int apksig_parse(const uint8_t *p, size_t n, apksig_block_t *b, err_t *err);

/* Finds the block before z's central directory: 1 with *blk (malloc'd),
 * *len and *off (its offset in the file), 0 when there is none, -1 when
 * the bytes there claim a block that does not fit (finding added). */
int apksig_find(const apkzip_t *z, uint8_t **blk, size_t *len, uint64_t *off, apk_report_t *r,
                err_t *err);

/* Verifies v2 and v3 of the package: sets r->v2, r->v3, the signer
 * certificate digest(s) and findings.  certs_out receives the SHA-256 of
 * each scheme's first signer certificate for the v1 cross-check. */
typedef struct apksig_result {
	int has_v2, has_v3;
	uint8_t v2_cert[32], v3_cert[32];
	int v3_required; /* v2's stripping-protection attribute names v3 */
} apksig_result_t;
int apksig_verify(const apkzip_t *z, const apk_mds_t *mds, apk_report_t *r, apksig_result_t *res,
                  err_t *err);

#endif
