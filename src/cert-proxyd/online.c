/*
 * online: authenticated STB connections by device, on the common
 * registry (connreg.h); a device may hold several connections.
 */
#include <stdlib.h>

#include "cp.h"
#include "tlv.h"

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
cp_online_update_needed(cp_t *cp, const char *device_id, const char *cert_id, int reason)
{
	buf_t b;
	int n;

	buf_init(&b, 512);
	tlv_put_str(&b, STB_TLV_CERT_ID, cert_id);
	tlv_put_u8(&b, STB_TLV_UPDATE_REASON, (uint8_t)reason);
	n = b.failed ? 0 : cp_online_push(cp, device_id, STB_MSG_CP_CERT_UPDATE_NEEDED, &b);
	buf_free(&b);
	return n;
}
