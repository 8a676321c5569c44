/*
 * cli: ca-authd's offline subcommands, on the same configuration file as
 * the daemon (state_dir, kek_file, ca.*, profiles.*).
 *
 *   ca-authd init [-c FILE]
 *	Makes the root CA, the issuing CA and the delegated OCSP responder
 *	in state_dir (keys sealed under the KEK) and writes root.pem,
 *	chain-issuing.pem, chain.pem and ocsp.pem there.  Run again, it
 *	changes nothing and says so.  --renew-ocsp gives the responder a new
 *	key and certificate (it has no revocation check, so it is short-lived:
 *	ca.ocsp_days); the daemon uses them after a restart.
 *   ca-authd issue-service [-c FILE] --name NAME --role ROLE [--dns NAME]...
 *	[--ip ADDR]... [--days N] --out-cert FILE --out-key FILE
 *	A service certificate (SAN urn:stbcred:role:ROLE), recorded like
 *	every other; FILE gets the leaf and the issuing CA, the key 0600.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "x509.h"

#define CLI_SANS 7

static void
cli_usage(void)
{
	fprintf(stderr,
	        "usage: ca-authd init [-c file] [--renew-ocsp]\n"
	        "       ca-authd issue-service [-c file] --name NAME --role ROLE [--dns NAME]...\n"
	        "                [--ip ADDR]... [--days N] --out-cert FILE --out-key FILE\n");
}

struct cli_rec {
	daemon_t *d;
	const certdb_row_t *row;
	const char *event;
};

static int
cli_record(store_conn_t *c, void *arg, err_t *err)
{
	struct cli_rec *w = arg;
	char hex[CA_SERIAL_HEX];

	crt_serial_hex(w->row->serial, w->row->serial_len, hex);
	if (certdb_insert(c, w->row, err) == -1)
		return -1;
	return daemon_auditf(w->d, c, err, w->event, w->row->requester,
	                     "serial=%s profile=%s subject=%s not_after=%lld", hex, w->row->profile,
	                     w->row->subject, (long long)w->row->not_after);
}

static void
cli_fingerprint(X509 *x, char out[3 * 32 + 1])
{
	uint8_t md[32];
	unsigned int n = 0;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

/* The responder is a certificate like any other: OCSP knows it. */
static int
cli_record_responder(daemon_t *d, X509 *x, const char *event, err_t *err)
{
	certdb_row_t row;
	struct cli_rec w = {d, &row, event};
	uint8_t *der = NULL;
	int rc;

	memset(&row, 0, sizeof(row));
	if (crt_serial_get(X509_get0_serialNumber(x), row.serial, &row.serial_len, err) == -1 ||
	    crt_time(X509_get0_notBefore(x), &row.not_before, err) == -1 ||
	    crt_time(X509_get0_notAfter(x), &row.not_after, err) == -1)
		return -1;
	cert_cn(x, row.subject, sizeof(row.subject));
	snprintf(row.profile, sizeof(row.profile), "ocsp-responder");
	snprintf(row.requester, sizeof(row.requester), "ca-authd init");
	row.issued_at = (int64_t)time(NULL);
	rc = cert_der(x, &der, &row.der_len, err);
	row.der = der;
	if (rc == 0)
		rc = store_write_sync(d->store, cli_record, &w, err);
	OPENSSL_free(der);
	return rc;
}

static int
cli_renew_ocsp(daemon_t *d)
{
	int64_t until;
	X509 *x;
	err_t err;

	if (pki_renew_responder(d->def->conf, d->kek, d->conf.state_dir, &x, &err) == -1 ||
	    cli_record_responder(d, x, "ocsp-renew", &err) == -1) {
		fprintf(stderr, "ca-authd: init --renew-ocsp: %s\n", err.msg);
		return 1;
	}
	if (crt_time(X509_get0_notAfter(x), &until, NULL) == -1)
		until = -1;
	printf("ca-authd: new OCSP responder certificate in %s/ocsp.pem until %lld; restart "
	       "ca-authd to use it\n",
	       d->conf.state_dir, (long long)until);
	X509_free(x);
	return 0;
}

static int
cli_init(daemon_t *d, int renew_ocsp)
{
	char fp[3 * 32 + 1];
	pki_t p;
	err_t err;
	int rc;

	if ((rc = pki_present(d->conf.state_dir, &err)) == -1 && !renew_ocsp) {
		fprintf(stderr, "ca-authd: init: %s\n", err.msg);
		return 1;
	}
	if (renew_ocsp && rc == 1) {
		fprintf(stderr, "ca-authd: init --renew-ocsp: no CA in %s\n", d->conf.state_dir);
		return 1;
	}
	if (renew_ocsp)
		return cli_renew_ocsp(d);
	if (rc == 0) {
		printf("ca-authd: %s already holds a CA; nothing changed\n", d->conf.state_dir);
		return 0;
	}
	if (pki_create(d->def->conf, d->kek, d->conf.state_dir, &p, &err) == -1) {
		fprintf(stderr, "ca-authd: init: %s\n", err.msg);
		return 1;
	}
	if (cli_record_responder(d, p.ocsp, "ca-init", &err) == -1) {
		fprintf(stderr, "ca-authd: init: %s\n", err.msg);
		pki_clear(&p);
		return 1;
	}
	cli_fingerprint(p.root, fp);
	printf("ca-authd: CA created in %s\n"
	       "  root CA     %s/root.pem (SHA-256 %s)\n"
	       "  issuing CA  %s/chain-issuing.pem (chain: %s/chain.pem)\n"
	       "  responder   %s/ocsp.pem\n",
	       d->conf.state_dir, d->conf.state_dir, fp, d->conf.state_dir, d->conf.state_dir,
	       d->conf.state_dir);
	pki_clear(&p);
	return 0;
}

