/* apk: static analysis of an Android package for appvetd's vetting job.
 *
 * One apk_ctx_t is made at start-up (ClamAV engine compiled once, digests
 * fetched once, blocklist loaded) and shared by the worker pool:
 * apk_analyse() may run concurrently on one ctx.  It fills an
 * apk_report_t with what it found; the verdict is APK_SAFE when no finding
 * has severity APK_SEV_UNSAFE.  A package that cannot be analysed (too
 * large, not a ZIP, a bomb) is not an error: it is UNSAFE with findings.
 * apk_analyse() fails (returns -1) only when the analysis itself could not
 * run (the file cannot be opened, out of memory, ClamAV engine error). */
#ifndef STB_APPVETD_APK_H
#define STB_APPVETD_APK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define APK_SHA256_LEN   32
#define APK_CODE_MAX     48  /* a finding's code, e.g. "zip.duplicate_entry" */
#define APK_REASON_MAX   256 /* its human reason */
#define APK_NAME_MAX     256 /* entry, package and permission names */
#define APK_FINDINGS_MAX 64  /* more are counted, reported as report.truncated */
#define APK_PERMS_MAX    512
#define APK_DEX_MAX      64

/* The Android "dangerous" protection level (platform permissions). */
#define APK_DANGEROUS_DEFAULT                                                                      \
	"android.permission.READ_CALENDAR,android.permission.WRITE_CALENDAR,"                      \
	"android.permission.CAMERA,android.permission.READ_CONTACTS,"                              \
	"android.permission.WRITE_CONTACTS,android.permission.GET_ACCOUNTS,"                       \
	"android.permission.ACCESS_FINE_LOCATION,"                                                 \
	"android.permission.ACCESS_COARSE_LOCATION,"                                               \
	"android.permission.ACCESS_BACKGROUND_LOCATION,"                                           \
	"android.permission.RECORD_AUDIO,android.permission.READ_PHONE_STATE,"                     \
	"android.permission.READ_PHONE_NUMBERS,android.permission.CALL_PHONE,"                     \
	"android.permission.ANSWER_PHONE_CALLS,"                                                   \
	"android.permission.READ_CALL_LOG,android.permission.WRITE_CALL_LOG,"                      \
	"android.permission.ADD_VOICEMAIL,android.permission.USE_SIP,"                             \
	"android.permission.PROCESS_OUTGOING_CALLS,"                                               \
	"android.permission.BODY_SENSORS,android.permission.SEND_SMS,"                             \
	"android.permission.RECEIVE_SMS,android.permission.READ_SMS,"                              \
	"android.permission.RECEIVE_WAP_PUSH,android.permission.RECEIVE_MMS,"                      \
	"android.permission.READ_EXTERNAL_STORAGE,"                                                \
	"android.permission.WRITE_EXTERNAL_STORAGE,"                                               \
	"android.permission.ACTIVITY_RECOGNITION"

typedef struct apk_conf {
	uint64_t max_entries;            /* ZIP entries; default 65535 */
	uint64_t max_total_uncompressed; /* bytes over all entries; 1 GiB */
	uint32_t max_ratio;              /* uncompressed/compressed, per entry; 100 */
	/* blocklist file: one lowercase or uppercase hex SHA-256 per line,
	 * optionally followed by blanks and a comment; '#' lines and blank
	 * lines are skipped.  It matches the package and every DEX.  NULL:
	 * no blocklist. */
	const char *blocklist_path;
	/* comma-separated permission names; NULL: APK_DANGEROUS_DEFAULT */
	const char *dangerous_permissions;
	/* ClamAV database directory (or file); NULL: no ClamAV scan */
	const char *clamav_db;
} apk_conf_t;

/* Fills conf with the defaults above (no blocklist, no ClamAV). */
void apk_conf_default(apk_conf_t *conf);

typedef struct apk_ctx apk_ctx_t;

