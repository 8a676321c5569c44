/*
 * rdv: `stb-bench rdv`.  Many simulated devices hold rendezvousd control
 * channels (TLS, REGISTER, then answering the server's heartbeat and offer
 * pushes) while some of them, the callers, ask for sessions with random
 * other devices as fast as the answers come back.
 *
 * Phases, each finished by every thread before main starts the next:
 *   provision  one admin connection per thread pipelines RDV_PROVISION
 *              for the thread's slice of device IDs, keeping each one's
 *              enrolment code;
 *   register   each device connects and REGISTERs (a window at a time),
 *              with its code (needed the first time, ignored after);
 *   hold       every control channel is open: main reads the server's
 *              resident memory (--server-pid);
 *   grant      callers loop CONNECT_REQ -> answer; latency is from the
 *              request's send to its answer.
 * The server heartbeats every channel and pushes an offer to each target;
 * every device answers those pushes in every phase.  The server's
 * CONNECT_REQ limits (connect.*) apply: run it with them raised and a short
 * session_ttl_s, or the grant phase measures refusals.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "bench.h"
#include "bytes.h"
#include "frame.h"
#include "msgenc.h"
#include "stb/stbproto.h"
#include "tlv.h"

#define RDV_NEV            512
#define RDV_RBUF           4096 /* offers and answers are a few hundred bytes */
#define RDV_WBUF_MAX       (1u << 20)
#define RDV_PROV_DEPTH     64 /* provision requests in flight per thread */
#define RDV_REG_WINDOW     48 /* devices connecting or registering per thread */
#define BENCH_RDV_PASSWORD "stb-bench-password"
#define RDV_ID_MAX         64

enum { P_PROVISION, P_REGISTER, P_HOLD, P_GRANT, P_STOP };
enum { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_DEAD };

typedef struct rconn {
	int fd;
	uint8_t state;
	uint8_t admin;
	uint8_t registered;
	uint8_t wblocked;
	uint32_t ev;
	SSL *ssl;
	int dev;          /* device index (global) */
	uint32_t next_id; /* our request ids */
	char enrol[36];   /* the enrolment code from provisioning */
	uint32_t want;    /* the outstanding CONNECT_REQ / REGISTER, 0 = none */
	uint64_t t_sent;  /* ns: want was sent */
	buf_t out;
	size_t rlen;
	uint8_t *rbuf;
} rconn_t;

typedef struct rthread {
	const bench_opts_t *o;
	bench_run_t *run;
	SSL_CTX *adm_ctx;
	int idx, lo, hi; /* devices [lo, hi) */
	int epfd;
	rconn_t *devs;
	rconn_t admin;
	int next_prov, prov_inflight, prov_left;
	int next_reg, reg_window, reg_left;
	int ncallers;
	uint64_t now;
	uint32_t rng;
	pthread_t tid;
	bench_stats_t st; /* done = grants; failures = devices that never registered */
} rthread_t;

static _Atomic int rdv_phase;
static _Atomic int rdv_threads_idle; /* threads done with the current phase */
static int rdv_ndev;
static char rdv_prefix[32];

static void __attribute__((format(printf, 2, 3))) rt_note(rthread_t *t, const char *fmt, ...)
{
	va_list ap;

	if (t->st.first_err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(t->st.first_err, sizeof(t->st.first_err), fmt, ap);
	va_end(ap);
}

static void
dev_id(int i, char *out, size_t cap)
{
	snprintf(out, cap, "%s%06d", rdv_prefix, i);
}

static void
rc_events(rthread_t *t, rconn_t *c, uint32_t ev)
{
	struct epoll_event ee = {.events = ev, .data.ptr = c};

	if (c->ev == ev)
		return;
	if (epoll_ctl(t->epfd, c->ev == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ee) == -1)
		rt_note(t, "epoll_ctl: %s", strerror(errno));
	c->ev = ev;
}

static void
rc_close(rconn_t *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd != -1)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->ev = 0;
	c->rlen = 0;
	c->want = 0;
	c->wblocked = 0;
	buf_reset(&c->out);
	c->state = S_DEAD;
}