static int
cli_dns_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '*'))
			return 0;
	return 1;
}

static int
cli_ip_ok(const char *s)
{
	uint8_t a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

struct svc_args {
	const char *name, *role, *out_cert, *out_key;
	const char *dns[CLI_SANS + 1], *ips[CLI_SANS + 1];
	int ndns, nips;
	long days;
};

static int
cli_svc_args(int argc, char **argv, const char **conf, struct svc_args *a)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},    {"role", required_argument, NULL, 'r'},
	    {"dns", required_argument, NULL, 'D'},     {"ip", required_argument, NULL, 'I'},
	    {"days", required_argument, NULL, 'y'},    {"out-cert", required_argument, NULL, 'o'},
	    {"out-key", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*conf = optarg;
			break;
		case 'n':
			a->name = optarg;
			break;
		case 'r':
			a->role = optarg;
			break;
		case 'D':
			if (a->ndns == CLI_SANS || !cli_dns_ok(optarg))
				return -1;
			a->dns[a->ndns++] = optarg;
			break;
		case 'I':
			if (a->nips == CLI_SANS || !cli_ip_ok(optarg))
				return -1;
			a->ips[a->nips++] = optarg;
			break;
		case 'y':
			a->days = strtol(optarg, NULL, 10);
			break;
		case 'o':
			a->out_cert = optarg;
			break;
		case 'k':
			a->out_key = optarg;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || a->name == NULL || a->role == NULL || a->out_cert == NULL ||
	    a->out_key == NULL || !proto_id_valid((const uint8_t *)a->name, strlen(a->name)) ||
	    a->days < 0 || a->days > 36500)
		return -1;
	return 0;
}

static int
cli_issue_service(daemon_t *d, const struct svc_args *a)
{
	ca_t ca;
	EVP_PKEY *key = NULL;
	X509 *x = NULL, *chain[2];
	uint8_t *der = NULL;
	size_t der_len;
	certdb_row_t row;
	struct cli_rec w = {d, &row, "issue-service"};
	issue_req_t q;
	err_t err;
	int rc = 1;

	memset(&ca, 0, sizeof(ca));
	memset(&q, 0, sizeof(q));
	if (ca_setup(&ca, d, d->def->conf, &err) == -1)
		goto out;
	if (!ca.ready) {
		err_set(&err, STB_NOT_FOUND, "no CA in %s: run 'ca-authd init' first",
		        d->conf.state_dir);
		goto out;
	}
	q.prof = &ca.prof[CA_PROF_SERVICE];
	q.device_id = a->name;
	q.cert_id = a->role;
	q.validity_s = (uint32_t)(a->days * 86400);
	q.dns = a->dns;
	q.ips = a->ips;
	q.requester = "ca-authd issue-service";
	if ((key = cert_key_new(&err)) == NULL ||
	    issue_build(&ca, &q, key, (int64_t)time(NULL), &x, &der, &der_len, &row, &err) == -1 ||
	    store_write_sync(d->store, cli_record, &w, &err) == -1 ||
	    pki_write_pem_key(a->out_key, key, &err) == -1)
		goto out;
	chain[0] = x;
	chain[1] = ca.pki.issuing;
	if (pki_write_pem_certs(a->out_cert, chain, 2, &err) == -1)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "ca-authd: issue-service: %s\n", err.msg);
	else {
		char hex[CA_SERIAL_HEX];
		crt_serial_hex(row.serial, row.serial_len, hex);
		printf("ca-authd: %s (role %s) serial %s until %lld\n", a->name, a->role, hex,
		       (long long)row.not_after);
	}
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	ca_teardown(&ca);
	return rc;
}

int
cli_main(int argc, char **argv, const daemon_def_t *def)
{
	static const struct option initopts[] = {{"renew-ocsp", no_argument, NULL, 'R'},
	                                         {NULL, 0, NULL, 0}};
	const char *conf = NULL;
	struct svc_args a;
	daemon_t d;
	err_t err;
	int rc, ch, renew = 0;

	log_init(def->name, 0, 0);
	memset(&a, 0, sizeof(a));
	if (strcmp(argv[0], "init") == 0) {
		while ((ch = getopt_long(argc, argv, "c:", initopts, NULL)) != -1) {
			if (ch == 'c')
				conf = optarg;
			else if (ch == 'R')
				renew = 1;
			else {
				cli_usage();
				return 2;
			}
		}
		if (optind != argc) {
			cli_usage();
			return 2;
		}
	} else if (cli_svc_args(argc, argv, &conf, &a) == -1) {
		cli_usage();
		return 2;
	}
	if (daemon_offline_open(&d, def, conf, &err) == -1) {
		fprintf(stderr, "%s: %s: %s\n", def->name, conf ? conf : "default", err.msg);
		daemon_offline_close(&d);
		return 1;
	}
	rc = strcmp(argv[0], "init") == 0 ? cli_init(&d, renew) : cli_issue_service(&d, &a);
	daemon_offline_close(&d);
	return rc;
}
