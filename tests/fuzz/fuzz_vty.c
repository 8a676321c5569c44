/*
 * fuzz_vty: qualifyd's reader of osmo-hlr VTY answers
 * (src/qualifyd/hss_osmo_vty.c) on arbitrary bytes: the answer framer at
 * several buffer sizes, then the strict check of every command kind on
 * what it framed, and the host:port splitter.  Any crash or sanitizer
 * report is a finding, and so is an answer that breaks the framer's
 * promises: NUL-terminated inside the caller's buffer, no CR, no more
 * bytes used than given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hss_osmo_vty.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const cmds[] = {
    "enable",
    "subscriber imsi 001010000000001 create",
    "subscriber imsi 001010000000001 update aud3g milenage k 465b5ce8b199b49faa5f0a2ee238a6bc "
    "opc cd63cb71954a9f4e48a5994e37a02baf",
    "subscriber imsi 001010000000001 delete",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {1, 16, 200, HSS_OSMO_ANSWER_MAX};
	hss_cred_t cred;
	char text[HSS_OSMO_ANSWER_MAX], host[64], port[8], addr[300];

	memset(&cred, 0x5a, sizeof(cred));
	cred.imsi[0] = '\0';
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		size_t used = 0;
		int rc = hss_osmo_vty_answer(data, size, text, caps[c], &used);

		if (rc != 1)
			continue;
		if (used > size || strnlen(text, caps[c]) >= caps[c] || strchr(text, '\r') != NULL)
			abort();
		for (int k = HSS_OSMO_ENABLE; k <= HSS_OSMO_DELETE; k++) {
			err_t err;

			rc = hss_osmo_vty_check(k, cmds[k], text, &cred, &err);
			if (rc < -1 || rc > 1 ||
			    (rc == -1 && strnlen(err.msg, ERR_MSG_MAX) >= ERR_MSG_MAX))
				abort();
		}
	}
	if (size < sizeof(addr)) {
		memcpy(addr, data, size);
		addr[size] = '\0';
		if (hss_osmo_vty_split_addr(addr, host, sizeof(host), port, sizeof(port)) == 0 &&
		    (host[0] == '\0' || atoi(port) < 1 || atoi(port) > 65535))
			abort();
	}
	return 0;
}
