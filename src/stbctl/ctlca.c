/* ca: stbctl commands for ca-authd. */
#include <cjson/cJSON.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hex.h"
#include "msgenc.h"
#include "stbc.h"
#include "tlv.h"
#include "x509.h"

const char ctl_ca_usage[] =
    "ca-authd:\n"
    "  ca list [--device ID] [--limit N]   issued certificates, newest first\n"
    "  ca status SERIAL                    good, revoked, expired or unknown (hex serial)\n"
    "  ca revoke SERIAL [--reason R]       R: a number or name (keyCompromise, superseded, ...)\n"
    "  ca issue --csr FILE --profile P [--device ID] [--cert-id ID] [--validity S] [--out FILE]\n"
    "                                      a certificate for a CSR (PEM or DER)\n";

static const char *const ca_states[] = {"good", "revoked", "unknown", "expired"};
static const char *const ca_reasons[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", "",
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise"};
#define NREASONS (sizeof(ca_reasons) / sizeof(ca_reasons[0]))

static int
ca_usage(void)
{
	fprintf(stderr, "usage: stbctl [options] ca COMMAND (--json for scripts)\n%s",
	        ctl_ca_usage);
	return 2;
}

/* Hex serial ("0x" and ':' allowed) to bytes. */
static int
ca_serial(const char *s, uint8_t out[20], size_t *len)
{
	char digits[64];
	size_t n = 0, o = 0;

	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
		s += 2;
	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (hex_digit(*s) < 0 || n + 1 >= sizeof(digits))
			return -1;
		digits[n++] = *s;
	}
	if (n == 0 || (n + 1) / 2 > 20)
		return -1;
	if (n % 2 == 1) /* an odd digit count has an implied leading zero */
		out[o++] = (uint8_t)hex_digit(digits[0]);
	if (hex_decode(digits + o, n - o, out + o, 20 - o, len) == -1)
		return -1;
	*len += o;
	return 0;
}

/* The uppercase hex of a serial (at most 20 bytes) into out[41]. */
static void
ca_hex(const uint8_t *p, size_t n, char *out)
{
	hex_encode_upper(p, n < 20 ? n : 20, out);
}

static const char *
ca_reason_name(int r)
{
	return r >= 0 && (size_t)r < NREASONS && *ca_reasons[r] ? ca_reasons[r] : "unknown";
}

static int
ca_reason_parse(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s != '\0' && *end == '\0')
		return v >= 0 && v <= 255 ? (int)v : -1;
	for (size_t i = 0; i < NREASONS; i++)
		if (*ca_reasons[i] && strcmp(s, ca_reasons[i]) == 0)
			return (int)i;
	return -1;
}

static void
ca_row(const cJSON *o)
{
	char na[CTL_TIME_CAP];

	if (o == NULL)
		printf("%-32s %-14s %-24s %-24s %-8s %-20s %s\n", "SERIAL", "PROFILE", "DEVICE",
		       "CERT", "STATE", "NOT_AFTER", "SUBJECT");
	else
		printf("%-32s %-14s %-24s %-24s %-8s %-20s %s\n", ctl_jstr(o, "serial"),
		       ctl_jstr(o, "profile"), ctl_jstr(o, "device_id"), ctl_jstr(o, "cert_id"),
		       ctl_jstr(o, "state"), ctl_time(ctl_jnum(o, "not_after"), na),
		       ctl_jstr(o, "subject"));
}

static int
ca_list(ctl_t *x, int argc, char **argv)
{
	struct msgreq_CA_LIST q = {0};
	err_t bad;
	buf_t b;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
			q.DEVICE_ID = MV_STR(argv[++i]);
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			q.LIMIT = MV_U(strtoul(argv[++i], NULL, 10));
		else
			return ca_usage();
	}
	buf_init(&b, 512);
	rc = msgenc_CA_LIST(&b, &q, &bad) == -1
	         ? ctl_bad_request(&bad)
	         : ctl_list(x, STB_MSG_CA_LIST, &b, TLV_IX_ENTRY, ca_row);
	buf_free(&b);
	return rc;
}

