/*
 * keymgmtd internals (flow C).  Terminal keys are imported sealed (AAD =
 * key_id); a portal opens apps for MDNs; a terminal proves its key with a
 * MAC (keysync.h) over TLS or by SMS, and the binding and its KEY_PUSH go
 * into one store write through the outbox, whose worker on the main loop
 * delivers each push to the app platform over mutual TLS.
 */
#ifndef KM_H
#define KM_H

#include <openssl/x509.h>
#include <stdint.h>

#include "daemon.h"
#include "hist.h"
#include "keysync.h"
#include "lockout.h"
#include "outbox.h"
#include "peerpool.h"

#define KM_ID_CAP        (STB_ID_MAX + 1)
#define KM_MDN_CAP       (KEYSYNC_MDN_MAX + 1)
#define KM_PLATFORMS_MAX 64
#define KM_LIST_BYTES    60000  /* stays under a client's default max_frame */
#define KM_IMPORT_MAX    200000 /* keys in one import */
#define KM_BATCH_MAX     128    /* keys in one KEY_PUSH_BATCH (fits a 64 KiB frame) */

typedef struct km_batch km_batch_t;

typedef struct km_conf {
	char *platforms_file;
	long long sync_window_s;
	char *import_cert;
	char *import_key;
	long long push_window;
	long long push_max_tries;
	long long push_backoff_min_ms;
	long long push_backoff_max_ms;
	long long push_timeout_ms;
	long long push_poll_ms;
	long long push_batch;
	int http_tls;
	char *http_client_auth;
	lockout_conf_t auth;
} km_conf_t;

/* One app platform of platforms_file. */
typedef struct km_platform {
	char app_id[KM_ID_CAP];
	char address[264];
	char ca[1024];
	char cert[1024];
	X509 *enc_cert;   /* keys are enveloped to this */
	tls_holder_t tls; /* keymgmtd's identity, the platform's trust anchor */
	peerpool_t *pool; /* KEY_PUSH / KEY_REVOKE calls */
} km_platform_t;

typedef struct km {
	daemon_t *d;
	const km_conf_t *conf;
	km_platform_t plat[KM_PLATFORMS_MAX];
	int nplat;
	lockout_t *lk;
	outbox_t *ob;
	mbox_t *main_mb; /* the main loop's, for the outbox */
	X509 *imp_cert;  /* import certificate (CMS key files), may be NULL */
	EVP_PKEY *imp_key;
	hist_t latency;                        /* enqueue to acknowledgement, microseconds */
	km_batch_t *filling[KM_PLATFORMS_MAX]; /* per platform, being gathered */
	struct event *flush_ev;                /* sends them when the loop comes round */
	/* an unknown key_id costs what a known one does: its MAC is checked
	 * against this key, opened from this blob */
	uint8_t dummy_key[32];
	buf_t dummy_sealed;
	int64_t pruned; /* when sync_macs was last pruned (the writer's) */
} km_t;

extern km_conf_t km_conf;

const km_platform_t *km_platform(const km_t *km, const char *app_id);
/* Loads and checks platforms_file into plat (no TLS, no pools): for -t. */
int km_platforms_load(const char *file, km_platform_t *plat, int *n, err_t *err);

/* import.c */
void km_import_register(daemon_t *d);
/* sync.c */
void km_sync_register(daemon_t *d);
int km_http_register(daemon_t *d, err_t *err);
/* push.c: the outbox's send callback, and what the bind write queues */
void km_push_send(void *arg, const outbox_item_t *it, outbox_result_fn done, void *done_arg);
int km_queue_revoke(km_t *km, store_conn_t *c, const char *key_id, const char *mdn,
                    const char *app_id, int64_t *push_id, err_t *err);
int km_push_metrics(km_t *km, buf_t *out);
int km_push_recorded(void *arg, store_conn_t *c, const outbox_item_t *it, int state,
                     const char *error, err_t *err);
/* Sends the batches being gathered (the flush event's work). */
void km_push_flush(km_t *km);
/* The outbox body of a new binding's KEY_PUSH (push_id 0, no key). */
int km_push_body(const char *key_id, const char *mdn, const char *app_id, buf_t *out, err_t *err);
/* admin.c */
void km_admin_register(daemon_t *d);

int64_t km_now_ms(void);
const char *km_actor(srv_req_t *r, char *out, size_t cap);

#endif
