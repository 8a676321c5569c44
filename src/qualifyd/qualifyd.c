/* qualifyd: credentialing bootstrap: nonce, OCSP, HSS, provisioning. */
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ocspq.h"
#include "qd.h"
#include "x509.h"

#define QD_DEVICE_URI "urn:stbcred:device:"

static qd_conf_t qd_conf;

static const char *const qd_hash_choices[] = {"sha1", "sha256", NULL};
static const char *const qd_hss_choices[] = {"embedded", "osmo-hlr", NULL};

#define OFF(f) offsetof(qd_conf_t, f)
static const cfg_opt_t qd_opts[] = {
    {"roles", CFG_STR, "registration,credentialing,provisioning", 0, 0, NULL, OFF(roles),
     "the roles this process runs (comma-separated); the others are reached as peers"},
    {"device_ca", CFG_STR, "", 0, 0, NULL, OFF(device_ca),
     "PEM file of the manufacturer CAs device certificates must chain to (\"\": tls.ca)"},
    {"operator.cert", CFG_STR, "", 0, 0, NULL, OFF(operator_cert),
     "PEM certificate (then its chain) that signs packages (\"\": tls.cert, for demos)"},
    {"operator.key", CFG_STR, "", 0, 0, NULL, OFF(operator_key),
     "PEM private key of operator.cert, 0600 (\"\": tls.key)"},
    {"cred_address", CFG_STR, "", 0, 0, NULL, OFF(cred_address),
     "host:port devices are sent to for credentials (\"\": the credentialing listener's)"},
    {"prov_address", CFG_STR, "", 0, 0, NULL, OFF(prov_address),
     "host:port devices fetch packages from (\"\": the provisioning listener's)"},
    {"peers.registration", CFG_STR, "", 0, 0, NULL, OFF(registration_peer),
     "host:port of a remote registration role (\"\": this process)"},
    {"peers.provisioning", CFG_STR, "", 0, 0, NULL, OFF(provisioning_peer),
     "host:port of a remote provisioning role (\"\": this process)"},
    {"peers.credentialing", CFG_STR, "", 0, 0, NULL, OFF(credentialing_peer),
     "host:port of a remote credentialing role (\"\": this process)"},
    {"peers.timeout_ms", CFG_INT, "5000", 100, 60000, NULL, OFF(peer_timeout_ms),
     "one call to a peer role"},
    {"nonce_ttl_s", CFG_INT, "604800", 60, 31536000, NULL, OFF(nonce_ttl_s),
     "a registration nonce must be used within this after enrolment"},
    {"ticket_ttl_s", CFG_INT, "600", 1, 86400, NULL, OFF(ticket_ttl_s),
     "a package must be fetched and confirmed within this"},
    {"ocsp.url", CFG_STR, "", 0, 0, NULL, OFF(ocsp_url),
     "OCSP responder for device certificates, http://IP:port/path (\"\": the "
     "certificate's AIA)"},
    {"ocsp.timeout_ms", CFG_INT, "5000", 100, 60000, NULL, OFF(ocsp_timeout_ms),
     "one OCSP query, connect to answer"},
    {"ocsp.skew_s", CFG_INT, "300", 0, 3600, NULL, OFF(ocsp_skew_s),
     "allowed clock difference with the responder"},
    {"ocsp.max_age_s", CFG_INT, "-1", -1, 31536000, NULL, OFF(ocsp_max_age_s),
     "refuse an answer whose thisUpdate is older (-1: its nextUpdate decides)"},
    {"ocsp.cert_id_hash", CFG_STR, "sha1", 0, 0, qd_hash_choices, OFF(ocsp_hash),
     "hash of the CertID in requests"},
    {"hss.backend", CFG_STR, "embedded", 0, 0, qd_hss_choices, OFF(hss_backend),
     "embedded (the pool is the HSS) or osmo-hlr (rows are also provisioned there)"},
    {"hss.osmo_vty", CFG_STR, "127.0.0.1:4258", 0, 0, NULL, OFF(hss_osmo_vty),
     "osmo-hlr's VTY, host:port"},
    {"hss.osmo_timeout_ms", CFG_INT, "5000", 100, 60000, NULL, OFF(hss_osmo_timeout_ms),
     "one osmo-hlr VTY exchange"},
    {"hss.threads", CFG_INT, "2", 1, 16, NULL, OFF(hss_threads),
     "threads for blocking HSS calls (osmo-hlr)"},
};

