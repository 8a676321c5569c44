/*
 * ca-authd: serials, profiles, CSR checks, certificate building, the CA
 * material, key info verdicts, the CRL and OCSP answers, on a real CA made
 * in a temporary directory with a real store.
 */
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "login.h"
#include "testutil.h"
#include "x509.h"

/* crt_time() of t, which must parse. */
static int64_t
unix_time(const ASN1_TIME *t)
{
	int64_t v = -1;

	assert_int_equal(crt_time(t, &v, NULL), 0);
	return v;
}

/* ---- helpers ---- */

static const cfg_table_t conf_tab = {NULL, 0, &conf_ca};

/* The defaults of ca-authd's table, then text. */
static int
conf_load(const char *text, err_t *err)
{
	cfg_table_t t = conf_tab;

	t.opts = conf_opts;
	t.nopts = CONF_NOPTS;
	return cfg_load_text(&t, 1, text, "test.json", err);
}

static void
conf_free(void)
{
	cfg_table_t t = conf_tab;

	t.opts = conf_opts;
	t.nopts = CONF_NOPTS;
	cfg_free(&t, 1);
}

static int
make_csr(const char *curve, uint8_t **der, size_t *len, EVP_PKEY **key)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *p = NULL;
	int n;

	*key = EVP_EC_gen(curve);
	if (req == NULL || *key == NULL || !X509_REQ_set_pubkey(req, *key) ||
	    X509_REQ_sign(req, *key, EVP_sha256()) <= 0 || (n = i2d_X509_REQ(req, &p)) <= 0) {
		X509_REQ_free(req);
		return -1;
	}
	X509_REQ_free(req);
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* A whole CA: config defaults, KEK, store, CA material, ca_t. */
typedef struct fix {
	daemon_t d;
	ca_t ca;
	char dir[TU_DIR_MAX];
} fix_t;

static int
fix_audit(store_conn_t *c, void *arg, err_t *err)
{
	(void)arg;
	return store_exec(c, tu_store_backend() == STORE_PG ? audit_schema_pg : audit_schema, err);
}

static int
fix_setup(void **state)
{
	fix_t *f = calloc(1, sizeof(*f));
	uint8_t key[SEALED_KEY_LEN];
	char path[TU_WHERE_MAX];
	pki_t p;
	err_t err;

	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, sizeof(f->dir)), 0);
	assert_int_equal(conf_load(NULL, &err), 0);
	RAND_bytes(key, sizeof(key));
	assert_int_equal(sealed_kek_from_bytes(key, &f->d.kek, &err), 0);
	tu_store_where(path, sizeof(path), f->dir, "ca.db");
	f->d.store =
	    tu_store_open(path, certdb_migrations, certdb_migrations_pg, CERTDB_NMIGRATIONS, &err);
	assert_non_null(f->d.store);
	assert_int_equal(store_write_sync(f->d.store, fix_audit, NULL, &err), 0);
	f->d.conf.state_dir = f->dir;
	f->d.conf.http_listen = "127.0.0.1:9101";
	assert_int_equal(pki_create(&conf_ca, f->d.kek, f->dir, &p, &err), 0);
	pki_clear(&p);
	assert_int_equal(ca_setup(&f->ca, &f->d, &conf_ca, &err), 0);
	assert_true(f->ca.ready);
	*state = f;
	return 0;
}

