/*
 * hss_osmo_vty: reading osmo-hlr's VTY answers (pure functions, for
 * hss_osmo.c and its unit test).
 *
 * The VTY is a telnet server: the bytes it sends after a command are the
 * echo of the command line, the command's output lines, and the next
 * prompt ("OsmoHLR# "), with telnet option negotiation (IAC ...) mixed in.
 */
#ifndef STB_QD_HSS_OSMO_VTY_H
#define STB_QD_HSS_OSMO_VTY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hss.h"

#define HSS_OSMO_ANSWER_MAX 4096 /* one answer, prompt included */
#define HSS_OSMO_CMD_MAX    160  /* the longest command line we send */

enum {
	HSS_OSMO_ENABLE,
	HSS_OSMO_CREATE,
	HSS_OSMO_UPDATE,
	HSS_OSMO_DELETE,
};

/* Looks for a complete answer at the start of in[0..len): text up to a
 * prompt at the very end of what has arrived.  1: text (NUL-terminated,
 * telnet negotiation and CRs removed, the prompt left out) holds it and
 * *used the bytes it took; 0: not complete yet; -1: it does not fit in
 * cap. */
int hss_osmo_vty_answer(const uint8_t *in, size_t len, char *text, size_t cap, size_t *used);

/* Classifies the answer text of command cmd of this kind, strictly: the
 * echo of cmd first, then the one success output of the command.
 *   ENABLE, UPDATE: 0 (no output at all).
 *   CREATE: 1 created, 0 it existed already.
 *   DELETE: 1 deleted, 0 there was none.
 * Anything else: -1 with INTERNAL and osmo-hlr's first output line, K and
 * OPc of cred (may be NULL) replaced by "<secret>". */
int hss_osmo_vty_check(int kind, const char *cmd, const char *text, const hss_cred_t *cred,
                       err_t *err);

/* "host:port" or "[v6]:port" into host and port; -1 when it is not one. */
int hss_osmo_vty_split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap);

#endif
