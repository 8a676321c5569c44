/* apkv1: the v1 (JAR) signature of an APK: MANIFEST.MF digests of every
 * entry, the .SF digests of the manifest and its sections, and the PKCS#7
 * signature block verified with OpenSSL's CMS against the certificate it
 * carries (Android does not chain APK signers to a CA). */
#ifndef STB_APPVETD_APKV1_H
#define STB_APPVETD_APKV1_H

#include "apkrun.h"
#include "apkzip.h"

typedef struct apkv1_result {
	int verified;
	uint8_t cert[32];  /* the first signer's certificate SHA-256 */
	int apk_signed_v2; /* X-Android-APK-Signed names v2 */
	int apk_signed_v3; /* ... and v3 */
} apkv1_result_t;

/* Sets r->v1 and findings; -1 only when the check could not run. */
int apkv1_verify(apkzip_t *z, const apk_mds_t *mds, apk_report_t *r, apkv1_result_t *res,
                 err_t *err);

#endif
