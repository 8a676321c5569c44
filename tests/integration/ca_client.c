/*
 * ca_client: drives ca-authd as cert-proxyd and media-gw would, over the
 * internal client API, with keys and signatures made here with OpenSSL.
 *
 *   ca_client ADDR CA CERT KEY issue MODE PROFILE DEVICE CERT_ID VALIDITY OUT
 *	MODE good: a fresh P-256 key and CSR; OUT.crt / OUT.key on success.
 *	     garbage, badsig, p384, trailing: a CSR that must be refused.
 *   ca_client ADDR CA CERT KEY verify MODE DEVICE CERT_ID CERTFILE KEYFILE
 *	CA_VERIFY_KEYINFO with key info signed by KEYFILE.  MODE good, forged
 *	(the proof covers another nonce), other-session (a proof made for
 *	another login session), stale (made an hour ago), future (an hour
 *	ahead), garbage (proof bytes that are no signature).
 *
 * Prints "OK serial=HEX not_after=N" or "STATUS message"; exits 0 on OK.
 */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "login.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

static int
answer(int rc, const msg_t *m, const stb_error_t *err)
{
	const uint8_t *s = NULL;
	size_t sl = 0;
	uint64_t na = 0;

	if (rc == -1) {
		printf("%s %s\n", stb_status_name(err->status), err->message);
		return 1;
	}
	msg_get_bytes(m, TLV_IX_CERT_SERIAL, &s, &sl);
	msg_get_u64(m, TLV_IX_NOT_AFTER, &na);
	printf("OK serial=");
	for (size_t i = 0; i < sl; i++)
		printf("%02X", s[i]);
	printf(" not_after=%llu\n", (unsigned long long)na);
	return 0;
}

static int
csr_make(const char *mode, EVP_PKEY **key, unsigned char **der, int *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	int ok;

	*key = EVP_EC_gen(strcmp(mode, "p384") == 0 ? "P-384" : "P-256");
	ok = req != NULL && n != NULL && *key != NULL &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ignored", -1,
	                                -1, 0) &&
	     X509_REQ_set_subject_name(req, n) && X509_REQ_set_pubkey(req, *key) &&
	     X509_REQ_sign(req, *key, EVP_sha256()) > 0;
	*der = NULL;
	*len = ok ? i2d_X509_REQ(req, der) : -1;
	X509_NAME_free(n);
	X509_REQ_free(req);
	if (*len <= 0)
		return -1;
	if (strcmp(mode, "badsig") == 0)
		(*der)[*len - 3] ^= 0x01; /* inside the signature value */
	return 0;
}

