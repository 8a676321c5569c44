/*
 * qd_client: a device of flow D over the internal client API, one step per
 * run, so a test can replay, mix devices and break each step.
 *
 *   qd_client CA CERT KEY register ADDR [DEVICE_ID]
 *	"OK nonce=HEX cred=ADDR expires=N"
 *   qd_client CA CERT KEY cred ADDR DEVICE_ID NONCE_HEX good|wrong [RANDOM_HEX]
 *	"OK prov=ADDR ticket=HEX expires=N session=HEX"
 *	(wrong: the session nonce with one bit flipped)
 *   qd_client CA CERT KEY fetch ADDR TICKET_HEX OUT
 *	the package DER to OUT; "OK size=N digest=HEX"
 *   qd_client CA CERT KEY confirm ADDR TICKET_HEX DIGEST_HEX
 *	"OK"
 *   qd_client CA CERT KEY open PKG OPERATOR_CA DEVICE_ID SESSION_HEX
 *	opens a package with the device key: "OK imsi=N k=HEX opc=HEX"
 *
 * A refusal prints "STATUS message" and exits 1.
 */
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "msgenc.h"
#include "qualify.h"
#include "stbc.h"
#include "tlv.h"

static int
refused(const stb_error_t *err)
{
	printf("%s %s\n", stb_status_name(err->status), err->message);
	return 1;
}

static int
unhex32(const char *s, uint8_t out[32])
{
	size_t n = 0;

	return strlen(s) == 64 && hex_decode(s, 64, out, 32, &n) == 0 && n == 32 ? 0 : -1;
}

static void
print_hex(const char *name, const uint8_t *p, size_t n)
{
	char h[2 * 64 + 1];

	hex_encode(p, n, h);
	printf(" %s=%s", name, h);
}

static int
call(stb_client_t *c, uint16_t type, buf_t *b, msg_t *m)
{
	stb_error_t err;

	if (stbc_call(c, type, b, m, &err) == -1)
		return refused(&err);
	return 0;
}

static int
cmd_register(stb_client_t *c, char **a, int n)
{
	struct msgreq_QD_REGISTER q = {.DEVICE_ID = MV_IF(n > 0, MV_STR(a[0]))};
	char addr[300] = "";
	const uint8_t *nonce;
	size_t len;
	uint64_t exp = 0;
	err_t e;
	buf_t b;
	msg_t m;

	buf_init(&b, 512);
	if (msgenc_QD_REGISTER(&b, &q, &e) == -1 || call(c, STB_MSG_QD_REGISTER, &b, &m) != 0) {
		buf_free(&b);
		return 1;
	}
	msg_get_bytes(&m, TLV_IX_QD_REG_NONCE, &nonce, &len);
	msg_get_str(&m, TLV_IX_QD_CRED_ADDR, addr, sizeof(addr));
	msg_get_u64(&m, TLV_IX_QD_NONCE_EXPIRES, &exp);
	printf("OK");
	print_hex("nonce", nonce, len);
	printf(" cred=%s expires=%llu\n", addr, (unsigned long long)exp);
	buf_free(&b);
	return 0;
}

static int
cmd_cred(stb_client_t *c, char **a, int n)
{
	uint8_t nonce[32], cr[32], sn[32];
	const uint8_t *t;
	char addr[300] = "";
	uint64_t exp = 0;
	size_t len;
	err_t e;
	buf_t b;
	msg_t m;

	if (n < 3 || unhex32(a[1], nonce) == -1)
		return 2;
	if (n > 3 ? unhex32(a[3], cr) == -1 : RAND_bytes(cr, sizeof(cr)) != 1)
		return 2;
	if (qualify_session_nonce(nonce, a[0], cr, sn, &e) == -1) {
		printf("%s %s\n", stb_status_name(e.status), e.msg);
		return 1;
	}
	if (strcmp(a[2], "wrong") == 0)
		sn[7] ^= 0x10;
	struct msgreq_QD_CRED_REQ q = {.DEVICE_ID = MV_STR(a[0]),
	                               .QD_CLIENT_RANDOM = MV_BYTES(cr, 32),
	                               .QD_SESSION_NONCE = MV_BYTES(sn, 32)};
	buf_init(&b, 512);
	if (msgenc_QD_CRED_REQ(&b, &q, &e) == -1 || call(c, STB_MSG_QD_CRED_REQ, &b, &m) != 0) {
		buf_free(&b);
		return 1;
	}
	msg_get_str(&m, TLV_IX_QD_PROV_ADDR, addr, sizeof(addr));
	msg_get_bytes(&m, TLV_IX_QD_TICKET, &t, &len);
	msg_get_u64(&m, TLV_IX_QD_TICKET_EXPIRES, &exp);
	printf("OK prov=%s", addr);
	print_hex("ticket", t, len);
	printf(" expires=%llu", (unsigned long long)exp);
	print_hex("session", sn, 32);
	printf("\n");
	buf_free(&b);
	return 0;
}

