/*
 * srvint: what the server's own files share; daemons use server.h.
 *
 *   listener.c  binding, accepting, worker threads, round-robin, drain
 *   conn.c      a connection's I/O, deadlines, pause and resume, dispatch
 *   reply.c     answers and pushes (each in its own buffer)
 *   server.c    stats, metrics, addresses
 *
 * A primary srv_t (srv_new) owns the worker loops; listeners attached to it
 * (srv_attach) share them, and every connection keeps the listener it came
 * in on (its handlers, limits and accepted roles).
 */
#ifndef STB_SRVINT_H
#define STB_SRVINT_H

#include <pthread.h>

#include "server.h"

struct bufferevent;
struct evconnlistener;

#define SRV_RSP_MAX         (1024 * 1024)
#define SRV_LINGER_MS       1000
#define SRV_ATTACH_MAX      8
#define SRV_STATUS_SLOT(st) ((st) >= 0 && (st) < STATUS_COUNT ? (st) : STATUS_IX_INTERNAL)

typedef struct srv_worker {
	srv_t *srv; /* the primary */
	int id;
	pthread_t thread;
	struct event_base *base;
	mbox_t *mb;
	buf_t reply;       /* answers are built here */
	buf_t push;        /* pushes: one sent between reply_begin and reply_end
	                      leaves the answer alone */
	buf_t error;       /* error answers, for the same reason */
	srv_conn_t *conns; /* live connections, for drain */
	uint32_t nconns;
	int draining;
	/* counters, summed by srv_stats_get from other threads */
	uint64_t requests, errors, unknown_type;
	uint64_t count[MSG_IX_COUNT][STATUS_COUNT];
	hist_t latency[MSG_IX_COUNT];
} srv_worker_t;

struct srv_conn {
	srv_worker_t *w;
	srv_t *srv;              /* the listener it came in on */
	struct bufferevent *bev; /* NULL once closed */
	struct event *deadline;  /* handshake, frame and linger deadline */
	struct event *resume;    /* reading resumes from the loop, never inside a reply */
	uint32_t roles;
	uint32_t inflight;
	uint32_t next_push_id;
	int handshaken;
	int announced; /* conn_fn was told it opened */
	int paused;    /* reading stopped: too many in flight or output backlog */
	int closing;   /* flush output, then close */
	int refs;
	int fd;
	void *data;
	char peer[64];
	char subject[96];
	srv_conn_t *prev, *next;
};

struct srv {
	srv_conf_t conf;
	char *listen;
	char *name;
	char bound[80];
	tls_holder_t *tls;
	void *ctx;
	srv_handler_fn handlers[MSG_IX_COUNT];
	srv_push_rsp_fn push_rsp;
	srv_conn_fn conn_fn;
	struct evconnlistener *listener;
	srv_t *primary; /* itself, or the listener whose workers it shares */
	srv_t *attached[SRV_ATTACH_MAX];
	int nattached;
	srv_worker_t *workers; /* the primary's */
	int nworkers;
	unsigned rr;
	uint32_t nconns; /* atomic; on the primary: every listener's */
	uint32_t lconns; /* atomic; this listener's */
	uint64_t accepted, rejected;
};

/* server.c: fd's peer address ("ip:port"), or its own ("ip:port",
 * "[ip6]:port") */
void srv_addr_str(int fd, int peer, char *out, size_t cap);

/* conn.c */
void conn_take(void *arg); /* on the worker: a socket from the listener */
void conn_close(srv_conn_t *c);
void conn_close_after_flush(srv_conn_t *c);
void conn_pause(srv_conn_t *c, int pause);
void conn_send(srv_conn_t *c, const buf_t *b);
uint32_t conn_out_high(const srv_conn_t *c);

/* reply.c */
void reply_error(srv_conn_t *c, uint16_t type, uint32_t req_id, int status, const char *text);
void reply_done(srv_req_t *r);

#endif
