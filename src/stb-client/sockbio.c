/*
 * sockbio: the sending half of a client connection.  A socket BIO writes
 * with write(2), so a server that went away raises SIGPIPE in the host
 * process unless the signal is masked around every send (two to four
 * system calls each).  This BIO sends with MSG_NOSIGNAL instead: EPIPE,
 * no signal, no mask.  Reads keep OpenSSL's socket BIO.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stbc.h"

static int
sockbio_write(BIO *b, const char *buf, int len)
{
	int fd = (int)(intptr_t)BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	do
		n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_write(b);
	return -1;
}

static long
sockbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is buffered here */
}

static int
sockbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

BIO_METHOD *
stbc_sockbio_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "stb send");

	if (m == NULL || BIO_meth_set_write(m, sockbio_write) != 1 ||
	    BIO_meth_set_ctrl(m, sockbio_ctrl) != 1 ||
	    BIO_meth_set_create(m, sockbio_create) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

int
stbc_sockbio_attach(SSL *ssl, BIO_METHOD *m, int fd)
{
	BIO *r = BIO_new_socket(fd, BIO_NOCLOSE);
	BIO *w = r != NULL ? BIO_new(m) : NULL;

	if (w == NULL) {
		BIO_free(r);
		return -1;
	}
	BIO_set_data(w, (void *)(intptr_t)fd);
	SSL_set_bio(ssl, r, w); /* takes both */
	return 0;
}
