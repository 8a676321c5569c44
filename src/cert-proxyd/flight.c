/* flight: one issuance per certificate at a time (see flight.h). */
#include "flight.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stb/stbproto.h"

typedef struct fl_ent {
	char cert_id[STB_ID_MAX + 1];
	char device_id[STB_ID_MAX + 1];
	cp_waiter_t *head, **tail;
	int is_new; /* counted against the device's limit */
	struct fl_ent *next;
} fl_ent_t;

struct cp_flight {
	pthread_mutex_t mu;
	fl_ent_t *ents; /* few at a time: a list is enough */
	size_t n, max;
};

cp_flight_t *
cp_flight_new(size_t max)
{
	cp_flight_t *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	f->max = max > 0 ? max : 1;
	return f;
}

void
cp_flight_free(cp_flight_t *f)
{
	fl_ent_t *e, *next;

	if (f == NULL)
		return;
	for (e = f->ents; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static fl_ent_t **
fl_slot(cp_flight_t *f, const char *cert_id)
{
	fl_ent_t **pp = &f->ents;

	while (*pp != NULL && strcmp((*pp)->cert_id, cert_id) != 0)
		pp = &(*pp)->next;
	return pp;
}

int
cp_flight_join(cp_flight_t *f, const char *cert_id, const char *device_id, cp_waiter_t *w)
{
	fl_ent_t *e;
	int rc;

	if (strlen(cert_id) > STB_ID_MAX || strlen(device_id) > STB_ID_MAX)
		return CP_FLIGHT_OTHER;
	w->next = NULL;
	pthread_mutex_lock(&f->mu);
	if ((e = *fl_slot(f, cert_id)) != NULL) {
		if (strcmp(e->device_id, device_id) != 0)
			rc = CP_FLIGHT_OTHER;
		else {
			*e->tail = w;
			e->tail = &w->next;
			rc = CP_FLIGHT_JOINED;
		}
	} else if (f->n >= f->max || (e = calloc(1, sizeof(*e))) == NULL)
		rc = CP_FLIGHT_FULL;
	else {
		memcpy(e->cert_id, cert_id, strlen(cert_id) + 1);
		memcpy(e->device_id, device_id, strlen(device_id) + 1);
		e->head = w;
		e->tail = &w->next;
		e->next = f->ents;
		f->ents = e;
		f->n++;
		rc = CP_FLIGHT_LEADER;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

size_t
cp_flight_count_new(cp_flight_t *f, const char *cert_id)
{
	fl_ent_t *e, *x;
	size_t n = 0;

	pthread_mutex_lock(&f->mu);
	if ((e = *fl_slot(f, cert_id)) != NULL) {
		for (x = f->ents; x != NULL; x = x->next)
			if (x != e && x->is_new && strcmp(x->device_id, e->device_id) == 0)
				n++;
		e->is_new = 1;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

cp_waiter_t *
cp_flight_finish(cp_flight_t *f, const char *cert_id)
{
	fl_ent_t **pp, *e;
	cp_waiter_t *w = NULL;

	pthread_mutex_lock(&f->mu);
	pp = fl_slot(f, cert_id);
	if ((e = *pp) != NULL) {
		*pp = e->next;
		f->n--;
		w = e->head;
		free(e);
	}
	pthread_mutex_unlock(&f->mu);
	return w;
}

size_t
cp_flight_count(cp_flight_t *f)
{
	size_t n;

	pthread_mutex_lock(&f->mu);
	n = f->n;
	pthread_mutex_unlock(&f->mu);
	return n;
}
