/*
 * qd: qualifyd's shared state.  Three roles (DESIGN 5.D), each on its own
 * listener and each optional in a process:
 *   registration   (qdreg.c)   a device's nonce and the credentialing address
 *   credentialing  (qdcred.c)  enrolment, nonce and certificate checks, OCSP,
 *                              the HSS, the package
 *   provisioning   (qdprov.c)  package fetch by ticket and its confirmation
 * A role that runs elsewhere is reached as a peer (QD_NONCE_PUT, QD_PKG_PUT,
 * QD_PKG_DONE over mutual TLS with role qualifyd).
 */
#ifndef STB_QD_H
#define STB_QD_H

#include <openssl/x509.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon.h"
#include "hss.h"
#include "mbox.h"
#include "outbox.h"
#include "peerpool.h"
#include "qualify.h"
#include "workpool.h"

#define QD_ROLE_REG  0x1
#define QD_ROLE_CRED 0x2
#define QD_ROLE_PROV 0x4

#define QD_ADDR_MAX    262
#define QD_ROUTING_MAX 256
#define QD_LIST_BYTES  60000 /* a list answer stays under a client's max_frame */

/* Device states (qd_devices.state) on the credentialing side. */
enum {
	QD_DEV_ENROLLED = 0,     /* nonce unused */
	QD_DEV_CREDENTIALED = 1, /* nonce spent, package made, not confirmed */
	QD_DEV_DELIVERED = 2,    /* the device confirmed the package */
};

typedef struct qd_conf {
	char *roles;
	char *device_ca;
	char *operator_cert;
	char *operator_key;
	char *cred_address;
	char *prov_address;
	char *registration_peer;
	char *provisioning_peer;
	char *credentialing_peer;
	long long peer_timeout_ms;
	long long nonce_ttl_s;
	long long ticket_ttl_s;
	char *ocsp_url;
	long long ocsp_timeout_ms;
	long long ocsp_skew_s;
	long long ocsp_max_age_s;
	char *ocsp_hash;
	char *hss_backend;
	char *hss_osmo_vty;
	long long hss_osmo_timeout_ms;
	long long hss_threads;
} qd_conf_t;

/* qddevc: device certificates that passed the device_ca check, by hash. */
typedef struct qd_devc qd_devc_t;
int qd_devc_new(qd_devc_t **out, err_t *err);
void qd_devc_free(qd_devc_t *dc);
/* 1 with the device ID (and *issuer, referenced, when issuer is not NULL)
 * of a certificate checked less than a few minutes ago, else 0. */
int qd_devc_get(qd_devc_t *dc, X509 *cert, char id[STB_ID_MAX + 1], X509 **issuer);
void qd_devc_put(qd_devc_t *dc, X509 *cert, const char *id, X509 *issuer);

typedef struct qd {
	daemon_t *d;
	qd_conf_t *conf;
	unsigned roles;
	X509_STORE *device_ca;
	qd_devc_t *devc; /* certificates checked against device_ca */
	X509 *op_cert;
	EVP_PKEY *op_key;
	STACK_OF(X509) * op_chain;
	hss_t *hss;
	workpool_t *hss_jobs; /* blocking HSS calls (osmo-hlr) */
	peerpool_t *reg_peer, *prov_peer, *cred_peer;
	mbox_t *main_mb;   /* the main loop's, for the outbox */
	outbox_t *done_ob; /* provisioning without credentialing: QD_PKG_DONE */
	char cred_addr[QD_ADDR_MAX];
	char prov_addr[QD_ADDR_MAX];
	struct sockaddr_storage ocsp_ss; /* ocsp.url's host, looked up at start-up */
	int ocsp_sl;
} qd_t;

/* The device a verified device certificate names (SAN URI
 * urn:stbcred:device:<id>), chained to the manufacturer CAs (device_ca).
 * UNAUTHENTICATED / FORBIDDEN with the reason.  A resumed TLS session
 * carries the certificate but not the chain the device sent: the chain is
 * then built from device_ca alone.  *issuer (when issuer is not NULL) gets
 * the certificate's issuer from that chain, with a reference. */
int qd_device_of(qd_t *qd, srv_req_t *r, char id[STB_ID_MAX + 1], X509 **issuer, err_t *err);
/* "subject@peer" of a request, for audit. */
void qd_actor(srv_req_t *r, char *out, size_t cap);
/* A refused device request: audited (the device is authenticated), then
 * answered. */
void qd_refuse(qd_t *qd, srv_req_t *r, const char *device_id, const char *event, const err_t *why);
/* Sealing AADs. */
void qd_aad(char *out, size_t cap, const char *what, const char *id);

void qd_reg_register(qd_t *qd);
void qd_cred_register(qd_t *qd);
void qd_prov_register(qd_t *qd);
void qd_admin_register(qd_t *qd);
void qd_enrol_register(qd_t *qd); /* credentialing side */
void qd_done_register(qd_t *qd);  /* credentialing side: QD_PKG_DONE */

/* Writer-thread parts a local role shares with another (one process). */
int qd_reg_put(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *nonce,
               uint64_t expires, const char *cred_addr, const char *routing, err_t *err);
int qd_prov_put(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *ticket,
                uint64_t expires, const uint8_t *pkg, size_t pkg_len, err_t *err);
int qd_cred_done(qd_t *qd, store_conn_t *c, const char *device_id, const uint8_t *digest,
                 int64_t now, err_t *err);

static inline int64_t
qd_now(void)
{
	return (int64_t)time(NULL);
}

#endif
