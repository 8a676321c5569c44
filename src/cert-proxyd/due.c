/* due: verdicts on a stored certificate (see due.h). */
#include "due.h"

#include "stb/stbproto.h"

int
cp_due_keyinfo(int owned, int state, int64_t not_after, int64_t now)
{
	if (!owned)
		return STB_FORBIDDEN;
	if (state == CP_CERT_REVOKED)
		return STB_REVOKED;
	if (now >= not_after)
		return STB_EXPIRED;
	return STB_OK;
}

int
cp_due_fetch_issues(int state, int64_t not_after, int64_t now)
{
	return state != CP_CERT_VALID || now >= not_after;
}

int
cp_due_scan(int state, int64_t not_after, int64_t now, int64_t renew_before)
{
	if (state == CP_CERT_REVOKED)
		return CP_REASON_REVOKED;
	if (now >= not_after)
		return CP_REASON_EXPIRED;
	if (not_after - now <= renew_before)
		return CP_REASON_EXPIRING;
	return CP_REASON_NONE;
}

int
cp_due_from_ca(int ca_state)
{
	switch (ca_state) {
	case CP_CA_GOOD:
		return CP_REASON_NONE;
	case CP_CA_REVOKED:
		return CP_REASON_REVOKED;
	case CP_CA_EXPIRED:
		return CP_REASON_EXPIRED;
	default: /* ca-authd has no record: the certificate cannot be trusted */
		return CP_REASON_MISSING;
	}
}

const char *
cp_due_reason_name(int reason)
{
	switch (reason) {
	case CP_REASON_EXPIRING:
		return "expiring";
	case CP_REASON_EXPIRED:
		return "expired";
	case CP_REASON_REVOKED:
		return "revoked";
	case CP_REASON_MISSING:
		return "missing";
	default:
		return "none";
	}
}

const char *
cp_due_state_name(int state)
{
	switch (state) {
	case CP_CERT_VALID:
		return "good"; /* the word ca-authd and OCSP use */
	case CP_CERT_REVOKED:
		return "revoked";
	case CP_CERT_RENEWING:
		return "renewing";
	default:
		return "unknown";
	}
}
