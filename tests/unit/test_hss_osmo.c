/* Unit tests for qualifyd's osmo-hlr backend: the VTY answer reader and
 * checker (hss_osmo_vty.c) on answers captured from osmo-hlr 1.5, and the
 * provisioning session (hss_osmo.c) against a scripted VTY on loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hss.h"
#include "hss_osmo_vty.h"
#include "testutil.h"

#define K_HEX   "465b5ce8b199b49faa5f0a2ee238a6bc"
#define OPC_HEX "cd63cb71954a9f4e48a5994e37a02baf"

static const uint8_t k_bytes[16] = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                    0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc};
static const uint8_t opc_bytes[16] = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                      0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf};

static int
answer(const char *in, char *text, size_t cap, size_t *used)
{
	return hss_osmo_vty_answer((const uint8_t *)in, strlen(in), text, cap, used);
}

static void
test_answer(void **state)
{
	static const char banner[] = "Welcome to the OsmoHLR VTY interface\r\n\r\nCopyright\r\n"
	                             "\xff\xfb\x01\xff\xfb\x03\xff\xfe\"\xff\xfd\x1fOsmoHLR> ";
	static const char created[] = "subscriber imsi 001010000000001 create\r\n"
	                              "% Created subscriber 001010000000001\r\n    ID: 1\r\n"
	                              "    IMSI: 001010000000001\r\n    MSISDN: none\r\nOsmoHLR# ";
	char text[512];
	size_t used = 0;

	(void)state;
	assert_int_equal(answer(banner, text, sizeof(text), &used), 1);
	assert_int_equal(used, strlen(banner));
	assert_string_equal(text, "Welcome to the OsmoHLR VTY interface\n\nCopyright");
	assert_int_equal(answer("enable\r\nOsmoHLR# ", text, sizeof(text), &used), 1);
	assert_string_equal(text, "enable");
	assert_int_equal(answer(created, text, sizeof(text), &used), 1);
	assert_string_equal(text, "subscriber imsi 001010000000001 create\n% Created subscriber "
	                          "001010000000001\n    ID: 1\n    IMSI: 001010000000001\n"
	                          "    MSISDN: none");
	/* not complete: cut anywhere before the prompt's blank, or in an IAC */
	for (size_t n = 0; n + 1 < strlen(created); n++)
		assert_int_equal(
		    hss_osmo_vty_answer((const uint8_t *)created, n, text, sizeof(text), &used), 0);
	assert_int_equal(hss_osmo_vty_answer((const uint8_t *)banner, sizeof(banner) - 14, text,
	                                     sizeof(text), &used),
	                 0);
	/* a line that merely ends in "# " inside the output is followed by more */
	assert_int_equal(answer("x\r\n% a# b\r\n", text, sizeof(text), &used), 0);
	/* too long for the caller's buffer */
	assert_int_equal(answer(created, text, 20, &used), -1);
}