static int
ca_status(ctl_t *x, int argc, char **argv)
{
	uint8_t serial[20], state = 2, reason = 0;
	uint64_t na = 0, at = 0;
	char hex[41], dev[STB_ID_MAX + 1] = "", cid[STB_ID_MAX + 1] = "", t[CTL_TIME_CAP];
	size_t len;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;
	int rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else
			return ca_usage();
	if (argc < 1 || ca_serial(argv[0], serial, &len) == -1) {
		fprintf(stderr, "stbctl: ca status: SERIAL must be hex\n");
		return 2;
	}
	buf_init(&b, 64);
	struct msgreq_CA_STATUS q = {.CERT_SERIAL = MV_BYTES(serial, len)};
	if (msgenc_CA_STATUS(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_CA_STATUS, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u8(&m, TLV_IX_CERT_STATE, &state);
	msg_get_u64(&m, TLV_IX_NOT_AFTER, &na);
	msg_get_u64(&m, TLV_IX_REVOKED_AT, &at);
	msg_get_u8(&m, TLV_IX_REVOKE_REASON, &reason);
	msg_get_str(&m, TLV_IX_DEVICE_ID, dev, sizeof(dev));
	msg_get_str(&m, TLV_IX_CERT_ID, cid, sizeof(cid));
	ca_hex(serial, len, hex);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "serial", hex);
		cJSON_AddStringToObject(o, "state", state < 4 ? ca_states[state] : "?");
		if (na)
			cJSON_AddNumberToObject(o, "not_after", (double)na);
		if (at) {
			cJSON_AddNumberToObject(o, "revoked_at", (double)at);
			cJSON_AddStringToObject(o, "reason", ca_reason_name(reason));
		}
		if (*dev)
			cJSON_AddStringToObject(o, "device_id", dev);
		if (*cid)
			cJSON_AddStringToObject(o, "cert_id", cid);
		return ctl_print_json(o);
	}
	printf("%-12s %s\n%-12s %s\n", "serial", hex, "state", state < 4 ? ca_states[state] : "?");
	if (na)
		printf("%-12s %s\n", "not_after", ctl_time((double)na, t));
	if (at)
		printf("%-12s %s (%s)\n", "revoked_at", ctl_time((double)at, t),
		       ca_reason_name(reason));
	if (*dev)
		printf("%-12s %s\n", "device", dev);
	if (*cid)
		printf("%-12s %s\n", "cert", cid);
	return 0;
}

static int
ca_revoke(ctl_t *x, int argc, char **argv)
{
	uint8_t serial[20];
	uint64_t at = 0;
	char hex[41], t[CTL_TIME_CAP];
	int reason = -1, rc;
	size_t len;
	stb_error_t err;
	err_t bad;
	buf_t b;
	msg_t m;

	if (argc < 1 || ca_serial(argv[0], serial, &len) == -1) {
		fprintf(stderr, "stbctl: ca revoke: SERIAL must be hex\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			x->json = 1;
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc &&
		         (reason = ca_reason_parse(argv[++i])) >= 0)
			continue;
		else {
			fprintf(stderr, "stbctl: ca revoke SERIAL [--reason N|name]\n");
			return 2;
		}
	}
	buf_init(&b, 64);
	struct msgreq_CA_REVOKE q = {.CERT_SERIAL = MV_BYTES(serial, len),
	                             .REVOKE_REASON = MV_IF(reason >= 0, MV_U(reason))};
	if (msgenc_CA_REVOKE(&b, &q, &bad) == -1) {
		buf_free(&b);
		return ctl_bad_request(&bad);
	}
	rc = stbc_call(x->c, STB_MSG_CA_REVOKE, &b, &m, &err);
	buf_free(&b);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_u64(&m, TLV_IX_REVOKED_AT, &at);
	ca_hex(serial, len, hex);
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "serial", hex);
		cJSON_AddStringToObject(o, "state", "revoked");
		cJSON_AddNumberToObject(o, "revoked_at", (double)at);
		cJSON_AddStringToObject(o, "reason", ca_reason_name(reason < 0 ? 0 : reason));
		return ctl_print_json(o);
	}
	printf("%s revoked at %s (%s)\n", hex, ctl_time((double)at, t),
	       ca_reason_name(reason < 0 ? 0 : reason));
	return 0;
}

/* A CSR file, PEM or DER, as DER. */
static int
ca_read_csr(const char *path, unsigned char **der, int *len)
{
	BIO *bio = BIO_new_file(path, "rb");
	X509_REQ *req;

	if (bio == NULL)
		return -1;
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	if (req == NULL) {
		(void)BIO_reset(bio);
		req = d2i_X509_REQ_bio(bio, NULL);
	}
	BIO_free(bio);
	if (req == NULL)
		return -1;
	*der = NULL;
	*len = i2d_X509_REQ(req, der);
	X509_REQ_free(req);
	return *len > 0 ? 0 : -1;
}

