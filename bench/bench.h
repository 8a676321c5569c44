/*
 * bench: what stb-bench's parts share: the options, the run (one SSL_CTX,
 * the target address, the prepared PING frame, the clock marks) and the
 * per-thread figures that main merges at the end.
 */
#ifndef STB_BENCH_H
#define STB_BENCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "hist.h"

typedef enum {
	BENCH_PING,
	BENCH_HANDSHAKE,
	BENCH_SPEED,
	BENCH_RDV,
	BENCH_LOGIN,
	BENCH_ISSUE,
	BENCH_KEYSYNC,

	BENCH_BOOTSTRAP,

	BENCH_APPCHECK,
} bench_mode_t;

typedef struct bench_opts {
	bench_mode_t mode;
	const char *addr; /* HOST:PORT */
	const char *ca;
	const char *cert;
	const char *key;
	int conns;
	int threads;
	int pipeline;
	double duration; /* seconds measured */
	double warmup;   /* seconds run before measuring */
	int duration_set;
	uint64_t requests; /* stop after this many; 0 = no limit */
	size_t payload;    /* PING PAYLOAD bytes; 0 = no TLV */
	int tls_version;   /* 0 negotiate, 12, 13 */
	int hs_ping;       /* handshake mode: one PING per connection */
	int hs_resume;     /* handshake mode: full, then resumed (resume.c) */
	int json;
	/* rdv */
	int devices;            /* devices that hold control channels */
	int server_pid;         /* read this process's RSS; 0 = don't */
	const char *admin_cert; /* provisions the devices */
	const char *admin_key;
	/* login, issue */
	const char *cp_addr; /* cert-proxyd HOST:PORT */
	const char *profile; /* issue: ca-authd profile */
	/* keysync */
	const char *app;           /* the app the terminals sync for */
	const char *platform_addr; /* the reference app platform, polled as admin */
	const char *platform_cert; /* its encryption certificate (the bound) */
	const char *platform_key;  /* and key */
	FILE *acks;                /* --acks: acknowledged syncs, one line each */
	double retry_s;            /* --retry-s: retry broken syncs this long */
	int push_batch;            /* --push-batch: keymgmtd's push.batch (0: 64) */

	/* bootstrap */
	const char *ca_addr;     /* ca-authd HOST:PORT: issues the devices' certificates */
	const char *admin_addr;  /* qualifyd's admin listener; NULL: -a */
	const char *operator_ca; /* trust anchor of the package signer */
	const char *ocsp_url;    /* NULL: the operator certificate's AIA */

	/* appcheck */
	const char *app_payload; /* the published QR text every TV checks */
} bench_opts_t;

typedef struct bench_run {
	const bench_opts_t *o;
	SSL_CTX *ctx; /* one for all threads */
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[256];
	int host_is_ip;
	uint8_t *ping; /* a PING request frame; workers patch the req_id */
	size_t ping_len;
	size_t rsp_max;         /* the largest response frame a worker must hold */
	pthread_barrier_t gate; /* workers connected / main set the clock */
	uint64_t t_warm;        /* ns: measuring starts */
	uint64_t t_stop;        /* ns: everything stops */
} bench_run_t;

typedef struct bench_stats {
	uint64_t done;     /* requests or handshakes completed while measuring */
	uint64_t errors;   /* ERROR responses and protocol violations */
	uint64_t failures; /* connects or handshakes that failed */
	uint64_t lost;     /* established connections that broke */
	uint64_t up;       /* ping: connections established */
	uint64_t t_end;    /* ns: when this thread stopped measuring */
	char first_err[256];
	hist_t lat; /* us */
} bench_stats_t;

static inline uint64_t
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One load thread: its own epoll and its share of the connections. */
typedef struct worker worker_t;

worker_t *worker_new(bench_run_t *run, int idx, int nconns, uint64_t quota);
int worker_start(worker_t *w);
void worker_join(worker_t *w);
const bench_stats_t *worker_stats(const worker_t *w);
void worker_free(worker_t *w);

/* Adds src's counts and latencies to dst; the first error seen is kept. */
void bench_stats_add(bench_stats_t *dst, const bench_stats_t *src);

/* "STATUS: text" of an ERROR response body into out (worker.c). */
void bench_error_rsp(const uint8_t *body, uint32_t len, char *out, size_t cap);

/* A stbclient connected to addr with o's CA (when set) and cert/key (when
 * cert is set), calls timing out after timeout_ms; NULL with *err set
 * (worker.c). */
struct stb_client;
struct stb_error;
struct stb_client *bench_client(const bench_opts_t *o, const char *addr, const char *cert,
                                const char *key, int timeout_ms, struct stb_error *err);

/* A client SSL_CTX for o's target; cert/key may be NULL (anonymous). */
SSL_CTX *bench_ctx_new(const bench_opts_t *o, const bench_run_t *run, const char *cert,
                       const char *key);

/* `stb-bench rdv` (rdv.c): run->ctx is the devices' (anonymous) context. */
int rdv_run(bench_run_t *run, SSL_CTX *adm_ctx, FILE *info);

/* `stb-bench login` and `stb-bench issue` (flowa.c). */
int flowa_run(bench_run_t *run, FILE *info);

/* `stb-bench keysync` (keysync.c). */
int keysync_run(bench_run_t *run, FILE *info);

/* `stb-bench speed`: the crypto bound of a handshake on this machine. */
int speed_run(const bench_opts_t *o);
/* ECDSA P-256 verifies per second on `threads` threads at once for secs,
 * or -1; *per_cpu_s (may be NULL) gets the verifies per second of CPU
 * time the threads had (a core's bound, whatever else runs). */
double speed_verify_bound(int threads, double secs, double *per_cpu_s);

/* `stb-bench appcheck` (appcheck.c). */
int appcheck_run(bench_run_t *run, FILE *info);

/* One thread's rates (operations per second) of the primitives the bounds
 * count, `secs` each (speed.c). */
typedef struct speed_rates {
	double sign, verify;                 /* ECDSA P-256 */
	double x25519_keygen, x25519_derive; /* TLS key exchange */
	double p256_keygen, p256_derive;     /* ECDH P-256: CMS envelopes */
} speed_rates_t;
int speed_measure(double secs, speed_rates_t *r);

/* `stb-bench bootstrap` (boot.c): flow D, qualifyd. */
int boot_run(bench_run_t *run, FILE *info);
/* CPU seconds (user + system) of process pid, or -1 (boot.c). */
double bench_proc_cpu(long pid);
/* `stb-bench handshake --resume` (resume.c): full vs resumed handshakes. */
int resume_run(bench_run_t *run, FILE *info);

#endif
