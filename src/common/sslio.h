/*
 * sslio: a TLS stream's reads and writes straight on a nonblocking socket,
 * for the server's connections (conn.c) and the daemons' peers (peer.c).
 * With read-ahead one recv takes every record the socket holds; when
 * OpenSSL keeps nothing back the socket is drained as far as we know and
 * the loop's level-triggered readable event says when more comes, so a
 * batch of frames costs one read.  Output goes out one SSL_write per
 * record's worth (partial writes, from a buffer that may move).
 */
#ifndef STB_SSLIO_H
#define STB_SSLIO_H

#include <openssl/ssl.h>
#include <stddef.h>

struct evbuffer;

enum {
	SSLIO_ERROR = -1, /* TLS or socket error: the error queue says why */
	SSLIO_OK = 0,
	SSLIO_EOF = 1, /* the peer closed (close_notify or not: tolerated) */
};

/* Modes and options every stream of ours has (set on the SSL, not its
 * context). */
void sslio_setup(SSL *ssl);
/* Reads into `in`: at most about `cap` bytes, and none while `in` holds
 * `bound` or more.  *more: OpenSSL still holds bytes no readable event will
 * announce (read again from the loop); *want_write: OpenSSL waits for the
 * socket to take bytes before it can read. */
int sslio_read(SSL *ssl, struct evbuffer *in, size_t cap, size_t bound, int *more, int *want_write);
/* Writes `out` until it is empty (*blocked 0) or the socket is full
 * (*blocked 1: call again, with the same bytes at the front, once it is
 * writable). */
int sslio_write(SSL *ssl, struct evbuffer *out, int *blocked);

#endif