static void
rc_fail(rthread_t *t, rconn_t *c, const char *why)
{
	unsigned long e = ERR_get_error();

	if (e != 0)
		rt_note(t, "%s %d: %s: %s", c->admin ? "admin" : "device", c->dev, why,
		        ERR_reason_error_string(e));
	else
		rt_note(t, "%s %d: %s", c->admin ? "admin" : "device", c->dev, why);
	ERR_clear_error();
	if (c->admin) {
		t->prov_left = 0;
		t->st.failures++;
	} else if (!c->registered) {
		t->reg_left--;
		t->reg_window--;
		t->st.failures++;
	} else
		t->st.lost++;
	rc_close(c);
}

/* Appends one frame to the connection's output. */
static int
rc_frame(rconn_t *c, uint16_t type, uint8_t flags, uint32_t id, const buf_t *tlvs)
{
	size_t start;

	if (frame_begin(&c->out, &start) == -1 ||
	    (tlvs != NULL && buf_append(&c->out, tlvs->data, tlvs->len) == -1) ||
	    frame_end(&c->out, start, type, flags, id) == -1)
		return -1;
	return 0;
}

/* Writes what is queued.  With SSL_MODE_ENABLE_PARTIAL_WRITE and a moving
 * buffer, a retry may pass more bytes than the blocked call. */
static int
rc_flush(rthread_t *t, rconn_t *c)
{
	while (c->out.len > 0) {
		int rc = SSL_write(c->ssl, c->out.data, (int)c->out.len);

		if (rc > 0) {
			memmove(c->out.data, c->out.data + rc, c->out.len - (size_t)rc);
			c->out.len -= (size_t)rc;
			continue;
		}
		switch (SSL_get_error(c->ssl, rc)) {
		case SSL_ERROR_WANT_WRITE:
			c->wblocked = 1;
			rc_events(t, c, EPOLLIN | EPOLLOUT);
			return 0;
		case SSL_ERROR_WANT_READ:
			c->wblocked = 1;
			return 0;
		}
		rc_fail(t, c, "SSL_write");
		return -1;
	}
	c->wblocked = 0;
	if (c->ev & EPOLLOUT)
		rc_events(t, c, EPOLLIN);
	return 0;
}