static int
cmd_issue(stb_client_t *c, char **a)
{
	const char *mode = a[0], *profile = a[1], *dev = a[2], *cid = a[3], *out = a[5];
	unsigned long validity = strtoul(a[4], NULL, 10);
	unsigned char *der = NULL;
	uint8_t junk[200];
	EVP_PKEY *key = NULL;
	stb_error_t err;
	int len, rc;
	buf_t b;
	msg_t m;

	buf_init(&b, 16384);
	if (strcmp(mode, "garbage") == 0) {
		RAND_bytes(junk, sizeof(junk));
		junk[0] = 0x30; /* looks like a SEQUENCE, is not a request */
		tlv_put(&b, STB_TLV_CSR_DER, junk, sizeof(junk));
	} else {
		if (csr_make(mode, &key, &der, &len) == -1) {
			printf("INTERNAL cannot make a CSR\n");
			return 2;
		}
		if (strcmp(mode, "trailing") == 0) {
			uint8_t *t = OPENSSL_malloc((size_t)len + 4);
			memcpy(t, der, (size_t)len);
			memset(t + len, 0, 4);
			tlv_put(&b, STB_TLV_CSR_DER, t, (size_t)len + 4);
			OPENSSL_free(t);
		} else
			tlv_put(&b, STB_TLV_CSR_DER, der, (size_t)len);
		OPENSSL_free(der);
	}
	tlv_put_str(&b, STB_TLV_CERT_PROFILE, profile);
	if (*dev)
		tlv_put_str(&b, STB_TLV_DEVICE_ID, dev);
	if (*cid)
		tlv_put_str(&b, STB_TLV_CERT_ID, cid);
	if (validity > 0)
		tlv_put_u32(&b, STB_TLV_VALIDITY_S, (uint32_t)validity);
	rc = stbc_call(c, STB_MSG_CA_ISSUE, &b, &m, &err);
	buf_free(&b);
	if (rc == 0 && key != NULL) {
		char path[4096];
		const uint8_t *p;
		size_t pl;
		FILE *f;
		X509 *x;
		msg_get_bytes(&m, TLV_IX_CERT_DER, &p, &pl);
		x = d2i_X509(NULL, &p, (long)pl);
		snprintf(path, sizeof(path), "%s.crt", out);
		if (x == NULL || (f = fopen(path, "w")) == NULL || PEM_write_X509(f, x) != 1 ||
		    fclose(f) != 0)
			rc = -1;
		X509_free(x);
		snprintf(path, sizeof(path), "%s.key", out);
		if ((f = fopen(path, "w")) == NULL ||
		    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
			rc = -1;
		if (rc == -1) {
			EVP_PKEY_free(key);
			printf("INTERNAL cannot write %s\n", out);
			return 2;
		}
	}
	EVP_PKEY_free(key);
	return answer(rc, &m, &err);
}

static int
sign_tbs(EVP_PKEY *key, const char *dev, const char *cid, const uint8_t *sid, const uint8_t *gwn,
         uint64_t ts, uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	err_t e;
	buf_t t;
	int ok;

	buf_init(&t, LOGIN_TBS_MAX);
	ok = mc != NULL && login_keyinfo_tbs(&t, dev, cid, sid, gwn, ts, &e) == 0 &&
	     EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestSign(mc, sig, siglen, t.data, t.len) == 1;
	EVP_MD_CTX_free(mc);
	buf_free(&t);
	return ok ? 0 : -1;
}

static void *
read_pem(const char *path, int cert)
{
	FILE *f = fopen(path, "r");
	void *v;

	if (f == NULL)
		return NULL;
	v = cert ? (void *)PEM_read_X509(f, NULL, NULL, NULL)
	         : (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return v;
}

static int
cmd_verify(stb_client_t *c, char **a)
{
	const char *mode = a[0], *dev = a[1], *cid = a[2];
	X509 *x = read_pem(a[3], 1);
	EVP_PKEY *key = read_pem(a[4], 0);
	uint8_t sid[LOGIN_SESSION_LEN], gwn[LOGIN_NONCE_LEN], sig[80];
	uint8_t ssid[LOGIN_SESSION_LEN], sgwn[LOGIN_NONCE_LEN];
	unsigned char *der = NULL;
	size_t siglen = sizeof(sig);
	uint64_t ts = (uint64_t)time(NULL), sts;
	stb_error_t err;
	err_t e;
	int dl, rc;
	buf_t b;
	msg_t m;

	if (x == NULL || key == NULL || (dl = i2d_X509(x, &der)) <= 0) {
		printf("INTERNAL cannot read %s or %s\n", a[3], a[4]);
		return 2;
	}
	RAND_bytes(sid, sizeof(sid));
	RAND_bytes(gwn, sizeof(gwn));
	memcpy(ssid, sid, sizeof(sid));
	memcpy(sgwn, gwn, sizeof(gwn));
	if (strcmp(mode, "stale") == 0)
		ts -= 3600;
	else if (strcmp(mode, "future") == 0)
		ts += 3600;
	sts = ts;
	if (strcmp(mode, "forged") == 0)
		sgwn[0] ^= 0x80;
	else if (strcmp(mode, "other-session") == 0)
		RAND_bytes(ssid, sizeof(ssid));
	if (sign_tbs(key, dev, cid, ssid, sgwn, sts, sig, &siglen) == -1) {
		printf("INTERNAL cannot sign\n");
		return 2;
	}
	if (strcmp(mode, "garbage") == 0)
		RAND_bytes(sig, siglen);
	struct msgreq_CA_VERIFY_KEYINFO q = {.DEVICE_ID = MV_STR(dev),
	                                     .CERT_ID = MV_STR(cid),
	                                     .LOGIN_SESSION_ID = MV_BYTES(sid, sizeof(sid)),
	                                     .GW_NONCE = MV_BYTES(gwn, sizeof(gwn)),
	                                     .CERT_DER = MV_BYTES(der, (size_t)dl),
	                                     .KEYINFO_PROOF = MV_BYTES(sig, siglen),
	                                     .KEYINFO_TIME = MV_U(ts)};
	buf_init(&b, 16384);
	if (msgenc_CA_VERIFY_KEYINFO(&b, &q, &e) == -1) {
		printf("INTERNAL cannot encode: %s %s\n", stb_status_name(e.status), e.msg);
		rc = 2;
	} else
		rc = answer(stbc_call(c, STB_MSG_CA_VERIFY_KEYINFO, &b, &m, &err), &m, &err);
	buf_free(&b);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_error_t err;
	int rc;

	if (argc < 7 || (strcmp(argv[5], "issue") == 0 && argc != 12) ||
	    (strcmp(argv[5], "verify") == 0 && argc != 11)) {
		fprintf(stderr, "usage: ca_client ADDR CA CERT KEY issue MODE PROFILE DEVICE "
		                "CERT_ID VALIDITY OUT\n"
		                "       ca_client ADDR CA CERT KEY verify MODE DEVICE CERT_ID "
		                "CERTFILE KEYFILE\n");
		return 2;
	}
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[2], &err) == -1 ||
	    stb_client_set_identity(c, argv[3], argv[4], &err) == -1 ||
	    stb_connect_addr(c, argv[1], &err) == -1) {
		printf("%s %s\n", stb_status_name(err.status), err.message);
		stb_client_free(c);
		return 1;
	}
	if (strcmp(argv[5], "issue") == 0)
		rc = cmd_issue(c, argv + 6);
	else if (strcmp(argv[5], "verify") == 0)
		rc = cmd_verify(c, argv + 6);
	else {
		fprintf(stderr, "ca_client: unknown command %s\n", argv[5]);
		rc = 2;
	}
	stb_client_free(c);
	return rc;
}
