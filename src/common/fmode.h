/*
 * fmode: the one rule for what a daemon keeps private on disk.  Keys (the
 * KEK, the TLS key) and the store's files give group and others nothing
 * (0600), the state directory likewise (0700), whatever the umask was;
 * an existing file or directory that gives more is refused with one
 * operator message that names it, its mode and the mode it needs.
 */
#ifndef STB_FMODE_H
#define STB_FMODE_H

#include <sys/stat.h>

#include "err.h"

/* 0 when st (of path) gives group and others no access; FORBIDDEN
 * "PATH: WHAT must be mode 0600 (is 0644)" (0700 for a directory)
 * otherwise. */
int fmode_private(const struct stat *st, const char *path, const char *what, err_t *err);
/* fmode_private() of path itself (stat); NOT_FOUND when it cannot be
 * stat()ed. */
int fmode_private_path(const char *path, const char *what, err_t *err);
/* Creates directory path 0700, or accepts an existing one that passes
 * fmode_private(). */
int fmode_private_dir(const char *path, const char *what, err_t *err);
/* Takes group and others' access from file path, and creates it 0600 when
 * missing and create is set (never through a symlink): a file another
 * library (SQLite) opens by name after this has the owner's access only. */
int fmode_private_file(const char *path, int create, err_t *err);

#endif
