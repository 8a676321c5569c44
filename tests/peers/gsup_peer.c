/*
 * gsup_peer: the network and the device of the osmo-hlr tests.
 *
 *   gsup_peer sai ADDR PORT IMSI
 *     asks osmo-hlr over GSUP (libosmo-gsup-client) for one authentication
 *     vector of IMSI (SendAuthInfo) and prints it as
 *       rand=HEX xres=HEX ck=HEX ik=HEX autn=HEX
 *     exit 0; an error answer prints "error cause=N" and exits 2; no
 *     answer within 10 s, or no connection, exits 3.
 *
 *   gsup_peer res K OPC RAND [AUTN]
 *     computes what the device answers with stbcred's milenage.c:
 *       res=HEX ck=HEX ik=HEX
 *     with AUTN given, checks its MAC-A first (exit 2 when the network
 *     holds another K/OPc) and adds sqn=HEX.
 *
 * A test compares xres (the HLR's) with res (the device's).
 */
#include <openssl/crypto.h>
#include <osmocom/core/application.h>
#include <osmocom/core/logging.h>
#include <osmocom/core/select.h>
#include <osmocom/core/talloc.h>
#include <osmocom/core/timer.h>
#include <osmocom/gsm/gsup.h>
#include <osmocom/gsm/protocol/ipaccess.h>
#include <osmocom/gsupclient/gsup_client.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "milenage.h"

#define GSUP_PEER_DEADLINE 10 /* seconds for the connection and the answer */

static struct {
	const char *imsi;
	int done; /* exit status + 1 once decided */
	int sent;
	struct osmo_timer_list resend;
} gp;

static void
gsup_peer_print(const char *name, const uint8_t *p, size_t n, const char *sep)
{
	char text[2 * 16 + 1];

	if (n > 16)
		n = 16;
	hex_encode(p, n, text);
	printf("%s=%s%s", name, text, sep);
}

static int
gsup_peer_read(struct osmo_gsup_client *gsupc, struct msgb *msg)
{
	struct osmo_gsup_message m;
	const struct osmo_auth_vector *v;

	(void)gsupc;
	memset(&m, 0, sizeof(m));
	if (osmo_gsup_decode(msgb_l2(msg), msgb_l2len(msg), &m) < 0) {
		fprintf(stderr, "gsup_peer: undecodable GSUP message\n");
		gp.done = 1 + 2;
		msgb_free(msg);
		return -1;
	}
	if (strcmp(m.imsi, gp.imsi) != 0) {
		msgb_free(msg);
		return 0;
	}
	if (m.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR) {
		printf("error cause=%d\n", (int)m.cause);
		gp.done = 1 + 2;
	} else if (m.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT &&
	           m.num_auth_vectors > 0) {
		v = &m.auth_vectors[0];
		gsup_peer_print("rand", v->rand, 16, " ");
		gsup_peer_print("xres", v->res, v->res_len, " ");
		gsup_peer_print("ck", v->ck, 16, " ");
		gsup_peer_print("ik", v->ik, 16, " ");
		gsup_peer_print("autn", v->autn, 16, "\n");
		gp.done = 1 + 0;
	} else {
		fprintf(stderr, "gsup_peer: unexpected %s\n",
		        osmo_gsup_message_type_name(m.message_type));
		gp.done = 1 + 2;
	}
	msgb_free(msg);
	return 0;
}

/* Sends SendAuthInfo, and again every second until an answer comes: the
 * link reports "up" on TCP connect, before osmo-hlr has the IPA identity
 * it routes answers by, and drops an answer it cannot route. */
static void
gsup_peer_send(void *arg)
{
	struct osmo_gsup_client *gsupc = arg;
	struct osmo_gsup_message req;

	if (gp.done)
		return;
	memset(&req, 0, sizeof(req));
	req.message_type = OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST;
	req.message_class = OSMO_GSUP_MESSAGE_CLASS_SUBSCRIBER_MANAGEMENT;
	osmo_strlcpy(req.imsi, gp.imsi, sizeof(req.imsi));
	if (osmo_gsup_client_enc_send(gsupc, &req) != 0) {
		fprintf(stderr, "gsup_peer: cannot send SendAuthInfo\n");
		gp.done = 1 + 3;
		return;
	}
	osmo_timer_schedule(&gp.resend, 1, 0);
}

static bool
gsup_peer_updown(struct osmo_gsup_client *gsupc, bool up)
{
	if (up && !gp.sent) {
		gp.sent = 1;
		osmo_timer_setup(&gp.resend, gsup_peer_send, gsupc);
		osmo_timer_schedule(&gp.resend, 0, 200000);
	}
	return true;
}

