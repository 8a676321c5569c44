/*
 * cp_client: a test STB for cert-proxyd over the internal client API.
 *
 *   cp_client ADDR CA DEVICE_ID SECRET_HEX STEP...
 *
 * Steps run in order on one connection:
 *   auth            AUTH_BEGIN + AUTH_PROVE with the secret
 *   badmac          AUTH_BEGIN + AUTH_PROVE with a wrong MAC
 *   keyinfo CERT    KEYINFO_REQ; the proof is verified with the certificate
 *   fetch CERT      CERT_FETCH; likewise
 *   fetch-pair CERT a second authenticated connection; CERT_FETCH sent on
 *                   both before either answer is read
 *   ack CERT        CERT_UPDATE_ACK
 *   watch SECONDS   wait for pushes: CERT_UPDATE_NEEDED is acknowledged,
 *                   CERT_UPDATED ends the wait
 *   pushes SECONDS  print the pushes that arrive, acknowledge nothing
 *   save CERT FILE  KEYINFO_REQ and write the certificate (DER) to FILE
 *   admin           CP_STB_LIST, an admin message, from this STB connection
 *
 * One line per outcome on stdout ("STEP STATUS ..." and "push ...");
 * the exit status is 0 when every step was OK, 3 otherwise.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "login.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"

typedef struct stb {
	stb_client_t *c;
	const char *addr, *ca, *id;
	uint8_t secret[64];
	size_t slen;
	int updated; /* a CERT_UPDATED arrived */
	int ack;     /* acknowledge CERT_UPDATE_NEEDED pushes */
} stb_t;

static int
outcome(const char *step, const stb_error_t *err)
{
	printf("%s %s %s\n", step, stb_status_name(err->status), err->message);
	fflush(stdout);
	return -1;
}

static int send_ack(stb_t *s, const char *cert);

static void
on_push(stb_t *s, const msg_t *m)
{
	char cert[STB_ID_MAX + 1] = "";
	uint8_t reason = 0;
	uint64_t na = 0;
	stb_error_t err;

	msg_get_str(m, TLV_IX_CERT_ID, cert, sizeof(cert));
	/* a push is answered like any request */
	stbc_send(s->c, m->type, STB_FRAME_F_RESPONSE, m->req_id, NULL, &err);
	if (m->type == STB_MSG_CP_CERT_UPDATE_NEEDED) {
		msg_get_u8(m, TLV_IX_UPDATE_REASON, &reason);
		printf("push update_needed cert=%s reason=%u\n", cert, reason);
		fflush(stdout);
		if (s->ack)
			send_ack(s, cert);
	} else if (m->type == STB_MSG_CP_CERT_UPDATED) {
		msg_get_u64(m, TLV_IX_NOT_AFTER, &na);
		printf("push updated cert=%s not_after=%llu\n", cert, (unsigned long long)na);
		fflush(stdout);
		s->updated = 1;
	} else
		printf("push other type=0x%04x\n", m->type);
}

static int
push_cb(void *arg, const msg_t *m, stb_error_t *err)
{
	(void)err;
	on_push(arg, m);
	return 0;
}

/* Sends a request and reads until its answer; pushes on the STB's own
 * connection are handled, others dropped. */
static int
call_on(stb_t *s, stb_client_t *c, uint16_t type, const buf_t *tlvs, msg_t *m, stb_error_t *err)
{
	return stbc_call_pushes(c, type, tlvs, m, 20000, c == s->c ? push_cb : NULL, s, err);
}

static int
call(stb_t *s, uint16_t type, const buf_t *tlvs, msg_t *m, stb_error_t *err)
{
	return call_on(s, s->c, type, tlvs, m, err);
}

