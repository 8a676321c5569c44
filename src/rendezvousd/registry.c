/* registry: online devices -> control channel, shared by every loop. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rdv.h"
#include "tlv.h"

static unsigned
bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % RDV_BUCKETS;
}

static rdv_entry_t **
slot(rdv_t *rdv, const char *id)
{
	rdv_entry_t **pp = &rdv->buckets[bucket(id)];

	while (*pp != NULL && strcmp((*pp)->device_id, id) != 0)
		pp = &(*pp)->next;
	return pp;
}

rdv_entry_t *
rdv_registry_add(rdv_t *rdv, rdv_entry_t *e)
{
	rdv_entry_t **pp, *old;

	pthread_mutex_lock(&rdv->mu);
	pp = slot(rdv, e->device_id);
	old = *pp;
	e->gen = ++rdv->next_gen;
	if (old != NULL) {
		e->next = old->next;
		old->next = NULL;
	} else {
		e->next = NULL;
		rdv->online++;
	}
	*pp = e;
	pthread_mutex_unlock(&rdv->mu);
	return old;
}

rdv_entry_t *
rdv_registry_take(rdv_t *rdv, const char *device_id, uint64_t gen)
{
	rdv_entry_t **pp, *e = NULL;

	pthread_mutex_lock(&rdv->mu);
	pp = slot(rdv, device_id);
	if (*pp != NULL && (gen == 0 || (*pp)->gen == gen)) {
		e = *pp;
		*pp = e->next;
		e->next = NULL;
		rdv->online--;
	}
	pthread_mutex_unlock(&rdv->mu);
	return e;
}

int
rdv_registry_find(rdv_t *rdv, const char *device_id, uint64_t *gen, mbox_t **mb)
{
	rdv_entry_t *e;

	pthread_mutex_lock(&rdv->mu);
	if ((e = *slot(rdv, device_id)) != NULL) {
		*gen = e->gen;
		*mb = e->mb;
	}
	pthread_mutex_unlock(&rdv->mu);
	return e != NULL ? 0 : -1;
}

srv_conn_t *
rdv_registry_conn(rdv_t *rdv, const char *device_id, uint64_t gen)
{
	rdv_entry_t *e;
	srv_conn_t *c = NULL;

	pthread_mutex_lock(&rdv->mu);
	if ((e = *slot(rdv, device_id)) != NULL && e->gen == gen)
		c = e->conn;
	pthread_mutex_unlock(&rdv->mu);
	return c;
}

static void
kick_on_loop(void *arg)
{
	rdv_entry_t *e = arg;

	if (srv_conn_is_open(e->conn)) {
		log_info("device %s: control channel from %s replaced or removed", e->device_id,
		         e->peer);
		srv_conn_close(e->conn);
	}
	srv_conn_unref(e->conn);
	free(e);
}

void
rdv_registry_kick(rdv_entry_t *e)
{
	if (e != NULL && mbox_post(e->mb, kick_on_loop, e) == -1)
		log_warnx("device %s: cannot reach its loop to close it", e->device_id);
}

char (*rdv_registry_ids(rdv_t *rdv, size_t *n))[RDV_ID_CAP]
{
	char(*ids)[RDV_ID_CAP];
	size_t k = 0;

	pthread_mutex_lock(&rdv->mu);
	ids = calloc(rdv->online + 1, sizeof(*ids));
	for (size_t i = 0; ids != NULL && i < RDV_BUCKETS; i++)
		for (rdv_entry_t *e = rdv->buckets[i]; e != NULL; e = e->next)
			memcpy(ids[k++], e->device_id, RDV_ID_CAP);
	pthread_mutex_unlock(&rdv->mu);
	*n = k;
	return ids;
}

int
rdv_registry_list(rdv_t *rdv, buf_t *b, size_t budget)
{
	int rc = 0;

	pthread_mutex_lock(&rdv->mu);
	for (size_t i = 0; rc == 0 && i < RDV_BUCKETS; i++)
		for (rdv_entry_t *e = rdv->buckets[i]; rc == 0 && e != NULL; e = e->next) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "device_id", e->device_id);
			cJSON_AddStringToObject(o, "overlay_address", e->overlay);
			cJSON_AddStringToObject(o, "endpoint", e->endpoint);
			cJSON_AddStringToObject(o, "peer", e->peer);
			cJSON_AddNumberToObject(o, "since", (double)e->since);
			rc = daemon_entry_put(b, STB_TLV_RDV_DEVICE_ENTRY, o, budget);
		}
	pthread_mutex_unlock(&rdv->mu);
	return rc;
}
