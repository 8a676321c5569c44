/* cluster: the other rendezvousd instances on the same database (rdv.h). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rdv.h"

/* instances one instance forwards to; beyond, UNAVAILABLE */
#define CLUSTER_PEERS_MAX 64

struct rdv_cluster {
	rdv_t *rdv;
	struct event *renew;
	pthread_mutex_t mu; /* the peer table */
	int npeers;
	struct {
		char addr[RDV_ENDPOINT_CAP];
		peerpool_t *pp;
	} peer[CLUSTER_PEERS_MAX];
};

int
rdv_cluster_addr_ok(const char *addr)
{
	char host[64];
	const char *colon, *h = addr;
	size_t hl;
	unsigned char bin[16];
	char *end;
	long port;

	if (addr == NULL || (colon = strrchr(addr, ':')) == NULL)
		return 0;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		h = addr + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return 0;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
		return 0;
	port = strtol(colon + 1, &end, 10);
	return colon[1] != '\0' && *end == '\0' && port >= 1 && port <= 65535;
}

const char *
rdv_cluster_self(const rdv_t *rdv)
{
	return rdv->cluster != NULL ? rdv->conf->cluster_self : NULL;
}

/* Upserts this instance's lease: until then its holdings are live. */
static int
lease_write(store_conn_t *c, void *arg, err_t *err)
{
	rdv_cluster_t *cl = arg;
	const char *self = cl->rdv->conf->cluster_self;
	int64_t until = cl->rdv->cluster != NULL && !rdv_stopping(cl->rdv)
	                    ? (int64_t)time(NULL) + cl->rdv->conf->cluster_lease_s
	                    : 0;
	store_stmt_t *st;

	st = store_stmt(c,
	                "INSERT INTO rdv_instances(addr, lease_until) VALUES(?1, ?2) "
	                "ON CONFLICT (addr) DO UPDATE SET lease_until = excluded.lease_until",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, self);
	store_bind_int64(st, 2, until);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void
renew_tick(evutil_socket_t fd, short what, void *arg)
{
	rdv_cluster_t *cl = arg;
	err_t err;

	(void)fd;
	(void)what;
	/* on the main loop, which only accepts: a short wait is fine */
	if (store_write_sync(cl->rdv->d->store, lease_write, cl, &err) == -1)
		log_warnx("cluster lease of %s not renewed: %s", cl->rdv->conf->cluster_self,
		          err.msg);
}

int
rdv_cluster_init(rdv_t *rdv, err_t *err)
{
	rdv_cluster_t *cl;
	long long period = rdv->conf->cluster_lease_s / 3;
	struct timeval tv = {(time_t)(period < 1 ? 1 : period), 0};

	if (rdv->conf->cluster_self == NULL || rdv->conf->cluster_self[0] == '\0')
		return 0;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	cl->rdv = rdv;
	pthread_mutex_init(&cl->mu, NULL);
	rdv->cluster = cl;
	if (store_write_sync(rdv->d->store, lease_write, cl, err) == -1)
		return -1;
	if ((cl->renew = event_new(rdv->d->base, -1, EV_PERSIST, renew_tick, cl)) == NULL ||
	    event_add(cl->renew, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the cluster lease timer");
	log_info("cluster: this instance is %s (lease %lld s)", rdv->conf->cluster_self,
	         rdv->conf->cluster_lease_s);
	return 0;
}

void
rdv_cluster_fini(rdv_t *rdv)
{
	rdv_cluster_t *cl = rdv->cluster;
	err_t err;

	if (cl == NULL)
		return;
	if (cl->renew != NULL)
		event_free(cl->renew);
	for (int i = 0; i < cl->npeers; i++)
		peerpool_free(cl->peer[i].pp);
	/* the others answer "offline" for our devices at once, not after the lease */
	rdv->cluster = NULL;
	if (store_write_sync(rdv->d->store, lease_write, cl, &err) == -1)
		log_warnx("cluster lease of %s not given up: %s", rdv->conf->cluster_self, err.msg);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

peerpool_t *
rdv_cluster_peer(rdv_t *rdv, const char *addr, err_t *err)
{
	rdv_cluster_t *cl = rdv->cluster;
	peerpool_t *pp = NULL;
	int ms = (int)rdv->conf->connect_timeout_ms;
	peerpool_conf_t pc = {.name = addr,
	                      .addr = addr,
	                      .expect_roles = STB_R_RENDEZVOUSD,
	                      .backoff_min_ms = 200,
	                      .backoff_max_ms = 2000,
	                      .timeout_ms = ms + 2000, /* the heartbeat there, and the link */
	                      .tls = &rdv->d->client_tls};

	if (cl == NULL) {
		err_set(err, STB_INTERNAL, "not in a cluster");
		return NULL;
	}
	/* a damaged row must not make a loop look a name up */
	if (!rdv_cluster_addr_ok(addr) || strlen(addr) >= sizeof(cl->peer[0].addr)) {
		err_set(err, STB_INTERNAL, "instance address '%.64s' is not an IP host:port", addr);
		return NULL;
	}
	pthread_mutex_lock(&cl->mu);
	for (int i = 0; i < cl->npeers && pp == NULL; i++)
		if (strcmp(cl->peer[i].addr, addr) == 0)
			pp = cl->peer[i].pp;
	if (pp == NULL && cl->npeers == CLUSTER_PEERS_MAX)
		err_set(err, STB_UNAVAILABLE, "more than %d other instances", CLUSTER_PEERS_MAX);
	else if (pp == NULL && (pp = peerpool_new(&pc, err)) != NULL) {
		memcpy(cl->peer[cl->npeers].addr, addr, strlen(addr) + 1);
		cl->peer[cl->npeers++].pp = pp;
	}
	pthread_mutex_unlock(&cl->mu);
	return pp;
}
