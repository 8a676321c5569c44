#include "connguard.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hist.h"
#include "htab.h"
#include "log.h"
#include "metrics.h"

/* ---- accept backoff ---- */

struct connguard_accept {
	struct evconnlistener *l;
	struct event *resume;
	char name[40];
	int spare; /* a descriptor to give up when none is left, or -1 */
	int pause_ms;
	uint64_t resumed_ns; /* when accepting last resumed */
	uint64_t logged_ns;  /* when the last line was logged */
	uint64_t unlogged;   /* errors since that line */
	int last_errno;
	uint64_t errors, shed; /* ctr_add: read from other threads */
};

/* libevent hands an error callback the listener's user data, which is the
 * accept callback's (evhttp's own object for the HTTP listener): the guard
 * is found by its listener instead. */
#define CONNGUARD_MAX 16
static pthread_mutex_t cg_mu = PTHREAD_MUTEX_INITIALIZER;
static connguard_accept_t *cg_all[CONNGUARD_MAX];

static connguard_accept_t *
cg_find(const struct evconnlistener *l)
{
	connguard_accept_t *g = NULL;

	pthread_mutex_lock(&cg_mu);
	for (int i = 0; i < CONNGUARD_MAX && g == NULL; i++)
		if (cg_all[i] != NULL && cg_all[i]->l == l)
			g = cg_all[i];
	pthread_mutex_unlock(&cg_mu);
	return g;
}

static int
cg_spare_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int
cg_out_of_resources(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static void
cg_log(connguard_accept_t *g, uint64_t now)
{
	if (g->unlogged == 0)
		return;
	if (g->unlogged == 1)
		log_warnx("accept on %s: %s; pausing accepts for %d ms", g->name,
		          strerror(g->last_errno), g->pause_ms);
	else
		log_warnx("accept on %s: %s, %llu times in the last %d s; pausing accepts", g->name,
		          strerror(g->last_errno), (unsigned long long)g->unlogged,
		          CONNGUARD_LOG_PERIOD_MS / 1000);
	g->unlogged = 0;
	g->logged_ns = now;
}

static void
cg_resume(evutil_socket_t fd, short what, void *arg)
{
	connguard_accept_t *g = arg;
	uint64_t now = now_ns();

	(void)fd;
	(void)what;
	if (g->spare < 0)
		g->spare = cg_spare_open();
	g->resumed_ns = now;
	if (now - g->logged_ns >= (uint64_t)CONNGUARD_LOG_PERIOD_MS * 1000000u)
		cg_log(g, now);
	evconnlistener_enable(g->l);
}

static void
cg_error(struct evconnlistener *l, void *arg)
{
	int e = errno;
	connguard_accept_t *g = cg_find(l);
	uint64_t now = now_ns();
	struct timeval tv;

	(void)arg;
	if (g == NULL)
		return;
	ctr_add(&g->errors, 1);
	g->last_errno = e;
	if (cg_out_of_resources(e) && g->spare >= 0) {
		/* the head of the queue is told at once, not left to time out */
		int fd;
		close(g->spare);
		if ((fd = accept(evconnlistener_get_fd(l), NULL, NULL)) >= 0) {
			close(fd);
			ctr_add(&g->shed, 1);
		}
		g->spare = cg_spare_open();
	}
	/* errors again soon after resuming: pause longer */
	if (now - g->resumed_ns < 2 * (uint64_t)g->pause_ms * 1000000u)
		g->pause_ms = g->pause_ms * 2 > CONNGUARD_PAUSE_MAX_MS ? CONNGUARD_PAUSE_MAX_MS
		                                                       : g->pause_ms * 2;
	else
		g->pause_ms = CONNGUARD_PAUSE_MIN_MS;
	evconnlistener_disable(l);
	tv = (struct timeval){g->pause_ms / 1000, (g->pause_ms % 1000) * 1000};
	evtimer_add(g->resume, &tv);
	g->unlogged++;
	if (g->logged_ns == 0 || now - g->logged_ns >= (uint64_t)CONNGUARD_LOG_PERIOD_MS * 1000000u)
		cg_log(g, now);
}

connguard_accept_t *
connguard_accept_new(struct event_base *base, struct evconnlistener *l, const char *name,
                     err_t *err)
{
	connguard_accept_t *g = calloc(1, sizeof(*g));
	int slot = -1;

	if (g == NULL || (g->resume = evtimer_new(base, cg_resume, g)) == NULL) {
		free(g);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	g->l = l;
	g->pause_ms = CONNGUARD_PAUSE_MIN_MS;
	g->spare = cg_spare_open();
	snprintf(g->name, sizeof(g->name), "%s", name);
	pthread_mutex_lock(&cg_mu);
	for (int i = 0; i < CONNGUARD_MAX && slot < 0; i++)
		if (cg_all[i] == NULL)
			cg_all[slot = i] = g;
	pthread_mutex_unlock(&cg_mu);
	if (slot < 0) {
		connguard_accept_free(g);
		err_set(err, STB_INTERNAL, "more than %d guarded listeners", CONNGUARD_MAX);
		return NULL;
	}
	evconnlistener_set_error_cb(l, cg_error);
	return g;
}

void
connguard_accept_free(connguard_accept_t *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&cg_mu);
	for (int i = 0; i < CONNGUARD_MAX; i++)
		if (cg_all[i] == g)
			cg_all[i] = NULL;
	pthread_mutex_unlock(&cg_mu);
	cg_log(g, now_ns());
	evconnlistener_set_error_cb(g->l, NULL);
	event_free(g->resume);
	if (g->spare >= 0)
		close(g->spare);
	free(g);
}

uint64_t
connguard_accept_errors(const connguard_accept_t *g)
{
	return g != NULL ? ctr_get(&g->errors) : 0;
}

uint64_t
connguard_accept_shed(const connguard_accept_t *g)
{
	return g != NULL ? ctr_get(&g->shed) : 0;
}

/* ---- sources ---- */

void
connguard_key_of(const struct sockaddr *sa, connguard_key_t *k)
{
	memset(k, 0, sizeof(*k));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
		k->b[0] = 4;
		memcpy(k->b + 1, &a->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a->sin6_addr.s6_addr, mapped, 12) == 0) {
			k->b[0] = 4; /* a v4 client of a dual-stack socket */
			memcpy(k->b + 1, a->sin6_addr.s6_addr + 12, 4);
		} else {
			k->b[0] = 6; /* one site's /64 is one source */
			memcpy(k->b + 1, a->sin6_addr.s6_addr, 8);
		}
	}
}

