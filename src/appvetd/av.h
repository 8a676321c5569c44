/*
 * av: appvetd's shared state.  The operator side (submit, publish, check,
 * index) and the vetter side (vet) run in one process by default; `roles`
 * in the config leaves one out.  Keys: the ID key (HMAC for ID1) and the
 * payload key (AES-256-GCM of ID1 in published payloads) are random
 * secrets sealed in the store; the operator's P-256 signing key is sealed
 * there too; the vetter signs verdicts with its own key (by default its TLS
 * service key, whose certificate names the appvetd role).
 */
#ifndef STB_APPVETD_AV_H
#define STB_APPVETD_AV_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>

#include "apk.h"
#include "appindex.h"
#include "apppay.h"
#include "daemon.h"
#include "sig.h"
#include "upload.h"
#include "workpool.h"

#define AV_ID_CAP            (STB_ID_MAX + 1)
#define AV_NAME_CAP          129
#define AV_VERSION_CAP       65
#define AV_LIST_BYTES        60000 /* a list answer stays under a client's default max_frame */
#define AV_CHUNK_MAX         49152 /* a chunk and its frame stay under the default max_frame */
#define AV_FINDINGS_JSON_MAX 60000

enum { AV_FLAG_SAFE = APPPAY_SAFE, AV_FLAG_UNSAFE = APPPAY_UNSAFE };
enum { AV_RESULT_ALLOW = 1, AV_RESULT_DENY = 2 };

typedef struct av_conf {
	char *roles; /* "operator,vetter" */
	long long max_size;
	long long session_ttl_s;
	long long max_sessions;
	long long validity_s;
	long long max_validity_s;
	long long index_validity_s;
	long long check_cache_size;
	long long vet_threads;
	long long vet_queue;
	char *vet_peer; /* a vetter elsewhere, host:port; "": in this process */
	long long vet_peer_timeout_ms;
	char *vetter_key;  /* PEM; "": tls.key */
	char *vetter_cert; /* PEM; "": tls.cert */
	char *blocklist;
	char *dangerous_permissions;
	char *clamav_db;
	long long max_entries;
	long long max_uncompressed;
	long long max_ratio;
} av_conf_t;

/* One published app as APP_CHECK sees it. */
typedef struct av_entry {
	uint8_t ref[APPPAY_REF_LEN];
	char id1[AV_ID_CAP];
	char name[AV_NAME_CAP];
	char version[AV_VERSION_CAP];
	int flag;    /* the current verdict */
	int revoked; /* published SAFE, re-vetted UNSAFE since */
	uint64_t published;
	uint64_t expires;
	char warning[APPINDEX_WARNING_MAX + 1];
	/* APP_CHECK's answer TLVs, encoded once when the index is loaded:
	 * [0] for a SAFE payload (ALLOW), [1] for an UNSAFE one (DENY) */
	uint8_t *answer[2];
	size_t answer_len[2];
} av_entry_t;

typedef struct av {
	daemon_t *d;
	const av_conf_t *conf;
	int operator_role, vetter_role;
	upload_t *up;
	workpool_t *vet;
	mbox_t *main_mb;       /* the main loop's, for vetting queued at start-up */
	struct peerpool *peer; /* the remote vetter (vet.peer), or NULL */
	apk_ctx_t *apk;
	/* keys */
	uint8_t id_key[32];
	uint8_t pay_key[APPPAY_KEY_LEN];
	EVP_PKEY *op_key;        /* operator: payloads and index */
	apppay_reader_t *reader; /* op_key's public half and pay_key, for APP_CHECK */
	char *op_pub_pem;
	EVP_PKEY *vet_key; /* vetter: verdicts */
	X509 *vet_cert;
	uint8_t *vet_cert_der;
	size_t vet_cert_der_len;
	/* the check index: sorted by ref, replaced whole after each change */
	pthread_rwlock_t ix_lock;
	av_entry_t *ix;
	size_t nix;
	uint64_t ix_version; /* the newest exported snapshot */
	/* payloads whose signature verified, by the SHA-256 of their text:
	 * every TV that shows one app sends the same payload */
	struct lru *verified;
	_Atomic uint64_t verified_hits, verified_misses;
	char spool[UPLOAD_PATH_MAX];
	char pkgdir[UPLOAD_PATH_MAX];
} av_t;

/* avkeys.c */
int av_keys_load(av_t *av, err_t *err);
void av_keys_free(av_t *av);
/* ID1 of a package: lowercase hex HMAC-SHA256(id key, tbs). */
int av_id1(const av_t *av, const uint8_t sha256[32], const char *name, const char *version,
           char out[65], err_t *err);
/* Where an app's package is kept: <state_dir>/packages/<id1>.apk. */
int av_pkg_path(const av_t *av, const char *id1, char *out, size_t cap, err_t *err);
/* 32 hex digits of 16 random bytes (ID2, ID3). */
int av_random_id(char out[33], err_t *err);

/* submit.c: uploads, APP_SUBMIT */
void av_submit_register(daemon_t *d);
/* The upload owner string of a request's peer. */
void av_owner(srv_req_t *r, char *out, size_t cap);

/* vet.c: vetting on the worker pool */
void av_vet_register(daemon_t *d);
/* Queues the apps a previous run left 'submitted' (stopped or crashed
 * before their verdict was stored); their completions go to the main
 * loop through av->main_mb, made here.  From init. */
int av_vet_resume(av_t *av, err_t *err);
typedef struct av_verdict {
	char id2[33];
	int flag;
	uint8_t sha256[32];
	uint64_t vet_time;
	char *findings_json; /* JSON array of {code, severity, reason} */
	char *report_json;   /* apk.h's report */
	uint8_t sig[SIG_MAX];
	size_t siglen;
	char warning[APPINDEX_WARNING_MAX + 1];
} av_verdict_t;
/* Runs the analysis and signs the verdict (a pool thread). */
int av_vet_file(av_t *av, const char *path, const char *id1, av_verdict_t *v, err_t *err);
void av_verdict_clear(av_verdict_t *v);
/* Queues vetting of a stored app (after APP_SUBMIT, for APP_REVET); done
 * (may be NULL) runs on mb's loop with the outcome. */
typedef void (*av_vet_done_fn)(void *arg, const err_t *err, const av_verdict_t *v);
int av_vet_queue(av_t *av, const char *id1, struct event_base *base, mbox_t *mb,
                 av_vet_done_fn done, void *arg, err_t *err);

/* publish.c: APP_PUBLISH, lists, QR text, public key */
void av_publish_register(daemon_t *d);
/* Bumps the index version (in a write that changed what the index says). */
int av_index_bump(store_conn_t *c, err_t *err);

/* check.c: APP_CHECK, APP_INDEX_EXPORT, the in-memory index */
void av_check_register(daemon_t *d);
/* The verified-payload cache (check.cache_size; none when 0). */
int av_check_start(av_t *av, err_t *err);
void av_check_free(av_t *av);
int av_check_metrics(av_t *av, buf_t *out);
/* Reloads the index from the store (any thread). */
int av_index_reload(av_t *av, err_t *err);
void av_index_free(av_t *av);

/* avmetrics.c: /appvetd/metrics */
int av_metrics_register(av_t *av, err_t *err);
void av_metrics_verdict(int flag, int revoked, uint64_t us);
void av_metrics_publication(int flag);
void av_metrics_check(int allow);

#endif