static int
fix_teardown(void **state)
{
	fix_t *f = *state;

	ca_teardown(&f->ca);
	store_close(f->d.store);
	sealed_kek_free(f->d.kek);
	conf_free();
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

struct ins {
	certdb_row_t *row;
};

static int
ins_write(store_conn_t *c, void *arg, err_t *err)
{
	return certdb_insert(c, arg, err);
}

/* Issues under profile for a fresh key; records it when record is set. */
static X509 *
fix_issue(fix_t *f, const char *profile, const char *dev, const char *cid, uint32_t validity,
          int64_t now, int record, EVP_PKEY **key, certdb_row_t *row)
{
	issue_req_t q;
	uint8_t *der;
	size_t len;
	X509 *x;
	err_t err;

	memset(&q, 0, sizeof(q));
	q.prof = profile_find(f->ca.prof, profile);
	q.device_id = dev;
	q.cert_id = cid;
	q.validity_s = validity;
	q.requester = "test";
	*key = EVP_EC_gen("P-256");
	assert_int_equal(issue_build(&f->ca, &q, *key, now, &x, &der, &len, row, &err), 0);
	if (record)
		assert_int_equal(store_write_sync(f->d.store, ins_write, row, &err), 0);
	OPENSSL_free(der);
	row->der = NULL;
	return x;
}

/* ---- serials ---- */

static void
test_serial_new(void **state)
{
	uint8_t s[64][CA_SERIAL_LEN];

	(void)state;
	for (int i = 0; i < 64; i++) {
		assert_int_equal(cert_serial_new(s[i], NULL), 0);
		assert_true(s[i][0] >= 0x40 && s[i][0] <= 0x7f); /* positive, full length */
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(s[i], s[j], CA_SERIAL_LEN);
	}
}

/* ---- profiles ---- */

static void
test_profiles(void **state)
{
	static const struct {
		const char *json;
		const char *key; /* named in the error, NULL: accepted */
	} cases[] = {
	    {"{}", NULL},
	    {"{\"profiles\":{\"device\":{\"requesters\":\"admin,cert-proxyd\"}}}", NULL},
	    {"{\"profiles\":{\"stb-media\":{\"key_usage\":\"digitalSignature,keyCertSign\"}}}",
	     "profiles.stb-media.key_usage"},
	    {"{\"profiles\":{\"stb-media\":{\"key_usage\":\"\"}}}", "profiles.stb-media.key_usage"},
	    {"{\"profiles\":{\"service\":{\"ext_key_usage\":\"anyThing\"}}}",
	     "profiles.service.ext_key_usage"},
	    {"{\"profiles\":{\"stb-media\":{\"requesters\":\"media-gw\"}}}",
	     "profiles.stb-media.requesters"},
	    {"{\"profiles\":{\"device\":{\"requesters\":\"admin,nobody\"}}}",
	     "profiles.device.requesters"},
	    {"{\"ocsp\":{\"url\":\"ftp://x/ocsp\"}}", "ocsp.url"},
	    {"{\"crl\":{\"url\":\"http://a b/crl\"}}", "crl.url"},
	    {"{\"crl\":{\"validity_s\":600,\"refresh_s\":600}}", "crl.refresh_s"},
	};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		ca_profile_t prof[CA_NPROFILES];
		err_t err;
		assert_int_equal(conf_load(cases[i].json, &err), 0);
		if (cases[i].key == NULL) {
			assert_int_equal(profile_load(&conf_ca, prof, &err), 0);
			assert_non_null(profile_find(prof, "stb-media"));
			assert_null(profile_find(prof, "nope"));
		} else {
			assert_int_equal(profile_load(&conf_ca, prof, &err), -1);
			assert_int_equal(err.status, STB_BAD_REQUEST);
			assert_non_null(strstr(err.msg, cases[i].key));
		}
	}
	conf_free();
}

/* ---- CSRs ---- */