static const char *const qd_migrations[] = {
    /* credentialing: enrolled devices; nonce sealed (AAD qd-nonce:<id>) */
    "CREATE TABLE qd_devices("
    " device_id TEXT PRIMARY KEY,"
    " nonce BLOB NOT NULL,"
    " routing TEXT,"
    " enrolled_at INTEGER NOT NULL,"
    " nonce_expires INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " imsi TEXT, pkg_digest BLOB, pkg_expires INTEGER,"
    " changed_at INTEGER NOT NULL);"
    /* registration: what a device is told; nonce sealed (AAD qd-reg:<id>) */
    "CREATE TABLE qd_reg("
    " device_id TEXT PRIMARY KEY,"
    " nonce BLOB NOT NULL,"
    " expires INTEGER NOT NULL,"
    " cred_addr TEXT NOT NULL,"
    " routing TEXT,"
    " updated_at INTEGER NOT NULL);"
    /* provisioning: packages by SHA-256 of their ticket */
    "CREATE TABLE qd_packages("
    " ticket_hash BLOB PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " package BLOB NOT NULL,"
    " digest BLOB NOT NULL,"
    " issued INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " confirmed_at INTEGER);"
    "CREATE INDEX qd_packages_issued ON qd_packages(issued);"
    "CREATE INDEX qd_packages_device ON qd_packages(device_id);",
    hss_schema,
    /* provisioning: confirmations to a remote credentialing role */
    outbox_schema,
};
/* The same steps in PostgreSQL DDL (store.h). */
static const char *const qd_migrations_pg[] = {
    /* credentialing: enrolled devices; nonce sealed (AAD qd-nonce:<id>) */
    "CREATE TABLE qd_devices("
    " device_id TEXT PRIMARY KEY,"
    " nonce BYTEA NOT NULL,"
    " routing TEXT,"
    " enrolled_at BIGINT NOT NULL,"
    " nonce_expires BIGINT NOT NULL,"
    " state BIGINT NOT NULL DEFAULT 0,"
    " imsi TEXT, pkg_digest BYTEA, pkg_expires BIGINT,"
    " changed_at BIGINT NOT NULL);"
    /* registration: what a device is told; nonce sealed (AAD qd-reg:<id>) */
    "CREATE TABLE qd_reg("
    " device_id TEXT PRIMARY KEY,"
    " nonce BYTEA NOT NULL,"
    " expires BIGINT NOT NULL,"
    " cred_addr TEXT NOT NULL,"
    " routing TEXT,"
    " updated_at BIGINT NOT NULL);"
    /* provisioning: packages by SHA-256 of their ticket */
    "CREATE TABLE qd_packages("
    " ticket_hash BYTEA PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " package BYTEA NOT NULL,"
    " digest BYTEA NOT NULL,"
    " issued BIGINT NOT NULL,"
    " expires BIGINT NOT NULL,"
    " state BIGINT NOT NULL DEFAULT 0,"
    " confirmed_at BIGINT);"
    "CREATE INDEX qd_packages_issued ON qd_packages(issued);"
    "CREATE INDEX qd_packages_device ON qd_packages(device_id);",
    hss_schema_pg,
    /* provisioning: confirmations to a remote credentialing role */
    outbox_schema_pg,
};

void
qd_aad(char *out, size_t cap, const char *what, const char *id)
{
	snprintf(out, cap, "qd-%s:%s", what, id);
}

void
qd_actor(srv_req_t *r, char *out, size_t cap)
{
	snprintf(out, cap, "%s@%s", srv_conn_subject(r->conn), srv_conn_peer(r->conn));
}

static int
qd_uri_id(const char *rest, size_t len, void *arg)
{
	char *id = arg;

	if (id[0] != '\0' || len > STB_ID_MAX || !proto_id_valid((const uint8_t *)rest, len)) {
		id[0] = '\1'; /* two device URIs, or a bad one: names nobody */
		return 1;
	}
	memcpy(id, rest, len);
	id[len] = '\0';
	return 0;
}

