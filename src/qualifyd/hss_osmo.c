/*
 * hss_osmo: the osmo-hlr backend of hss.h.  qualifyd provisions each
 * subscriber it hands out into osmo-hlr through the VTY (plain TCP,
 * telnet-like): "enable", then
 *     subscriber imsi N create
 *     subscriber imsi N update aud3g milenage k K opc OPC
 * and deletes it again ("subscriber imsi N delete") when the update fails
 * after a create of ours, and on retirement.
 *
 * One VTY session, serialised by a mutex, reconnected after any error;
 * every connect, write and read has the configured deadline.  Callers are
 * workpool threads (hss.h), never an event loop.
 *
 * The answers are checked strictly: each command has its one success
 * text; anything else is an error carrying osmo-hlr's line, with K and
 * OPc cut out (the VTY echoes a wrong value back in its message).
 */
#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "hss.h"
#include "hss_osmo_vty.h"

struct hss_osmo {
	char host[HSS_ADDR_MAX];
	char port[8];
	int timeout_ms;
	pthread_mutex_t mu;
	int fd; /* -1: not connected */
	uint8_t in[HSS_OSMO_ANSWER_MAX];
	size_t inlen;
};

static int64_t
hss_osmo_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 0, or -1 with TIMEOUT. */
static int
hss_osmo_wait(int fd, short events, int64_t deadline, const char *what, err_t *err)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int64_t left = deadline - hss_osmo_now_ms();
		int rc;

		if (left <= 0)
			return err_set(err, STB_TIMEOUT, "osmo-hlr VTY: no %s in time", what);
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			return err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY: poll: %s",
			               strerror(errno));
	}
}

static void
hss_osmo_disconnect(hss_osmo_t *o)
{
	if (o->fd != -1)
		close(o->fd);
	o->fd = -1;
	OPENSSL_cleanse(o->in, sizeof(o->in));
	o->inlen = 0;
}

/* Reads up to the next prompt; *text gets the answer (see
 * hss_osmo_vty_answer).  The connection is dropped on any error. */
static int
hss_osmo_read(hss_osmo_t *o, int64_t deadline, char *text, size_t cap, err_t *err)
{
	for (;;) {
		size_t used = 0;
		int rc = hss_osmo_vty_answer(o->in, o->inlen, text, cap, &used);
		ssize_t n;

		if (rc == 1) {
			memmove(o->in, o->in + used, o->inlen - used);
			o->inlen -= used;
			return 0;
		}
		if (rc == -1 || o->inlen == sizeof(o->in)) {
			hss_osmo_disconnect(o);
			return err_set(err, STB_INTERNAL,
			               "osmo-hlr VTY: answer longer than %zu bytes", sizeof(o->in));
		}
		if (hss_osmo_wait(o->fd, POLLIN, deadline, "answer", err) != 0) {
			hss_osmo_disconnect(o);
			return -1;
		}
		n = recv(o->fd, o->in + o->inlen, sizeof(o->in) - o->inlen, 0);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			hss_osmo_disconnect(o);
			return err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY: connection lost");
		}
		o->inlen += (size_t)n;
	}
}

static int
hss_osmo_write(hss_osmo_t *o, const char *line, size_t len, int64_t deadline, err_t *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(o->fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (hss_osmo_wait(o->fd, POLLOUT, deadline, "room to send", err) != 0)
				goto fail;
			continue;
		}
		err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY: send: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	hss_osmo_disconnect(o);
	return -1;
}

/* One command line (no newline) and its answer text. */
static int
hss_osmo_cmd(hss_osmo_t *o, const char *cmd, char *text, size_t cap, err_t *err)
{
	char line[HSS_OSMO_CMD_MAX + 1];
	int64_t deadline = hss_osmo_now_ms() + o->timeout_ms;
	size_t n = strlen(cmd);
	int rc;

	if (n >= sizeof(line))
		return err_set(err, STB_INTERNAL, "osmo-hlr VTY: command too long");
	memcpy(line, cmd, n);
	line[n++] = '\n';
	rc = hss_osmo_write(o, line, n, deadline, err) == 0 &&
	             hss_osmo_read(o, deadline, text, cap, err) == 0
	         ? 0
	         : -1;
	OPENSSL_cleanse(line, sizeof(line));
	return rc;
}

static int
hss_osmo_connect(hss_osmo_t *o, err_t *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int64_t deadline = hss_osmo_now_ms() + o->timeout_ms;
	char text[HSS_OSMO_ANSWER_MAX];
	int rc, fd = -1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if ((rc = getaddrinfo(o->host, o->port, &hints, &res)) != 0)
		return err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY %s: %s", o->host,
		               gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            res->ai_protocol);
	if (fd == -1) {
		freeaddrinfo(res);
		return err_set(err, STB_INTERNAL, "socket: %s", strerror(errno));
	}
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc == -1 && errno != EINPROGRESS) {
		err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY %s:%s: %s", o->host, o->port,
		        strerror(errno));
		close(fd);
		return -1;
	}
	if (rc == -1 && (hss_osmo_wait(fd, POLLOUT, deadline, "connection", err) != 0 ||
	                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) {
		if (soerr != 0)
			err_set(err, STB_UNAVAILABLE, "osmo-hlr VTY %s:%s: %s", o->host, o->port,
			        strerror(soerr));
		close(fd);
		return -1;
	}
	o->fd = fd;
	o->inlen = 0;
	/* the banner up to the first prompt, then the enable node */
	if (hss_osmo_read(o, deadline, text, sizeof(text), err) != 0 ||
	    hss_osmo_cmd(o, "enable", text, sizeof(text), err) != 0)
		return -1;
	if (hss_osmo_vty_check(HSS_OSMO_ENABLE, "enable", text, NULL, err) != 0) {
		hss_osmo_disconnect(o);
		return -1;
	}
	return 0;
}