static int
rc_open(rthread_t *t, rconn_t *c, SSL_CTX *ctx)
{
	const bench_run_t *run = t->run;
	int one = 1;

	c->fd = socket(run->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		rt_note(t, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		rt_note(t, "SSL_new failed");
		return -1;
	}
	if (!run->host_is_ip)
		SSL_set_tlsext_host_name(c->ssl, run->host);
	c->next_id = 1;
	c->state = S_CONNECTING;
	if (connect(c->fd, (const struct sockaddr *)&run->sa, run->salen) == -1 &&
	    errno != EINPROGRESS) {
		rt_note(t, "connect %s: %s", t->o->addr, strerror(errno));
		return -1;
	}
	rc_events(t, c, EPOLLOUT);
	return 0;
}

/* ---- the requests ---- */

static void
adm_fill(rthread_t *t)
{
	rconn_t *c = &t->admin;
	char id[RDV_ID_MAX];
	buf_t b;

	buf_init(&b, 256);
	while (t->prov_inflight < RDV_PROV_DEPTH && t->next_prov < t->hi) {
		dev_id(t->next_prov++, id, sizeof(id));
		struct msgreq_RDV_PROVISION q = {.RDV_DEVICE_ID = MV_STR(id)};
		err_t e;

		buf_reset(&b);
		if (msgenc_RDV_PROVISION(&b, &q, &e) == -1) {
			rt_note(t, "cannot build PROVISION");
			break;
		}
		if (rc_frame(c, STB_MSG_RDV_PROVISION, 0, c->next_id++, &b) == -1)
			break;
		t->prov_inflight++;
	}
	buf_free(&b);
	rc_flush(t, c);
}

static void
dev_register(rthread_t *t, rconn_t *c)
{
	char id[RDV_ID_MAX], ep[32];
	buf_t b;

	dev_id(c->dev, id, sizeof(id));
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", 20000 + c->dev % 40000);
	struct msgreq_RDV_REGISTER q = {.RDV_DEVICE_ID = MV_STR(id),
	                                .RDV_USERNAME = MV_STR(id),
	                                .RDV_PASSWORD = MV_STR(BENCH_RDV_PASSWORD),
	                                .RDV_ENDPOINT = MV_STR(ep)};
	err_t e;

	if (c->enrol[0] != '\0')
		q.RDV_ENROL_CODE = MV_STR(c->enrol);
	buf_init(&b, 512);
	c->want = c->next_id++;
	if (msgenc_RDV_REGISTER(&b, &q, &e) == -1 ||
	    rc_frame(c, STB_MSG_RDV_REGISTER, 0, c->want, &b) == -1)
		rt_note(t, "cannot build REGISTER");
	buf_free(&b);
	rc_flush(t, c);
}

static uint32_t
rt_rand(rthread_t *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 17;
	t->rng ^= t->rng << 5;
	return t->rng;
}

static void
dev_connect_req(rthread_t *t, rconn_t *c)
{
	char id[RDV_ID_MAX];
	int target;
	buf_t b;

	do
		target = (int)(rt_rand(t) % (uint32_t)rdv_ndev);
	while (target == c->dev && rdv_ndev > 1);
	dev_id(target, id, sizeof(id));
	struct msgreq_RDV_CONNECT_REQ q = {.RDV_TARGET_ID = MV_STR(id)};
	err_t e;

	buf_init(&b, 256);
	c->want = c->next_id++;
	c->t_sent = bench_now();
	if (msgenc_RDV_CONNECT_REQ(&b, &q, &e) == -1 ||
	    rc_frame(c, STB_MSG_RDV_CONNECT_REQ, 0, c->want, &b) == -1)
		rt_note(t, "cannot build CONNECT_REQ");
	buf_free(&b);
	rc_flush(t, c);
}

static int
rt_measuring(const rthread_t *t)
{
	return t->now >= t->run->t_warm && t->now < t->run->t_stop;
}

static void
rt_error_rsp(rthread_t *t, const char *what, const uint8_t *body, uint32_t len)
{
	char why[256];

	bench_error_rsp(body, len, why, sizeof(why));
	rt_note(t, "%s answered %s", what, why);
}

/* Provisioning requests go out in device order with ids from 1: the
 * answer to id n is for device lo + n - 1. */
static void
adm_keep_code(rthread_t *t, const frame_hdr_t *h, const uint8_t *body)
{
	int64_t dev = (int64_t)t->lo + (int64_t)h->req_id - 1;
	msg_t m;
	err_t e;

	if (dev < t->lo || dev >= t->hi || msg_parse(&m, h, body, &e) == -1 ||
	    msg_get_str(&m, TLV_IX_RDV_ENROL_CODE, t->devs[dev - t->lo].enrol,
	                sizeof(t->devs[dev - t->lo].enrol)) == -1)
		rt_note(t, "RDV_PROVISION answer without an enrolment code");
}

/* One frame from the server. */
static void
rc_on_frame(rthread_t *t, rconn_t *c, const frame_hdr_t *h, const uint8_t *body)
{
	int err = (h->flags & STB_FRAME_F_ERROR) != 0;

	if (!(h->flags & STB_FRAME_F_RESPONSE)) {
		/* a push: heartbeat or session offer; both are simply acknowledged */
		if (rc_frame(c, h->type, STB_FRAME_F_RESPONSE, h->req_id, NULL) == -1)
			rt_note(t, "cannot answer a push");
		return;
	}
	if (c->admin) {
		t->prov_inflight--;
		t->prov_left--;
		if (err) {
			t->st.errors++;
			rt_error_rsp(t, "RDV_PROVISION", body, h->len);
		} else
			adm_keep_code(t, h, body);
		return;
	}
	if (h->req_id != c->want)
		return; /* the answer to one of our own heartbeats */
	c->want = 0;
	if (h->type == STB_MSG_RDV_REGISTER) {
		t->reg_window--;
		t->reg_left--;
		if (err) {
			t->st.failures++;
			rt_error_rsp(t, "RDV_REGISTER", body, h->len);
			return;
		}
		c->registered = 1;
		t->st.up++;
		return;
	}
	t->now = bench_now();
	if (err) {
		t->st.errors++;
		rt_error_rsp(t, "RDV_CONNECT_REQ", body, h->len);
	} else if (rt_measuring(t)) {
		t->st.done++;
		hist_observe(&t->st.lat, (t->now - c->t_sent) / 1000);
	}
	if (atomic_load(&rdv_phase) == P_GRANT && t->now < t->run->t_stop)
		dev_connect_req(t, c);
}

static void
rc_read(rthread_t *t, rconn_t *c)
{
	for (;;) {
		size_t off = 0;
		frame_hdr_t h;
		int rc = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(RDV_RBUF - c->rlen));

		if (rc <= 0) {
			switch (SSL_get_error(c->ssl, rc)) {
			case SSL_ERROR_WANT_READ:
				goto out;
			case SSL_ERROR_WANT_WRITE:
				rc_events(t, c, EPOLLIN | EPOLLOUT);
				goto out;
			}
			rc_fail(t, c, "connection closed");
			return;
		}
		c->rlen += (size_t)rc;
		while ((rc = frame_decode(c->rbuf + off, c->rlen - off,
		                          RDV_RBUF - STB_FRAME_HDR_LEN, &h)) == FRAME_OK) {
			rc_on_frame(t, c, &h, c->rbuf + off + STB_FRAME_HDR_LEN);
			off += STB_FRAME_HDR_LEN + h.len;
		}
		if (rc != FRAME_NEED_MORE) {
			rc_fail(t, c, frame_strerror(rc));
			return;
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
		if (!SSL_has_pending(c->ssl))
			break;
	}
out:
	if (c->admin)
		adm_fill(t);
	else
		rc_flush(t, c);
}

static void
rc_event(rthread_t *t, rconn_t *c, uint32_t ev)
{
	int rc, soerr = 0;
	socklen_t len = sizeof(soerr);

	switch (c->state) {
	case S_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr != 0) {
			rc_fail(t, c, "connect failed");
			return;
		}
		c->state = S_HANDSHAKE;
		/* fall through */
	case S_HANDSHAKE:
		if ((rc = SSL_connect(c->ssl)) != 1) {
			switch (SSL_get_error(c->ssl, rc)) {
			case SSL_ERROR_WANT_READ:
				rc_events(t, c, EPOLLIN);
				return;
			case SSL_ERROR_WANT_WRITE:
				rc_events(t, c, EPOLLOUT);
				return;
			}
			rc_fail(t, c, "TLS handshake");
			return;
		}
		c->state = S_OPEN;
		rc_events(t, c, EPOLLIN);
		if (c->admin)
			adm_fill(t);
		else
			dev_register(t, c);
		return;
	case S_OPEN:
		if (c->wblocked && rc_flush(t, c) == -1)
			return;
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
			rc_read(t, c);
		return;
	}
}

