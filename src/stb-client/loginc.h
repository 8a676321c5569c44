/* loginc: libstbclient's side of flow A, shared by login.c (stb_login) and
 * watch.c (stb_watch). */
#ifndef STB_LOGINC_H
#define STB_LOGINC_H

#include <stddef.h>
#include <stdint.h>

#include "stbc.h"

/* CP_AUTH_BEGIN / CP_AUTH_PROVE on cp, unless cp is already authenticated
 * as device_id.  The MAC is wiped; the secret is left alone. */
int loginc_auth(stb_client_t *cp, const char *device_id, const uint8_t *secret, size_t secret_len,
                stb_error_t *err);
/* Puts "step: " in front of err's message; returns -1. */
int loginc_step(stb_error_t *err, const char *step);
/* Wipes the last frame a client read (it may hold key info or a token). */
void loginc_wipe_rbuf(stb_client_t *c);

#endif
