/*
 * gw_client: an STB driver for media-gw that makes its own key info, so
 * that tests can send what a real STB never would (forged proofs, proofs
 * for another session, replays).  Certificates come from ca-authd's
 * CA_ISSUE under the stb-media profile, asked for as admin; no cert-proxyd
 * is involved.
 *
 *   gw_client PKI GW_ADDR CA_ADDR MODE DEVICE [CERT_ID [SECONDS]]
 *
 *   start        LOGIN_START only
 *   ok           a real login with a fresh certificate
 *   forged       the proof is signed by a key that is not the certificate's
 *   other        the proof was made for another session of the same device
 *   replay       a successful LOGIN_FINISH sent a second time
 *   reuse        two finishes of one session with junk key info
 *   unknown      LOGIN_FINISH for a session media-gw never issued
 *   late         waits SECONDS between LOGIN_START and LOGIN_FINISH
 *   expired-cert the certificate is valid 1 s and used after that
 *   revoked      the certificate is revoked at ca-authd first
 *   foreign      a self-signed certificate with the right names
 *   resume       LOGIN_START, then waits for the file named by the next
 *                argument (the test restarts media-gw meanwhile), connects
 *                again and finishes that session
 *   split        LOGIN_START at GW_ADDR, LOGIN_FINISH of that session at the
 *                media-gw named by the next argument (another instance),
 *                then the same finish again at GW_ADDR (a replay)
 *   twice        a login; the certificate's DER goes to the file named by
 *                the next argument plus ".der" and "serial=HEX" is printed;
 *                waits for that file name itself, connects again and logs
 *                in once more with the same certificate
 *
 * Each exchange prints one line: "start STATUS text", "finish STATUS text"
 * or "finish OK token=HEX expires=N".  Exit 0 when the driver could run
 * its scenario (whatever the servers answered), 2 when it could not.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "login.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

typedef struct sess {
	char cert_id[STB_ID_MAX + 1];
	uint8_t sid[LOGIN_SESSION_LEN];
	uint8_t nonce[LOGIN_NONCE_LEN];
} sess_t;

typedef struct cert {
	EVP_PKEY *key;
	uint8_t der[8192];
	size_t len;
	uint8_t serial[20];
	size_t serial_len;
} cert_t;

static const char *pki;

static void
die(const char *what, const stb_error_t *err)
{
	fprintf(stderr, "gw_client: %s: %s %s\n", what, err ? stb_status_name(err->status) : "",
	        err ? err->message : "");
	exit(2);
}

/* A request this client could not encode (msgenc.h) ends it as die() does. */
static void
enc_check(const char *what, int rc, const err_t *e)
{
	if (rc == -1) {
		fprintf(stderr, "gw_client: %s not encoded: %s %s\n", what,
		        stb_status_name(e->status), e->msg);
		exit(2);
	}
}

static stb_client_t *
client(const char *addr, int admin)
{
	char ca[512], crt[512], key[512];
	stb_client_t *c;
	stb_error_t err;

	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	snprintf(crt, sizeof(crt), "%s/admin.crt", pki);
	snprintf(key, sizeof(key), "%s/admin.key", pki);
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, ca, &err) == -1 ||
	    (admin && stb_client_set_identity(c, crt, key, &err) == -1) ||
	    stb_connect_addr(c, addr, &err) == -1)
		die(addr, &err);
	stb_client_set_timeout(c, 10000);
	return c;
}

static void
print_status(const char *step, const stb_error_t *err)
{
	printf("%s %s %s\n", step, stb_status_name(err->status), err->message);
	fflush(stdout);
}

/* ---- certificates ---- */

static EVP_PKEY *
newkey(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (k == NULL)
		die("P-256 key generation", NULL);
	return k;
}

