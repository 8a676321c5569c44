/*
 * ca-authd internals.  The CA material (root, issuing CA, delegated OCSP
 * responder) lives in the state dir, keys sealed under the KEK; the daemon
 * loads only the issuing and responder keys, never the root's.  Issued
 * certificates are rows of the store; what the login path needs on every
 * request (revoked serials, leaf certificates already checked) is kept in
 * memory, shared by the worker loops under short locks.
 */
#ifndef CA_H
#define CA_H

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "daemon.h"
#include "lifecycle.h"
#include "lru.h"
#include "x509.h"

#define CA_SERIAL_LEN   16 /* serials we draw */
#define CA_SERIAL_MAX   20 /* RFC 5280 */
#define CA_SERIAL_HEX   (2 * CA_SERIAL_MAX + 1)
#define CA_ID_CAP       (STB_ID_MAX + 1)
#define CA_URL_MAX      256
#define CA_DEVICE_URI   CRT_DEVICE_URI
#define CA_CERT_URI     CRT_CERT_URI
#define CA_LIST_BYTES   60000 /* stays under a client's default max_frame */
#define CA_LIST_MAX     1000
#define CA_OCSP_MAX_REQ 16384 /* request body */

/* ---- configuration ---- */

enum { CA_PROF_STB_MEDIA, CA_PROF_DEVICE, CA_PROF_SERVICE, CA_NPROFILES };

typedef struct ca_prof_conf {
	int enabled;
	long long max_validity_s;
	char *key_usage;     /* "digitalSignature,keyAgreement" */
	char *ext_key_usage; /* "clientAuth" */
	char *requesters;    /* roles that may ask: "cert-proxyd,admin" */
} ca_prof_conf_t;

typedef struct ca_conf {
	char *organization;
	char *root_name;
	char *issuing_name;
	long long root_days;
	long long issuing_days;
	long long ocsp_days;
	long long backdate_s;
	char *ocsp_url;
	long long ocsp_validity_s;
	long long ocsp_cache_size;
	long long ocsp_cache_refresh_s;
	char *crl_url;
	long long crl_validity_s;
	long long crl_refresh_s;
	long long keyinfo_fresh_s;
	long long keyinfo_cache;
	ca_prof_conf_t prof[CA_NPROFILES];
} ca_conf_t;

/* conf.c: the option table and the struct it fills. */
#define CONF_NOPTS (16 + 5 * CA_NPROFILES)
extern ca_conf_t conf_ca;
extern const cfg_opt_t conf_opts[];

/* A profile as the issuer uses it. */
typedef struct ca_profile {
	const char *name;
	int kind; /* CA_PROF_ */
	int enabled;
	int64_t max_validity_s;
	uint32_t requesters; /* role bits */
	char key_usage[160]; /* X509V3 config values, checked */
	char ext_key_usage[160];
} ca_profile_t;

/* ---- profile.c ---- */
extern const char *const profile_names[CA_NPROFILES];
/* Checks and converts the configured profiles; BAD_REQUEST names the key. */
int profile_load(const ca_conf_t *conf, ca_profile_t out[CA_NPROFILES], err_t *err);
const ca_profile_t *profile_find(const ca_profile_t prof[CA_NPROFILES], const char *name);
/* "http://..." or empty; BAD_REQUEST otherwise. */
int profile_check_url(const char *key, const char *url, err_t *err);

/* ---- cert.c: building and reading X.509 ---- */

/* What goes into a leaf certificate besides its key. */
typedef struct cert_spec {
	const char *cn;
	const char *organization;
	const char *uris[4]; /* SAN URIs, NULL-terminated */
	const char *dns[8];  /* SAN DNS names */
	const char *ips[8];  /* SAN IP addresses */
	const char *key_usage;
	const char *ext_key_usage;
	int ocsp_signing; /* id-kp-OCSPSigning + ocsp-nocheck (responder) */
	int64_t not_before;
	int64_t not_after;
	const char *ocsp_url; /* AIA, may be NULL or "" */
	const char *crl_url;  /* CRL distribution point */
} cert_spec_t;

/* 16 CSPRNG bytes, positive and of full length. */
int cert_serial_new(uint8_t serial[CA_SERIAL_LEN], err_t *err);
/* Parses a PKCS#10 request, checks its signature (proof of possession)
 * and that the key is an EC P-256 key; *pub gets a reference to it. */
int cert_csr_check(const uint8_t *der, size_t len, EVP_PKEY **pub, err_t *err);
/* 1 when key is an EC P-256 key encoded as the named curve (sig.h). */
int cert_key_is_p256(EVP_PKEY *key);
EVP_PKEY *cert_key_new(err_t *err);
/* Issues a leaf for pub under issuer/issuer_key. */
X509 *cert_leaf_new(const cert_spec_t *s, const uint8_t serial[CA_SERIAL_LEN], EVP_PKEY *pub,
                    X509 *issuer, EVP_PKEY *issuer_key, err_t *err);
