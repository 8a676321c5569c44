/*
 * connguard: what keeps a flood of connections from taking a daemon down,
 * one copy for the TLS server (listener.c, conn.c) and the HTTP listener
 * (httpd.c).
 *
 *  - Accept backoff: at the descriptor limit (EMFILE, ENFILE, ENOBUFS,
 *    ENOMEM) an armed listener would fire again at once and spin.  The
 *    guard disables it for a moment (100 ms, doubling to 1 s while the
 *    errors go on), uses a spare descriptor to accept and close the head of
 *    the queue (that client hears at once instead of hanging), and logs one
 *    line per interval with a count instead of one per error.
 *  - Sources: live connections per source address (IPv4, IPv6 by /64)
 *    with a cap; one mutex, taken at accept and at close only.
 *  - Memory: malloc_trim once a burst of connections has gone, so a flood
 *    of idle sockets does not leave the daemon at its high-water mark.
 */
#ifndef STB_CONNGUARD_H
#define STB_CONNGUARD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct event_base;
struct evconnlistener;
struct sockaddr;

#define CONNGUARD_PAUSE_MIN_MS  100
#define CONNGUARD_PAUSE_MAX_MS  1000
#define CONNGUARD_LOG_PERIOD_MS 10000
/* a burst smaller than this is not worth a trim */
#define CONNGUARD_TRIM_MIN 256

/* Accept backoff for one listener (on its loop). */
typedef struct connguard_accept connguard_accept_t;

/* Installs l's error callback; name is for the log line.  Free it before l. */
connguard_accept_t *connguard_accept_new(struct event_base *base, struct evconnlistener *l,
                                         const char *name, err_t *err);
void connguard_accept_free(connguard_accept_t *g);
/* Accept errors so far, and connections shed with the spare descriptor
 * (NULL-safe: 0). */
uint64_t connguard_accept_errors(const connguard_accept_t *g);
uint64_t connguard_accept_shed(const connguard_accept_t *g);

/* A source address as a key: family, then the address (IPv6: its /64). */
typedef struct connguard_key {
	uint8_t b[9];
} connguard_key_t;

/* sa's key; an address with no source to count (AF_UNIX, NULL) gets the
 * empty key, which the table never refuses. */
void connguard_key_of(const struct sockaddr *sa, connguard_key_t *k);
/* The peer of a connected socket. */
void connguard_key_of_fd(int fd, connguard_key_t *k);

/* Live connections per source, at most max_per_source each (0: no cap). */
typedef struct connguard_src connguard_src_t;

connguard_src_t *connguard_src_new(uint32_t max_per_source, err_t *err);
void connguard_src_free(connguard_src_t *t);
/* 0: counted (give it back with connguard_src_give); -1: the source is at
 * its cap (or out of memory), nothing counted. */
int connguard_src_take(connguard_src_t *t, const connguard_key_t *k);
void connguard_src_give(connguard_src_t *t, const connguard_key_t *k);
/* Live connections of k's source. */
uint32_t connguard_src_count(connguard_src_t *t, const connguard_key_t *k);

/* Memory give-back for one owner's connections, on its loop: once they
 * fell to half the high-water mark of a burst of at least
 * CONNGUARD_TRIM_MIN, a trim runs CONNGUARD_TRIM_DELAY_MS later (one for
 * the whole burst's close). */
#define CONNGUARD_TRIM_DELAY_MS 500
typedef struct connguard_trim {
	struct event *ev;
	uint32_t hiwat, n;
	uint64_t trims;
} connguard_trim_t;

int connguard_trim_init(connguard_trim_t *t, struct event_base *base, err_t *err);
void connguard_trim_fini(connguard_trim_t *t);
/* After a connection opened or closed (n: the owner's connections now). */
void connguard_trim_opened(connguard_trim_t *t, uint32_t n);
void connguard_trim_closed(connguard_trim_t *t, uint32_t n);

#endif
