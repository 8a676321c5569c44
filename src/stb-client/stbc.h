/*
 * stbc: libstbclient internals shared with stbctl and stb-bench (linked
 * statically): the blocking request/answer exchange over one connection.
 */
#ifndef STB_STBC_H
#define STB_STBC_H

#include <openssl/ssl.h>
#include <signal.h>
#include <time.h>

#include "buf.h"
#include "proto.h"
#include "stb/stbclient.h"

struct stb_client {
	SSL_CTX *ctx;
	BIO_METHOD *wmeth; /* sockbio.c: sends without SIGPIPE */
	SSL *ssl;
	int fd;
	int timeout_ms;
	uint32_t max_frame;
	uint32_t next_id;
	buf_t rbuf; /* the last answer's frame */
	buf_t wbuf; /* the frame being sent: one TLS record, one write */
	buf_t qbuf; /* a request's TLVs, for calls made again and again (APP_CHECK) */
	stb_log_fn log;
	void *log_ctx;
	const stb_secret_store_t *secrets;
	void *secrets_ctx;
	/* flow A: the device this connection authenticated as (cert-proxyd);
	 * "" until then, cleared by stb_disconnect */
	char auth_device[STB_ID_MAX + 1];
	/* connected, and nothing read yet: a failure now is most likely the
	 * server refusing our certificate (ssl_io_failed) */
	int fresh;
	/* resumption: the last ticket and the host it is for; no_resume off */
	SSL_SESSION *session;
	char session_host[256];
	char connect_host[256]; /* the host of the connection being made */
	char session_name[128]; /* secret store name, "" none */
	int no_resume;
	int session_loaded; /* the secret store was asked once */
};

/* The handle forgets its session (a new identity or trust). */
void stbc_session_forget(stb_client_t *c);

/* sockbio.c: a BIO method whose writes use send(MSG_NOSIGNAL), and the
 * connection's BIOs (reads: OpenSSL's socket BIO) on ssl.  The fd stays
 * the caller's to close. */
BIO_METHOD *stbc_sockbio_method(void);
int stbc_sockbio_attach(SSL *ssl, BIO_METHOD *m, int fd);

/* A push that arrived while waiting for an answer: 0, or -1 (with err) to
 * give up the call. */
typedef int (*stbc_push_fn)(void *arg, const msg_t *m, stb_error_t *err);
/* stbc_call on a connection that also carries pushes: each push before the
 * answer goes to fn (NULL: dropped); answers to other requests are skipped.
 * Waits at most timeout_ms in all. */
int stbc_call_pushes(stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *m, int timeout_ms,
                     stbc_push_fn fn, void *arg, stb_error_t *err);

/* Sends (type, tlvs) and waits for its answer, validated into *rsp (valid
 * until the next call).  An ERROR answer returns -1 with its status and
 * text in err; rsp is still filled. */
int stbc_call(stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *rsp, stb_error_t *err);
/* Lower level, for control channels that also carry server pushes: send
 * one frame (a request with flags 0, or the answer to a push with
 * STB_FRAME_F_RESPONSE and the push's id), and read the next frame of any
 * kind, validated into *m (valid until the next read).  stbc_read returns
 * 0, 1 when nothing arrived within timeout_ms, or -1 (connection dropped). */
int stbc_send(stb_client_t *c, uint16_t type, uint8_t flags, uint32_t req_id, const buf_t *tlvs,
              stb_error_t *err);
int stbc_read(stb_client_t *c, int timeout_ms, msg_t *m, stb_error_t *err);
int stbc_fail(stb_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void stbc_log(stb_client_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Helpers shared with the peer channel (rdv.c, peer.c). */
const char *stbc_ssl_errstr(char *buf, size_t cap);
void stbc_deadline_in(struct timespec *d, int ms);
int64_t stbc_ms_left(const struct timespec *deadline);
/* Waits until fd is ready for what; 0, or -1 on deadline. */
int stbc_wait_fd(int fd, short what, const struct timespec *deadline);
/* A non-blocking TCP connection to host:port within the deadline. */
int stbc_tcp_connect(const char *host, const char *port, const struct timespec *dl, int *fd,
                     stb_error_t *err);
/* "host:port" or "[v6]:port": host copied into host (cap), *port points
 * into addr. */
int stbc_split_addr(const char *addr, char *host, size_t cap, const char **port, stb_error_t *err);
/* SIGPIPE blocked around writes (a library must not change dispositions). */
typedef struct stbc_sigpipe {
	sigset_t old;
	int was_pending;
} stbc_sigpipe_t;
void stbc_sigpipe_block(stbc_sigpipe_t *g);
void stbc_sigpipe_restore(stbc_sigpipe_t *g);

#endif
