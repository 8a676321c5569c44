/*
 * server: the multi-loop TLS server every daemon runs.  The main loop
 * accepts and hands sockets out round-robin to N worker loops, each in its
 * own thread; a connection lives on one worker for its whole life.  Frames
 * are checked (frame_decode), validated against the registry (msg_parse),
 * role-checked, and dispatched through a table indexed by message.
 *
 * A handler answers exactly once: at once, or later on the same loop after
 * srv_req_defer().  Answers are built in the worker's reply buffer:
 *
 *	buf_t *b = srv_reply_begin(r);
 *	tlv_put_u64(b, STB_TLV_AUDIT_SEQ, seq);
 *	srv_reply_end(r);
 *
 * Pushes and error answers have buffers of their own, so srv_conn_push()
 * or srv_reply_err() of another request between begin and end leaves the
 * answer being built alone (one answer is built at a time per loop).  An
 * answer never runs the next request's handler inside its own stack: when
 * it lets a paused connection read again, the read is scheduled on the loop.
 *
 * Several listeners (each its own address, TLS context, handlers, limits
 * and accepted roles) can share one set of workers: srv_attach() them to
 * the srv_new() one, which then drains, counts and frees them all.
 * (srvint.h says which file does what.)
 */
#ifndef STB_SERVER_H
#define STB_SERVER_H

#include <event2/event.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "mbox.h"
#include "metrics.h"
#include "proto.h"
#include "tls.h"

typedef struct srv srv_t;
typedef struct srv_conn srv_conn_t;
typedef struct srv_req srv_req_t;

typedef struct srv_conf {
	const char *listen; /* "host:port", "[v6]:port" */
	int workers;        /* 0: number of cores */
	uint32_t max_frame;
	uint32_t max_inflight; /* per connection; reading pauses beyond */
	uint32_t max_connections;
	int handshake_timeout_ms; /* from accept, the TLS handshake must finish in this */
	int idle_timeout_ms;      /* no bytes either way for this long */
	int frame_timeout_ms;     /* a started frame must complete in this */
	const char *name;         /* for logs and metrics; NULL: "default" */
	/* only peers holding one of these roles are served; the others' requests
	 * are answered FORBIDDEN (so a client learns why, which a refused TLS 1.3
	 * handshake would not tell it) and srv_on_conn never hears of them (0:
	 * every role) */
	uint32_t accept_roles;
	/* connections from one source address (IPv6: one /64) at once, over
	 * every listener of the primary (0: no cap; an attached listener's is
	 * the primary's) */
	uint32_t max_per_source;
} srv_conf_t;

struct srv_req {
	srv_conn_t *conn;
	uint16_t type;
	int midx;
	uint32_t req_id;
	uint32_t roles; /* the peer's roles */
	uint64_t t0;    /* arrival, now_ns() */
	int heap;       /* deferred copy */
	int answered;
};

typedef void (*srv_handler_fn)(srv_req_t *r, const msg_t *m, void *ctx);
/* A peer's answer to one of our pushes. */
typedef void (*srv_push_rsp_fn)(srv_conn_t *c, const msg_t *m, void *ctx);
/* Connection opened (after handshake) or closed; for flows that track
 * peers. */
typedef void (*srv_conn_fn)(srv_conn_t *c, int open, void *ctx);

/* A TLS handshake failed because the client's certificate was refused
 * (reason and fingerprint from tls_refused_reason, or "no_certificate"). */
typedef void (*srv_tls_refused_fn)(srv_conn_t *c, const char *reason, const char *fingerprint,
                                   void *ctx);

srv_t *srv_new(const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err);
/* Another listener on primary's workers (conf's workers and max_connections
 * are the primary's: the limit counts every listener).  Start it after the
 * primary; srv_drain and srv_free of the primary do it too. */
srv_t *srv_attach(srv_t *primary, const srv_conf_t *conf, tls_holder_t *tls, void *ctx, err_t *err);
void srv_handle(srv_t *s, int midx, srv_handler_fn fn);
void srv_on_push_response(srv_t *s, srv_push_rsp_fn fn);
void srv_on_conn(srv_t *s, srv_conn_fn fn);
void srv_on_tls_refused(srv_t *s, srv_tls_refused_fn fn);
/* Gives dst src's handlers for the messages serve[MSG_IX_] allows (NULL:
 * all) and src's callbacks, where dst has none of its own. */