static void
issue(stb_client_t *ca, const char *device, const char *cert_id, uint32_t validity, cert_t *out)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	const uint8_t *p;
	stb_error_t err;
	err_t e;
	size_t n;
	int len;
	buf_t b;
	msg_t m;

	out->key = newkey();
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cert_id, -1, -1,
	                           0);
	if (req == NULL || X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, out->key) != 1 ||
	    X509_REQ_sign(req, out->key, EVP_sha256()) <= 0 || (len = i2d_X509_REQ(req, &der)) <= 0)
		die("CSR", NULL);
	struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(der, (size_t)len),
	                            .CERT_PROFILE = MV_STR("stb-media"),
	                            .DEVICE_ID = MV_STR(device),
	                            .CERT_ID = MV_STR(cert_id),
	                            .VALIDITY_S = MV_IF(validity > 0, MV_U(validity))};
	buf_init(&b, 16384);
	enc_check("CA_ISSUE", msgenc_CA_ISSUE(&b, &q, &e), &e);
	if (stbc_call(ca, STB_MSG_CA_ISSUE, &b, &m, &err) == -1)
		die("CA_ISSUE", &err);
	if (msg_get_bytes(&m, TLV_IX_CERT_DER, &p, &n) == -1 || n > sizeof(out->der))
		die("CA_ISSUE answer", NULL);
	memcpy(out->der, p, n);
	out->len = n;
	if (msg_get_bytes(&m, TLV_IX_CERT_SERIAL, &p, &n) == -1 || n > sizeof(out->serial))
		die("CA_ISSUE serial", NULL);
	memcpy(out->serial, p, n);
	out->serial_len = n;
	buf_free(&b);
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
}

/* Self-signed, same names: a certificate from some other CA. */
static void
foreign(const char *cert_id, cert_t *out)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char *der = NULL;
	int len;

	out->key = newkey();
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cert_id, -1, -1,
	                           0);
	X509_set_issuer_name(x, name);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_version(x, 2);
	if (X509_set_pubkey(x, out->key) != 1 || X509_sign(x, out->key, EVP_sha256()) <= 0 ||
	    (len = i2d_X509(x, &der)) <= 0 || (size_t)len > sizeof(out->der))
		die("self-signed certificate", NULL);
	memcpy(out->der, der, (size_t)len);
	out->len = (size_t)len;
	OPENSSL_free(der);
	X509_free(x);
}

static void
ca_revoke(stb_client_t *ca, const cert_t *c)
{
	stb_error_t err;
	err_t e;
	buf_t b;
	msg_t m;

	struct msgreq_CA_REVOKE q = {.CERT_SERIAL = MV_BYTES(c->serial, c->serial_len)};
	buf_init(&b, 256);
	enc_check("CA_REVOKE", msgenc_CA_REVOKE(&b, &q, &e), &e);
	if (stbc_call(ca, STB_MSG_CA_REVOKE, &b, &m, &err) == -1)
		die("CA_REVOKE", &err);
	buf_free(&b);
}

/* ---- the login ---- */

static int
start(stb_client_t *gw, const char *device, sess_t *s)
{
	const uint8_t *p;
	stb_error_t err;
	err_t e;
	size_t n;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_GW_LOGIN_START q = {.DEVICE_ID = MV_STR(device)};
	buf_init(&b, 256);
	enc_check("GW_LOGIN_START", msgenc_GW_LOGIN_START(&b, &q, &e), &e);
	rc = stbc_call(gw, STB_MSG_GW_LOGIN_START, &b, &m, &err);
	buf_free(&b);
	if (rc == -1) {
		print_status("start", &err);
		return -1;
	}
	msg_get_str(&m, TLV_IX_CERT_ID, s->cert_id, sizeof(s->cert_id));
	msg_get_bytes(&m, TLV_IX_GW_NONCE, &p, &n);
	memcpy(s->nonce, p, LOGIN_NONCE_LEN);
	msg_get_bytes(&m, TLV_IX_LOGIN_SESSION_ID, &p, &n);
	memcpy(s->sid, p, LOGIN_SESSION_LEN);
	printf("start OK cert_id=%s\n", s->cert_id);
	return 0;
}