static void
test_check(void **state)
{
	static const struct {
		int kind;
		const char *cmd, *text;
		int want, status;
		const char *msg; /* part of the error */
	} cases[] = {
	    {HSS_OSMO_ENABLE, "enable", "enable", 0, 0, NULL},
	    {HSS_OSMO_CREATE, "subscriber imsi 001010000000001 create",
	     "subscriber imsi 001010000000001 create\n% Created subscriber 001010000000001\n"
	     "    ID: 1\n    IMSI: 001010000000001\n    MSISDN: none",
	     1, 0, NULL},
	    {HSS_OSMO_CREATE, "subscriber imsi 001010000000001 create",
	     "subscriber imsi 001010000000001 create\n"
	     "% Subscriber already exists for IMSI = 001010000000001",
	     0, 0, NULL},
	    /* another IMSI's answer is not ours */
	    {HSS_OSMO_CREATE, "subscriber imsi 001010000000001 create",
	     "subscriber imsi 001010000000001 create\n% Created subscriber 001010000000002", -1,
	     STB_INTERNAL, "Created subscriber 001010000000002"},
	    {HSS_OSMO_CREATE, "subscriber imsi 00101000000000x create",
	     "subscriber imsi 00101000000000x create\n% Not a valid IMSI: 00101000000000x", -1,
	     STB_INTERNAL, "Not a valid IMSI"},
	    {HSS_OSMO_UPDATE,
	     "subscriber imsi 001010000000001 update aud3g milenage k " K_HEX " opc " OPC_HEX,
	     "subscriber imsi 001010000000001 update aud3g milenage k " K_HEX " opc " OPC_HEX, 0, 0,
	     NULL},
	    {HSS_OSMO_UPDATE,
	     "subscriber imsi 001010000000002 update aud3g milenage k " K_HEX " opc " OPC_HEX,
	     "subscriber imsi 001010000000002 update aud3g milenage k " K_HEX " opc " OPC_HEX
	     "\n% No subscriber for imsi = '001010000000002'",
	     -1, STB_INTERNAL, "No subscriber for imsi = '001010000000002'"},
	    /* the VTY quotes a refused value back: it must not reach the message */
	    {HSS_OSMO_UPDATE,
	     "subscriber imsi 001010000000001 update aud3g milenage k " K_HEX " opc " OPC_HEX,
	     "subscriber imsi 001010000000001 update aud3g milenage k " K_HEX " opc " OPC_HEX
	     "\n% Invalid value for OPC: '" OPC_HEX "'",
	     -1, STB_INTERNAL, "Invalid value for OPC: '<secret>'"},
	    {HSS_OSMO_UPDATE, "subscriber imsi 001010000000001 update aud3g milenage k x opc y",
	     "subscriber imsi 001010000000001 update aud3g milenage k x opc y\n% Unknown command.",
	     -1, STB_INTERNAL, "Unknown command."},
	    {HSS_OSMO_DELETE, "subscriber imsi 001010000000001 delete",
	     "subscriber imsi 001010000000001 delete\n"
	     "% Deleted subscriber for IMSI '001010000000001'",
	     1, 0, NULL},
	    {HSS_OSMO_DELETE, "subscriber imsi 001010000000001 delete",
	     "subscriber imsi 001010000000001 delete\n% No subscriber for imsi = '001010000000001'",
	     0, 0, NULL},
	    /* no echo of our command: not an answer to it */
	    {HSS_OSMO_DELETE, "subscriber imsi 001010000000001 delete",
	     "% Deleted subscriber for IMSI '001010000000001'", -1, STB_INTERNAL, "echo"},
	    {HSS_OSMO_ENABLE, "enable", "enable\n% Unknown command.", -1, STB_INTERNAL,
	     "Unknown command."},
	};
	hss_cred_t cred;

	(void)state;
	memset(&cred, 0, sizeof(cred));
	memcpy(cred.k, k_bytes, 16);
	memcpy(cred.opc, opc_bytes, 16);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err_t err;
		int rc;

		err_clear(&err);
		rc = hss_osmo_vty_check(cases[i].kind, cases[i].cmd, cases[i].text, &cred, &err);
		if (rc != cases[i].want)
			fail_msg("case %zu: got %d (%s), want %d", i, rc, err.msg, cases[i].want);
		if (rc == -1) {
			assert_int_equal(err.status, cases[i].status);
			if (strstr(err.msg, cases[i].msg) == NULL)
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
			assert_null(strstr(err.msg, K_HEX));
			assert_null(strstr(err.msg, OPC_HEX));
		}
	}
}

static void
test_split_addr(void **state)
{
	static const struct {
		const char *in, *host, *port;
	} cases[] = {
	    {"127.0.0.1:4258", "127.0.0.1", "4258"},
	    {"hlr.example:4258", "hlr.example", "4258"},
	    {"[::1]:4258", "::1", "4258"},
	    {"127.0.0.1", NULL, NULL},
	    {"127.0.0.1:", NULL, NULL},
	    {":4258", NULL, NULL},
	    {"127.0.0.1:0", NULL, NULL},
	    {"127.0.0.1:65536", NULL, NULL},
	    {"127.0.0.1:42x", NULL, NULL},
	    {"127.0.0.1:-1", NULL, NULL},
	    {"::1:4258", NULL, NULL},
	    {"[::1]4258", NULL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64], port[8];
		int rc =
		    hss_osmo_vty_split_addr(cases[i].in, host, sizeof(host), port, sizeof(port));

		if (cases[i].host == NULL) {
			if (rc != -1)
				fail_msg("\"%s\" accepted", cases[i].in);
			continue;
		}
		if (rc != 0)
			fail_msg("\"%s\" refused", cases[i].in);
		assert_string_equal(host, cases[i].host);
		assert_string_equal(port, cases[i].port);
	}
}

