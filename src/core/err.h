/* err: a status code from the registry plus a message for the operator. */
#ifndef STB_ERR_H
#define STB_ERR_H

#include <stddef.h>

#include "stb/stbproto.h"

#define ERR_MSG_MAX 256

typedef struct err {
	int status; /* STB_OK, STB_BAD_REQUEST, ... */
	char msg[ERR_MSG_MAX];
} err_t;

/* Records status and message in err (which may be NULL); returns -1 so
 * callers can write "return err_set(...)". */
int err_set(err_t *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void err_clear(err_t *err);
/* err_set() with ": " and the reason of the last OpenSSL error appended
 * (when there is one); empties the thread's OpenSSL error queue, which
 * must not keep a stale entry (libevent's SSL bufferevents read it). */
int err_set_ossl(err_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