/* A CA certificate: self-signed when issuer is NULL; pathlen < 0: none. */
X509 *cert_ca_new(const char *cn, const char *org, int64_t days, int pathlen, EVP_PKEY *key,
                  X509 *issuer, EVP_PKEY *issuer_key, err_t *err);
/* (Times, serials and SAN URIs of certificates: crt_* in x509.h.) */

/* The subject CN. */
int cert_cn(X509 *x, char *out, size_t cap);
/* DER of x (OPENSSL_free it). */
int cert_der(X509 *x, uint8_t **der, size_t *len, err_t *err);

/* ---- certdb.c: issued certificates in the store ---- */

#define CERTDB_NMIGRATIONS 2
extern const char *const certdb_migrations[CERTDB_NMIGRATIONS];
extern const char *const certdb_migrations_pg[CERTDB_NMIGRATIONS];

enum { CERT_GOOD = 0, CERT_REVOKED = 1, CERT_UNKNOWN = 2, CERT_EXPIRED = 3 };

typedef struct certdb_row {
	uint8_t serial[CA_SERIAL_MAX];
	size_t serial_len;
	char device_id[CA_ID_CAP];
	char cert_id[CA_ID_CAP];
	char subject[CA_ID_CAP];
	char profile[32];
	int64_t not_before, not_after, issued_at;
	int revoked;
	int64_t revoked_at;
	int reason;
	const uint8_t *der; /* certdb_insert only */
	size_t der_len;
	char requester[160];
} certdb_row_t;

/* In a write job. */
int certdb_insert(store_conn_t *c, const certdb_row_t *r, err_t *err);
/* NOT_FOUND when the serial is unknown, CONFLICT when already revoked.
 * Also appends it to revocations (revpoll.c). */
int certdb_revoke(store_conn_t *c, const uint8_t *serial, size_t len, int64_t at, int reason,
                  err_t *err);
/* In a write job: counter name's next value, at least floor (unique and
 * increasing across every instance on the database). */
int certdb_counter_next(store_conn_t *c, const char *name, int64_t floor, int64_t *out, err_t *err);
/* 0 with the row, 1 when not found, -1 on error.  der_sha256 (may be
 * NULL) gets the hash of the stored DER. */
int certdb_get(store_conn_t *c, const uint8_t *serial, size_t len, certdb_row_t *r,
               uint8_t der_sha256[32], err_t *err);
/* Revoked rows whose not_after >= since, for the CRL and the revoked set. */
int certdb_revoked(store_conn_t *c, int64_t since, int (*fn)(const certdb_row_t *r, void *arg),
                   void *arg, err_t *err);
/* Newest first; device_id may be NULL. */
int certdb_list(store_conn_t *c, const char *device_id, uint32_t limit,
                int (*fn)(const certdb_row_t *r, void *arg), void *arg, err_t *err);
/* The state of a row at time now (CERT_*). */
int certdb_state(const certdb_row_t *r, int64_t now);
const char *certdb_state_name(int state);

/* ---- revset.c: revoked serials in memory ---- */

typedef struct revset revset_t;
revset_t *revset_new(void);
void revset_free(revset_t *s);
int revset_add(revset_t *s, const uint8_t *serial, size_t len);
int revset_has(revset_t *s, const uint8_t *serial, size_t len);
size_t revset_count(revset_t *s);

/* ---- kcache.c: leaf certificates already checked ---- */

typedef struct kcache_ent {
	uint8_t serial[CA_SERIAL_MAX];
	size_t serial_len;
	int64_t not_before, not_after;
	char device_id[CA_ID_CAP]; /* from the SAN; CN checked equal */
	char cert_id[CA_ID_CAP];
	EVP_PKEY *pub; /* a reference the holder frees */
} kcache_ent_t;

typedef struct kcache kcache_t;
kcache_t *kcache_new(size_t max);
void kcache_free(kcache_t *k);
/* 1 and a copy (with its own key reference) when cached and now <
 * not_after; 0 otherwise. */
int kcache_get(kcache_t *k, const uint8_t hash[32], int64_t now, kcache_ent_t *out);
/* Takes its own key reference; evicts the least recently used entry. */
void kcache_put(kcache_t *k, const uint8_t hash[32], const kcache_ent_t *e);
size_t kcache_count(kcache_t *k);
void kcache_ent_clear(kcache_ent_t *e);

/* ---- pki.c: the CA material in the state dir ---- */

typedef struct pki {
	X509 *root;
	X509 *issuing;
	EVP_PKEY *issuing_key;
	X509 *ocsp;
	EVP_PKEY *ocsp_key;
	uint8_t *issuing_der;
	size_t issuing_der_len;
} pki_t;

