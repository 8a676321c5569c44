/*
 * online: authenticated STB connections by device, on the common
 * registry (connreg.h); a device may hold several connections.
 */
#include <stdlib.h>

#include "cp.h"
#include "log.h"
#include "msgenc.h"

uint64_t
cp_online_add(cp_t *cp, const char *device_id, srv_conn_t *conn)
{
	connreg_ent_t *e = malloc(sizeof(*e));

	if (e == NULL || connreg_ent_init(e, device_id, conn, NULL) == -1) {
		free(e);
		return 0;
	}
	connreg_add(cp->online, e);
	return e->gen;
}

void
cp_online_remove(cp_t *cp, const char *device_id, uint64_t gen)
{
	free(connreg_take(cp->online, device_id, gen));
}

int
cp_online_push(cp_t *cp, const char *device_id, uint16_t type, const buf_t *tlvs)
{
	return connreg_push(cp->online, device_id, type, tlvs);
}

int
cp_online_kick(cp_t *cp, const char *device_id)
{
	return connreg_kick(cp->online, device_id);
}

int
cp_online_count(cp_t *cp, const char *device_id)
{
	return connreg_count(cp->online, device_id);
}

int
cp_online_needed_enc(buf_t *b, const char *cert_id, int64_t reason, err_t *err)
{
	struct msgreq_CP_CERT_UPDATE_NEEDED q = {.CERT_ID = MV_STR(cert_id),
	                                         .UPDATE_REASON = MV_U(reason)};

	/* a negative reason does not fit in the U8 either */
	return msgenc_CP_CERT_UPDATE_NEEDED(b, &q, err);
}

int
cp_online_update_needed(cp_t *cp, const char *device_id, const char *cert_id, int reason)
{
	err_t err;
	buf_t b;
	int n = 0;

	buf_init(&b, 512);
	if (cp_online_needed_enc(&b, cert_id, reason, &err) == -1)
		log_warnx("update of %s for %s not pushed (%s): %s", cert_id, device_id,
		          stb_status_name(err.status), err.msg);
	else
		n = cp_online_push(cp, device_id, STB_MSG_CP_CERT_UPDATE_NEEDED, &b);
	buf_free(&b);
	return n;
}