static int
cmd_fetch(stb_client_t *c, char **a, int n)
{
	uint8_t ticket[32], dg[32];
	const uint8_t *p;
	size_t len;
	FILE *f;
	err_t e;
	buf_t b;
	msg_t m;

	if (n < 2 || unhex32(a[0], ticket) == -1)
		return 2;
	struct msgreq_QD_PKG_FETCH q = {.QD_TICKET = MV_BYTES(ticket, 32)};
	buf_init(&b, 512);
	if (msgenc_QD_PKG_FETCH(&b, &q, &e) == -1 || call(c, STB_MSG_QD_PKG_FETCH, &b, &m) != 0) {
		buf_free(&b);
		return 1;
	}
	msg_get_bytes(&m, TLV_IX_QD_PACKAGE, &p, &len);
	if ((f = fopen(a[1], "wb")) == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		printf("INTERNAL cannot write %s\n", a[1]);
		return 1;
	}
	qualify_pkg_digest(p, len, dg, &e);
	printf("OK size=%zu", len);
	print_hex("digest", dg, 32);
	printf("\n");
	buf_free(&b);
	return 0;
}

static int
cmd_confirm(stb_client_t *c, char **a, int n)
{
	uint8_t ticket[32], dg[32];
	err_t e;
	buf_t b;
	msg_t m;

	if (n < 2 || unhex32(a[0], ticket) == -1 || unhex32(a[1], dg) == -1)
		return 2;
	struct msgreq_QD_PKG_CONFIRM q = {.QD_TICKET = MV_BYTES(ticket, 32),
	                                  .QD_PKG_DIGEST = MV_BYTES(dg, 32)};
	buf_init(&b, 512);
	if (msgenc_QD_PKG_CONFIRM(&b, &q, &e) == -1 ||
	    call(c, STB_MSG_QD_PKG_CONFIRM, &b, &m) != 0) {
		buf_free(&b);
		return 1;
	}
	printf("OK\n");
	buf_free(&b);
	return 0;
}

static int
cmd_open(const char *certf, const char *keyf, char **a, int n)
{
	X509_STORE *trust = X509_STORE_new();
	uint8_t sn[32], der[QUALIFY_PKG_MAX];
	qualify_creds_t cr;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	size_t len;
	FILE *f;
	err_t e;

	if (n < 4 || unhex32(a[3], sn) == -1 || trust == NULL ||
	    X509_STORE_load_file(trust, a[1]) != 1)
		return 2;
	if ((f = fopen(a[0], "rb")) == NULL)
		return 2;
	len = fread(der, 1, sizeof(der), f);
	fclose(f);
	if ((f = fopen(keyf, "r")) != NULL) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(certf, "r")) != NULL) {
		cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (key == NULL || cert == NULL)
		return 2;
	if (qualify_pkg_open(trust, key, cert, der, len, a[2], sn, &cr, NULL, &e) == -1) {
		printf("%s %s\n", stb_status_name(e.status), e.msg);
		return 1;
	}
	printf("OK imsi=%s", cr.imsi);
	print_hex("k", cr.k, 16);
	print_hex("opc", cr.opc, 16);
	printf(" issued=%llu expires=%llu\n", (unsigned long long)cr.issued,
	       (unsigned long long)cr.expires);
	qualify_creds_wipe(&cr);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_STORE_free(trust);
	return 0;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_error_t err;
	int rc;

	if (argc < 6) {
		fprintf(stderr,
		        "usage: qd_client CA CERT KEY register|cred|fetch|confirm ADDR ... | "
		        "open PKG OPERATOR_CA DEVICE_ID SESSION_HEX\n");
		return 2;
	}
	if (strcmp(argv[4], "open") == 0)
		return cmd_open(argv[2], argv[3], argv + 5, argc - 5);
	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, argv[1], &err) == -1 ||
	    stb_client_set_identity(c, argv[2], argv[3], &err) == -1 ||
	    stb_connect_addr(c, argv[5], &err) == -1) {
		stb_client_free(c);
		return refused(&err);
	}
	if (strcmp(argv[4], "register") == 0)
		rc = cmd_register(c, argv + 6, argc - 6);
	else if (strcmp(argv[4], "cred") == 0)
		rc = cmd_cred(c, argv + 6, argc - 6);
	else if (strcmp(argv[4], "fetch") == 0)
		rc = cmd_fetch(c, argv + 6, argc - 6);
	else if (strcmp(argv[4], "confirm") == 0)
		rc = cmd_confirm(c, argv + 6, argc - 6);
	else
		rc = 2;
	stb_client_free(c);
	return rc;
}
