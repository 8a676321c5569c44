/*
 * stbc: libstbclient internals shared with stbctl and stb-bench (linked
 * statically): the blocking request/answer exchange over one connection.
 */
#ifndef STB_STBC_H
#define STB_STBC_H

#include <openssl/ssl.h>

#include "buf.h"
#include "proto.h"
#include "stb/stbclient.h"

struct stb_client {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	int timeout_ms;
	uint32_t max_frame;
	uint32_t next_id;
	buf_t rbuf; /* the last answer's frame */
	stb_log_fn log;
	void *log_ctx;
	const stb_secret_store_t *secrets;
	void *secrets_ctx;
};

/* Sends (type, tlvs) and waits for its answer, validated into *rsp (valid
 * until the next call).  An ERROR answer returns -1 with its status and
 * text in err; rsp is still filled. */
int stbc_call(stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *rsp, stb_error_t *err);
int stbc_fail(stb_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void stbc_log(stb_client_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
