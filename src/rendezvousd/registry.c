/* registry: online devices -> control channel, on the common registry
 * (connreg.h, unique: a new REGISTER replaces the device's older channel). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rdv.h"
#include "tlv.h"

rdv_entry_t *
rdv_registry_add(rdv_t *rdv, rdv_entry_t *e)
{
	connreg_ent_t *old = connreg_add(rdv->reg, &e->ce);

	return old != NULL ? HTAB_ENTRY(old, rdv_entry_t, ce) : NULL;
}

rdv_entry_t *
rdv_registry_take(rdv_t *rdv, const char *device_id, uint64_t gen)
{
	connreg_ent_t *e = connreg_take(rdv->reg, device_id, gen);

	return e != NULL ? HTAB_ENTRY(e, rdv_entry_t, ce) : NULL;
}

int
rdv_registry_find(rdv_t *rdv, const char *device_id, uint64_t *gen, mbox_t **mb)
{
	return connreg_find(rdv->reg, device_id, gen, mb);
}

srv_conn_t *
rdv_registry_conn(rdv_t *rdv, const char *device_id, uint64_t gen)
{
	return connreg_conn(rdv->reg, device_id, gen);
}

static void
kick_on_loop(void *arg)
{
	rdv_entry_t *e = arg;

	if (srv_conn_is_open(e->ce.conn)) {
		log_info("device %s: control channel from %s replaced or removed", e->ce.id,
		         e->peer);
		srv_conn_close(e->ce.conn);
	}
	srv_conn_unref(e->ce.conn);
	free(e);
}

void
rdv_registry_kick(rdv_entry_t *e)
{
	if (e != NULL && mbox_post(e->ce.mb, kick_on_loop, e) == -1)
		log_warnx("device %s: cannot reach its loop to close it", e->ce.id);
}

struct ids {
	char (*ids)[RDV_ID_CAP];
	size_t n, cap;
};

static int
ids_add(connreg_ent_t *ce, void *arg)
{
	struct ids *w = arg;

	if (w->n == w->cap)
		return -1; /* joined since the count */
	memcpy(w->ids[w->n++], ce->id, RDV_ID_CAP);
	return 0;
}

char (*rdv_registry_ids(rdv_t *rdv, size_t *n))[RDV_ID_CAP]
{
	struct ids w = {NULL, 0, 0};
	int full = 1;

	/* every online device (the lease sweep must miss none): once more,
	 * bigger, when devices came online between the count and the walk */
	for (int tries = 0; full && tries < 8; tries++) {
		free(w.ids);
		w.n = 0;
		w.cap = connreg_size(rdv->reg) * 2 + 16;
		if ((w.ids = calloc(w.cap + 1, sizeof(*w.ids))) == NULL)
			break;
		full = connreg_foreach(rdv->reg, ids_add, &w) != 0;
	}
	if (full) {
		free(w.ids);
		w.ids = NULL;
		w.n = 0;
	}
	*n = w.n;
	return w.ids;
}

struct list {
	buf_t *b;
	size_t budget;
};

static int
list_add(connreg_ent_t *ce, void *arg)
{
	struct list *w = arg;
	rdv_entry_t *e = HTAB_ENTRY(ce, rdv_entry_t, ce);
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "device_id", e->ce.id);
	cJSON_AddStringToObject(o, "overlay_address", e->overlay);
	cJSON_AddStringToObject(o, "endpoint", e->endpoint);
	cJSON_AddStringToObject(o, "peer", e->peer);
	cJSON_AddNumberToObject(o, "since", (double)e->since);
	return daemon_entry_put(w->b, STB_TLV_RDV_DEVICE_ENTRY, o, w->budget);
}

int
rdv_registry_list(rdv_t *rdv, buf_t *b, size_t budget)
{
	struct list w = {b, budget};

	return connreg_foreach(rdv->reg, list_add, &w);
}