int
qd_device_of(qd_t *qd, srv_req_t *r, char id[STB_ID_MAX + 1], X509 **issuer, err_t *err)
{
	X509 *cert = srv_conn_peer_cert(r->conn), *iss = NULL;
	STACK_OF(X509) *chain = srv_conn_peer_chain(r->conn), *built;
	X509_STORE_CTX *vc;
	int ok;

	id[0] = '\0';
	if (issuer != NULL)
		*issuer = NULL;
	if (cert == NULL)
		return err_set(err, STB_UNAUTHENTICATED, "a device certificate is required");
	if (qd_devc_get(qd->devc, cert, id, issuer))
		return 0;
	/* the manufacturer CAs, not whatever the listener's TLS trusts */
	if ((vc = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(vc, qd->device_ca, cert, chain)) {
		X509_STORE_CTX_free(vc);
		return err_set_ossl(err, STB_INTERNAL, "certificate check");
	}
	ok = X509_verify_cert(vc) == 1;
	built = ok ? X509_STORE_CTX_get0_chain(vc) : NULL;
	if (ok && sk_X509_num(built) > 1 && X509_up_ref(sk_X509_value(built, 1)) == 1)
		iss = sk_X509_value(built, 1);
	X509_STORE_CTX_free(vc);
	if (!ok)
		return err_set_ossl(err, STB_UNAUTHENTICATED,
		                    "the certificate does not chain to a manufacturer CA");
	crt_san_uri_each(cert, QD_DEVICE_URI, qd_uri_id, id);
	if (id[0] == '\0' || id[0] == '\1') {
		id[0] = '\0';
		X509_free(iss);
		return err_set(err, STB_FORBIDDEN, "the certificate names no single device");
	}
	qd_devc_put(qd->devc, cert, id, iss);
	if (issuer != NULL)
		*issuer = iss;
	else
		X509_free(iss);
	return 0;
}

/* ---- refusals of authenticated devices: audited, then answered ---- */

struct qd_refusal {
	qd_t *qd;
	srv_req_t *r;
	err_t why;
	char event[32];
	char device[STB_ID_MAX + 1];
	char actor[160];
};

static int
qd_refuse_write(store_conn_t *c, void *arg, err_t *err)
{
	struct qd_refusal *f = arg;

	return daemon_auditf(f->qd->d, c, err, f->event, f->actor, "device=%s status=%s reason=%s",
	                     f->device[0] ? f->device : "-", stb_status_name(f->why.status),
	                     f->why.msg);
}

static void
qd_refuse_done(void *arg, const err_t *err)
{
	struct qd_refusal *f = arg;

	if (err->status != STB_OK)
		log_warnx("refusal of %s not audited: %s", f->device, err->msg);
	srv_reply_errt(f->r, &f->why);
	free(f);
}

void
qd_refuse(qd_t *qd, srv_req_t *r, const char *device_id, const char *event, const err_t *why)
{
	struct qd_refusal *f;

	/* a peer that showed no usable certificate costs a counter, not a row */
	if (device_id == NULL || device_id[0] == '\0') {
		daemon_refused(qd->d, r, event, stb_status_name(why->status), why->msg);
		srv_reply_errt(r, why);
		return;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		srv_reply_errt(r, why);
		return;
	}
	f->qd = qd;
	f->why = *why;
	snprintf(f->event, sizeof(f->event), "%s", event);
	snprintf(f->device, sizeof(f->device), "%s", device_id);
	qd_actor(r, f->actor, sizeof(f->actor));
	if (r->heap) { /* deferred already: a second copy would never be freed */
		err_t err;
		f->r = r;
		if (store_write(qd->d->store, srv_req_mbox(r), qd_refuse_write, qd_refuse_done, f,
		                &err) == -1) {
			srv_reply_errt(r, why);
			free(f);
		}
		return;
	}
	if (daemon_write_deferred(qd->d, r, qd_refuse_write, qd_refuse_done, f, &f->r) == -1)
		free(f);
}

/* ---- lifecycle ---- */

static int
qd_roles_parse(const char *s, unsigned *out, err_t *err)
{
	char buf[128];
	char *save = NULL, *tok;

	*out = 0;
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return err_set(err, STB_BAD_REQUEST, "roles: too long");
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (strcmp(tok, "registration") == 0)
			*out |= QD_ROLE_REG;
		else if (strcmp(tok, "credentialing") == 0)
			*out |= QD_ROLE_CRED;
		else if (strcmp(tok, "provisioning") == 0)
			*out |= QD_ROLE_PROV;
		else
			return err_set(err, STB_BAD_REQUEST,
			               "roles: '%s' is not registration, credentialing or "
			               "provisioning",
			               tok);
	}
	if (*out == 0)
		return err_set(err, STB_BAD_REQUEST, "roles: name at least one role");
	return 0;
}

