/*
 * kmt_push: plays keymgmtd towards the reference app platform, so the
 * platform's own behaviour (idempotence, modes, the envelope) is tested
 * without keymgmtd.  Envelopes KEY_HEX to RECIP_CERT (CMS, as keymgmtd
 * does) and sends one KEY_PUSH, or a KEY_REVOKE with "revoke".  Prints
 * "ACK <push_id>" or "ERR <STATUS_NAME> <text>" and exits 0 / 1.
 *
 * usage: kmt_push HOST:PORT CA CERT KEY RECIP_CERT PUSH_ID MDN KEY_ID APP_ID KEY_HEX [revoke]
 */
#include <inttypes.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmsmsg.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"

static int
send_push(stb_client_t *c, char **a, X509 *recip, int revoke, stb_error_t *err)
{
	uint64_t id = strtoull(a[6], NULL, 10);
	uint8_t key[512];
	size_t klen = 0;
	buf_t b, env;
	err_t e;
	msg_t m;
	int rc = -1;

	buf_init(&b, 65536);
	buf_init(&env, CMSMSG_DER_MAX);
	if (hex_decode(a[10], strlen(a[10]), key, sizeof(key), &klen) == -1 ||
	    cmsmsg_encrypt(recip, key, klen, CMSMSG_AES256_GCM, &env, &e) == -1) {
		fprintf(stderr, "kmt_push: cannot envelope the key\n");
		goto out;
	}
	if (revoke) {
		struct msgreq_KM_KEY_REVOKE q = {.KM_PUSH_ID = MV_U(id),
		                              .KM_MDN = MV_STR(a[7]),
		                              .KM_KEY_ID = MV_STR(a[8]),
		                              .KM_APP_ID = MV_STR(a[9])};
		rc = msgenc_KM_KEY_REVOKE(&b, &q, &e);
	} else {
		struct msgreq_KM_KEY_PUSH q = {.KM_PUSH_ID = MV_U(id),
		                            .KM_MDN = MV_STR(a[7]),
		                            .KM_KEY_ID = MV_STR(a[8]),
		                            .KM_APP_ID = MV_STR(a[9]),
		                            .KM_WRAPPED_KEY = MV_BYTES(env.data, env.len)};
		rc = msgenc_KM_KEY_PUSH(&b, &q, &e);
	}
	if (rc == -1) {
		fprintf(stderr, "kmt_push: %s\n", e.msg);
		goto out;
	}
	rc = stbc_call(c, revoke ? STB_MSG_KM_KEY_REVOKE : STB_MSG_KM_KEY_PUSH, &b, &m, err);
	if (rc == 0) {
		uint64_t ack = 0;
		msg_get_u64(&m, TLV_IX_KM_PUSH_ID, &ack);
		printf("ACK %" PRIu64 "\n", ack);
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&b);
	buf_free(&env);
	return rc;
}

int
main(int argc, char **argv)
{
	stb_client_t *c = NULL;
	stb_error_t err = {0};
	X509 *recip = NULL;
	FILE *f;
	int rc = 1;

	if (argc != 11 && !(argc == 12 && strcmp(argv[11], "revoke") == 0)) {
		fprintf(stderr,
		        "usage: kmt_push HOST:PORT CA CERT KEY RECIP_CERT PUSH_ID MDN KEY_ID "
		        "APP_ID KEY_HEX [revoke]\n");
		return 2;
	}
	if ((f = fopen(argv[5], "r")) == NULL ||
	    (recip = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "kmt_push: %s: no certificate\n", argv[5]);
		if (f != NULL)
			fclose(f);
		return 2;
	}
	fclose(f);
	if (stb_client_new(&c, &err) == 0 && stb_client_set_ca_file(c, argv[2], &err) == 0 &&
	    stb_client_set_identity(c, argv[3], argv[4], &err) == 0 &&
	    (stb_client_set_timeout(c, 10000), 1) &&
	    stb_connect_addr(c, argv[1], &err) == 0 &&
	    send_push(c, argv, recip, argc == 12, &err) == 0)
		rc = 0;
	else if (err.status != 0)
		printf("ERR %s %s\n", stb_status_name(err.status), err.message);
	stb_client_free(c);
	X509_free(recip);
	return rc;
}