/* Copies what it needs from conf (the strings may go after it returns).
 * Loads the blocklist and, when configured, the ClamAV database. */
apk_ctx_t *apk_ctx_new(const apk_conf_t *conf, err_t *err);
/* Re-reads the blocklist file (re-vetting with a newer blocklist); calls
 * already running keep the list they started with. */
int apk_ctx_reload_blocklist(apk_ctx_t *ctx, err_t *err);
void apk_ctx_free(apk_ctx_t *ctx);

typedef enum apk_severity {
	APK_SEV_INFO = 0,
	APK_SEV_WARN = 1,
	APK_SEV_UNSAFE = 2,
} apk_severity_t;

typedef enum apk_verdict {
	APK_SAFE = 0,
	APK_UNSAFE = 1,
} apk_verdict_t;

/* A signature scheme's state in the package. */
typedef enum apk_sig_state {
	APK_SIG_ABSENT = 0,   /* the scheme's signature is not there */
	APK_SIG_VERIFIED = 1, /* present and it verifies */
	APK_SIG_FAILED = 2,   /* present and it does not (see findings) */
} apk_sig_state_t;

typedef struct apk_finding {
	char code[APK_CODE_MAX]; /* stable: "sig.v1.digest_mismatch" */
	apk_severity_t severity;
	char reason[APK_REASON_MAX];
} apk_finding_t;

typedef struct apk_dex {
	char name[APK_NAME_MAX]; /* "classes.dex", "classes2.dex" */
	uint8_t sha256[APK_SHA256_LEN];
} apk_dex_t;

typedef struct apk_report {
	uint8_t sha256[APK_SHA256_LEN]; /* of the whole package file */
	uint64_t size;                  /* bytes */
	uint64_t entries;               /* ZIP entries */
	char package[APK_NAME_MAX];     /* manifest package="", or "" */
	char version_name[APK_NAME_MAX];
	int64_t version_code; /* -1 when absent */

	size_t n_dex;
	apk_dex_t *dex;

	apk_sig_state_t v1, v2, v3;
	int has_signer; /* 1: signer_sha256 is set */
	/* SHA-256 of the DER signer certificate (the v3 one, else v2's,
	 * else v1's; they must agree where several exist) */
	uint8_t signer_sha256[APK_SHA256_LEN];

	size_t n_perms;
	char **perms; /* uses-permission android:name, in manifest order */

	size_t n_findings;
	apk_finding_t *findings;
	size_t n_findings_dropped; /* beyond APK_FINDINGS_MAX */

	uint8_t blocklist_sha256[APK_SHA256_LEN]; /* of the list used */
	apk_verdict_t verdict;
	/* 1: the package's signatures verify as `apksigner verify` would
	 * say (a scheme verified, none failed or stripped, the archive
	 * sound); the warning when 0 is in the sig.* findings */
	int signature_ok;
} apk_report_t;

void apk_report_init(apk_report_t *report);
/* NULL-safe; leaves report as apk_report_init() does. */
void apk_report_free(apk_report_t *report);

/* Analyses the package at path into report (which it initialises first;
 * free it with apk_report_free() whatever it returns).  Thread-safe. */
int apk_analyse(apk_ctx_t *ctx, const char *path, apk_report_t *report, err_t *err);

/* The report as one JSON object (sha256, size, entries, package,
 * version_name, version_code, dex[{name,sha256}], schemes{v1,v2,v3:
 * "absent"|"verified"|"failed"}, signer_sha256, permissions[],
 * findings[{code,severity,reason}], verdict "SAFE"|"UNSAFE").  malloc'd;
 * NULL with err set on failure. */
char *apk_report_json(const apk_report_t *report, err_t *err);

const char *apk_verdict_name(apk_verdict_t v);     /* "SAFE", "UNSAFE" */
const char *apk_severity_name(apk_severity_t s);   /* "info", ... */
const char *apk_sig_state_name(apk_sig_state_t s); /* "absent", ... */

#endif