void
connguard_key_of_fd(int fd, connguard_key_t *k)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		connguard_key_of(NULL, k);
	else
		connguard_key_of((struct sockaddr *)&ss, k);
}

typedef struct cg_src_ent {
	htab_node_t h;
	connguard_key_t k;
	uint32_t n;
} cg_src_ent_t;

struct connguard_src {
	pthread_mutex_t mu;
	htab_t t;
	uint32_t max;
};

static int
cg_src_eq(const htab_node_t *n, const void *key, size_t len)
{
	(void)len;
	return memcmp(&HTAB_ENTRY(n, cg_src_ent_t, h)->k, key, sizeof(connguard_key_t)) == 0;
}

connguard_src_t *
connguard_src_new(uint32_t max_per_source, err_t *err)
{
	connguard_src_t *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (htab_init(&t->t, 64, 0, cg_src_eq, err) == -1) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	t->max = max_per_source;
	return t;
}

void
connguard_src_free(connguard_src_t *t)
{
	size_t bucket = 0;
	htab_node_t *n, *next;

	if (t == NULL)
		return;
	for (n = htab_next(&t->t, &bucket, NULL); n != NULL; n = next) {
		next = htab_next(&t->t, &bucket, n);
		htab_remove(&t->t, n);
		free(HTAB_ENTRY(n, cg_src_ent_t, h));
	}
	htab_fini(&t->t);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static cg_src_ent_t *
cg_src_find(connguard_src_t *t, const connguard_key_t *k, uint64_t *h)
{
	htab_node_t *n;

	*h = htab_hash(&t->t, k, sizeof(*k));
	n = htab_find(&t->t, *h, k, sizeof(*k));
	return n != NULL ? HTAB_ENTRY(n, cg_src_ent_t, h) : NULL;
}

int
connguard_src_take(connguard_src_t *t, const connguard_key_t *k)
{
	cg_src_ent_t *e;
	uint64_t h;
	int rc = 0;

	if (t == NULL || k->b[0] == 0)
		return 0;
	pthread_mutex_lock(&t->mu);
	if ((e = cg_src_find(t, k, &h)) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			rc = -1;
		else {
			e->k = *k;
			htab_insert(&t->t, &e->h, h);
		}
	}
	if (e != NULL && t->max != 0 && e->n >= t->max)
		rc = -1;
	else if (e != NULL)
		e->n++;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void
connguard_src_give(connguard_src_t *t, const connguard_key_t *k)
{
	cg_src_ent_t *e;
	uint64_t h;

	if (t == NULL || k->b[0] == 0)
		return;
	pthread_mutex_lock(&t->mu);
	if ((e = cg_src_find(t, k, &h)) != NULL && --e->n == 0) {
		htab_remove(&t->t, &e->h);
		free(e);
	}
	pthread_mutex_unlock(&t->mu);
}

uint32_t
connguard_src_count(connguard_src_t *t, const connguard_key_t *k)
{
	cg_src_ent_t *e;
	uint64_t h;
	uint32_t n;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->mu);
	e = cg_src_find(t, k, &h);
	n = e != NULL ? e->n : 0;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* ---- memory ---- */

static void
cg_trim(evutil_socket_t fd, short what, void *arg)
{
	connguard_trim_t *t = arg;

	(void)fd;
	(void)what;
	t->hiwat = t->n;
	t->trims++;
#ifdef __GLIBC__
	/* every arena, so the worker loops' too */
	malloc_trim(0);
#endif
}

int
connguard_trim_init(connguard_trim_t *t, struct event_base *base, err_t *err)
{
	memset(t, 0, sizeof(*t));
	if ((t->ev = evtimer_new(base, cg_trim, t)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	return 0;
}

void
connguard_trim_fini(connguard_trim_t *t)
{
	if (t->ev != NULL)
		event_free(t->ev);
	t->ev = NULL;
}

void
connguard_trim_opened(connguard_trim_t *t, uint32_t n)
{
	t->n = n;
	if (n > t->hiwat)
		t->hiwat = n;
}

void
connguard_trim_closed(connguard_trim_t *t, uint32_t n)
{
	struct timeval tv = {0, CONNGUARD_TRIM_DELAY_MS * 1000};

	t->n = n;
	if (t->ev == NULL || t->hiwat < CONNGUARD_TRIM_MIN || n > t->hiwat / 2 ||
	    evtimer_pending(t->ev, NULL))
		return;
	evtimer_add(t->ev, &tv);
}
