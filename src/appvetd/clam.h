/* clam: the optional ClamAV scan of a package through libclamav, with an
 * engine compiled once from the configured database and shared by the
 * worker threads (libclamav allows concurrent scans on one engine). */
#ifndef STB_APPVETD_CLAM_H
#define STB_APPVETD_CLAM_H

#include <stdint.h>

#include "apk.h"

typedef struct clam clam_t;

/* Loads and compiles the database at db (a directory or one file: .cvd,
 * .hdb, .ndb, ...); max_scan caps the bytes it inflates from a package. */
clam_t *clam_new(const char *db, uint64_t max_scan, err_t *err);
void clam_free(clam_t *c);
/* Scans the open file fd (named path in messages); a match adds the
 * finding clamav.match.  -1 when the scan itself fails. */
int clam_scan(const clam_t *c, int fd, const char *path, apk_report_t *r, err_t *err);

#endif
