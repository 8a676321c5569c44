/*
 * fuzz_axml: appvetd's binary XML reader (src/appvetd/axml.c) on arbitrary
 * bytes, as the vetting reads an AndroidManifest.xml: the manifest
 * extraction, and a walk reading every attribute of every element as a
 * string and as an integer.  Any crash, leak or sanitizer report is a
 * finding, and so is a result that breaks the reader's promises: strings
 * NUL-terminated within their caps, at most AXML_PERMS_MAX permissions.
 * Corpus: the manifests of the fixture APKs (tests/fixtures/make-apks.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "axml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_elem(void *arg, const axml_elem_t *el, err_t *err)
{
	static const struct {
		uint32_t id;
		const char *name;
	} attrs[] = {{AXML_ATTR_NAME, "name"},
	             {AXML_ATTR_VERSION_CODE, "versionCode"},
	             {AXML_ATTR_VERSION_NAME, "versionName"},
	             {AXML_ATTR_MIN_SDK, "minSdkVersion"},
	             {0, "package"}};
	char s[AXML_STR_MAX];
	int64_t v;

	(void)arg;
	if (strnlen(el->name, sizeof(el->name)) >= sizeof(el->name))
		abort();
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (axml_attr_str(el, attrs[i].id, attrs[i].name, s, sizeof(s), err) == 1 &&
		    strnlen(s, sizeof(s)) >= sizeof(s))
			abort();
		(void)axml_attr_int(el, attrs[i].id, attrs[i].name, &v, err);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	axml_manifest_t m;
	err_t err;

	if (axml_manifest_parse(data, size, &m, &err) == 0) {
		if (m.n_perms > AXML_PERMS_MAX ||
		    strnlen(m.package, sizeof(m.package)) >= sizeof(m.package))
			abort();
		for (size_t i = 0; i < m.n_perms; i++)
			if (m.perms[i] == NULL || strlen(m.perms[i]) >= AXML_STR_MAX)
				abort();
	}
	axml_manifest_free(&m);
	(void)axml_walk(data, size, fuzz_elem, NULL, &err);
	return 0;
}
