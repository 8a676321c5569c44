/* apkrun: what apk.c lends the analysis modules (apkzip.c, apkv1.c,
 * apksig.c, axml.c's caller, clam.c) during one apk_analyse() call. */
#ifndef STB_APPVETD_APKRUN_H
#define STB_APPVETD_APKRUN_H

#include <openssl/evp.h>

#include "apk.h"

/* The digests, fetched once per ctx. */
typedef struct apk_mds {
	EVP_MD *sha1, *sha256, *sha512;
} apk_mds_t;

/* Adds a finding; past APK_FINDINGS_MAX it only counts it.  An unsafe
 * one makes the verdict UNSAFE. */
void apk_report_add(apk_report_t *r, apk_severity_t sev, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 1 when a finding with this code is in the report. */
int apk_report_has(const apk_report_t *r, const char *code);

#endif