/* ---- the thread ---- */

static void
rt_start_registrations(rthread_t *t)
{
	while (t->reg_window < RDV_REG_WINDOW && t->next_reg < t->hi) {
		rconn_t *c = &t->devs[t->next_reg - t->lo];

		t->next_reg++;
		t->reg_window++;
		if (rc_open(t, c, t->run->ctx) == -1)
			rc_fail(t, c, "cannot open");
	}
}

static void *
rt_main(void *arg)
{
	rthread_t *t = arg;
	struct epoll_event ev[RDV_NEV];
	int phase = -1, idle = 0;

	for (;;) {
		int now_phase = atomic_load(&rdv_phase), n;

		if (now_phase == P_STOP)
			break;
		if (now_phase != phase) {
			phase = now_phase;
			idle = 0;
			if (phase == P_PROVISION && rc_open(t, &t->admin, t->adm_ctx) == -1)
				rc_fail(t, &t->admin, "cannot open");
			if (phase == P_REGISTER && t->admin.fd != -1)
				rc_close(&t->admin);
			if (phase == P_GRANT) {
				int started = 0;
				for (int i = 0; i < t->hi - t->lo && started < t->ncallers; i++) {
					rconn_t *c = &t->devs[i];
					if (c->state == S_OPEN && c->registered) {
						dev_connect_req(t, c);
						started++;
					}
				}
			}
		}
		if (phase == P_REGISTER)
			rt_start_registrations(t);
		if (!idle && ((phase == P_PROVISION && t->prov_left <= 0) ||
		              (phase == P_REGISTER && t->reg_left <= 0) || phase >= P_HOLD)) {
			idle = 1;
			atomic_fetch_add(&rdv_threads_idle, 1);
		}
		n = epoll_wait(t->epfd, ev, RDV_NEV, 5);
		t->now = bench_now();
		for (int i = 0; i < n; i++)
			rc_event(t, ev[i].data.ptr, ev[i].events);
		if (phase == P_GRANT && t->now >= t->run->t_stop && t->st.t_end == 0)
			t->st.t_end = t->run->t_stop;
	}
	return NULL;
}

