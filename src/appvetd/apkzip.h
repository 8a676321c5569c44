/* apkzip: an APK's ZIP structure.  libzip reads the entries; the central
 * directory is also walked here (bounded), because libzip hides what the
 * vetting must see (duplicate names, the bytes between the entries and the
 * central directory where the APK Signing Block lives). */
#ifndef STB_APPVETD_APKZIP_H
#define STB_APPVETD_APKZIP_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

#include "apk.h"
#include "buf.h"

typedef struct apkzip_entry {
	char *name; /* NUL-terminated copy of the raw name */
	size_t name_len;
	uint64_t csize, usize, lho;
	uint16_t method, flags;
	uint64_t zindex; /* libzip's index of this entry */
	int readable;    /* libzip agrees on it (name, index) */
} apkzip_entry_t;

typedef struct apkzip {
	int fd;
	uint64_t size;
	zip_t *za;
	uint64_t cd_off, cd_size, eocd_off;
	uint8_t eocd[22]; /* the EOCD record without its comment */
	apkzip_entry_t *ent;
	size_t n;
	uint64_t budget; /* bytes that may still be inflated */
	int inflatable;  /* 0: a cap is passed; read no entry */
} apkzip_t;

/* Opens path and walks its central directory; adds findings for what is
 * wrong with the structure (caps, names, duplicates, ratio, libzip's
 * consistency check).  0 with z->n == 0 and a finding when it is no ZIP;
 * -1 (err) only when the file cannot be read at all. */
int apkzip_open(apkzip_t *z, const char *path, const apk_conf_t *conf, apk_report_t *r, err_t *err);
void apkzip_close(apkzip_t *z);

/* The first entry named name (exact bytes), or NULL. */
const apkzip_entry_t *apkzip_find(const apkzip_t *z, const char *name);

/* Inflates e through libzip, handing the bytes to fn in pieces; stops
 * (returns -1 with err) past the declared size, past the inflate budget,
 * on a CRC or data error, or when fn returns -1. */
typedef int (*apkzip_sink_fn)(void *arg, const uint8_t *p, size_t n, err_t *err);
int apkzip_read(apkzip_t *z, const apkzip_entry_t *e, apkzip_sink_fn fn, void *arg, err_t *err);
/* The whole of e into out (which caps it at its own max). */
int apkzip_read_buf(apkzip_t *z, const apkzip_entry_t *e, buf_t *out, err_t *err);
/* Raw bytes of the file at off. */
int apkzip_pread(const apkzip_t *z, uint64_t off, void *p, size_t n, err_t *err);

#endif
