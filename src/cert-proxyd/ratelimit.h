/*
 * ratelimit: failed-authentication counters with lockout backoff, keyed by
 * a string (a device ID, a source address).  After max_failures failures in
 * a row the key is locked for lockout_s, doubling with each further failure
 * up to lockout_max_s.  A success clears the key; failures older than
 * lockout_max_s are forgotten.  Shared by every loop (one mutex, never held
 * across I/O).  Pure: the caller passes the time.
 */
#ifndef CP_RATELIMIT_H
#define CP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cp_rl cp_rl_t;

typedef struct cp_rl_conf {
	int64_t max_failures;
	int64_t lockout_s;
	int64_t lockout_max_s;
} cp_rl_conf_t;

/* max_entries bounds memory; NULL when out of memory. */
cp_rl_t *cp_rl_new(const cp_rl_conf_t *conf, size_t max_entries);
void cp_rl_free(cp_rl_t *rl);
/* 0 when key may try now, else the seconds its lock has left. */
int64_t cp_rl_check(cp_rl_t *rl, const char *key, int64_t now);
/* Counts a failure; 1 when this failure locked the key (*until set), else
 * 0.  A full table forgets its oldest unlocked key first. */
int cp_rl_fail(cp_rl_t *rl, const char *key, int64_t now, int64_t *until);
/* Clears key after a success. */
void cp_rl_success(cp_rl_t *rl, const char *key);
/* The lock a key gets at its n-th failure in a row (0: none). */
int64_t cp_rl_lock_for(const cp_rl_conf_t *conf, int64_t failures);
size_t cp_rl_size(cp_rl_t *rl);

#endif