/* Runs one command in the session (connecting first when needed) and
 * classifies the answer; the result of hss_osmo_vty_check, or -1. */
static int
hss_osmo_run(hss_osmo_t *o, int kind, const char *cmd, const hss_cred_t *cred, err_t *err)
{
	char text[HSS_OSMO_ANSWER_MAX];
	int rc;

	if (o->fd == -1 && hss_osmo_connect(o, err) != 0)
		return -1;
	if (hss_osmo_cmd(o, cmd, text, sizeof(text), err) != 0)
		return -1;
	rc = hss_osmo_vty_check(kind, cmd, text, cred, err);
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

int
hss_osmo_open(const hss_conf_t *conf, hss_osmo_t **out, err_t *err)
{
	hss_osmo_t *o;

	*out = NULL;
	if (conf->osmo_timeout_ms < 100 || conf->osmo_timeout_ms > 60000)
		return err_set(err, STB_BAD_REQUEST, "hss.osmo_timeout_ms: 100 to 60000");
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (hss_osmo_vty_split_addr(conf->osmo_vty, o->host, sizeof(o->host), o->port,
	                            sizeof(o->port)) != 0) {
		free(o);
		return err_set(err, STB_BAD_REQUEST,
		               "hss.osmo_vty: host:port (a port from 1 to 65535), not \"%.64s\"",
		               conf->osmo_vty);
	}
	o->timeout_ms = conf->osmo_timeout_ms;
	o->fd = -1;
	pthread_mutex_init(&o->mu, NULL);
	*out = o;
	return 0;
}

void
hss_osmo_close(hss_osmo_t *o)
{
	if (o == NULL)
		return;
	hss_osmo_disconnect(o);
	pthread_mutex_destroy(&o->mu);
	OPENSSL_cleanse(o, sizeof(*o));
	free(o);
}

int
hss_osmo_provision(hss_osmo_t *o, const hss_cred_t *cred, err_t *err)
{
	char cmd[HSS_OSMO_CMD_MAX], k[2 * QUALIFY_KEY_LEN + 1], opc[2 * QUALIFY_KEY_LEN + 1];
	int created, rc = -1;
	err_t undo;

	if (!qualify_imsi_valid(cred->imsi, strlen(cred->imsi)))
		return err_set(err, STB_BAD_REQUEST, "not an IMSI");
	pthread_mutex_lock(&o->mu);
	snprintf(cmd, sizeof(cmd), "subscriber imsi %s create", cred->imsi);
	created = hss_osmo_run(o, HSS_OSMO_CREATE, cmd, NULL, err);
	if (created < 0)
		goto out;
	hex_encode(cred->k, QUALIFY_KEY_LEN, k);
	hex_encode(cred->opc, QUALIFY_KEY_LEN, opc);
	snprintf(cmd, sizeof(cmd), "subscriber imsi %s update aud3g milenage k %s opc %s",
	         cred->imsi, k, opc);
	rc = hss_osmo_run(o, HSS_OSMO_UPDATE, cmd, cred, err);
	OPENSSL_cleanse(cmd, sizeof(cmd));
	if (rc != 0 && created == 1) {
		/* ours and half made: leave no subscriber without our keys */
		snprintf(cmd, sizeof(cmd), "subscriber imsi %s delete", cred->imsi);
		if (hss_osmo_run(o, HSS_OSMO_DELETE, cmd, NULL, &undo) < 0) {
			char first[ERR_MSG_MAX];

			memcpy(first, err->msg, sizeof(first));
			err_set(err, err->status,
			        "%.120s; and the subscriber we created stays: %.100s", first,
			        undo.msg);
		}
	}
	rc = rc == 0 ? 0 : -1;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(opc, sizeof(opc));
	OPENSSL_cleanse(cmd, sizeof(cmd));
	pthread_mutex_unlock(&o->mu);
	return rc;
}

int
hss_osmo_remove(hss_osmo_t *o, const char *imsi, err_t *err)
{
	char cmd[HSS_OSMO_CMD_MAX];
	int rc;

	if (!qualify_imsi_valid(imsi, strlen(imsi)))
		return err_set(err, STB_BAD_REQUEST, "not an IMSI");
	snprintf(cmd, sizeof(cmd), "subscriber imsi %s delete", imsi);
	pthread_mutex_lock(&o->mu);
	rc = hss_osmo_run(o, HSS_OSMO_DELETE, cmd, NULL, err) < 0 ? -1 : 0;
	pthread_mutex_unlock(&o->mu);
	return rc;
}