/* A scripted VTY: one connection, osmo-hlr's texts, the commands it got. */
static struct fake {
	int lfd, port;
	int exists;      /* the subscriber exists before the create */
	int fail_update; /* the update is refused */
	int silent;      /* never answer after the banner */
	char got[8][256];
	int ngot;
	pthread_t th;
} fk;

static void
fake_send(int fd, const char *s)
{
	ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL);

	(void)n;
}

static void *
fake_main(void *arg)
{
	char line[256], out[512];
	size_t len = 0;
	int fd = accept(fk.lfd, NULL, NULL);

	(void)arg;
	if (fd == -1)
		return NULL;
	fake_send(fd, "Welcome\r\n\xff\xfb\x01\xff\xfb\x03OsmoHLR> ");
	for (;;) {
		char c;

		if (recv(fd, &c, 1, 0) != 1)
			break;
		if (c != '\n') {
			if (len + 1 < sizeof(line))
				line[len++] = c;
			continue;
		}
		line[len] = '\0';
		len = 0;
		if (fk.ngot < 8)
			snprintf(fk.got[fk.ngot++], sizeof(fk.got[0]), "%s", line);
		if (fk.silent && strcmp(line, "enable") != 0)
			continue;
		if (strstr(line, " create") != NULL)
			snprintf(
			    out, sizeof(out),
			    fk.exists
			        ? "%s\r\n%% Subscriber already exists for IMSI = 001010000000001"
			          "\r\nOsmoHLR# "
			        : "%s\r\n%% Created subscriber 001010000000001\r\n    ID: 1\r\n"
			          "OsmoHLR# ",
			    line);
		else if (strstr(line, " update ") != NULL && fk.fail_update)
			snprintf(out, sizeof(out), "%s\r\n%% Unknown command.\r\nOsmoHLR# ", line);
		else if (strstr(line, " delete") != NULL)
			snprintf(
			    out, sizeof(out),
			    "%s\r\n%% Deleted subscriber for IMSI '001010000000001'\r\nOsmoHLR# ",
			    line);
		else
			snprintf(out, sizeof(out), "%s\r\nOsmoHLR# ", line);
		fake_send(fd, out);
	}
	close(fd);
	return NULL;
}

static void
fake_start(int exists, int fail_update, int silent)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	memset(&fk, 0, sizeof(fk));
	fk.exists = exists;
	fk.fail_update = fail_update;
	fk.silent = silent;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(fk.lfd = socket(AF_INET, SOCK_STREAM, 0), -1);
	assert_int_equal(bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fk.lfd, 1), 0);
	assert_int_equal(getsockname(fk.lfd, (struct sockaddr *)&sa, &sl), 0);
	fk.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&fk.th, NULL, fake_main, NULL), 0);
}

static void
fake_stop(hss_osmo_t *o)
{
	hss_osmo_close(o); /* closes the connection: the fake's loop ends */
	pthread_join(fk.th, NULL);
	close(fk.lfd);
}

static hss_osmo_t *
open_to(int port, int timeout_ms)
{
	hss_conf_t conf;
	hss_osmo_t *o = NULL;
	err_t err;

	memset(&conf, 0, sizeof(conf));
	snprintf(conf.backend, sizeof(conf.backend), "osmo-hlr");
	snprintf(conf.osmo_vty, sizeof(conf.osmo_vty), "127.0.0.1:%d", port);
	conf.osmo_timeout_ms = timeout_ms;
	if (hss_osmo_open(&conf, &o, &err) != 0)
		fail_msg("hss_osmo_open: %s", err.msg);
	return o;
}

