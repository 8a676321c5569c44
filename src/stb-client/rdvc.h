/*
 * rdvc: libstbclient's side of rendezvousd (flow B), shared by rdv.c (the
 * control channel, the offered sessions) and peer.c (the TLS 1.3 PSK
 * links), and with the test driver tests/integration/peer_client.c.
 */
#ifndef STB_RDVC_H
#define STB_RDVC_H

#include <stdint.h>
#include <time.h>

#include "codewrap.h"
#include "stbc.h"

#define RDVC_ID_CAP         (STB_ID_MAX + 1)
#define RDVC_EP_CAP         263
#define RDVC_ADDR_CAP       16
#define RDVC_MAX_OFFERS     64 /* offered sessions kept */
#define RDVC_MAX_PER_CALLER 16 /* of them from one caller; its oldest goes first */
#define RDVC_MAX_USED       64 /* gone session ids remembered, to say why */

/* A session the server offered this device. */
typedef struct rdvc_offer {
	int live;
	uint8_t sid[RDV_SID_LEN];
	uint8_t code[RDV_CODE_LEN];
	char caller[RDVC_ID_CAP];
	int64_t expires; /* unix time */
} rdvc_offer_t;

struct stb_rdv {
	stb_client_t *c;
	char device_id[RDVC_ID_CAP];
	char endpoint[RDVC_EP_CAP];
	char overlay[RDVC_ADDR_CAP];
	uint8_t key[RDV_KEY_LEN];
	uint32_t hb_interval_ms;
	struct timespec next_hb;
	rdvc_offer_t offers[RDVC_MAX_OFFERS];
	uint8_t used[RDVC_MAX_USED][RDV_SID_LEN];
	int used_status[RDVC_MAX_USED]; /* REPLAY, EXPIRED or SUPERSEDED; 0: empty */
	size_t used_next;
};

/* rdvc.c */
/* Reads and handles one control frame if one arrives within timeout_ms:
 * 0 (or nothing arrived), -1 when the channel is gone. */
int rdvc_service(stb_rdv_t *r, int timeout_ms, stb_error_t *err);
/* The control socket, for poll(); -1 when disconnected.  *pending is set
 * when TLS already holds unread bytes. */
int rdvc_fd(const stb_rdv_t *r, int *pending);
/* Remembers a session the server offered.  Expired offers are dropped
 * first.  A caller holding RDVC_MAX_PER_CALLER offers loses its oldest; a
 * full set drops the oldest offer of the caller holding the most (the new
 * offer's caller on a tie), so one caller cannot push out the others'.  A
 * dropped offer is SUPERSEDED, not EXPIRED. */
void rdvc_offer_add(stb_rdv_t *r, const uint8_t sid[RDV_SID_LEN], const uint8_t code[RDV_CODE_LEN],
                    const char *caller, int64_t expires);
/* Takes the offer for sid (it is consumed): 0 and the code and caller, or
 * -1 with REPLAY, EXPIRED, SUPERSEDED or UNAUTHENTICATED. */
int rdvc_take(stb_rdv_t *r, const uint8_t *sid, size_t sidlen, uint8_t code[RDV_CODE_LEN],
              char caller[RDVC_ID_CAP], stb_error_t *err);
/* CONNECT_REQ: the session id, the opened code and the target's endpoint. */
int rdvc_session(stb_rdv_t *r, const char *target, uint8_t sid[RDV_SID_LEN],
                 uint8_t code[RDV_CODE_LEN], char endpoint[RDVC_EP_CAP], stb_error_t *err);

/* peerlink.c */
/* TCP to endpoint and the PSK handshake as the connecting side; r (may be
 * NULL) is serviced while the link waits in stb_peer_recv. */
int rdvc_peer_connect(stb_rdv_t *r, int timeout_ms, const char *endpoint, const char *peer_id,
                      const uint8_t sid[RDV_SID_LEN], const uint8_t code[RDV_CODE_LEN],
                      stb_peer_t **out, stb_error_t *err);
/* A short fingerprint of the link's code (hex of 8 bytes of SHA-256), for
 * logs and tests: never the code. */
const char *rdvc_peer_code_fp(const stb_peer_t *p);
/* The (EC)DHE group the link's psk_dhe_ke handshake used ("x25519"). */
const char *rdvc_peer_group(const stb_peer_t *p);

#endif