void srv_inherit(srv_t *dst, const srv_t *src, const uint8_t *serve);
/* Binds, starts the workers and accepts on main_base. */
int srv_start(srv_t *s, struct event_base *main_base, err_t *err);
/* Stops accepting; live connections finish their in-flight requests and
 * close.  Returns once every connection is gone or timeout_ms passed. */
void srv_drain(srv_t *s, int timeout_ms);
/* Stops and joins the workers (after srv_drain), frees everything, the
 * attached listeners too (srv_free of an attached one does nothing). */
void srv_free(srv_t *s);
int srv_nworkers(const srv_t *s);
/* Address actually bound (port 0 resolved), "host:port". */
const char *srv_bound(const srv_t *s);
const char *srv_name(const srv_t *s);

/* "IP:port" or "[IPv6]:port" (numeric); port 0 lets the kernel choose. */
struct sockaddr_storage;
int srv_parse_addr(const char *spec, struct sockaddr_storage *ss, int *sl);

/* Answering. */
buf_t *srv_reply_begin(srv_req_t *r);
void srv_reply_end(srv_req_t *r);
void srv_reply_ok(srv_req_t *r);
void srv_reply_err(srv_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void srv_reply_errt(srv_req_t *r, const err_t *err);
/* An empty OK when err is STB_OK, else err: the answer to a store write. */
void srv_reply_result(srv_req_t *r, const err_t *err);
/* Copy of r that outlives the handler; answer it later on this loop. */
srv_req_t *srv_req_defer(srv_req_t *r);
/* The loop's mailbox, for completions from other threads. */
mbox_t *srv_req_mbox(srv_req_t *r);

/* Connections. */
uint32_t srv_conn_roles(const srv_conn_t *c);
const char *srv_conn_peer(const srv_conn_t *c);    /* "ip:port" */
const char *srv_conn_subject(const srv_conn_t *c); /* peer cert CN, or "-" */
/* The peer's certificate and its verified chain (leaf first, the anchor
 * last), borrowed: valid on the connection's loop while it is open; NULL
 * for an anonymous peer or one whose chain did not verify.  For flows that
 * need more of a certificate than its roles (qualifyd's device checks). */
struct x509_st;
struct stack_st_X509;
struct x509_st *srv_conn_peer_cert(const srv_conn_t *c);
struct stack_st_X509 *srv_conn_peer_chain(const srv_conn_t *c);
void srv_conn_set_data(srv_conn_t *c, void *data);
void *srv_conn_data(const srv_conn_t *c);
/* The listener the connection came in on. */
srv_t *srv_conn_listener(const srv_conn_t *c);
/* Server push (PUSH flag, our request id); -1 when closed or too large.
 * Must run on the connection's loop. */
int srv_conn_push(srv_conn_t *c, uint16_t type, const buf_t *tlvs, uint32_t *req_id);
mbox_t *srv_conn_mbox(srv_conn_t *c);
/* The connection's loop, for timers that must run there. */
struct event_base *srv_conn_base(srv_conn_t *c);
void srv_conn_ref(srv_conn_t *c);
void srv_conn_unref(srv_conn_t *c);
int srv_conn_is_open(const srv_conn_t *c);
/* Closes at once, dropping unsent output (on the connection's loop). */
void srv_conn_close(srv_conn_t *c);

/* Observability. */
typedef struct srv_stats {
	uint32_t connections;
	uint64_t accepted;
	uint64_t rejected;       /* over max_connections */
	uint64_t refused_source; /* over max_per_source */
	uint64_t evicted;        /* unfinished handshakes closed to make room */
	uint64_t requests;
	uint64_t errors;
	uint64_t count[MSG_IX_COUNT][STATUS_COUNT];
	uint64_t unknown_type;
	hist_t latency[MSG_IX_COUNT];
} srv_stats_t;

/* Sums every worker's counters (allocated: srv_stats_t is large); the
 * primary's connection counts are every listener's, an attached one's its
 * own.  Metrics: the totals, and stbcred_listener_* per listener. */
srv_stats_t *srv_stats_get(srv_t *s);
int srv_write_metrics(srv_t *s, buf_t *out);

#endif