static void
cred_of(hss_cred_t *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->imsi, sizeof(c->imsi), "001010000000001");
	memcpy(c->k, k_bytes, 16);
	memcpy(c->opc, opc_bytes, 16);
}

static void
test_provision(void **state)
{
	hss_osmo_t *o;
	hss_cred_t c;
	err_t err;

	(void)state;
	cred_of(&c);
	fake_start(0, 0, 0);
	o = open_to(fk.port, 5000);
	assert_int_equal(hss_osmo_provision(o, &c, &err), 0);
	/* the session stays: a second provision and a remove on it */
	assert_int_equal(hss_osmo_provision(o, &c, &err), 0);
	assert_int_equal(hss_osmo_remove(o, "001010000000001", &err), 0);
	fake_stop(o);
	assert_int_equal(fk.ngot, 6);
	assert_string_equal(fk.got[0], "enable");
	assert_string_equal(fk.got[1], "subscriber imsi 001010000000001 create");
	assert_string_equal(fk.got[2],
	                    "subscriber imsi 001010000000001 update aud3g milenage k " K_HEX
	                    " opc " OPC_HEX);
	assert_string_equal(fk.got[5], "subscriber imsi 001010000000001 delete");
}

/* A refused update after our create deletes the subscriber again; after
 * a create that found one, it leaves it alone. */
static void
test_provision_rollback(void **state)
{
	hss_osmo_t *o;
	hss_cred_t c;
	err_t err;

	(void)state;
	cred_of(&c);
	fake_start(0, 1, 0);
	o = open_to(fk.port, 5000);
	assert_int_equal(hss_osmo_provision(o, &c, &err), -1);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "Unknown command."));
	assert_null(strstr(err.msg, K_HEX));
	fake_stop(o);
	assert_int_equal(fk.ngot, 4);
	assert_string_equal(fk.got[3], "subscriber imsi 001010000000001 delete");

	fake_start(1, 1, 0);
	o = open_to(fk.port, 5000);
	assert_int_equal(hss_osmo_provision(o, &c, &err), -1);
	fake_stop(o);
	assert_int_equal(fk.ngot, 3);
}

static void
test_unavailable(void **state)
{
	hss_osmo_t *o;
	hss_cred_t c;
	err_t err;
	hss_conf_t conf;

	(void)state;
	cred_of(&c);
	/* silent after enable: TIMEOUT */
	fake_start(0, 0, 1);
	o = open_to(fk.port, 200);
	assert_int_equal(hss_osmo_provision(o, &c, &err), -1);
	assert_int_equal(err.status, STB_TIMEOUT);
	fake_stop(o);
	/* nobody listens (the fake's port, now closed): UNAVAILABLE */
	o = open_to(fk.port, 1000);
	assert_int_equal(hss_osmo_provision(o, &c, &err), -1);
	assert_int_equal(err.status, STB_UNAVAILABLE);
	assert_int_equal(hss_osmo_remove(o, "001010000000001", &err), -1);
	assert_int_equal(err.status, STB_UNAVAILABLE);
	/* not an IMSI: refused before any I/O */
	snprintf(c.imsi, sizeof(c.imsi), "0010x");
	assert_int_equal(hss_osmo_provision(o, &c, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	hss_osmo_close(o);
	/* bad conf */
	memset(&conf, 0, sizeof(conf));
	snprintf(conf.osmo_vty, sizeof(conf.osmo_vty), "127.0.0.1");
	conf.osmo_timeout_ms = 5000;
	assert_int_equal(hss_osmo_open(&conf, &o, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	snprintf(conf.osmo_vty, sizeof(conf.osmo_vty), "127.0.0.1:4258");
	conf.osmo_timeout_ms = 50;
	assert_int_equal(hss_osmo_open(&conf, &o, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answer),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_split_addr),
	    cmocka_unit_test(test_provision),
	    cmocka_unit_test(test_provision_rollback),
	    cmocka_unit_test(test_unavailable),
	};

	return cmocka_run_group_tests_name("hss_osmo", tests, NULL, NULL);
}
