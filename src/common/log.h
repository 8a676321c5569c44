/*
 * log: one line per event on stderr with a <N> priority prefix that journald
 * understands, or JSON lines.  log_warn() appends strerror(errno),
 * log_warnx() does not.  Never pass a secret: log a fingerprint instead.
 */
#ifndef STB_LOG_H
#define STB_LOG_H

#include <stddef.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *ident, int json, int debug);
void log_set_debug(int debug);
void log_warn(const char *fmt, ...) LOG_FMT(1, 2);
void log_warnx(const char *fmt, ...) LOG_FMT(1, 2);
void log_info(const char *fmt, ...) LOG_FMT(1, 2);
void log_debug(const char *fmt, ...) LOG_FMT(1, 2);
/* Errors that stop the daemon or a job for good, at priority err
 * (journalctl -p err shows them); warnings are for what it survives. */
void log_err(const char *fmt, ...) LOG_FMT(1, 2);
void log_errx(const char *fmt, ...) LOG_FMT(1, 2);
void fatal(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));

/* Short hex fingerprint (first 8 bytes of SHA-256) of a secret, for logs. */
void log_fingerprint(const void *p, size_t len, char out[17]);

#endif