/* ECDSA P-256 over the STB-LOGIN-V1 transcript of session s. */
static size_t
sign(EVP_PKEY *key, const char *device, const sess_t *s, uint64_t ts, uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t len = cap;
	err_t e;
	buf_t tbs;

	buf_init(&tbs, LOGIN_TBS_MAX);
	if (login_keyinfo_tbs(&tbs, device, s->cert_id, s->sid, s->nonce, ts, &e) == -1 ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &len, tbs.data, tbs.len) != 1)
		die("signing the key info", NULL);
	buf_free(&tbs);
	EVP_MD_CTX_free(md);
	return len;
}

static int
finish(stb_client_t *gw, const uint8_t sid[LOGIN_SESSION_LEN], const uint8_t *der, size_t dlen,
       const uint8_t *proof, size_t plen, uint64_t ts)
{
	const uint8_t *tok;
	uint64_t exp = 0;
	stb_error_t err;
	err_t e;
	size_t n;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_GW_LOGIN_FINISH q = {.LOGIN_SESSION_ID = MV_BYTES(sid, LOGIN_SESSION_LEN),
	                                   .CERT_DER = MV_BYTES(der, dlen),
	                                   .KEYINFO_PROOF = MV_BYTES(proof, plen),
	                                   .KEYINFO_TIME = MV_U(ts)};
	buf_init(&b, 16384);
	enc_check("GW_LOGIN_FINISH", msgenc_GW_LOGIN_FINISH(&b, &q, &e), &e);
	rc = stbc_call(gw, STB_MSG_GW_LOGIN_FINISH, &b, &m, &err);
	buf_free(&b);
	if (rc == -1) {
		print_status("finish", &err);
		return -1;
	}
	msg_get_bytes(&m, TLV_IX_ACCESS_TOKEN, &tok, &n);
	msg_get_u64(&m, TLV_IX_TOKEN_EXPIRES, &exp);
	printf("finish OK token=");
	for (size_t i = 0; i < n; i++)
		printf("%02x", tok[i]);
	printf(" expires=%llu\n", (unsigned long long)exp);
	fflush(stdout);
	return 0;
}

/* START, sign with key (the certificate's or not), FINISH. */
static int
login(stb_client_t *gw, const char *device, const cert_t *c, EVP_PKEY *key, int wait_s)
{
	uint8_t sig[80];
	uint64_t ts;
	size_t sl;
	sess_t s;

	if (start(gw, device, &s) == -1)
		return -1;
	if (wait_s > 0)
		sleep((unsigned)wait_s);
	ts = (uint64_t)time(NULL);
	sl = sign(key, device, &s, ts, sig, sizeof(sig));
	return finish(gw, s.sid, c->der, c->len, sig, sl, ts);
}

