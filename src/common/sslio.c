#include "sslio.h"

#include <event2/buffer.h>
#include <limits.h>
#include <openssl/err.h>

/* one SSL_read's room; a TLS record carries at most 16 KB */
#define SSLIO_READ_CHUNK 16384
/* one SSL_write: a record (partial writes are on) */
#define SSLIO_WRITE_MAX 16384

void
sslio_setup(SSL *ssl)
{
	/* idle streams give their record buffers back; partial writes from a
	 * buffer that may move between retries (the output grows) */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
	SSL_set_read_ahead(ssl, 1);
}

int
sslio_read(SSL *ssl, struct evbuffer *in, size_t cap, size_t bound, int *more, int *want_write)
{
	size_t got = 0;

	*more = 0;
	*want_write = 0;
	for (;;) {
		struct evbuffer_iovec v;
		int n;

		if (got >= cap || evbuffer_get_length(in) >= bound) {
			*more = SSL_has_pending(ssl);
			return SSLIO_OK;
		}
		if (evbuffer_reserve_space(in, SSLIO_READ_CHUNK, &v, 1) < 1)
			return SSLIO_ERROR;
		ERR_clear_error();
		n = SSL_read(ssl, v.iov_base, v.iov_len > INT_MAX ? INT_MAX : (int)v.iov_len);
		if (n > 0) {
			v.iov_len = (size_t)n;
			evbuffer_commit_space(in, &v, 1);
			got += (size_t)n;
			if (!SSL_has_pending(ssl))
				return SSLIO_OK;
			continue;
		}
		switch (SSL_get_error(ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return SSLIO_OK;
		case SSL_ERROR_WANT_WRITE:
			*want_write = 1;
			return SSLIO_OK;
		case SSL_ERROR_ZERO_RETURN:
			return SSLIO_EOF;
		case SSL_ERROR_SYSCALL:
			/* closed without close_notify: tolerated */
			return ERR_peek_error() == 0 ? SSLIO_EOF : SSLIO_ERROR;
		default:
			/* OpenSSL 3 reports an unexpected EOF so too: the peer is
			 * gone either way */
			if (ERR_GET_REASON(ERR_peek_error()) ==
			    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				ERR_clear_error();
				return SSLIO_EOF;
			}
			return SSLIO_ERROR;
		}
	}
}

int
sslio_write(SSL *ssl, struct evbuffer *out, int *blocked)
{
	size_t len;

	*blocked = 0;
	while ((len = evbuffer_get_length(out)) > 0) {
		size_t n = len > SSLIO_WRITE_MAX ? SSLIO_WRITE_MAX : len;
		unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)n);
		int k;

		if (p == NULL)
			return SSLIO_ERROR;
		ERR_clear_error();
		k = SSL_write(ssl, p, (int)n);
		if (k > 0) {
			evbuffer_drain(out, (size_t)k);
			continue;
		}
		switch (SSL_get_error(ssl, k)) {
		case SSL_ERROR_WANT_WRITE:
		case SSL_ERROR_WANT_READ: /* renegotiation is off: a key update */
			*blocked = 1;
			return SSLIO_OK;
		default:
			return SSLIO_ERROR;
		}
	}
	return SSLIO_OK;
}