static int
auth_on(stb_t *s, stb_client_t *c, int wrong, stb_error_t *err)
{
	uint8_t cn[LOGIN_NONCE_LEN], mac[LOGIN_MAC_LEN], sn[LOGIN_NONCE_LEN];
	const uint8_t *p;
	size_t n;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_CP_AUTH_BEGIN begin = {.DEVICE_ID = MV_STR(s->id)};
	buf_init(&b, 512);
	if (msgenc_CP_AUTH_BEGIN(&b, &begin, &e) == -1) {
		buf_free(&b);
		return stbc_fail(err, e.status, "%s", e.msg);
	}
	rc = call_on(s, c, STB_MSG_CP_AUTH_BEGIN, &b, &m, err);
	if (rc == -1 || msg_get_bytes(&m, TLV_IX_SERVER_NONCE, &p, &n) == -1 || n != sizeof(sn)) {
		buf_free(&b);
		return rc == -1 ? -1 : stbc_fail(err, STB_BAD_REQUEST, "no server nonce");
	}
	memcpy(sn, p, n);
	RAND_bytes(cn, sizeof(cn));
	if (login_auth_mac(s->secret, s->slen, sn, cn, s->id, mac, &e) == -1) {
		buf_free(&b);
		return stbc_fail(err, e.status, "%s", e.msg);
	}
	if (wrong)
		mac[0] ^= 1;
	struct msgreq_CP_AUTH_PROVE prove = {.CLIENT_NONCE = MV_BYTES(cn, sizeof(cn)),
	                                     .AUTH_MAC = MV_BYTES(mac, sizeof(mac))};
	buf_reset(&b);
	rc = msgenc_CP_AUTH_PROVE(&b, &prove, &e) == -1
	         ? stbc_fail(err, e.status, "%s", e.msg)
	         : call_on(s, c, STB_MSG_CP_AUTH_PROVE, &b, &m, err);
	buf_free(&b);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* Checks the proof with the certificate's key; prints the outcome. */
static int
keyinfo_check(stb_t *s, const char *step, const char *cert, const uint8_t *sid, const uint8_t *gw,
              const msg_t *m, const char *save)
{
	const uint8_t *der, *sig, *dp;
	size_t dl, sl;
	uint64_t ts = 0;
	X509 *x = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	buf_t tbs;
	err_t e;
	char serial[64] = "-";
	int ok = 0;
	int64_t skew;

	buf_init(&tbs, LOGIN_TBS_MAX);
	msg_get_bytes(m, TLV_IX_CERT_DER, &der, &dl);
	msg_get_bytes(m, TLV_IX_KEYINFO_PROOF, &sig, &sl);
	msg_get_u64(m, TLV_IX_KEYINFO_TIME, &ts);
	dp = der;
	if ((x = d2i_X509(NULL, &dp, (long)dl)) != NULL) {
		ASN1_INTEGER *ai = X509_get_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
		char *h = bn != NULL ? BN_bn2hex(bn) : NULL;
		if (h != NULL)
			snprintf(serial, sizeof(serial), "%s", h);
		OPENSSL_free(h);
		BN_free(bn);
		ok = md != NULL && login_keyinfo_tbs(&tbs, s->id, cert, sid, gw, ts, &e) == 0 &&
		     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)) == 1 &&
		     EVP_DigestVerify(md, sig, sl, tbs.data, tbs.len) == 1;
	}
	skew = (int64_t)ts - (int64_t)time(NULL);
	printf("%s OK cert=%s serial=%s verified=%s fresh=%s\n", step, cert, serial,
	       ok ? "yes" : "no", skew > -60 && skew < 60 ? "yes" : "no");
	fflush(stdout);
	if (save != NULL) {
		FILE *f = fopen(save, "wb");
		if (f == NULL || fwrite(der, 1, dl, f) != dl)
			ok = 0;
		if (f != NULL)
			fclose(f);
	}
	X509_free(x);
	EVP_MD_CTX_free(md);
	buf_free(&tbs);
	return ok ? 0 : -1;
}

