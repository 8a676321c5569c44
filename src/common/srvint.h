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

#include "connguard.h"
#include "server.h"

struct evbuffer;
struct evconnlistener;

#define SRV_RSP_MAX    (1024 * 1024)
#define SRV_LINGER_MS  1000
#define SRV_ATTACH_MAX 8
/* accepted beyond max_connections while the workers make room (each
 * evicts a connection that has not finished its handshake, or closes the
 * new one); past this the listener refuses at once */
#define SRV_ACCEPT_SLACK    64
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
	/* connections not yet through their handshake, oldest first: the
	 * ones to evict when the daemon is full */
	srv_conn_t *pend_head, *pend_tail;
	connguard_trim_t trim;
	int draining;
	/* counters, summed by srv_stats_get from other threads */
	uint64_t requests, errors, unknown_type;
	uint64_t count[MSG_IX_COUNT][STATUS_COUNT];
	hist_t latency[MSG_IX_COUNT];
} srv_worker_t;

struct srv_conn {
	srv_worker_t *w;
	srv_t *srv;             /* the listener it came in on */
	SSL *ssl;               /* NULL before the first byte and once closed */
	struct evbuffer *in;    /* read, not yet framed */
	struct evbuffer *out;   /* answers and pushes not yet written */
	struct event *wait;     /* before any byte: the raw socket, with the handshake
	                           deadline; the TLS state is allocated when it fires */
	struct event *rev;      /* readable (persistent; idle timeout once handshaken) */
	struct event *wev;      /* writable: added only while OpenSSL waits to write */
	struct event *flush;    /* output queued outside a read batch: written from the loop */
	struct event *deadline; /* handshake, frame and linger deadline */
	struct event *resume;   /* reading resumes from the loop, never inside a reply */
	uint32_t roles;
	uint32_t inflight;
	uint32_t next_push_id;
	int handshaken;
	int announced;        /* conn_fn was told it opened */
	int paused;           /* reading stopped: too many in flight or output backlog */
	int closing;          /* flush output, then close */
	int batch;            /* inside a read batch: its end writes what it queued */
	int reading;          /* rev is added */
	int writing;          /* wev is added */
	int write_blocked;    /* SSL_write said WANT_WRITE: retried on wev only */
	int read_wants_write; /* SSL_read or the handshake said WANT_WRITE */
	int refs;
	int live;    /* linked on its worker; conn_close unlinks it */
	int pending; /* on the worker's pending list */
	int fd;
	uint64_t t_accept; /* now_ns() */
	connguard_key_t src;
	void *data;
	char peer[64];
	char subject[96];
	srv_conn_t *prev, *next;
	srv_conn_t *pprev, *pnext; /* pending list */
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
	srv_tls_refused_fn tls_refused_fn;
	struct evconnlistener *listener;
	connguard_accept_t *guard; /* backoff at the descriptor limit */
	connguard_src_t *src;      /* the primary's: connections per source */
	srv_t *primary;            /* itself, or the listener whose workers it shares */
	srv_t *attached[SRV_ATTACH_MAX];
	int nattached;
	srv_worker_t *workers; /* the primary's */
	int nworkers;
	unsigned rr;
	uint32_t nconns; /* atomic; on the primary: every listener's */
	uint32_t lconns; /* atomic; this listener's */
	uint64_t accepted, rejected;
	uint64_t refused_source; /* over max_per_source */
	uint64_t evicted;        /* handshakes dropped to make room */
};

/* server.c: fd's peer address ("ip:port"), or its own ("ip:port",
 * "[ip6]:port") */
void srv_addr_str(int fd, int peer, char *out, size_t cap);
/* The same from an address in hand (accept's): no getpeername. */
void srv_sockaddr_str(const struct sockaddr *sa, int peer, char *out, size_t cap);

/* conn.c */
void conn_take(void *arg); /* on the worker: a socket from the listener */
void conn_close(srv_conn_t *c);
/* The worker's count of connections with this one gone. */
void conn_count_gone(srv_worker_t *w, srv_t *s, const connguard_key_t *src);
void conn_close_after_flush(srv_conn_t *c);
void conn_pause(srv_conn_t *c, int pause);
void conn_send(srv_conn_t *c, const buf_t *b);
uint32_t conn_out_high(const srv_conn_t *c);
/* Bytes queued for the peer and not yet written. */
size_t conn_out_len(const srv_conn_t *c);

/* reply.c */
void reply_error(srv_conn_t *c, uint16_t type, uint32_t req_id, int status, const char *text);
void reply_done(srv_req_t *r);

#endif
