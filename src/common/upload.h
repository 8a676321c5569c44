/*
 * upload: chunked upload sessions spooled to disk (appvetd APKs, keymgmtd
 * key files), for a daemon's handlers to call; no network code.
 *
 *   upload_begin(expected size, expected SHA-256, owner) -> session id
 *   upload_chunk(id, owner, offset, bytes)  offset must be the current
 *       length; a resend of the last accepted range (same bytes) is a
 *       no-op, anything else CONFLICT with the current offset
 *   upload_offset(id, owner)  where to resume after a reconnect
 *   upload_commit(id, owner)  only when length and digest match: the spool
 *       file, fsynced, passes to the caller (path and an open fd)
 *   upload_abort(id, owner)   removes the file
 *   upload_sweep(now)         sessions idle past the TTL go, files too
 *
 * Spool files are created O_EXCL, 0600, in the given directory.  A session
 * is only ever seen by its owner: to anyone else it does not exist.  Safe
 * to share between loops (one mutex, not held while writing).
 */
#ifndef STB_UPLOAD_H
#define STB_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define UPLOAD_ID_LEN    16
#define UPLOAD_HASH_LEN  32
#define UPLOAD_OWNER_MAX 160
#define UPLOAD_PATH_MAX  4096

typedef struct upload_conf {
	const char *dir;     /* the spool directory (e.g. the state dir) */
	uint64_t max_size;   /* largest expected size accepted */
	int64_t ttl_s;       /* a session idle this long is swept */
	size_t max_sessions; /* open at once; beyond, RATE_LIMITED */
} upload_conf_t;

typedef struct upload upload_t;

upload_t *upload_new(const upload_conf_t *conf, err_t *err);
/* Aborts every open session (removing its file); NULL-safe. */
void upload_free(upload_t *u);
int upload_begin(upload_t *u, const char *owner, uint64_t size,
                 const uint8_t sha256[UPLOAD_HASH_LEN], int64_t now, uint8_t id[UPLOAD_ID_LEN],
                 err_t *err);
/* *next: the length after this chunk (or the current one, with CONFLICT). */
int upload_chunk(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, uint64_t offset,
                 const void *data, size_t len, int64_t now, uint64_t *next, err_t *err);
int upload_offset(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, int64_t now,
                  uint64_t *offset, err_t *err);
/* The file is the caller's from here on (path in path[cap], *fd open for
 * reading and writing at offset 0; the caller closes and renames or
 * unlinks it).  A short upload is refused (CONFLICT) and stays open; a
 * digest that does not match ends the session (BAD_REQUEST). */
int upload_commit(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, int64_t now,
                  char *path, size_t cap, int *fd, err_t *err);
int upload_abort(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, err_t *err);
/* Ends sessions idle past the TTL; how many. */
size_t upload_sweep(upload_t *u, int64_t now);
size_t upload_count(upload_t *u);

#endif