/* 1 when dir holds no CA material at all, 0 when it holds all of it, -1
 * with err when only part of it. */
int pki_present(const char *dir, err_t *err);
/* Creates root, issuing CA and responder; refuses to overwrite. *out
 * holds the responder certificate (for the store) and the issuing CA. */
int pki_create(const ca_conf_t *conf, const sealed_kek_t *kek, const char *dir, pki_t *out,
               err_t *err);
/* A new key and certificate for the OCSP responder (replacing the old
 * ones); *out gets the certificate. */
int pki_renew_responder(const ca_conf_t *conf, const sealed_kek_t *kek, const char *dir, X509 **out,
                        err_t *err);
/* Loads certificates and the issuing and responder keys. */
int pki_load(const sealed_kek_t *kek, const char *dir, pki_t *out, err_t *err);
/* The same with keys that only the signer process holds (signer.h): the
 * network process keeps their public halves and sealed blobs. */
int pki_load_signer(struct signer *sg, const char *dir, pki_t *out, err_t *err);
void pki_clear(pki_t *p);
/* Writes key (PEM, 0600) and cert chain (PEM, 0644) files, new or
 * replacing. */
/* Writes path.tmp, syncs it, then links it into place (no_clobber:
 * CONFLICT when path exists) or renames it over path. */
int pki_write_file(const char *path, const void *p, size_t len, mode_t mode, int no_clobber,
                   err_t *err);
int pki_write_pem_key(const char *path, EVP_PKEY *key, err_t *err);
int pki_write_pem_certs(const char *path, X509 *const *certs, int n, err_t *err);

/* ---- the running CA ---- */

typedef struct ca {
	daemon_t *d;
	const ca_conf_t *conf;
	ca_profile_t prof[CA_NPROFILES];
	int ready; /* CA material loaded */
	pki_t pki;
	EVP_MD *sha256; /* fetched once */
	char ocsp_url[CA_URL_MAX];
	char crl_url[CA_URL_MAX];
	revset_t *revoked;
	kcache_t *kcache;
	struct ocache *ocache; /* pre-signed OCSP answers; NULL: none */
	uint64_t ocsp_signed;  /* OCSP responses signed (atomic) */
	/* CRL, rebuilt on revoke and on a timer */
	pthread_mutex_t crl_mu;
	uint8_t *crl_der;
	size_t crl_len;
	uint64_t crl_number;
	struct event *crl_timer;
	/* revpoll.c: revocations made by other instances, main loop only */
	struct event *revpoll_timer;
	int64_t revpoll_seen; /* the last revocations.id applied */
	/* fini and each pending job; stopping set by fini (the store may be
	 * gone); the last reference runs ca_destroy */
	lifecycle_t lc;
} ca_t;

static inline void
ca_ref(ca_t *ca)
{
	lifecycle_ref(&ca->lc);
}
static inline void
ca_unref(ca_t *ca)
{
	lifecycle_unref(&ca->lc);
}
/* The lifecycle's teardown: ca_teardown, then frees. */
void ca_destroy(void *ca);
/* Sets up what init and the tests share (profiles, digests, sets, CRL
 * state); loads the CA material when dir holds it. */
int ca_setup(ca_t *ca, daemon_t *d, const ca_conf_t *conf, err_t *err);
void ca_teardown(ca_t *ca);
/* The revoked set from the store. */
int ca_load_revoked(ca_t *ca, store_conn_t *c, err_t *err);

/* ---- issue.c ---- */

typedef struct issue_req {
	const ca_profile_t *prof;
	const char *device_id; /* may be NULL unless the profile needs it */
	const char *cert_id;
	uint32_t validity_s; /* 0: the profile's maximum */
	const char *const *dns;
	const char *const *ips;
	const char *requester; /* for the record */
	uint32_t requester_roles;
} issue_req_t;

/* Builds a certificate for pub; *row describes it (der owned by *x). */
int issue_build(ca_t *ca, const issue_req_t *q, EVP_PKEY *pub, int64_t now, X509 **x, uint8_t **der,
                size_t *der_len, certdb_row_t *row, err_t *err);
void issue_register(ca_t *ca);

/* ---- revoke.c: CA_REVOKE, CA_STATUS, CA_LIST ---- */
void revoke_register(ca_t *ca);
/* RFC 5280 reason from a number or name; -1 when not allowed. */
int revoke_reason_parse(const char *s);
const char *revoke_reason_name(int reason);

/* ---- crl.c ---- */

/* Builds and signs a CRL over every revoked row not yet expired. */
int crl_build(ca_t *ca, store_conn_t *c, int64_t now, uint64_t number, uint8_t **der, size_t *len,
              err_t *err);