static long
rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void
rdv_set_phase(int p, int nthreads, FILE *info, const char *what)
{
	uint64_t t0 = bench_now();

	atomic_store(&rdv_threads_idle, 0);
	atomic_store(&rdv_phase, p);
	while (atomic_load(&rdv_threads_idle) < nthreads) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	if (what != NULL)
		fprintf(info, "stb-bench: %s in %.1f s\n", what, (double)(bench_now() - t0) / 1e9);
	fflush(info);
}

int
rdv_run(bench_run_t *run, SSL_CTX *adm_ctx, FILE *info)
{
	const bench_opts_t *o = run->o;
	int nt = o->threads, per, callers, rc = 0;
	rthread_t *t = calloc((size_t)nt, sizeof(*t));
	bench_stats_t tot;
	long rss0 = -1, rss1 = -1;
	uint8_t rnd[4];

	if (t == NULL)
		return 1;
	rdv_ndev = o->devices;
	callers = o->conns < rdv_ndev ? o->conns : rdv_ndev;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 1;
	snprintf(rdv_prefix, sizeof(rdv_prefix), "bench-%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2],
	         rnd[3]);
	per = (rdv_ndev + nt - 1) / nt;
	if (o->server_pid > 0)
		rss0 = rss_kib(o->server_pid);
	atomic_store(&rdv_phase, -1);
	for (int i = 0; i < nt; i++) {
		rthread_t *x = &t[i];
		x->o = o;
		x->run = run;
		x->adm_ctx = adm_ctx;
		x->idx = i;
		x->lo = i * per < rdv_ndev ? i * per : rdv_ndev;
		x->hi = (i + 1) * per < rdv_ndev ? (i + 1) * per : rdv_ndev;
		x->next_prov = x->next_reg = x->lo;
		x->prov_left = x->reg_left = x->hi - x->lo;
		x->ncallers = callers / nt + (i < callers % nt);
		x->rng = 2463534242u + (uint32_t)i * 7919u;
		x->admin = (rconn_t){.fd = -1, .admin = 1, .dev = -1};
		buf_init(&x->admin.out, RDV_WBUF_MAX);
		x->admin.rbuf = malloc(RDV_RBUF);
		x->devs = calloc((size_t)(x->hi - x->lo) + 1, sizeof(rconn_t));
		if ((x->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 || x->devs == NULL ||
		    x->admin.rbuf == NULL)
			return 1;
		for (int d = 0; d < x->hi - x->lo; d++) {
			rconn_t *c = &x->devs[d];
			c->fd = -1;
			c->dev = x->lo + d;
			buf_init(&c->out, RDV_WBUF_MAX);
			if ((c->rbuf = malloc(RDV_RBUF)) == NULL)
				return 1;
		}
		pthread_create(&x->tid, NULL, rt_main, x);
	}
	fprintf(info, "stb-bench: rdv: %d devices (IDs %s*), %d callers, %d threads\n", rdv_ndev,
	        rdv_prefix, callers, nt);
	rdv_set_phase(P_PROVISION, nt, info, "provisioned");
	rdv_set_phase(P_REGISTER, nt, info, "registered");
	rdv_set_phase(P_HOLD, nt, NULL, NULL);
	{
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL); /* let the server settle its buffers */
	}
	if (o->server_pid > 0)
		rss1 = rss_kib(o->server_pid);
	run->t_warm = bench_now() + (uint64_t)(o->warmup * 1e9);
	run->t_stop = run->t_warm + (uint64_t)(o->duration * 1e9);
	rdv_set_phase(P_GRANT, nt, NULL, NULL);
	while (bench_now() < run->t_stop + 200000000u) {
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&rdv_phase, P_STOP);
	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < nt; i++) {
		pthread_join(t[i].tid, NULL);
		bench_stats_add(&tot, &t[i].st);
	}
	{
		double rate = (double)tot.done / o->duration;
		double p50 = (double)hist_quantile(&tot.lat, 0.50);
		double p99 = (double)hist_quantile(&tot.lat, 0.99);
		double per_dev = rss0 >= 0 && rss1 >= 0 && tot.up > 0
		                     ? (double)(rss1 - rss0) / (double)tot.up
		                     : -1;

		if (o->json)
			printf("{\"mode\":\"rdv\",\"devices\":%d,\"registered\":%" PRIu64
			       ",\"callers\":%d,\"seconds\":%.3f,\"grants\":%" PRIu64
			       ",\"grants_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
			       "\"errors\":%" PRIu64 ",\"failures\":%" PRIu64 ",\"lost\":%" PRIu64
			       ",\"server_rss_kib_before\":%ld,\"server_rss_kib_held\":%ld,"
			       "\"server_kib_per_device\":%.1f}\n",
			       rdv_ndev, tot.up, callers, o->duration, tot.done, rate, p50, p99,
			       tot.errors, tot.failures, tot.lost, rss0, rss1, per_dev);
		else {
			printf("rdv: %" PRIu64 "/%d devices holding control channels, %d callers\n",
			       tot.up, rdv_ndev, callers);
			printf("grants: %.1f/s over %.1f s (%" PRIu64
			       "), p50 %.0f us, p99 %.0f us\n",
			       rate, o->duration, tot.done, p50, p99);
			if (rss1 >= 0)
				printf("server RSS: %ld KiB before, %ld KiB holding %" PRIu64
				       " channels: %.1f KiB per device\n",
				       rss0, rss1, tot.up, per_dev);
			printf("errors %" PRIu64 ", failures %" PRIu64 ", lost %" PRIu64 "\n",
			       tot.errors, tot.failures, tot.lost);
		}
		if (tot.first_err[0] != '\0')
			fprintf(stderr, "stb-bench: first error: %s\n", tot.first_err);
	}
	if (tot.errors > 0 || tot.failures > 0 || tot.lost > 0)
		rc = 1;
	for (int i = 0; i < nt; i++) {
		for (int d = 0; d < t[i].hi - t[i].lo; d++) {
			rc_close(&t[i].devs[d]);
			buf_free(&t[i].devs[d].out);
			free(t[i].devs[d].rbuf);
		}
		rc_close(&t[i].admin);
		buf_free(&t[i].admin.out);
		free(t[i].admin.rbuf);
		free(t[i].devs);
		close(t[i].epfd);
	}
	free(t);
	return rc;
}
