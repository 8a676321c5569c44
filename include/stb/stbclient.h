/*
 * libstbclient: the firmware side of stbcred.
 *
 * Every call is blocking with a deadline (stb_client_set_timeout), returns
 * 0 on success or -1 with *err filled (err may be NULL), keeps no global
 * state and never logs on its own: give it a callback for that.  Handles are
 * opaque; one handle serves one thread at a time.
 *
 *	stb_client_t *c;
 *	stb_error_t err;
 *	uint64_t rtt;
 *	if (stb_client_new(&c, &err) == 0 &&
 *	    stb_client_set_ca_file(c, "/etc/stb/ca.pem", &err) == 0 &&
 *	    stb_connect(c, "gw.example.net", "7103", &err) == 0 &&
 *	    stb_ping(c, NULL, 0, &rtt, &err) == 0)
 *		printf("rtt %llu us\n", (unsigned long long)rtt);
 *	stb_client_free(c);
 */
#ifndef STB_STBCLIENT_H
#define STB_STBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "stbproto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STB_API __attribute__((visibility("default")))

typedef struct stb_client stb_client_t;

/* Why a call failed: a status from stbproto.h (STB_UNAVAILABLE,
 * STB_TIMEOUT, or the server's answer) and a message for people. */
typedef struct stb_error {
	int status;
	char message[256];
} stb_error_t;

enum { STB_LOG_DEBUG = 7, STB_LOG_INFO = 6, STB_LOG_WARNING = 4 };
typedef void (*stb_log_fn)(void *ctx, int level, const char *message);

/* Secret storage supplied by the firmware (device secret, wrap keys): the
 * library keeps no secret on disk itself.  load returns 0 and sets *len, or
 * -1 when the name is unknown; save returns 0 or -1. */
typedef struct stb_secret_store {
	int (*load)(void *ctx, const char *name, unsigned char *buf, size_t cap, size_t *len);
	int (*save)(void *ctx, const char *name, const unsigned char *buf, size_t len);
} stb_secret_store_t;

STB_API const char *stb_version(void);

STB_API int stb_client_new(stb_client_t **out, stb_error_t *err);
/* NULL-safe; wipes what the handle held. */
STB_API void stb_client_free(stb_client_t *c);

/* The only trust anchor(s) for servers (PEM): the CA is pinned, the
 * system store is never used.  Required before stb_connect. */
STB_API int stb_client_set_ca_file(stb_client_t *c, const char *path, stb_error_t *err);
/* A client certificate and key (PEM), for devices and operators that have
 * one. */
STB_API int stb_client_set_identity(stb_client_t *c, const char *cert_path, const char *key_path,
                                    stb_error_t *err);
/* Deadline for connecting and for each request, in milliseconds (default
 * 10000). */
STB_API void stb_client_set_timeout(stb_client_t *c, int timeout_ms);
STB_API void stb_client_set_log(stb_client_t *c, stb_log_fn fn, void *ctx);
STB_API void stb_client_set_secret_store(stb_client_t *c, const stb_secret_store_t *store,
                                         void *ctx);

/* Connects over TLS and checks the server certificate against the CA and
 * host (a DNS name or an IP address). */
STB_API int stb_connect(stb_client_t *c, const char *host, const char *port, stb_error_t *err);
/* The same with "host:port" or "[IPv6]:port". */
STB_API int stb_connect_addr(stb_client_t *c, const char *addr, stb_error_t *err);
STB_API void stb_disconnect(stb_client_t *c);

/* PING; payload (may be NULL) must come back unchanged.  *rtt_us gets the
 * round-trip time. */
STB_API int stb_ping(stb_client_t *c, const void *payload, size_t len, uint64_t *rtt_us,
                     stb_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