/* The certificate and its chain as PEM. */
static int
ca_write_pem(FILE *f, const msg_t *m, err_t *err)
{
	const uint8_t *p;
	size_t len, pos = 0;
	int tix = TLV_IX_CERT_DER;

	if (msg_get_bytes(m, tix, &p, &len) == -1)
		return err_set(err, STB_BAD_REQUEST, "ca-authd sent no certificate");
	for (;;) {
		X509 *c = crt_from_der(p, len, err);
		int ok;
		if (c == NULL)
			return -1;
		ok = PEM_write_X509(f, c) == 1;
		X509_free(c);
		if (!ok)
			return err_set(err, STB_INTERNAL, "cannot write PEM");
		if (msg_next(m, TLV_IX_CHAIN_DER, &pos, &p, &len) != 1)
			return 0;
	}
}

static int
ca_issue(ctl_t *x, int argc, char **argv)
{
	const char *csr = NULL, *profile = NULL, *dev = NULL, *cid = NULL, *out = NULL;
	unsigned long validity = 0;
	unsigned char *der = NULL;
	const uint8_t *serial;
	size_t slen;
	uint64_t na = 0;
	char hex[41], t[CTL_TIME_CAP];
	stb_error_t err;
	err_t bad;
	int dlen, rc, toolong;
	FILE *f;
	buf_t b;
	msg_t m;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--json") == 0)
			x->json = 1;
		else if (v == NULL)
			return ca_usage();
		else if (strcmp(a, "--csr") == 0)
			csr = argv[++i];
		else if (strcmp(a, "--profile") == 0)
			profile = argv[++i];
		else if (strcmp(a, "--device") == 0)
			dev = argv[++i];
		else if (strcmp(a, "--cert-id") == 0)
			cid = argv[++i];
		else if (strcmp(a, "--validity") == 0)
			validity = strtoul(argv[++i], NULL, 10);
		else if (strcmp(a, "--out") == 0)
			out = argv[++i];
		else
			return ca_usage();
	}
	if (csr == NULL || profile == NULL)
		return ca_usage();
	if (ca_read_csr(csr, &der, &dlen) == -1) {
		fprintf(stderr, "stbctl: %s: not a PEM or DER certificate request\n", csr);
		return 1;
	}
	buf_init(&b, 16384);
	struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(der, (size_t)dlen),
	                            .CERT_PROFILE = MV_STR(profile),
	                            .DEVICE_ID = MV_IF(dev != NULL, MV_STR(dev)),
	                            .CERT_ID = MV_IF(cid != NULL, MV_STR(cid)),
	                            .VALIDITY_S = MV_IF(validity > 0, MV_U(validity))};
	toolong = msgenc_CA_ISSUE(&b, &q, &bad) == -1;
	OPENSSL_free(der);
	rc = toolong ? -1 : stbc_call(x->c, STB_MSG_CA_ISSUE, &b, &m, &err);
	buf_free(&b);
	if (toolong)
		return ctl_bad_request(&bad);
	if (rc == -1)
		return ctl_fail(&err);
	msg_get_bytes(&m, TLV_IX_CERT_SERIAL, &serial, &slen);
	msg_get_u64(&m, TLV_IX_NOT_AFTER, &na);
	ca_hex(serial, slen, hex);
	f = out != NULL ? fopen(out, "w") : NULL;
	if (out != NULL && f == NULL) {
		fprintf(stderr, "stbctl: %s: cannot write\n", out);
		return 1;
	}
	if (ca_write_pem(f != NULL ? f : stdout, &m, &bad) == -1) {
		if (f != NULL)
			fclose(f);
		fprintf(stderr, "stbctl: cannot write the certificate: %s\n", bad.msg);
		return 1;
	}
	if (f != NULL && fclose(f) != 0) {
		fprintf(stderr, "stbctl: cannot write the certificate\n");
		return 1;
	}
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "serial", hex);
		cJSON_AddNumberToObject(o, "not_after", (double)na);
		if (out != NULL)
			cJSON_AddStringToObject(o, "file", out);
		return ctl_print_json(o);
	}
	fprintf(out != NULL ? stdout : stderr, "issued serial %s until %s%s%s\n", hex,
	        ctl_time((double)na, t), out ? " into " : "", out ? out : "");
	return 0;
}

int
ctl_ca(ctl_t *x, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ca_list(x, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "status") == 0)
		return ca_status(x, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "revoke") == 0)
		return ca_revoke(x, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "issue") == 0)
		return ca_issue(x, argc - 1, argv + 1);
	return ca_usage();
}
