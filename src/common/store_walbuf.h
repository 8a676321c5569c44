/*
 * store_walbuf: an SQLite VFS over the platform's default one that gathers the
 * writes to a write-ahead log into one buffer, so a commit writes its
 * frames with one pwrite per 96 KiB (the unix VFS takes at most 128 KiB a
 * call) instead of two per page (a frame header and the page).  On this project's machines a system
 * call costs more than the copy, and a commit of a batch of a few dozen requests dirties a few
 * hundred pages.
 *
 * Only files SQLite opens as a WAL are buffered; every other file, and
 * every method but xWrite, goes straight to the default VFS.  The buffer
 * holds one contiguous run of writes.  It is written out:
 *  - as soon as it holds a commit frame (a frame header whose "database
 *    size after commit" field is set, and the page after it): SQLite
 *    publishes a commit's frames to other connections only after it has
 *    written them, so they are in the file by then, whatever the
 *    synchronous setting;
 *  - before xSync, xRead, xTruncate, xFileSize, xFileControl, xFetch and
 *    xClose, so nothing that reads the file or relies on its bytes sees it
 *    short;
 *  - before a write that does not continue the run or would overflow it.
 * A failed write-out is the error of the method that caused it: SQLite
 * then fails the transaction, as it would for a failed pwrite, and the
 * frames past the last commit are ignored, as after a crash.
 */
#ifndef STB_STORE_WALBUF_H
#define STB_STORE_WALBUF_H

#include "err.h"

/* Registers the VFS (once per process, not as the default) and gives its
 * name for sqlite3_open_v2.  0 or -1 with err. */
int store_walbuf_vfs(const char **name, err_t *err);

#endif
