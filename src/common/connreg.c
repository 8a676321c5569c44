/* connreg: the online-connection registry (see connreg.h). */
#include "connreg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "log.h"

#define CONNREG_BUCKETS    1024
#define CONNREG_STACK_JOBS 8

struct connreg {
	pthread_mutex_t mu;
	htab_t t;
	uint64_t next_gen;
	int unique;
	lifecycle_t lc; /* the owner and each queued job */
};

/* A push or a close for one connection, run on its loop. */
struct connreg_job {
	connreg_t *r;
	char id[CONNREG_ID_CAP];
	uint64_t gen;
	uint16_t type; /* 0: close */
	buf_t tlvs;
};

static int
connreg_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, connreg_ent_t, h)->id, key, len);
}

static void
connreg_destroy(void *arg)
{
	connreg_t *r = arg;

	htab_fini(&r->t);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

connreg_t *
connreg_new(int unique, err_t *err)
{
	connreg_t *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (htab_init(&r->t, CONNREG_BUCKETS, 0, connreg_eq, err) == -1) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->unique = unique;
	lifecycle_init(&r->lc, connreg_destroy, r);
	return r;
}

void
connreg_free(connreg_t *r)
{
	if (r == NULL)
		return;
	lifecycle_stop(&r->lc);
	lifecycle_unref(&r->lc);
}

int
connreg_ent_init(connreg_ent_t *e, const char *id, srv_conn_t *conn, err_t *err)
{
	size_t n = strlen(id);

	memset(e, 0, sizeof(*e));
	if (n == 0 || n >= sizeof(e->id))
		return err_set(err, STB_BAD_REQUEST, "ID of %zu bytes", n);
	memcpy(e->id, id, n + 1);
	e->conn = conn;
	e->mb = srv_conn_mbox(conn);
	return 0;
}

static connreg_ent_t *
connreg_first(connreg_t *r, uint64_t h, const char *id)
{
	htab_node_t *n = htab_find(&r->t, h, id, strlen(id));

	return n != NULL ? HTAB_ENTRY(n, connreg_ent_t, h) : NULL;
}

static connreg_ent_t *
connreg_next(connreg_t *r, connreg_ent_t *e, const char *id)
{
	htab_node_t *n = htab_find_next(&r->t, &e->h, id, strlen(id));

	return n != NULL ? HTAB_ENTRY(n, connreg_ent_t, h) : NULL;
}

/* id's entry with gen (0: the first), under the lock. */
static connreg_ent_t *
connreg_lookup(connreg_t *r, uint64_t h, const char *id, uint64_t gen)
{
	connreg_ent_t *e;

	for (e = connreg_first(r, h, id); e != NULL; e = connreg_next(r, e, id))
		if (gen == 0 || e->gen == gen)
			return e;
	return NULL;
}

connreg_ent_t *
connreg_add(connreg_t *r, connreg_ent_t *e)
{
	uint64_t h = htab_hash(&r->t, e->id, strlen(e->id));
	connreg_ent_t *old = NULL;

	pthread_mutex_lock(&r->mu);
	if (r->unique && (old = connreg_first(r, h, e->id)) != NULL)
		htab_remove(&r->t, &old->h);
	e->gen = ++r->next_gen;
	htab_insert(&r->t, &e->h, h);
	pthread_mutex_unlock(&r->mu);
	return old;
}

connreg_ent_t *
connreg_take(connreg_t *r, const char *id, uint64_t gen)
{
	uint64_t h = htab_hash(&r->t, id, strlen(id));
	connreg_ent_t *e;

	pthread_mutex_lock(&r->mu);
	if ((e = connreg_lookup(r, h, id, gen)) != NULL)
		htab_remove(&r->t, &e->h);
	pthread_mutex_unlock(&r->mu);
	return e;
}

int
connreg_find(connreg_t *r, const char *id, uint64_t *gen, mbox_t **mb)
{
	uint64_t h = htab_hash(&r->t, id, strlen(id));
	connreg_ent_t *e;

	pthread_mutex_lock(&r->mu);
	if ((e = connreg_first(r, h, id)) != NULL) {
		*gen = e->gen;
		*mb = e->mb;
	}
	pthread_mutex_unlock(&r->mu);
	return e != NULL ? 0 : -1;
}

srv_conn_t *
connreg_conn(connreg_t *r, const char *id, uint64_t gen)
{
	uint64_t h = htab_hash(&r->t, id, strlen(id));
	connreg_ent_t *e;
	srv_conn_t *c = NULL;

	pthread_mutex_lock(&r->mu);
	if (gen != 0 && (e = connreg_lookup(r, h, id, gen)) != NULL)
		c = e->conn;
	pthread_mutex_unlock(&r->mu);
	return c;
}

int
connreg_count(connreg_t *r, const char *id)
{
	uint64_t h = htab_hash(&r->t, id, strlen(id));
	int n = 0;

	pthread_mutex_lock(&r->mu);
	for (connreg_ent_t *e = connreg_first(r, h, id); e != NULL; e = connreg_next(r, e, id))
		n++;
	pthread_mutex_unlock(&r->mu);
	return n;
}

size_t
connreg_size(connreg_t *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->t.n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void
connreg_run(void *arg)
{
	struct connreg_job *j = arg;
	srv_conn_t *c = connreg_conn(j->r, j->id, j->gen);

	if (c != NULL && j->type == 0) {
		log_info("%s: closing its connection from %s", j->id, srv_conn_peer(c));
		srv_conn_close(c); /* takes the entry out through the close hook */
	} else if (c != NULL && srv_conn_push(c, j->type, &j->tlvs, NULL) == -1)
		log_debug("%s: push %s not sent", j->id, proto_msg_name(j->type));
	buf_free(&j->tlvs);
	lifecycle_unref(&j->r->lc);
	free(j);
}

static int
connreg_post_one(connreg_t *r, const char *id, uint64_t gen, mbox_t *mb, uint16_t type,
                 const buf_t *tlvs)
{
	struct connreg_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -1;
	j->r = r;
	memcpy(j->id, id, strlen(id) + 1);
	j->gen = gen;
	j->type = type;
	buf_init(&j->tlvs, 65536);
	if (tlvs != NULL && buf_append(&j->tlvs, tlvs->data, tlvs->len) == -1) {
		buf_free(&j->tlvs);
		free(j);
		return -1;
	}
	lifecycle_ref(&r->lc);
	if (mbox_post(mb, connreg_run, j) == -1) {
		lifecycle_unref(&r->lc);
		buf_free(&j->tlvs);
		free(j);
		return -1;
	}
	return 0;
}

/* Posts (type, tlvs) to each of id's connections; how many. */
static int
connreg_post(connreg_t *r, const char *id, uint16_t type, const buf_t *tlvs)
{
	struct {
		uint64_t gen;
		mbox_t *mb;
	} stack[CONNREG_STACK_JOBS], *to = stack, *nt;
	size_t n = 0, cap = CONNREG_STACK_JOBS;
	uint64_t h;
	int sent = 0;

	if (strlen(id) >= CONNREG_ID_CAP)
		return 0;
	h = htab_hash(&r->t, id, strlen(id));
	/* copy out under the lock, post after it */
	pthread_mutex_lock(&r->mu);
	for (connreg_ent_t *e = connreg_first(r, h, id); e != NULL; e = connreg_next(r, e, id)) {
		if (n == cap) {
			nt = to == stack ? malloc(2 * cap * sizeof(*to))
			                 : realloc(to, 2 * cap * sizeof(*to));
			if (nt == NULL)
				break;
			if (to == stack)
				memcpy(nt, stack, sizeof(stack));
			to = nt;
			cap *= 2;
		}
		to[n].gen = e->gen;
		to[n++].mb = e->mb;
	}
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < n; i++)
		if (connreg_post_one(r, id, to[i].gen, to[i].mb, type, tlvs) == 0)
			sent++;
	if (to != stack)
		free(to);
	return sent;
}

int
connreg_push(connreg_t *r, const char *id, uint16_t type, const buf_t *tlvs)
{
	return type == 0 ? 0 : connreg_post(r, id, type, tlvs);
}

int
connreg_kick(connreg_t *r, const char *id)
{
	return connreg_post(r, id, 0, NULL);
}

int
connreg_foreach(connreg_t *r, int (*fn)(connreg_ent_t *e, void *arg), void *arg)
{
	htab_node_t *n, *next;
	size_t b = 0;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	for (n = htab_next(&r->t, &b, NULL); rc == 0 && n != NULL; n = next) {
		next = htab_next(&r->t, &b, n);
		rc = fn(HTAB_ENTRY(n, connreg_ent_t, h), arg);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}
