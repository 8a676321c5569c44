/*
 * fuzz_config: the config loader on arbitrary text, through ca-authd's
 * tables (every daemon's keys, the `listeners` array, ca-authd's own keys
 * and their checks), as `ca-authd -t -c FILE` reads it.  Any crash, leak
 * or sanitizer report is a finding.  A text that is accepted must also
 * survive the round trip: its effective configuration, dumped and loaded
 * again, is accepted and dumps to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int
fuzz_check(err_t *err)
{
	ca_profile_t prof[CA_NPROFILES];

	return profile_load(&conf_ca, prof, err);
}

/* ca-authd's definition as far as its configuration goes (ca-authd.c). */
static const daemon_def_t fuzz_def = {
    .name = "ca-authd",
    .role = STB_R_CA_AUTHD,
    .listen = "127.0.0.1:7101",
    .http_listen = "127.0.0.1:9101",
    .client_auth = "require",
    .opts = conf_opts,
    .nopts = CONF_NOPTS,
    .conf = &conf_ca,
    .check = fuzz_check,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_config", 0, 0);
	return 0;
}

/* The effective configuration of an accepted text loads back unchanged. */
static void
fuzz_round_trip(daemon_t *d)
{
	char *dump = cfg_dump_json(d->tabs, 2), *again;
	err_t err;

	if (dump == NULL)
		abort();
	daemon_conf_release(d);
	if (daemon_conf_text(d, &fuzz_def, dump, "dump", &err) == -1)
		abort();
	if ((again = cfg_dump_json(d->tabs, 2)) == NULL || strcmp(dump, again) != 0)
		abort();
	free(again);
	free(dump);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	daemon_t d;
	err_t err;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (daemon_conf_text(&d, &fuzz_def, text, "fuzz.json", &err) == 0)
		fuzz_round_trip(&d);
	else if (err.status == STB_OK || err.msg[0] == '\0')
		abort(); /* a refusal must say why */
	daemon_conf_release(&d);
	free(text);
	return 0;
}
