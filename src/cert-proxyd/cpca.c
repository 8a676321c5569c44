/*
 * ca: calls to ca-authd, over the common per-loop peer pool (peerpool.h):
 * the workers and the main loop's scanner each get their own connection.
 */
#include "cp.h"
#include "log.h"

int
cp_ca_init(cp_t *cp, err_t *err)
{
	/* the daemon's client identity, reloaded on SIGHUP */
	peerpool_conf_t pc = {.name = "ca-authd",
	                      .addr = cp->conf->ca_addr,
	                      .expect_roles = STB_R_CA_AUTHD,
	                      .backoff_min_ms = 200,
	                      .backoff_max_ms = 5000,
	                      .timeout_ms = (int)cp->conf->ca_timeout_ms,
	                      .tls = &cp->d->client_tls};

	if ((cp->ca = peerpool_new(&pc, err)) == NULL)
		return -1;
	return daemon_watch_peer(cp->d, "ca-authd", cp->ca, err);
}

int
cp_ca_call(cp_t *cp, struct event_base *base, mbox_t *mb, uint16_t type, const buf_t *tlvs,
           peer_done_fn fn, void *arg, err_t *err)
{
	if (cp_stopping(cp))
		return err_set(err, STB_UNAVAILABLE, "cert-proxyd is shutting down");
	return peerpool_call(cp->ca, base, mb, type, tlvs, 0, fn, arg, err);
}

void
cp_ca_error(const msg_t *rsp, const err_t *err, err_t *out)
{
	char text[256] = "";
	int st;

	if (rsp == NULL) {
		/* no answer: down, unreachable or silent */
		err_set(out, err->status == STB_TIMEOUT ? STB_TIMEOUT : STB_UNAVAILABLE,
		        "ca-authd: %s", err->msg);
		return;
	}
	st = msg_status(rsp);
	msg_get_str(rsp, TLV_IX_ERROR_TEXT, text, sizeof(text));
	switch (st) {
	case STB_UNAVAILABLE:
	case STB_RATE_LIMITED:
	case STB_TIMEOUT:
		err_set(out, STB_UNAVAILABLE, "ca-authd: %s: %s", stb_status_name(st), text);
		break;
	default:
		err_set(out, STB_INTERNAL, "ca-authd refused: %s: %s", stb_status_name(st), text);
	}
}

void
cp_ca_fini(cp_t *cp)
{
	peerpool_free(cp->ca); /* each loop's peer on its loop */
	cp->ca = NULL;
}