/* Rebuilds, publishes in memory and in state_dir/crl.der. */
int crl_refresh(ca_t *ca, store_conn_t *c, err_t *err);
int crl_start(ca_t *ca, err_t *err);
void crl_stop(ca_t *ca);

/* ---- revpoll.c: revocations made at the other instances ---- */
int revpoll_start(ca_t *ca, err_t *err);
void revpoll_stop(ca_t *ca);

/* ---- ocsp.c ---- */

/* Answers one DER OCSP request; *rsp is a DER OCSPResponse (malloc'd),
 * also for refusals (malformedRequest ...). */
int ocsp_respond(ca_t *ca, store_conn_t *c, const uint8_t *req, size_t len, int64_t now,
                 uint8_t **rsp, size_t *rsp_len, err_t *err);
int ocsp_start(ca_t *ca, err_t *err);
/* A certificate's status as the store had it when it was looked up. */
typedef struct ocsp_status {
	int status;         /* V_OCSP_CERTSTATUS_ */
	int reason;         /* CRL reason, -1 when none is given */
	int64_t revoked_at; /* when revoked */
} ocsp_status_t;
/* A signed answer for one CertID and its status *st.  An unknown one is not
 * signed (*rsp stays NULL): the fresh path answers it. */
int ocsp_sign_one(ca_t *ca, store_conn_t *c, OCSP_CERTID *cid, int64_t now, uint8_t **rsp,
                  size_t *rsp_len, ocsp_status_t *st, err_t *err);

/* ---- ocache.c: pre-signed answers for nonce-less OCSP requests ---- */

typedef struct ocache ocache_t;
typedef struct ocache_ent {
	lru_node_t node;
	uint8_t key[1 + CA_SERIAL_MAX]; /* hash tag, serial */
	int refs;                       /* atomic */
	int refreshing;                 /* atomic: queued for the refresher */
	int64_t this_update, next_update;
	ocsp_status_t st; /* what der says */
	char etag[20];    /* "16 hex digits of the DER's SHA-256" */
	uint8_t *der;     /* the OCSPResponse */
	size_t len;
} ocache_ent_t;

/* No cache when ocsp.cache_size is 0 or there is no CA yet. */
int ocache_start(ca_t *ca, err_t *err);
/* Joins the refresher (before the store goes); ocache_free frees. */
void ocache_stop(ca_t *ca);
void ocache_free(ca_t *ca);
/* 1 with a reference on the answer for cid (ocache_ent_unref), 0 when the
 * cache does not answer it (another issuer or hash, an unknown serial),
 * -1 with err when signing failed. */
int ocache_lookup(ca_t *ca, OCSP_CERTID *cid, int64_t now, ocache_ent_t **out, err_t *err);
void ocache_ent_unref(ocache_ent_t *e);
/* 1 with cid's status from its cached answer (neither signing nor asking
 * the store: a revocation replaces the answer before it is acknowledged),
 * else 0.  For the requests with a nonce, which are signed fresh. */
int ocache_status(ca_t *ca, OCSP_CERTID *cid, int64_t now, ocsp_status_t *st);
/* After a revocation is durable, before it is answered: the serial's
 * cached answers go and revoked ones are signed. */
void ocache_revoked(ca_t *ca, const uint8_t *serial, size_t len);
int ocache_metrics(ca_t *ca, buf_t *out);
/* The parsers of untrusted bytes (tests/fuzz/fuzz_ocsp.c): one whole DER
 * OCSPRequest with 1..16 CertIDs, else NULL with the OpenSSL error queue
 * empty; and the DER request of GET /ocsp/<URL-encoded base64> from the
 * URI's path (malloc'd), NULL when the path holds none. */
OCSP_REQUEST *ocsp_request_decode(const uint8_t *der, size_t len);
uint8_t *ocsp_get_decode(const char *path, size_t *len);

/* ---- keyinfo.c: CA_VERIFY_KEYINFO ---- */

typedef struct keyinfo_req {
	const char *device_id;
	const char *cert_id;
	const uint8_t *session_id; /* LOGIN_SESSION_LEN */
	const uint8_t *gw_nonce;   /* LOGIN_NONCE_LEN */
	const uint8_t *cert_der;
	size_t cert_len;
	const uint8_t *proof;
	size_t proof_len;
	uint64_t time;
} keyinfo_req_t;

/* 0 with the certificate's serial and not_after, or -1 with the status
 * the login must be refused with. */
int keyinfo_verify(ca_t *ca, const keyinfo_req_t *q, int64_t now, uint8_t serial[CA_SERIAL_MAX],
                   size_t *serial_len, int64_t *not_after, err_t *err);
void keyinfo_register(ca_t *ca);

/* ---- cli.c: offline subcommands ---- */
int cli_main(int argc, char **argv, const daemon_def_t *def);

#endif