static void
keyinfo_req(buf_t *b, const char *cert, uint8_t sid[LOGIN_SESSION_LEN], uint8_t gw[LOGIN_NONCE_LEN])
{
	RAND_bytes(sid, LOGIN_SESSION_LEN);
	RAND_bytes(gw, LOGIN_NONCE_LEN);
	buf_init(b, 512);
	tlv_put_str(b, STB_TLV_CERT_ID, cert);
	tlv_put(b, STB_TLV_GW_NONCE, gw, LOGIN_NONCE_LEN);
	tlv_put(b, STB_TLV_LOGIN_SESSION_ID, sid, LOGIN_SESSION_LEN);
}

static int
step_keyinfo(stb_t *s, const char *step, uint16_t type, const char *cert, const char *save)
{
	uint8_t sid[LOGIN_SESSION_LEN], gw[LOGIN_NONCE_LEN];
	stb_error_t err;
	buf_t b;
	msg_t m;
	int rc;

	keyinfo_req(&b, cert, sid, gw);
	rc = call(s, type, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return outcome(step, &err);
	return keyinfo_check(s, step, cert, sid, gw, &m, save);
}

/* Two connections, both authenticated; both fetches go out before either
 * answer is read. */
static int
step_fetch_pair(stb_t *s, const char *cert)
{
	uint8_t sid[2][LOGIN_SESSION_LEN], gw[2][LOGIN_NONCE_LEN];
	stb_client_t *c2 = NULL;
	stb_client_t *cs[2];
	uint32_t ids[2];
	stb_error_t err;
	buf_t b[2];
	int rc = 0;

	if (stb_client_new(&c2, &err) == -1 || stb_client_set_ca_file(c2, s->ca, &err) == -1 ||
	    stb_connect_addr(c2, s->addr, &err) == -1 || auth_on(s, c2, 0, &err) == -1) {
		stb_client_free(c2);
		return outcome("fetch-pair", &err);
	}
	cs[0] = s->c;
	cs[1] = c2;
	for (int i = 0; i < 2; i++) {
		keyinfo_req(&b[i], cert, sid[i], gw[i]);
		ids[i] = ++cs[i]->next_id;
		if (stbc_send(cs[i], STB_MSG_CP_CERT_FETCH, 0, ids[i], &b[i], &err) == -1)
			rc = -1;
		buf_free(&b[i]);
	}
	for (int i = 0; i < 2 && rc == 0; i++) {
		time_t until = time(NULL) + 20;
		msg_t m;
		for (;;) {
			int r = stbc_read(cs[i], 500, &m, &err);
			if (r == -1 || time(NULL) > until) {
				rc = -1;
				break;
			}
			if (r == 1 || !(m.flags & STB_FRAME_F_RESPONSE) || m.req_id != ids[i])
				continue;
			if (m.flags & STB_FRAME_F_ERROR) {
				char text[256] = "";
				msg_get_str(&m, TLV_IX_ERROR_TEXT, text, sizeof(text));
				stbc_fail(&err, msg_status(&m), "%s", text);
				outcome("fetch-pair", &err);
				rc = -1;
			} else if (keyinfo_check(s, "fetch-pair", cert, sid[i], gw[i], &m, NULL) ==
			           -1)
				rc = -1;
			break;
		}
	}
	stb_client_free(c2);
	return rc;
}

static int
send_ack(stb_t *s, const char *cert)
{
	stb_error_t err;
	err_t e;
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_CP_CERT_UPDATE_ACK q = {.CERT_ID = MV_STR(cert)};
	buf_init(&b, 256);
	rc = msgenc_CP_CERT_UPDATE_ACK(&b, &q, &e) == -1
	         ? stbc_fail(&err, e.status, "%s", e.msg)
	         : call(s, STB_MSG_CP_CERT_UPDATE_ACK, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return outcome("ack", &err);
	printf("ack OK cert=%s\n", cert);
	fflush(stdout);
	return 0;
}

/* Reads pushes for up to sec seconds (until CERT_UPDATED when acking). */
static int
step_wait(stb_t *s, int sec, int ack)
{
	time_t until = time(NULL) + sec;
	stb_error_t err;
	msg_t m;

	s->ack = ack;
	s->updated = 0;
	while (time(NULL) < until && !(ack && s->updated)) {
		int rc = stbc_read(s->c, 200, &m, &err);
		if (rc == -1) {
			s->ack = 0;
			return outcome(ack ? "watch" : "pushes", &err);
		}
		if (rc == 0 && (m.flags & STB_FRAME_F_PUSH))
			on_push(s, &m);
	}
	s->ack = 0;
	if (ack && !s->updated) {
		printf("watch TIMEOUT no CERT_UPDATED\n");
		return -1;
	}
	return 0;
}

static int
run_step(stb_t *s, char **a, int n, int *used)
{
	stb_error_t err;

	*used = 1;
	if (strcmp(a[0], "auth") == 0 || strcmp(a[0], "badmac") == 0) {
		int wrong = a[0][0] == 'b';
		if (auth_on(s, s->c, wrong, &err) == -1)
			return outcome(a[0], &err);
		printf("%s OK\n", a[0]);
		fflush(stdout);
		return 0;
	}
	if (strcmp(a[0], "admin") == 0) {
		msg_t m;
		if (call(s, STB_MSG_CP_STB_LIST, NULL, &m, &err) == -1)
			return outcome("admin", &err);
		printf("admin OK\n");
		return 0;
	}
	*used = 2;
	if (n < 2)
		return -2;
	if (strcmp(a[0], "keyinfo") == 0)
		return step_keyinfo(s, "keyinfo", STB_MSG_CP_KEYINFO_REQ, a[1], NULL);
	if (strcmp(a[0], "fetch") == 0)
		return step_keyinfo(s, "fetch", STB_MSG_CP_CERT_FETCH, a[1], NULL);
	if (strcmp(a[0], "fetch-pair") == 0)
		return step_fetch_pair(s, a[1]);
	if (strcmp(a[0], "ack") == 0)
		return send_ack(s, a[1]);
	if (strcmp(a[0], "watch") == 0)
		return step_wait(s, atoi(a[1]), 1);
	if (strcmp(a[0], "pushes") == 0)
		return step_wait(s, atoi(a[1]), 0);
	*used = 3;
	if (n >= 3 && strcmp(a[0], "save") == 0)
		return step_keyinfo(s, "save", STB_MSG_CP_KEYINFO_REQ, a[1], a[2]);
	return -2;
}

int
main(int argc, char **argv)
{
	stb_t s;
	stb_error_t err;
	int rc = 0;

	if (argc < 6) {
		fprintf(stderr, "usage: see the comment at the top of cp_client.c\n");
		return 2;
	}
	memset(&s, 0, sizeof(s));
	s.addr = argv[1];
	s.ca = argv[2];
	s.id = argv[3];
	if (hex_decode(argv[4], strlen(argv[4]), s.secret, sizeof(s.secret), &s.slen) == -1) {
		fprintf(stderr, "cp_client: secret is not hex of at most 64 bytes\n");
		return 2;
	}
	if (stb_client_new(&s.c, &err) == -1 || stb_client_set_ca_file(s.c, s.ca, &err) == -1 ||
	    stb_connect_addr(s.c, s.addr, &err) == -1) {
		outcome("connect", &err);
		stb_client_free(s.c);
		return 1;
	}
	for (int i = 5; i < argc;) {
		int used, r = run_step(&s, argv + i, argc - i, &used);
		if (r == -2) {
			fprintf(stderr, "cp_client: bad step '%s'\n", argv[i]);
			rc = 2;
			break;
		}
		if (r == -1)
			rc = 3;
		i += used;
	}
	OPENSSL_cleanse(s.secret, sizeof(s.secret));
	stb_client_free(s.c);
	return rc;
}