int
main(int argc, char **argv)
{
	const char *mode, *device, *cert_id, *arg;
	stb_client_t *gw, *ca = NULL;
	cert_t c = {0};
	int wait_s;

	if (argc < 6) {
		fprintf(stderr,
		        "usage: gw_client PKI GW_ADDR CA_ADDR MODE DEVICE [CERT_ID [SECONDS]]\n");
		return 2;
	}
	pki = argv[1];
	mode = argv[4];
	device = argv[5];
	cert_id = argc > 6 ? argv[6] : "cert-x";
	arg = argc > 7 ? argv[7] : "0";
	wait_s = atoi(arg);
	gw = client(argv[2], 0);
	if (strcmp(mode, "start") == 0) {
		sess_t s;
		start(gw, device, &s);
	} else if (strcmp(mode, "unknown") == 0) {
		uint8_t sid[LOGIN_SESSION_LEN], junk[64] = {0x30};
		RAND_bytes(sid, sizeof(sid));
		finish(gw, sid, junk, sizeof(junk), junk, 64, (uint64_t)time(NULL));
	} else if (strcmp(mode, "reuse") == 0) {
		uint8_t junk[64] = {0x30};
		sess_t s;
		if (start(gw, device, &s) == 0) {
			finish(gw, s.sid, junk, sizeof(junk), junk, 64, (uint64_t)time(NULL));
			finish(gw, s.sid, junk, sizeof(junk), junk, 64, (uint64_t)time(NULL));
		}
	} else if (strcmp(mode, "foreign") == 0) {
		foreign(cert_id, &c);
		login(gw, device, &c, c.key, 0);
	} else {
		ca = client(argv[3], 1);
		if (strcmp(mode, "expired-cert") == 0) {
			issue(ca, device, cert_id, 1, &c);
			sleep(2);
		} else
			issue(ca, device, cert_id, 0, &c);
		if (strcmp(mode, "ok") == 0 || strcmp(mode, "expired-cert") == 0)
			login(gw, device, &c, c.key, 0);
		else if (strcmp(mode, "late") == 0)
			login(gw, device, &c, c.key, wait_s);
		else if (strcmp(mode, "revoked") == 0) {
			ca_revoke(ca, &c);
			login(gw, device, &c, c.key, 0);
		} else if (strcmp(mode, "forged") == 0) {
			EVP_PKEY *other = newkey();
			login(gw, device, &c, other, 0);
			EVP_PKEY_free(other);
		} else if (strcmp(mode, "other") == 0 || strcmp(mode, "replay") == 0) {
			uint8_t sig[80];
			uint64_t ts = (uint64_t)time(NULL);
			sess_t a, b;
			size_t sl;
			if (start(gw, device, &a) == 0 && start(gw, device, &b) == 0) {
				sl = sign(c.key, device, &a, ts, sig, sizeof(sig));
				if (strcmp(mode, "other") == 0) /* a's proof, b's session */
					finish(gw, b.sid, c.der, c.len, sig, sl, ts);
				else {
					finish(gw, a.sid, c.der, c.len, sig, sl, ts);
					finish(gw, a.sid, c.der, c.len, sig, sl, ts);
				}
			}
		} else if (strcmp(mode, "split") == 0) {
			uint8_t sig[80];
			uint64_t ts = (uint64_t)time(NULL);
			stb_client_t *gw2 = client(arg, 0);
			sess_t a;
			size_t sl;
			if (start(gw, device, &a) == 0) {
				sl = sign(c.key, device, &a, ts, sig, sizeof(sig));
				finish(gw2, a.sid, c.der, c.len, sig, sl, ts);
				finish(gw, a.sid, c.der, c.len, sig, sl, ts);
			}
			stb_client_free(gw2);
		} else if (strcmp(mode, "twice") == 0) {
			char path[4096], hex[41] = "";
			stb_error_t err;
			FILE *f;
			login(gw, device, &c, c.key, 0);
			snprintf(path, sizeof(path), "%s.der", arg);
			if ((f = fopen(path, "wb")) == NULL ||
			    fwrite(c.der, 1, c.len, f) != c.len || fclose(f) != 0)
				die("writing the certificate", NULL);
			for (size_t i = 0; i < c.serial_len && i < 20; i++)
				snprintf(hex + 2 * i, 3, "%02x", c.serial[i]);
			printf("serial=%s\n", hex);
			fflush(stdout);
			for (int i = 0; i < 1200 && access(arg, F_OK) != 0; i++)
				usleep(50000);
			if (stb_connect_addr(gw, argv[2], &err) == -1)
				die("reconnect", &err);
			login(gw, device, &c, c.key, 0);
		} else if (strcmp(mode, "resume") == 0) {
			uint8_t sig[80];
			uint64_t ts;
			stb_error_t err;
			sess_t s;
			size_t sl;
			if (start(gw, device, &s) == 0) {
				fflush(stdout);
				for (int i = 0; i < 600 && access(arg, F_OK) != 0; i++)
					usleep(50000);
				if (stb_connect_addr(gw, argv[2], &err) == -1)
					die("reconnect", &err);
				ts = (uint64_t)time(NULL);
				sl = sign(c.key, device, &s, ts, sig, sizeof(sig));
				finish(gw, s.sid, c.der, c.len, sig, sl, ts);
			}
		} else {
			fprintf(stderr, "gw_client: unknown mode %s\n", mode);
			return 2;
		}
	}
	EVP_PKEY_free(c.key);
	stb_client_free(ca);
	stb_client_free(gw);
	return 0;
}
