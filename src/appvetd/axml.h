/* axml: a bounds-checked reader of Android's binary XML (the compiled
 * AndroidManifest.xml): the string pool in UTF-8 or UTF-16, the resource
 * map, start and end elements and their attributes.  No library reads this
 * format; every offset and length is checked against its chunk (fuzzed by
 * tests/fuzz/fuzz_axml.c). */
#ifndef STB_APPVETD_AXML_H
#define STB_APPVETD_AXML_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AXML_STR_MAX   256 /* a name or value this reader hands out */
#define AXML_PERMS_MAX 512
#define AXML_DEPTH_MAX 256

/* Android attribute resource IDs (android.R.attr). */
#define AXML_ATTR_NAME         0x01010003u
#define AXML_ATTR_VERSION_CODE 0x0101021bu
#define AXML_ATTR_VERSION_NAME 0x0101021cu
#define AXML_ATTR_MIN_SDK      0x0101020cu

typedef struct axml axml_t; /* a parsed document, during a walk */

/* A start element as the walk sees it. */
typedef struct axml_elem {
	const axml_t *doc;
	unsigned depth; /* 0: the root element */
	char name[AXML_STR_MAX];
	size_t attr_off, attr_size, attr_count; /* inside the document */
} axml_elem_t;

/* Called for every start element in document order; -1 stops the walk. */
typedef int (*axml_elem_fn)(void *arg, const axml_elem_t *el, err_t *err);

/* Walks the document p[0..n) calling fn; -1 with err when it is malformed
 * (an offset or length outside its chunk, a bad string pool, unbalanced
 * elements, deeper than AXML_DEPTH_MAX). */
int axml_walk(const uint8_t *p, size_t n, axml_elem_fn fn, void *arg, err_t *err);

/* The string value of the element's attribute with resource ID resid (or,
 * when the document maps no ID to it, the android-namespace attribute
 * called name) into out.  1 found, 0 absent, -1 malformed or too long. */
int axml_attr_str(const axml_elem_t *el, uint32_t resid, const char *name, char *out, size_t cap,
                  err_t *err);
/* The same for an integer-typed attribute (or a decimal string). */
int axml_attr_int(const axml_elem_t *el, uint32_t resid, const char *name, int64_t *out,
                  err_t *err);

/* What the vetting needs from AndroidManifest.xml. */
typedef struct axml_manifest {
	char package[AXML_STR_MAX];
	char version_name[AXML_STR_MAX];
	int64_t version_code; /* -1: absent */
	int64_t min_sdk;      /* -1: absent (Android then takes 1) */
	size_t n_perms;
	char **perms; /* uses-permission(-sdk-23) android:name, in order */
	size_t n_perms_dropped;
} axml_manifest_t;

/* Parses a manifest; the root must be <manifest>.  Free m with
 * axml_manifest_free() whatever it returns. */
int axml_manifest_parse(const uint8_t *p, size_t n, axml_manifest_t *m, err_t *err);
void axml_manifest_free(axml_manifest_t *m);

#endif