static void
gsup_peer_deadline(void *arg)
{
	(void)arg;
	fprintf(stderr, "gsup_peer: no answer within %d s\n", GSUP_PEER_DEADLINE);
	gp.done = 1 + 3;
}

static int
gsup_peer_sai(const char *addr, const char *port, const char *imsi)
{
	void *ctx = talloc_named_const(NULL, 0, "gsup_peer");
	struct ipaccess_unit *dev;
	struct osmo_gsup_client_config cfg;
	struct osmo_gsup_client *gsupc;
	struct osmo_timer_list deadline;
	char *end;
	long p = strtol(port, &end, 10);

	if (*port == '\0' || *end != '\0' || p < 1 || p > 65535 || strlen(imsi) < 6 ||
	    strlen(imsi) > 15) {
		fprintf(stderr, "gsup_peer: bad port or IMSI\n");
		return 1;
	}
	osmo_init_logging2(ctx, NULL);
	log_set_log_level(osmo_stderr_target, LOGL_ERROR);
	gp.imsi = imsi;
	dev = talloc_zero(ctx, struct ipaccess_unit);
	dev->unit_name = "stbcred-gsup-peer";
	dev->serno = "stbcred-gsup-peer"; /* osmo-hlr routes answers by it */
	memset(&cfg, 0, sizeof(cfg));
	cfg.ipa_dev = dev;
	cfg.ip_addr = addr;
	cfg.tcp_port = (unsigned)p;
	cfg.read_cb = gsup_peer_read;
	cfg.up_down_cb = gsup_peer_updown;
	if ((gsupc = osmo_gsup_client_create3(ctx, &cfg)) == NULL) {
		fprintf(stderr, "gsup_peer: cannot create the GSUP client\n");
		return 3;
	}
	osmo_timer_setup(&deadline, gsup_peer_deadline, NULL);
	osmo_timer_schedule(&deadline, GSUP_PEER_DEADLINE, 0);
	while (!gp.done)
		osmo_select_main(0);
	osmo_timer_del(&deadline);
	if (gp.sent)
		osmo_timer_del(&gp.resend);
	osmo_gsup_client_destroy(gsupc);
	fflush(stdout);
	return gp.done - 1;
}

static int
gsup_peer_hexarg(const char *name, const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;

	if (hex_decode(s, strlen(s), out, n, &len) != 0 || len != n) {
		fprintf(stderr, "gsup_peer: %s must be %zu hex bytes\n", name, n);
		return -1;
	}
	return 0;
}

static int
gsup_peer_res(int argc, char **argv)
{
	uint8_t k[16], opc[16], rand[16], autn[16], sqn[6];
	milenage_keys_t keys;
	err_t err;
	int rc = 0;

	if (gsup_peer_hexarg("K", argv[0], k, 16) != 0 ||
	    gsup_peer_hexarg("OPc", argv[1], opc, 16) != 0 ||
	    gsup_peer_hexarg("RAND", argv[2], rand, 16) != 0 ||
	    (argc > 3 && gsup_peer_hexarg("AUTN", argv[3], autn, 16) != 0))
		return 1;
	if (argc > 3)
		rc = milenage_check_autn(k, opc, rand, autn, &keys, sqn, &err);
	else
		rc = milenage_f2345(k, opc, rand, &keys, &err);
	if (rc != 0) {
		fprintf(stderr, "gsup_peer: %s\n", err.msg);
		rc = err.status == STB_UNAUTHENTICATED ? 2 : 1;
	} else {
		gsup_peer_print("res", keys.res, sizeof(keys.res), " ");
		gsup_peer_print("ck", keys.ck, sizeof(keys.ck), " ");
		gsup_peer_print("ik", keys.ik, sizeof(keys.ik), argc > 3 ? " " : "\n");
		if (argc > 3)
			gsup_peer_print("sqn", sqn, sizeof(sqn), "\n");
	}
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(opc, sizeof(opc));
	OPENSSL_cleanse(&keys, sizeof(keys));
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "sai") == 0)
		return gsup_peer_sai(argv[2], argv[3], argv[4]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "res") == 0)
		return gsup_peer_res(argc - 2, argv + 2);
	fprintf(stderr, "usage: gsup_peer sai ADDR PORT IMSI\n"
	                "       gsup_peer res K OPC RAND [AUTN]\n");
	return 1;
}