/* "" or host:port that a device or peer can be told (QD_CRED_ADDR's bounds) */
static int
qd_addr_check(const char *key, const char *v, err_t *err)
{
	size_t n = strlen(v);
	const char *colon = strrchr(v, ':');

	if (n == 0)
		return 0;
	if (n < 3 || n >= QD_ADDR_MAX || colon == NULL || colon == v || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return err_set(err, STB_BAD_REQUEST, "%s: '%s' is not host:port", key, v);
	return 0;
}

static int
qd_check(err_t *err)
{
	unsigned roles;

	if (qd_roles_parse(qd_conf.roles, &roles, err) == -1)
		return -1;
	if (qd_conf.ocsp_url[0] != '\0' && strncmp(qd_conf.ocsp_url, "http://", 7) != 0)
		return err_set(err, STB_BAD_REQUEST, "ocsp.url: '%s' is not http://host:port/path",
		               qd_conf.ocsp_url);
	if (qd_addr_check("cred_address", qd_conf.cred_address, err) == -1 ||
	    qd_addr_check("prov_address", qd_conf.prov_address, err) == -1 ||
	    qd_addr_check("peers.registration", qd_conf.registration_peer, err) == -1 ||
	    qd_addr_check("peers.provisioning", qd_conf.provisioning_peer, err) == -1 ||
	    qd_addr_check("peers.credentialing", qd_conf.credentialing_peer, err) == -1)
		return -1;
	if ((qd_conf.operator_cert[0] == '\0') != (qd_conf.operator_key[0] == '\0'))
		return err_set(err, STB_BAD_REQUEST, "operator.cert and operator.key go together");
	if (roles & QD_ROLE_CRED) {
		if (!(roles & QD_ROLE_REG) && qd_conf.registration_peer[0] == '\0')
			return err_set(
			    err, STB_BAD_REQUEST,
			    "peers.registration: required when this process does not run "
			    "the registration role");
		if (!(roles & QD_ROLE_PROV) && qd_conf.provisioning_peer[0] == '\0')
			return err_set(
			    err, STB_BAD_REQUEST,
			    "peers.provisioning: required when this process does not run "
			    "the provisioning role");
	}
	if ((roles & QD_ROLE_PROV) && !(roles & QD_ROLE_CRED) &&
	    qd_conf.credentialing_peer[0] == '\0')
		return err_set(err, STB_BAD_REQUEST,
		               "peers.credentialing: required when this process provisions without "
		               "credentialing");
	return 0;
}

static int
qd_load_operator(qd_t *qd, err_t *err)
{
	FILE *f;
	X509 *x;

	const char *cert = qd_conf.operator_cert[0] ? qd_conf.operator_cert : qd->d->conf.tls_cert;
	const char *key = qd_conf.operator_cert[0] ? qd_conf.operator_key : qd->d->conf.tls_key;

	if ((f = fopen(cert, "r")) == NULL)
		return err_set(err, STB_BAD_REQUEST, "operator.cert: cannot open %s", cert);
	qd->op_cert = PEM_read_X509(f, NULL, NULL, NULL);
	qd->op_chain = sk_X509_new_null();
	while (qd->op_chain != NULL && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		sk_X509_push(qd->op_chain, x);
	fclose(f);
	if (qd->op_cert == NULL)
		return err_set_ossl(err, STB_BAD_REQUEST, "operator.cert: no certificate in %s",
		                    cert);
	if ((f = fopen(key, "r")) == NULL)
		return err_set(err, STB_BAD_REQUEST, "operator.key: cannot open %s", key);
	qd->op_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (qd->op_key == NULL)
		return err_set_ossl(err, STB_BAD_REQUEST, "operator.key: no key in %s", key);
	if (X509_check_private_key(qd->op_cert, qd->op_key) != 1)
		return err_set_ossl(err, STB_BAD_REQUEST,
		                    "operator.key does not match operator.cert");
	return 0;
}

static int
qd_load_device_ca(qd_t *qd, err_t *err)
{
	if ((qd->device_ca = X509_STORE_new()) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	const char *f = qd_conf.device_ca[0] ? qd_conf.device_ca : qd->d->conf.tls_ca;

	if (f == NULL || X509_STORE_load_file(qd->device_ca, f) != 1)
		return err_set_ossl(err, STB_BAD_REQUEST, "device_ca: cannot load %s",
		                    f != NULL ? f : "(none)");
	return 0;
}

/* The address of listener name (else the first) when none is configured. */
static void
qd_default_addr(qd_t *qd, const char *conf, const char *name, char out[QD_ADDR_MAX])
{
	const char *a = conf;

	if (a[0] == '\0') {
		a = qd->d->listeners[0].conf.listen;
		for (int i = 0; i < qd->d->nlisteners; i++)
			if (strcmp(qd->d->listeners[i].conf.name, name) == 0)
				a = qd->d->listeners[i].conf.listen;
	}
	snprintf(out, QD_ADDR_MAX, "%s", a);
}

static int
qd_peer(qd_t *qd, const char *addr, const char *name, peerpool_t **out, err_t *err)
{
	peerpool_conf_t pc = {.name = name,
	                      .addr = addr,
	                      .expect_roles = STB_R_QUALIFYD,
	                      .backoff_min_ms = 200,
	                      .backoff_max_ms = 5000,
	                      .timeout_ms = (int)qd_conf.peer_timeout_ms,
	                      .tls = &qd->d->client_tls};

	if (addr[0] == '\0')
		return 0;
	return (*out = peerpool_new(&pc, err)) != NULL ? 0 : -1;
}

/* The outbox's send: one QD_PKG_DONE to the credentialing role. */
struct qd_send {
	outbox_result_fn done;
	void *done_arg;
};

static void
qd_send_done(void *arg, const msg_t *rsp, const err_t *err)
{
	struct qd_send *q = arg;
	err_t e;

	if (err->status != STB_OK)
		q->done(q->done_arg, err, NULL, 0);
	else if (msg_status(rsp) != STB_OK) {
		char text[256] = "";
		msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
		err_set(&e, msg_status(rsp), "credentialing role: %s", text);
		q->done(q->done_arg, &e, NULL, 0);
	} else {
		err_clear(&e);
		q->done(q->done_arg, &e, NULL, 0);
	}
	free(q);
}

static void
qd_outbox_send(void *arg, const outbox_item_t *it, outbox_result_fn done, void *done_arg)
{
	qd_t *qd = arg;
	struct qd_send *q = malloc(sizeof(*q));
	buf_t b = {0};
	err_t err;

	if (q == NULL) {
		err_set(&err, STB_INTERNAL, "out of memory");
		done(done_arg, &err, NULL, 0);
		return;
	}
	*q = (struct qd_send){done, done_arg};
	b.data = (uint8_t *)it->body;
	b.len = b.cap = b.max = it->body_len;
	if (peerpool_call(qd->cred_peer, qd->d->base, qd->main_mb, it->msg_type, &b, 0,
	                  qd_send_done, q, &err) == -1) {
		free(q);
		done(done_arg, &err, NULL, 0);
	}
}

static int
qd_outbox_start(qd_t *qd, err_t *err)
{
	outbox_conf_t oc = {.name = "pkg_done",
	                    .backoff_min_ms = 500,
	                    .backoff_max_ms = 60000,
	                    .max_tries = 1000,
	                    .send = qd_outbox_send,
	                    .send_arg = qd};

	if ((qd->main_mb = mbox_new(qd->d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((qd->done_ob = outbox_new(qd->d->store, qd->d->base, qd->main_mb, &oc, err)) == NULL)
		return -1;
	return outbox_start(qd->done_ob, err);
}

static int
qd_init(daemon_t *d, err_t *err)
{
	hss_conf_t hc = {.osmo_timeout_ms = (int)qd_conf.hss_osmo_timeout_ms};
	qd_t *qd;

	if ((qd = calloc(1, sizeof(*qd))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	d->priv = qd;
	qd->d = d;
	qd->conf = &qd_conf;
	if (qd_roles_parse(qd_conf.roles, &qd->roles, err) == -1 ||
	    qd_load_device_ca(qd, err) == -1 || qd_devc_new(&qd->devc, err) == -1)
		return -1;
	if (qd_conf.ocsp_url[0] != '\0' &&
	    ocspq_resolve(qd_conf.ocsp_url, &qd->ocsp_ss, &qd->ocsp_sl, err) == -1)
		return -1;
	qd_default_addr(qd, qd_conf.cred_address, "credentialing", qd->cred_addr);
	qd_default_addr(qd, qd_conf.prov_address, "provisioning", qd->prov_addr);
	if (qd->roles & QD_ROLE_CRED) {
		snprintf(hc.backend, sizeof(hc.backend), "%s", qd_conf.hss_backend);
		snprintf(hc.osmo_vty, sizeof(hc.osmo_vty), "%s", qd_conf.hss_osmo_vty);
		if (qd_load_operator(qd, err) == -1 || hss_open(&hc, d->kek, &qd->hss, err) == -1)
			return -1;
		if ((qd->hss_jobs = workpool_new("hss", (int)qd_conf.hss_threads,
		                                 (size_t)qd_conf.hss_threads * 64, err)) == NULL)
			return -1;
		if (!(qd->roles & QD_ROLE_REG) && qd_peer(qd, qd_conf.registration_peer,
		                                          "registration", &qd->reg_peer, err) == -1)
			return -1;
		if (!(qd->roles & QD_ROLE_PROV) &&
		    qd_peer(qd, qd_conf.provisioning_peer, "provisioning", &qd->prov_peer, err) ==
		        -1)
			return -1;
	}
	if ((qd->roles & QD_ROLE_PROV) && !(qd->roles & QD_ROLE_CRED) &&
	    (qd_peer(qd, qd_conf.credentialing_peer, "credentialing", &qd->cred_peer, err) == -1 ||
	     qd_outbox_start(qd, err) == -1))
		return -1;
	if (qd->roles & QD_ROLE_REG)
		qd_reg_register(qd);
	if (qd->roles & QD_ROLE_CRED)
		qd_cred_register(qd);
	if (qd->roles & QD_ROLE_PROV)
		qd_prov_register(qd);
	qd_admin_register(qd);
	return 0;
}

static void
qd_fini(daemon_t *d)
{
	qd_t *qd = d->priv;

	if (qd == NULL)
		return;
	if (qd->done_ob != NULL)
		outbox_stop(qd->done_ob, 2000);
	outbox_free(qd->done_ob);
	workpool_free(qd->hss_jobs);
	peerpool_free(qd->reg_peer);
	peerpool_free(qd->prov_peer);
	peerpool_free(qd->cred_peer);
	hss_close(qd->hss);
	X509_STORE_free(qd->device_ca);
	qd_devc_free(qd->devc);
	X509_free(qd->op_cert);
	sk_X509_pop_free(qd->op_chain, X509_free);
	EVP_PKEY_free(qd->op_key);
	mbox_free(qd->main_mb);
	free(qd);
	d->priv = NULL;
}

static const daemon_def_t qualifyd_def = {
    .name = "qualifyd",
    .role = STB_R_QUALIFYD,
    .listen = "127.0.0.1:7106",
    .http_listen = "127.0.0.1:9106",
    .client_auth = "optional",
    .opts = qd_opts,
    .nopts = sizeof(qd_opts) / sizeof(qd_opts[0]),
    .conf = &qd_conf,
    .migrations = qd_migrations,
    .nmigrations = sizeof(qd_migrations) / sizeof(qd_migrations[0]),
    .pg_migrations = qd_migrations_pg,
    .npg_migrations = sizeof(qd_migrations_pg) / sizeof(qd_migrations_pg[0]),
    .check = qd_check,
    .init = qd_init,
    .fini = qd_fini,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &qualifyd_def);
}
