/* ca: media-gw's client side of ca-authd, over the common per-loop peer
 * pool (peerpool.h): each worker loop gets its own connection. */
#include <stdio.h>

#include "gw.h"

gw_ca_t *
gw_ca_new(const char *addr, tls_holder_t *tls, err_t *err)
{
	/* the daemon's client identity, reloaded on SIGHUP */
	peerpool_conf_t pc = {.name = "ca-authd",
	                      .addr = addr,
	                      .expect_roles = STB_R_CA_AUTHD,
	                      .backoff_min_ms = 100,
	                      .backoff_max_ms = 2000,
	                      .shutdown_wait_ms = 5000,
	                      .tls = tls};

	return peerpool_new(&pc, err);
}

int
gw_ca_call(gw_ca_t *ca, srv_req_t *r, uint16_t type, const buf_t *tlvs, int timeout_ms,
           peer_done_fn fn, void *arg, err_t *err)
{
	return peerpool_call(ca, srv_conn_base(r->conn), srv_req_mbox(r), type, tlvs, timeout_ms,
	                     fn, arg, err);
}

void
gw_ca_free(gw_ca_t *ca)
{
	peerpool_free(ca); /* each loop's peer on its loop, 5 s at most */
}

int
gw_ca_refusal(int ca_status, const char *ca_text, char *msg, size_t cap)
{
	const char *t = ca_text != NULL && *ca_text != '\0' ? ca_text : "no reason given";

	switch (ca_status) {
	case STB_REVOKED:
		snprintf(msg, cap, "certificate revoked: %s", t);
		return STB_REVOKED;
	case STB_EXPIRED:
		snprintf(msg, cap, "certificate or key info expired: %s", t);
		return STB_EXPIRED;
	case STB_UNAUTHENTICATED:
		snprintf(msg, cap, "key info proof rejected: %s", t);
		return STB_UNAUTHENTICATED;
	case STB_NOT_FOUND:
		snprintf(msg, cap, "certificate unknown to the CA: %s", t);
		return STB_UNAUTHENTICATED;
	case STB_BAD_REQUEST:
		snprintf(msg, cap, "key info malformed: %s", t);
		return STB_BAD_REQUEST;
	default:
		/* FORBIDDEN, INTERNAL...: ours or the CA's problem, not the STB's */
		snprintf(msg, cap, "CA unavailable: ca-authd answered %s: %s",
		         stb_status_name(ca_status), t);
		return STB_UNAVAILABLE;
	}
}