static void
test_csr(void **state)
{
	uint8_t *der, *bad;
	size_t len;
	EVP_PKEY *key, *pub;
	err_t err;

	(void)state;
	assert_int_equal(make_csr("P-256", &der, &len, &key), 0);
	assert_int_equal(cert_csr_check(der, len, &pub, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pub, key), 1);
	EVP_PKEY_free(pub);
	/* a flipped bit in the signature: no proof of possession */
	bad = malloc(len + 1);
	memcpy(bad, der, len);
	bad[len - 3] ^= 1;
	assert_int_equal(cert_csr_check(bad, len, &pub, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_null(pub);
	/* trailing bytes, truncation, garbage */
	memcpy(bad, der, len);
	bad[len] = 0;
	assert_int_equal(cert_csr_check(bad, len + 1, &pub, &err), -1);
	assert_int_equal(cert_csr_check(der, len - 1, &pub, &err), -1);
	memset(bad, 0x30, len);
	assert_int_equal(cert_csr_check(bad, len, &pub, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	free(bad);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	/* another curve */
	assert_int_equal(make_csr("P-384", &der, &len, &key), 0);
	assert_int_equal(cert_csr_check(der, len, &pub, &err), -1);
	assert_non_null(strstr(err.msg, "P-256"));
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void
test_reasons(void **state)
{
	static const struct {
		const char *in;
		int out;
	} cases[] = {{"0", 0},
	             {"keyCompromise", 1},
	             {"4", 4},
	             {"superseded", 4},
	             {"9", 9},
	             {"6", -1}, /* hold: nothing here un-revokes */
	             {"certificateHold", -1},
	             {"8", -1},
	             {"7", -1},
	             {"11", -1},
	             {"", -1},
	             {"bogus", -1}};
	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++)
		assert_int_equal(revoke_reason_parse(cases[i].in), cases[i].out);
	assert_string_equal(revoke_reason_name(1), "keyCompromise");
}

/* ---- the CA material ---- */

static void
test_pki(void **state)
{
	fix_t *f = *state;
	uint8_t other[SEALED_KEY_LEN];
	sealed_kek_t *k2;
	pki_t p;
	err_t err;
	char path[TU_DIR_MAX + 32];

	/* idempotence is the caller's: create refuses to overwrite */
	assert_int_equal(pki_present(f->dir, &err), 0);
	assert_int_equal(pki_create(&conf_ca, f->d.kek, f->dir, &p, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	/* the issuing CA and responder are what a CA should be */
	assert_int_equal(X509_check_ca(f->ca.pki.root), 1);
	assert_int_equal(X509_check_ca(f->ca.pki.issuing), 1);
	assert_int_equal(X509_check_ca(f->ca.pki.ocsp), 0);
	assert_true(X509_get_extended_key_usage(f->ca.pki.ocsp) & XKU_OCSP_SIGN);
	assert_true(X509_get_ext_by_NID(f->ca.pki.ocsp, NID_id_pkix_OCSP_noCheck, -1) >= 0);
	assert_int_equal(X509_check_issued(f->ca.pki.root, f->ca.pki.issuing), X509_V_OK);
	assert_non_null(X509_get0_authority_key_id(f->ca.pki.issuing));
	/* another KEK does not open the keys */
	RAND_bytes(other, sizeof(other));
	assert_int_equal(sealed_kek_from_bytes(other, &k2, &err), 0);
	assert_int_equal(pki_load(k2, f->dir, &p, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	sealed_kek_free(k2);
	assert_int_equal(pki_load(f->d.kek, f->dir, &p, &err), 0);
	pki_clear(&p);
	/* a renewed responder: new key and certificate, and the CA loads */
	{
		X509 *nx;
		assert_int_equal(pki_renew_responder(&conf_ca, f->d.kek, f->dir, &nx, &err), 0);
		assert_int_equal(pki_load(f->d.kek, f->dir, &p, &err), 0);
		assert_int_equal(X509_cmp(p.ocsp, nx), 0);
		assert_int_not_equal(X509_cmp(p.ocsp, f->ca.pki.ocsp), 0);
		assert_true(X509_get_extended_key_usage(nx) & XKU_OCSP_SIGN);
		assert_int_equal(X509_check_issued(p.issuing, nx), X509_V_OK);
		X509_free(nx);
		pki_clear(&p);
	}
	/* part of a CA is refused */
	snprintf(path, sizeof(path), "%s/ocsp.pem", f->dir);
	{
		char moved[TU_DIR_MAX + 32];
		snprintf(moved, sizeof(moved), "%s/ocsp.pem.away", f->dir);
		assert_int_equal(rename(path, moved), 0);
		assert_int_equal(pki_present(f->dir, &err), -1);
		assert_non_null(strstr(err.msg, "ocsp.pem"));
		assert_int_equal(rename(moved, path), 0);
	}
}

/* ---- issuing ---- */

static void
test_issue_stb_media(void **state)
{
	fix_t *f = *state;
	int64_t now = (int64_t)time(NULL);
	char v[CA_ID_CAP];
	certdb_row_t row;
	EVP_PKEY *key;
	X509 *x = fix_issue(f, "stb-media", "stb-1", "cert-1", 0, now, 0, &key, &row);
	AUTHORITY_INFO_ACCESS *aia;

	assert_int_equal(X509_verify(x, X509_get0_pubkey(f->ca.pki.issuing)), 1);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(cert_cn(x, v, sizeof(v)), 0);
	assert_string_equal(v, "stb-1");
	assert_int_equal(crt_san_uri(x, CA_DEVICE_URI, v, sizeof(v)), 0);
	assert_string_equal(v, "stb-1");
	assert_int_equal(crt_san_uri(x, CA_CERT_URI, v, sizeof(v)), 0);
	assert_string_equal(v, "cert-1");
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(unix_time(X509_get0_notAfter(x)), now + 2592000);
	assert_int_equal(unix_time(X509_get0_notBefore(x)), now - 60);
	assert_int_equal(row.serial_len, CA_SERIAL_LEN);
	assert_string_equal(row.device_id, "stb-1");
	assert_string_equal(row.cert_id, "cert-1");
	aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	assert_non_null(aia);
	{
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
		assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_OCSP);
		assert_string_equal(
		    (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier),
		    "http://127.0.0.1:9101/ocsp");
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	assert_true(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) >= 0);
	X509_free(x);
	EVP_PKEY_free(key);
	/* VALIDITY_S shortens, never lengthens */
	x = fix_issue(f, "stb-media", "stb-1", "cert-1", 2, now, 0, &key, &row);
	assert_int_equal(unix_time(X509_get0_notAfter(x)), now + 2);
	X509_free(x);
	EVP_PKEY_free(key);
	x = fix_issue(f, "stb-media", "stb-1", "cert-1", 999999999, now, 0, &key, &row);
	assert_int_equal(unix_time(X509_get0_notAfter(x)), now + 2592000);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void
test_issue_refusals(void **state)
{
	fix_t *f = *state;
	static const struct {
		const char *profile, *dev, *cid;
		uint32_t roles;
		int status;
	} cases[] = {
	    {"stb-media", "stb-1", NULL, 0, STB_BAD_REQUEST},
	    {"stb-media", NULL, "c", 0, STB_BAD_REQUEST},
	    {"stb-media", "stb-1", "c", STB_R_MEDIA_GW, STB_FORBIDDEN},
	    {"stb-media", "stb-1", "c", STB_R_CERT_PROXYD, STB_OK},
	    {"service", "svc", "admin", STB_R_CERT_PROXYD, STB_FORBIDDEN},
	    {"service", "svc", "admin", STB_R_ADMIN, STB_OK},
	    {"service", "svc", "no-such-role", STB_R_ADMIN, STB_BAD_REQUEST},
	    {"service", "svc", "anonymous", STB_R_ADMIN, STB_BAD_REQUEST},
	    {"device", "term-1", NULL, STB_R_ADMIN, STB_OK},
	    {"device", "term-1", NULL, STB_R_CERT_PROXYD, STB_FORBIDDEN},
	};
	EVP_PKEY *key = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");

	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		issue_req_t q = {profile_find(f->ca.prof, cases[i].profile),
		                 cases[i].dev,
		                 cases[i].cid,
		                 0,
		                 NULL,
		                 NULL,
		                 "t",
		                 cases[i].roles};
		certdb_row_t row;
		uint8_t *der = NULL;
		size_t len;
		X509 *x = NULL;
		err_t err;
		int rc = issue_build(&f->ca, &q, key, time(NULL), &x, &der, &len, &row, &err);
		if (cases[i].status == STB_OK) {
			assert_int_equal(rc, 0);
			if (strcmp(cases[i].profile, "service") == 0) {
				char v[CA_ID_CAP];
				assert_int_equal(crt_san_uri(x, STB_ROLE_URI_PREFIX, v, sizeof(v)),
				                 0);
				assert_string_equal(v, cases[i].cid);
				assert_int_equal(X509_get_extended_key_usage(x),
				                 XKU_SSL_SERVER | XKU_SSL_CLIENT);
			}
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(err.status, cases[i].status);
			assert_null(x);
		}
		X509_free(x);
		OPENSSL_free(der);
	}
	{
		issue_req_t q = {&f->ca.prof[CA_PROF_STB_MEDIA], "a", "b", 0, NULL, NULL, "t", 0};
		certdb_row_t row;
		uint8_t *der;
		size_t len;
		X509 *x;
		err_t err;
		assert_int_equal(
		    issue_build(&f->ca, &q, p384, time(NULL), &x, &der, &len, &row, &err), -1);
		f->ca.prof[CA_PROF_STB_MEDIA].enabled = 0;
		assert_int_equal(
		    issue_build(&f->ca, &q, key, time(NULL), &x, &der, &len, &row, &err), -1);
		assert_int_equal(err.status, STB_FORBIDDEN);
		f->ca.prof[CA_PROF_STB_MEDIA].enabled = 1;
	}
	EVP_PKEY_free(key);
	EVP_PKEY_free(p384);
}

/* ---- key info ---- */

static void
sign_keyinfo(EVP_PKEY *key, keyinfo_req_t *q, const char *dev, const char *cid, const uint8_t *sid,
             const uint8_t *nonce, uint64_t ts, uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	buf_t t;
	err_t e;

	buf_init(&t, LOGIN_TBS_MAX);
	assert_int_equal(login_keyinfo_tbs(&t, dev, cid, sid, nonce, ts, &e), 0);
	*siglen = 80;
	assert_int_equal(EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(mc, sig, siglen, t.data, t.len), 1);
	EVP_MD_CTX_free(mc);
	buf_free(&t);
	q->proof = sig;
	q->proof_len = *siglen;
}

static int
keyinfo_case(fix_t *f, X509 *x, EVP_PKEY *signer, const char *dev, const char *cid,
             const char *sign_dev, int tamper_nonce, int64_t ts_off, int64_t now, err_t *err)
{
	uint8_t sid[LOGIN_SESSION_LEN], nonce[LOGIN_NONCE_LEN], sn[LOGIN_NONCE_LEN], sig[80];
	uint8_t serial[CA_SERIAL_MAX];
	unsigned char *der = NULL;
	size_t siglen, slen;
	int64_t na;
	keyinfo_req_t q;
	int rc, n = i2d_X509(x, &der);

	RAND_bytes(sid, sizeof(sid));
	RAND_bytes(nonce, sizeof(nonce));
	memcpy(sn, nonce, sizeof(sn));
	sn[5] ^= (uint8_t)tamper_nonce;
	memset(&q, 0, sizeof(q));
	q.device_id = dev;
	q.cert_id = cid;
	q.session_id = sid;
	q.gw_nonce = nonce;
	q.cert_der = der;
	q.cert_len = (size_t)n;
	q.time = (uint64_t)(now + ts_off);
	sign_keyinfo(signer, &q, sign_dev, cid, sid, sn, q.time, sig, &siglen);
	rc = keyinfo_verify(&f->ca, &q, now, serial, &slen, &na, err);
	if (rc == 0) {
		uint8_t want[CA_SERIAL_MAX];
		size_t wl;
		assert_int_equal(crt_serial_get(X509_get0_serialNumber(x), want, &wl, NULL), 0);
		assert_memory_equal(serial, want, wl);
		assert_int_equal(na, unix_time(X509_get0_notAfter(x)));
	}
	OPENSSL_free(der);
	return rc;
}

static void
test_keyinfo(void **state)
{
	fix_t *f = *state;
	int64_t now = (int64_t)time(NULL);
	certdb_row_t row, row2, row3;
	EVP_PKEY *key, *k2, *k3, *other = EVP_EC_gen("P-256");
	X509 *x = fix_issue(f, "stb-media", "stb-7", "cert-7", 0, now, 1, &key, &row);
	X509 *unrec = fix_issue(f, "stb-media", "stb-7", "cert-7", 0, now, 0, &k2, &row2);
	X509 *dev = fix_issue(f, "device", "stb-7", "cert-7", 0, now, 1, &k3, &row3);
	err_t err;
	struct {
		X509 *x;
		EVP_PKEY *signer;
		const char *dev, *cid, *sign_dev;
		int tamper;
		int64_t ts_off;
		int status;
		const char *says;
	} cases[] = {
	    {x, key, "stb-7", "cert-7", "stb-7", 0, 0, STB_OK, NULL},
	    {x, key, "stb-7", "cert-7", "stb-7", 0, -299, STB_OK, NULL},
	    {x, key, "stb-7", "cert-7", "stb-7", 1, 0, STB_UNAUTHENTICATED, "bad proof"},
	    {x, other, "stb-7", "cert-7", "stb-7", 0, 0, STB_UNAUTHENTICATED, "bad proof"},
	    {x, key, "stb-8", "cert-7", "stb-8", 0, 0, STB_UNAUTHENTICATED, "not stb-8"},
	    {x, key, "stb-7", "cert-8", "stb-7", 0, 0, STB_UNAUTHENTICATED, "not cert-8"},
	    {x, key, "stb-7", "cert-7", "stb-7", 0, -301, STB_EXPIRED, "stale"},
	    {x, key, "stb-7", "cert-7", "stb-7", 0, 301, STB_EXPIRED, "stale"},
	    {unrec, k2, "stb-7", "cert-7", "stb-7", 0, 0, STB_UNAUTHENTICATED, "unknown"},
	    {dev, k3, "stb-7", "cert-7", "stb-7", 0, 0, STB_UNAUTHENTICATED, "media-access"},
	};

	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		int rc =
		    keyinfo_case(f, cases[i].x, cases[i].signer, cases[i].dev, cases[i].cid,
		                 cases[i].sign_dev, cases[i].tamper, cases[i].ts_off, now, &err);
		if (cases[i].status == STB_OK)
			assert_int_equal(rc, 0);
		else {
			assert_int_equal(rc, -1);
			assert_int_equal(err.status, cases[i].status);
			assert_non_null(strstr(err.msg, cases[i].says));
		}
	}
	/* one entry: the recorded certificate, checked once */
	assert_int_equal(kcache_count(f->ca.kcache), 1);
	/* past not_after, and before not_before */
	assert_int_equal(
	    keyinfo_case(f, x, key, "stb-7", "cert-7", "stb-7", 0, 0, row.not_after, &err), -1);
	assert_int_equal(err.status, STB_EXPIRED);
	assert_int_equal(
	    keyinfo_case(f, x, key, "stb-7", "cert-7", "stb-7", 0, 0, row.not_before - 1, &err),
	    -1);
	assert_int_equal(err.status, STB_EXPIRED);
	/* revoked, checked on every login even when cached */
	assert_int_equal(revset_add(f->ca.revoked, row.serial, row.serial_len), 0);
	assert_int_equal(keyinfo_case(f, x, key, "stb-7", "cert-7", "stb-7", 0, 0, now, &err), -1);
	assert_int_equal(err.status, STB_REVOKED);
	X509_free(x);
	X509_free(unrec);
	X509_free(dev);
	EVP_PKEY_free(key);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	EVP_PKEY_free(other);
}

static void
test_keyinfo_other_ca(void **state)
{
	fix_t *f = *state;
	char dir[TU_DIR_MAX];
	uint8_t serial[CA_SERIAL_LEN];
	pki_t other;
	err_t err;
	cert_spec_t s;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x;

	assert_int_equal(tu_mkdtemp(dir, sizeof(dir)), 0);
	assert_int_equal(pki_create(&conf_ca, f->d.kek, dir, &other, &err), 0);
	memset(&s, 0, sizeof(s));
	s.cn = "stb-7";
	s.uris[0] = CA_DEVICE_URI "stb-7";
	s.uris[1] = CA_CERT_URI "cert-7";
	s.key_usage = "digitalSignature";
	s.ext_key_usage = "clientAuth";
	s.not_before = time(NULL) - 10;
	s.not_after = time(NULL) + 1000;
	cert_serial_new(serial, NULL);
	/* same names as ours, another key */
	x = cert_leaf_new(&s, serial, key, other.issuing, other.issuing_key, &err);
	assert_non_null(x);
	assert_int_equal(
	    keyinfo_case(f, x, key, "stb-7", "cert-7", "stb-7", 0, 0, time(NULL), &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_non_null(strstr(err.msg, "not issued by this CA"));
	X509_free(x);
	EVP_PKEY_free(key);
	pki_clear(&other);
	tu_rmtree(dir);
}

static void
test_kcache_bounds(void **state)
{
	kcache_t *k = kcache_new(16);
	EVP_PKEY *pub = EVP_EC_gen("P-256");
	kcache_ent_t e, got;
	uint8_t h[32];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.pub = pub;
	e.not_after = 1000;
	for (int i = 0; i < 200; i++) {
		RAND_bytes(h, sizeof(h));
		kcache_put(k, h, &e);
	}
	assert_true(kcache_count(k) <= 16);
	assert_true(kcache_count(k) > 0);
	assert_int_equal(kcache_get(k, h, 999, &got), 1); /* the newest stays */
	kcache_ent_clear(&got);
	assert_int_equal(kcache_get(k, h, 1000, &got), 0); /* gone at not_after */
	kcache_free(k);
	EVP_PKEY_free(pub);
}

/* ---- CRL and OCSP ---- */

struct revw {
	const certdb_row_t *row;
	int64_t at;
	int reason;
};

static int
rev_write(store_conn_t *c, void *arg, err_t *err)
{
	struct revw *w = arg;

	return certdb_revoke(c, w->row->serial, w->row->serial_len, w->at, w->reason, err);
}

static void
test_crl(void **state)
{
	fix_t *f = *state;
	int64_t now = (int64_t)time(NULL);
	certdb_row_t r1, r2, r3;
	EVP_PKEY *k1, *k2, *k3;
	X509 *x1 = fix_issue(f, "stb-media", "s1", "c1", 0, now, 1, &k1, &r1);
	X509 *x2 = fix_issue(f, "stb-media", "s2", "c2", 0, now, 1, &k2, &r2);
	X509 *x3 = fix_issue(f, "stb-media", "s3", "c3", 1, now - 100, 1, &k3, &r3);
	struct revw w1 = {&r1, now - 5, 1}, w3 = {&r3, now - 50, 4};
	const unsigned char *p;
	STACK_OF(X509_REVOKED) * revs;
	ASN1_INTEGER *num;
	X509_CRL *crl;
	store_conn_t *c;
	uint8_t *der;
	size_t len;
	uint64_t n;
	err_t err;

	assert_int_equal(store_write_sync(f->d.store, rev_write, &w1, &err), 0);
	assert_int_equal(store_write_sync(f->d.store, rev_write, &w3, &err), 0);
	assert_int_equal(store_write_sync(f->d.store, rev_write, &w1, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	c = store_reader(f->d.store, &err);
	assert_non_null(c);
	assert_int_equal(crl_build(&f->ca, c, now, 42, &der, &len, &err), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(f->ca.pki.issuing)), 1);
	revs = X509_CRL_get_REVOKED(crl);
	/* x3 expired: it leaves the CRL */
	assert_int_equal(sk_X509_REVOKED_num(revs), 1);
	assert_int_equal(
	    ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, 0)),
	                     X509_get0_serialNumber(x1)),
	    0);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get_uint64(&n, num), 1);
	assert_int_equal(n, 42);
	assert_int_equal(unix_time(X509_CRL_get0_nextUpdate(crl)), now + 86400);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	free(der);
	/* published numbers only grow */
	f->ca.crl_number = 0;
	assert_int_equal(crl_refresh(&f->ca, c, &err), 0);
	n = f->ca.crl_number;
	assert_true(n >= (uint64_t)now);
	assert_int_equal(crl_refresh(&f->ca, c, &err), 0);
	assert_true(f->ca.crl_number > n);
	X509_free(x1);
	X509_free(x2);
	X509_free(x3);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
}

/* Asks about ids (certificates, or NULL for a made-up serial) and checks
 * the signed answer with nothing but the root. */
static void
ocsp_check(fix_t *f, X509 *x, int want, int want_reason)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id;
	OCSP_RESPONSE *rsp;
	OCSP_BASICRESP *bs;
	X509_STORE *st = X509_STORE_new();
	unsigned char *der = NULL;
	const unsigned char *p;
	uint8_t *out;
	size_t olen;
	int n, status = -1, reason = -1;
	store_conn_t *c = store_reader(f->d.store, NULL);
	err_t err;

	if (x != NULL)
		id = OCSP_cert_to_id(EVP_sha1(), x, f->ca.pki.issuing);
	else {
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, 0x0102);
		id = OCSP_cert_id_new(EVP_sha256(), X509_get_subject_name(f->ca.pki.issuing),
		                      X509_get0_pubkey_bitstr(f->ca.pki.issuing), s);
		ASN1_INTEGER_free(s);
	}
	assert_non_null(OCSP_request_add0_id(req, id));
	assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
	n = i2d_OCSP_REQUEST(req, &der);
	assert_int_equal(ocsp_respond(&f->ca, c, der, (size_t)n, time(NULL), &out, &olen, &err), 0);
	p = out;
	rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)olen);
	assert_int_equal(OCSP_response_status(rsp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(rsp);
	assert_non_null(bs);
	X509_STORE_add_cert(st, f->ca.pki.root);
	assert_int_equal(OCSP_basic_verify(bs, NULL, st, 0), 1);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, NULL, NULL, NULL), 1);
	assert_int_equal(status, want);
	assert_int_equal(reason, want_reason);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(rsp);
	OCSP_REQUEST_free(req);
	X509_STORE_free(st);
	OPENSSL_free(der);
	free(out);
}

static void
test_ocsp(void **state)
{
	/* found by fuzz_http: decodes, but OpenSSL cannot echo its CertID
	 * (a mangled hash OID) into a response: malformedRequest, not an
	 * internal error with a log line per anonymous request */
	static const uint8_t odd_certid[] = {
	    0x30, 0x7a, 0x30, 0x78, 0x10, 0x51, 0x30, 0x4f, 0x30, 0x4d, 0x30, 0x09, 0x06, 0x05,
	    0x2b, 0x41, 0x03, 0x02, 0x1a, 0x20, 0x00, 0x04, 0x14, 0x11, 0x04, 0x8c, 0xb9, 0x0c,
	    0xb3, 0x59, 0x23, 0x07, 0xd0, 0x19, 0xf9, 0x08, 0x89, 0x56, 0x2b, 0x62, 0xd3, 0x64,
	    0x92, 0x04, 0x14, 0x16, 0xea, 0xa1, 0x2f, 0x8d, 0x91, 0x08, 0xa2, 0x23, 0x57, 0xe4,
	    0x46, 0x9e, 0xd4, 0x52, 0xc5, 0xf5, 0xf5, 0x32, 0x88, 0x02, 0x14, 0x6b, 0xc6, 0x3f,
	    0x49, 0x8c, 0xc0, 0xa5, 0x32, 0x8f, 0x64, 0xd7, 0x0e, 0x50, 0x98, 0x9b, 0xf9, 0x97,
	    0xdc, 0x9d, 0xe0, 0xa2, 0x23, 0x30, 0x21, 0x30, 0x1f, 0x06, 0x09, 0x2b, 0x06, 0x01,
	    0x05, 0x05, 0x07, 0x30, 0x01, 0x02, 0x04, 0x12, 0x04, 0x10, 0x66, 0xb6, 0x66, 0xa9,
	    0x9b, 0x3e, 0xaf, 0x10, 0x96, 0x92, 0xc1, 0x84, 0x20, 0xe2, 0x0d, 0x0a,
	};
	fix_t *f = *state;
	int64_t now = (int64_t)time(NULL);
	certdb_row_t r1, r2;
	EVP_PKEY *k1, *k2;
	X509 *x1 = fix_issue(f, "stb-media", "o1", "c1", 0, now, 1, &k1, &r1);
	X509 *x2 = fix_issue(f, "stb-media", "o2", "c2", 0, now, 0, &k2, &r2);
	struct revw w = {&r1, now, 1};
	uint8_t junk[64], *out;
	const unsigned char *p;
	OCSP_RESPONSE *rsp;
	size_t olen;
	err_t err;

	ocsp_check(f, x1, V_OCSP_CERTSTATUS_GOOD, -1);
	ocsp_check(f, x2, V_OCSP_CERTSTATUS_UNKNOWN, -1); /* never recorded */
	ocsp_check(f, NULL, V_OCSP_CERTSTATUS_UNKNOWN, -1);
	assert_int_equal(store_write_sync(f->d.store, rev_write, &w, &err), 0);
	ocsp_check(f, x1, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	RAND_bytes(junk, sizeof(junk));
	assert_int_equal(ocsp_respond(&f->ca, store_reader(f->d.store, NULL), junk, sizeof(junk),
	                              now, &out, &olen, &err),
	                 0);
	p = out;
	rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)olen);
	assert_int_equal(OCSP_response_status(rsp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(rsp);
	free(out);
	assert_int_equal(ocsp_respond(&f->ca, store_reader(f->d.store, NULL), odd_certid,
	                              sizeof(odd_certid), now, &out, &olen, &err),
	                 0);
	p = out;
	rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)olen);
	assert_int_equal(OCSP_response_status(rsp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(rsp);
	free(out);
	X509_free(x1);
	X509_free(x2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serial_new),
	    cmocka_unit_test(test_profiles),
	    cmocka_unit_test(test_csr),
	    cmocka_unit_test(test_reasons),
	    cmocka_unit_test(test_kcache_bounds),
	    cmocka_unit_test_setup_teardown(test_pki, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_issue_stb_media, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_issue_refusals, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_keyinfo, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_keyinfo_other_ca, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_crl, fix_setup, fix_teardown),
	    cmocka_unit_test_setup_teardown(test_ocsp, fix_setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
