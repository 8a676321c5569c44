/*
 * rendezvousd internals.  Devices register over server-authenticated TLS;
 * the REGISTER connection stays open as the device's control channel and
 * lives on one worker loop.  The registry maps an online device to that
 * connection; it is the only state shared between loops (one mutex, never
 * taken on the PING or heartbeat path).  A connection's own state
 * (rdv_cstate_t, with the device's wrap key) is touched only on its loop:
 * work for another device's connection is posted to that connection's loop
 * and the result posted back.
 */
#ifndef RDV_H
#define RDV_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "climit.h"
#include "codewrap.h"
#include "connreg.h"
#include "daemon.h"
#include "enrol.h"
#include "lifecycle.h"
#include "lockout.h"
#include "peerpool.h"
#include "pool.h"
#include "workpool.h"

#define RDV_ID_CAP       (STB_ID_MAX + 1)
#define RDV_ENDPOINT_CAP 263
/* REGISTERs that may wait for a key derivation thread; beyond, RATE_LIMITED */
#define RDV_KDF_QUEUE_PER_THREAD 256
/* devices whose CONNECT_REQ limits are tracked at once */
#define RDV_CLIMIT_MAX 100000

typedef struct rdv_conf {
	char *overlay_pool;
	long long lease_s;
	long long session_ttl_s;
	long long connect_timeout_ms;
	long long hb_interval_ms;
	long long hb_miss_max;
	long long kdf_n;
	long long kdf_r;
	long long kdf_p;
	long long kdf_threads;
	lockout_conf_t auth; /* auth.* (lockout.h) */
	long long connect_per_minute;
	long long connect_burst;
	long long connect_per_pair;
	long long connect_per_caller;
	long long connect_per_target;
	char *cluster_self;        /* this instance's host:port for the others; "": one instance */
	long long cluster_lease_s; /* a holding outlives its instance's last renewal this long */
} rdv_conf_t;

/* One online device: its control channel (ce: ID, gen, conn, loop).
 * Holds a reference on conn, taken and dropped on the connection's loop. */
typedef struct rdv_entry {
	connreg_ent_t ce;
	char overlay[RDV_ADDR_MAX];
	char endpoint[RDV_ENDPOINT_CAP];
	char peer[64];
	time_t since;
} rdv_entry_t;

typedef struct rdv_cluster rdv_cluster_t;

typedef struct rdv {
	daemon_t *d;
	const rdv_conf_t *conf;
	rdv_pool_t pool;
	connreg_t *reg; /* online devices (registry.c), one entry each */
	lifecycle_t lc; /* fini, each connection state, each job; stopping: no new store writes */
	struct event *sweep;
	workpool_t *kdf;        /* scrypt off the loops */
	lockout_t *lk;          /* REGISTER guessing (lockout.h); trusted pairs persisted */
	rdv_climit_t *cl;       /* CONNECT_REQ limits per caller and target */
	rdv_cluster_t *cluster; /* the other instances (cluster.c); NULL: one instance */
} rdv_t;

typedef struct rdv_wait rdv_wait_t;

/* A registered control channel; only its loop touches it. */
typedef struct rdv_cstate {
	rdv_t *rdv;
	srv_conn_t *conn;
	char device_id[RDV_ID_CAP];
	uint8_t key[RDV_KEY_LEN];
	uint64_t gen;
	char overlay[RDV_ADDR_MAX];
	char endpoint[RDV_ENDPOINT_CAP];
	struct event *hb_timer;
	uint32_t hb_push_id;
	int hb_outstanding;
	int hb_missed;
	rdv_wait_t *waits; /* CONNECT_REQs waiting for this device's heartbeat */
} rdv_cstate_t;

/* Unix time in ms, for the CONNECT_REQ buckets. */
static inline int64_t
rdv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
rdv_ref(rdv_t *rdv)
{
	lifecycle_ref(&rdv->lc);
}
static inline void
rdv_unref(rdv_t *rdv)
{
	lifecycle_unref(&rdv->lc);
}
static inline int
rdv_stopping(rdv_t *rdv)
{
	return lifecycle_stopping(&rdv->lc);
}

/* registry.c */
/* Adds (replacing and returning any older entry for the device, which the
 * caller hands to rdv_registry_kick). */
rdv_entry_t *rdv_registry_add(rdv_t *rdv, rdv_entry_t *e);
/* Unlinks device_id's entry when gen matches (0: any); NULL when absent. */
rdv_entry_t *rdv_registry_take(rdv_t *rdv, const char *device_id, uint64_t gen);
/* Copies what a cross-loop job needs; 0 or -1 when offline. */
int rdv_registry_find(rdv_t *rdv, const char *device_id, uint64_t *gen, mbox_t **mb);
/* On the entry's loop: the entry's connection, when gen still matches. */
srv_conn_t *rdv_registry_conn(rdv_t *rdv, const char *device_id, uint64_t gen);
/* Closes an unlinked entry's connection on its loop and frees it. */
void rdv_registry_kick(rdv_entry_t *e);
/* Snapshot of online device IDs (malloc'd array of RDV_ID_CAP strings). */
char (*rdv_registry_ids(rdv_t *rdv, size_t *n))[RDV_ID_CAP];
/* Appends one RDV_DEVICE_ENTRY per online device, up to budget bytes. */
int rdv_registry_list(rdv_t *rdv, buf_t *b, size_t budget);

/* device.c */
void rdv_device_register(daemon_t *d);
/* The control channel's state when the connection has registered. */
rdv_cstate_t *rdv_cstate(srv_conn_t *c);
/* Waits for a heartbeat answer from ts's device, then calls fn on ts's
 * loop with ok 1, or 0 on timeout or close. */
typedef void (*rdv_wait_fn)(rdv_cstate_t *ts, int ok, const char *why, void *arg);
int rdv_wait_heartbeat(rdv_cstate_t *ts, int timeout_ms, rdv_wait_fn fn, void *arg);

/* connect.c */
void rdv_connect_register(daemon_t *d);

/* cluster.c: several instances over one database.  Each instance records
 * itself as the holder of the control channels it takes (devices.holder,
 * written with the REGISTER) and renews a lease on its row in
 * rdv_instances; a CONNECT_REQ for a device held by another live instance
 * is forwarded there as RDV_RELAY_OFFER over mutual TLS (peerpool.h). */
/* Starts the lease renewal when cluster.self is set; rdv->cluster stays
 * NULL otherwise. */
int rdv_cluster_init(rdv_t *rdv, err_t *err);
/* Frees the peers (on their loops) and gives up this instance's lease. */
void rdv_cluster_fini(rdv_t *rdv);
/* This instance's address, or NULL with one instance. */
const char *rdv_cluster_self(const rdv_t *rdv);
/* The pool towards instance addr, made on first use; NULL with err. */
peerpool_t *rdv_cluster_peer(rdv_t *rdv, const char *addr, err_t *err);
/* host:port with a numeric host (no name lookup on a loop). */
int rdv_cluster_addr_ok(const char *addr);

#endif
