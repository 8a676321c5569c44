/* store_walbuf: the WAL write-gathering VFS of the SQLite backend (store_walbuf.h). */
#include "store_walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_NAME "stb-walbuf"
#define WALBUF_CAP  (1024 * 1024) /* a commit of 250 pages at 4 KiB in one write */
/* the unix VFS writes at most 128 KiB - 1 per call (it masks the length) */
#define WALBUF_WRITE_MAX (96 * 1024)
#define WAL_FRAME_HDR    24 /* page number, db size after commit, salts, checksums */

typedef struct walbuf_file {
	sqlite3_file base; /* pMethods: walbuf_io */
	sqlite3_file *real;
	int wal;
	int commit_page; /* the next write is a commit frame's page */
	uint8_t *buf;
	size_t len;
	sqlite3_int64 off; /* where the run starts */
} walbuf_file_t;

static sqlite3_vfs walbuf_vfs_s;
static sqlite3_vfs *walbuf_real;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_rc = SQLITE_ERROR;

#define REAL(f) (((walbuf_file_t *)(f))->real)
#define RM(f)   (REAL(f)->pMethods)

static int
wb_flush(walbuf_file_t *f)
{
	int rc;

	size_t done = 0, n;

	rc = SQLITE_OK;
	while (rc == SQLITE_OK && done < f->len) {
		n = f->len - done < WALBUF_WRITE_MAX ? f->len - done : WALBUF_WRITE_MAX;
		rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
		                               f->off + (sqlite3_int64)done);
		done += n;
	}
	f->len = 0;
	return rc;
}

static int
wb_close(sqlite3_file *p)
{
	walbuf_file_t *f = (walbuf_file_t *)p;
	int rc = wb_flush(f), rc2 = RM(f)->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xRead(REAL(p), out, amt, off);
}

static uint32_t
wb_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int
wb_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
	walbuf_file_t *f = (walbuf_file_t *)p;
	int commit = f->commit_page, rc;

	if (!f->wal || f->buf == NULL || amt < 0)
		return RM(f)->xWrite(f->real, data, amt, off);
	f->commit_page = amt == WAL_FRAME_HDR && wb_be32((const uint8_t *)data + 4) != 0;
	if (f->len > 0 &&
	    (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > WALBUF_CAP) &&
	    (rc = wb_flush(f)) != SQLITE_OK)
		return rc;
	if ((size_t)amt > WALBUF_WRITE_MAX)
		return RM(f)->xWrite(f->real, data, amt, off);
	if (f->len == 0)
		f->off = off;
	memcpy(f->buf + f->len, data, (size_t)amt);
	f->len += (size_t)amt;
	return commit ? wb_flush(f) : SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xTruncate(REAL(p), size);
}

static int
wb_sync(sqlite3_file *p, int flags)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xSync(REAL(p), flags);
}

static int
wb_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xFileSize(REAL(p), size);
}

static int
wb_lock(sqlite3_file *p, int lock)
{
	return RM(p)->xLock(REAL(p), lock);
}

static int
wb_unlock(sqlite3_file *p, int lock)
{
	return RM(p)->xUnlock(REAL(p), lock);
}

static int
wb_check_reserved(sqlite3_file *p, int *out)
{
	return RM(p)->xCheckReservedLock(REAL(p), out);
}

static int
wb_file_control(sqlite3_file *p, int op, void *arg)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xFileControl(REAL(p), op, arg);
}

static int
wb_sector_size(sqlite3_file *p)
{
	return RM(p)->xSectorSize(REAL(p));
}

static int
wb_device_chars(sqlite3_file *p)
{
	return RM(p)->xDeviceCharacteristics(REAL(p));
}

static int
wb_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	return RM(p)->xShmMap(REAL(p), pg, pgsz, extend, out);
}

static int
wb_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	return RM(p)->xShmLock(REAL(p), offset, n, flags);
}

static void
wb_shm_barrier(sqlite3_file *p)
{
	RM(p)->xShmBarrier(REAL(p));
}

static int
wb_shm_unmap(sqlite3_file *p, int del)
{
	return RM(p)->xShmUnmap(REAL(p), del);
}

static int
wb_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **pp)
{
	int rc = wb_flush((walbuf_file_t *)p);

	return rc != SQLITE_OK ? rc : RM(p)->xFetch(REAL(p), off, amt, pp);
}

static int
wb_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
	return RM(p)->xUnfetch(REAL(p), off, ptr);
}

/* Version 3, like the unix VFS's files: a real file of a lower version is
 * not opened (wb_open), since SQLite would call the methods it lacks. */
static const sqlite3_io_methods walbuf_io = {
    3,
    wb_close,
    wb_read,
    wb_write,
    wb_truncate,
    wb_sync,
    wb_file_size,
    wb_lock,
    wb_unlock,
    wb_check_reserved,
    wb_file_control,
    wb_sector_size,
    wb_device_chars,
    wb_shm_map,
    wb_shm_lock,
    wb_shm_barrier,
    wb_shm_unmap,
    wb_fetch,
    wb_unfetch,
};

static int
wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	walbuf_file_t *f = (walbuf_file_t *)p;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = walbuf_real->xOpen(walbuf_real, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || f->real->pMethods == NULL) {
		p->pMethods = NULL; /* nothing to close */
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	if (f->real->pMethods->iVersion < 3) {
		/* walbuf_io promises the shared-memory methods */
		f->real->pMethods->xClose(f->real);
		p->pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	if ((flags & SQLITE_OPEN_WAL) && !(flags & SQLITE_OPEN_READONLY)) {
		f->wal = 1;
		f->buf = malloc(WALBUF_CAP); /* NULL: unbuffered, as the real file */
	}
	p->pMethods = &walbuf_io;
	return SQLITE_OK;
}

static void
walbuf_setup(void)
{
	if ((walbuf_real = sqlite3_vfs_find(NULL)) == NULL || walbuf_real->iVersion < 2)
		return;
	walbuf_vfs_s = *walbuf_real;
	walbuf_vfs_s.pNext = NULL;
	walbuf_vfs_s.zName = WALBUF_NAME;
	walbuf_vfs_s.szOsFile = (int)sizeof(walbuf_file_t) + walbuf_real->szOsFile;
	walbuf_vfs_s.xOpen = wb_open;
	walbuf_rc = sqlite3_vfs_register(&walbuf_vfs_s, 0);
}

int
store_walbuf_vfs(const char **name, err_t *err)
{
	if (pthread_once(&walbuf_once, walbuf_setup) != 0 || walbuf_rc != SQLITE_OK)
		return err_set(err, STB_INTERNAL, "store: cannot register the SQLite VFS %s",
		               WALBUF_NAME);
	*name = WALBUF_NAME;
	return 0;
}
