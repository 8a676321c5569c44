/*
 * hss_osmo_cli: qualifyd's osmo-hlr backend (src/qualifyd/hss_osmo.c) from
 * the command line, for the tests against a real osmo-hlr:
 *   hss_osmo_cli provision HOST:PORT IMSI K OPC
 *   hss_osmo_cli remove HOST:PORT IMSI
 * exit 0, or the status code of the error (its message on stderr).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "hss.h"

int
main(int argc, char **argv)
{
	hss_conf_t conf;
	hss_osmo_t *o = NULL;
	hss_cred_t c;
	err_t err;
	size_t n = 0;
	int rc;

	if (!((argc == 6 && strcmp(argv[1], "provision") == 0) ||
	      (argc == 4 && strcmp(argv[1], "remove") == 0))) {
		fprintf(stderr, "usage: hss_osmo_cli provision HOST:PORT IMSI K OPC\n"
		                "       hss_osmo_cli remove HOST:PORT IMSI\n");
		return 1;
	}
	memset(&conf, 0, sizeof(conf));
	snprintf(conf.backend, sizeof(conf.backend), "osmo-hlr");
	snprintf(conf.osmo_vty, sizeof(conf.osmo_vty), "%s", argv[2]);
	conf.osmo_timeout_ms = 5000;
	if (hss_osmo_open(&conf, &o, &err) != 0) {
		fprintf(stderr, "hss_osmo_cli: %s\n", err.msg);
		return err.status;
	}
	memset(&c, 0, sizeof(c));
	snprintf(c.imsi, sizeof(c.imsi), "%s", argv[3]);
	if (argc == 6 &&
	    (hex_decode(argv[4], strlen(argv[4]), c.k, sizeof(c.k), &n) != 0 || n != sizeof(c.k) ||
	     hex_decode(argv[5], strlen(argv[5]), c.opc, sizeof(c.opc), &n) != 0 ||
	     n != sizeof(c.opc))) {
		fprintf(stderr, "hss_osmo_cli: K and OPC are 16 hex bytes\n");
		hss_osmo_close(o);
		return 1;
	}
	rc = argc == 6 ? hss_osmo_provision(o, &c, &err) : hss_osmo_remove(o, c.imsi, &err);
	OPENSSL_cleanse(&c, sizeof(c));
	hss_osmo_close(o);
	if (rc != 0) {
		fprintf(stderr, "hss_osmo_cli: %s\n", err.msg);
		return err.status;
	}
	return 0;
}
