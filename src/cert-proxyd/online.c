/*
 * online: authenticated STB connections by device, shared by every loop.
 * A device may hold several connections.  An entry is added and removed on
 * its connection's loop, so a job posted to that loop that still finds the
 * entry (by gen) finds a live connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "log.h"
#include "tlv.h"

struct cp_online {
	char device_id[CP_ID_CAP];
	uint64_t gen;
	srv_conn_t *conn;
	mbox_t *mb;
	cp_online_t *next;
};

/* A push or a close for one connection, run on its loop. */
struct online_job {
	cp_t *cp;
	char device_id[CP_ID_CAP];
	uint64_t gen;
	uint16_t type; /* 0: close */
	buf_t tlvs;
};

static unsigned
bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % CP_BUCKETS;
}

uint64_t
cp_online_add(cp_t *cp, const char *device_id, srv_conn_t *conn)
{
	cp_online_t *e = calloc(1, sizeof(*e));
	unsigned b = bucket(device_id);
	uint64_t gen;

	if (e == NULL)
		return 0;
	snprintf(e->device_id, sizeof(e->device_id), "%s", device_id);
	e->conn = conn;
	e->mb = srv_conn_mbox(conn);
	pthread_mutex_lock(&cp->mu);
	gen = e->gen = ++cp->next_gen;
	e->next = cp->buckets[b];
	cp->buckets[b] = e;
	pthread_mutex_unlock(&cp->mu);
	return gen;
}

void
cp_online_remove(cp_t *cp, const char *device_id, uint64_t gen)
{
	cp_online_t **pp, *e = NULL;

	pthread_mutex_lock(&cp->mu);
	for (pp = &cp->buckets[bucket(device_id)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->gen == gen) {
			e = *pp;
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&cp->mu);
	free(e);
}

/* On the entry's loop: its connection while the entry stands. */
static srv_conn_t *
online_conn(cp_t *cp, const char *device_id, uint64_t gen)
{
	srv_conn_t *c = NULL;

	pthread_mutex_lock(&cp->mu);
	for (cp_online_t *e = cp->buckets[bucket(device_id)]; e != NULL; e = e->next)
		if (e->gen == gen) {
			c = e->conn;
			break;
		}
	pthread_mutex_unlock(&cp->mu);
	return c;
}

static void
online_run(void *arg)
{
	struct online_job *j = arg;
	srv_conn_t *c = online_conn(j->cp, j->device_id, j->gen);

	if (c != NULL && j->type == 0) {
		log_info("device %s: closing its connection from %s", j->device_id,
		         srv_conn_peer(c));
		srv_conn_close(c); /* removes the entry through the close hook */
	} else if (c != NULL && srv_conn_push(c, j->type, &j->tlvs, NULL) == -1)
		log_debug("device %s: push %s not sent", j->device_id, proto_msg_name(j->type));
	buf_free(&j->tlvs);
	cp_unref(j->cp);
	free(j);
}

/* Posts (type, tlvs) to each of device_id's connections; how many. */
static int
online_post(cp_t *cp, const char *device_id, uint16_t type, const buf_t *tlvs)
{
	struct online_job *jobs = NULL, *j;
	mbox_t **mbs = NULL;
	size_t n = 0, cap = 0;
	int sent = 0;

	/* copy out under the lock, post after it */
	pthread_mutex_lock(&cp->mu);
	for (cp_online_t *e = cp->buckets[bucket(device_id)]; e != NULL; e = e->next) {
		if (strcmp(e->device_id, device_id) != 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct online_job *nj = realloc(jobs, nc * sizeof(*jobs));
			mbox_t **nm = nj != NULL ? realloc(mbs, nc * sizeof(*mbs)) : NULL;
			if (nj != NULL)
				jobs = nj;
			if (nm == NULL)
				break;
			mbs = nm;
			cap = nc;
		}
		jobs[n].gen = e->gen;
		mbs[n++] = e->mb;
	}
	pthread_mutex_unlock(&cp->mu);
	for (size_t i = 0; i < n; i++) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			continue;
		j->cp = cp;
		snprintf(j->device_id, sizeof(j->device_id), "%s", device_id);
		j->gen = jobs[i].gen;
		j->type = type;
		buf_init(&j->tlvs, 65536);
		if (tlvs != NULL && buf_append(&j->tlvs, tlvs->data, tlvs->len) == -1) {
			buf_free(&j->tlvs);
			free(j);
			continue;
		}
		cp_ref(cp);
		if (mbox_post(mbs[i], online_run, j) == -1) {
			cp_unref(cp);
			buf_free(&j->tlvs);
			free(j);
			continue;
		}
		sent++;
	}
	free(jobs);
	free(mbs);
	return sent;
}

int
cp_online_push(cp_t *cp, const char *device_id, uint16_t type, const buf_t *tlvs)
{
	return online_post(cp, device_id, type, tlvs);
}

int
cp_online_kick(cp_t *cp, const char *device_id)
{
	return online_post(cp, device_id, 0, NULL);
}

int
cp_online_count(cp_t *cp, const char *device_id)
{
	int n = 0;

	pthread_mutex_lock(&cp->mu);
	for (cp_online_t *e = cp->buckets[bucket(device_id)]; e != NULL; e = e->next)
		n += strcmp(e->device_id, device_id) == 0;
	pthread_mutex_unlock(&cp->mu);
	return n;
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
