/* sess: login sessions in memory (see gw.h for why memory is enough).
 *
 * Three indexes under SipHash (ids, device IDs and addresses are the
 * peer's choice, or its guess): sessions by their random id, each device's
 * open sessions oldest first (for the per-device cap), and the count open
 * per source address (for the per-source cap).  Expiry runs on a timer
 * wheel of one-second slots, 2 * ttl + 2 of them: a session sits in the
 * slot of its expiry while open and in the slot of expiry + ttl once spent
 * or expired, so a sweep touches only what is due, never the whole table.
 *
 * A consumed or expired session leaves the open set at once (max and the
 * caps count logins in progress only) and stays as a record, its nonce
 * wiped, until ttl after its expiry, so a replay hears REPLAY and a late
 * finish EXPIRED rather than NOT_FOUND; records are bounded too (past the
 * bound a spent session is simply forgotten: still refused).  A session
 * replaced by a newer START of its device is forgotten at once: records
 * cost a FINISH each, never one START.
 *
 * One mutex: each call is a few hash lookups and list links, no I/O, and
 * allocation and randomness happen outside it; a login's CA round trip
 * costs thousands of times more. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "htab.h"

#define SRC_CAP 64

enum { SN_OPEN, SN_USED, SN_EXPIRED };

struct sdev {
	htab_node_t h;
	size_t n;
	struct sn *head, *tail; /* its open sessions, oldest first */
	char id[GW_ID_CAP];
};

struct ssrc {
	htab_node_t h;
	size_t n;
	char addr[SRC_CAP];
};

struct sn {
	htab_node_t h;            /* by sid */
	struct sn *wprev, *wnext; /* the wheel slot of due */
	struct sn *dprev, *dnext; /* open: its device's sessions */
	struct sdev *dev;         /* open only */
	struct ssrc *src;         /* open only */
	int64_t expires, due;
	int state;
	uint8_t sid[LOGIN_SESSION_LEN];
	uint8_t nonce[LOGIN_NONCE_LEN];
	size_t dl;  /* strlen(device_id) + 1 */
	char ids[]; /* device_id NUL cert_id NUL */
};

struct gw_sessions {
	pthread_mutex_t mu;
	gw_sess_limits_t lim;
	htab_t by_sid, by_dev, by_src;
	size_t open, nrec, max_rec;
	struct sn **wheel;
	size_t nslots;
	int64_t swept; /* the last second the wheel ran; 0: not yet */
};

static int
sid_eq(const htab_node_t *n, const void *key, size_t len)
{
	return len == LOGIN_SESSION_LEN &&
	       CRYPTO_memcmp(HTAB_ENTRY(n, struct sn, h)->sid, key, LOGIN_SESSION_LEN) == 0;
}

static int
dev_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, struct sdev, h)->id, key, len);
}

static int
src_eq(const htab_node_t *n, const void *key, size_t len)
{
	return htab_eq_str(HTAB_ENTRY(n, struct ssrc, h)->addr, key, len);
}

gw_sessions_t *
gw_sess_new(const gw_sess_limits_t *lim, err_t *err)
{
	gw_sessions_t *t;

	if (lim->max < 1 || lim->per_device < 1 || lim->per_source < 1 || lim->ttl_s < 1) {
		err_set(err, STB_BAD_REQUEST, "login sessions: every limit must be at least 1");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	t->lim = *lim;
	t->max_rec = 2 * lim->max + 1024; /* logins finished or lapsed per TTL */
	t->nslots = (size_t)(2 * lim->ttl_s + 2);
	if ((t->wheel = calloc(t->nslots, sizeof(*t->wheel))) == NULL ||
	    htab_init(&t->by_sid, 1024, 0, sid_eq, err) == -1 ||
	    htab_init(&t->by_dev, 1024, 0, dev_eq, err) == -1 ||
	    htab_init(&t->by_src, 256, 0, src_eq, err) == -1) {
		htab_fini(&t->by_sid);
		htab_fini(&t->by_dev);
		free(t->wheel);
		free(t);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

static void
sn_drop(struct sn *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

void
gw_sess_free(gw_sessions_t *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nslots; i++)
		while (t->wheel[i] != NULL) {
			struct sn *s = t->wheel[i];
			t->wheel[i] = s->wnext;
			sn_drop(s);
		}
	for (size_t b = 0; b <= t->by_dev.mask; b++)
		while (t->by_dev.b[b] != NULL) {
			htab_node_t *n = t->by_dev.b[b];
			t->by_dev.b[b] = n->next;
			free(HTAB_ENTRY(n, struct sdev, h));
		}
	for (size_t b = 0; b <= t->by_src.mask; b++)
		while (t->by_src.b[b] != NULL) {
			htab_node_t *n = t->by_src.b[b];
			t->by_src.b[b] = n->next;
			free(HTAB_ENTRY(n, struct ssrc, h));
		}
	htab_fini(&t->by_sid);
	htab_fini(&t->by_dev);
	htab_fini(&t->by_src);
	free(t->wheel);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* ---- the wheel (locked) ---- */

static void
wheel_put(gw_sessions_t *t, struct sn *s, int64_t due)
{
	struct sn **slot;

	/* due before the wheel's hand: the next sweep takes it */
	if (t->swept != 0 && due <= t->swept)
		due = t->swept + 1;
	s->due = due;
	slot = &t->wheel[(uint64_t)due % t->nslots];
	s->wprev = NULL;
	s->wnext = *slot;
	if (*slot != NULL)
		(*slot)->wprev = s;
	*slot = s;
}

static void
wheel_del(gw_sessions_t *t, struct sn *s)
{
	if (s->wprev != NULL)
		s->wprev->wnext = s->wnext;
	else
		t->wheel[(uint64_t)s->due % t->nslots] = s->wnext;
	if (s->wnext != NULL)
		s->wnext->wprev = s->wprev;
	s->wprev = s->wnext = NULL;
}

/* ---- the open set (locked) ---- */

static void
open_unlink(gw_sessions_t *t, struct sn *s)
{
	struct sdev *d = s->dev;
	struct ssrc *src = s->src;

	if (s->dprev != NULL)
		s->dprev->dnext = s->dnext;
	else
		d->head = s->dnext;
	if (s->dnext != NULL)
		s->dnext->dprev = s->dprev;
	else
		d->tail = s->dprev;
	s->dprev = s->dnext = NULL;
	if (--d->n == 0) {
		htab_remove(&t->by_dev, &d->h);
		free(d);
	}
	if (--src->n == 0) {
		htab_remove(&t->by_src, &src->h);
		free(src);
	}
	s->dev = NULL;
	s->src = NULL;
	t->open--;
}

/* An open session leaves the open set: remembered as state until ttl past
 * its expiry, or forgotten when records are full. */
static void
open_retire(gw_sessions_t *t, struct sn *s, int state)
{
	open_unlink(t, s);
	wheel_del(t, s);
	OPENSSL_cleanse(s->nonce, sizeof(s->nonce));
	if (t->nrec >= t->max_rec) {
		htab_remove(&t->by_sid, &s->h);
		sn_drop(s);
		return;
	}
	s->state = state;
	t->nrec++;
	wheel_put(t, s, s->expires + t->lim.ttl_s);
}

static void
open_forget(gw_sessions_t *t, struct sn *s)
{
	open_unlink(t, s);
	wheel_del(t, s);
	htab_remove(&t->by_sid, &s->h);
	sn_drop(s);
}

static struct sdev *
dev_find(gw_sessions_t *t, const char *id, uint64_t *h)
{
	size_t len = strlen(id);
	htab_node_t *n;

	*h = htab_hash(&t->by_dev, id, len);
	n = htab_find(&t->by_dev, *h, id, len);
	return n != NULL ? HTAB_ENTRY(n, struct sdev, h) : NULL;
}

static struct ssrc *
src_find(gw_sessions_t *t, const char *addr, uint64_t *h)
{
	size_t len = strlen(addr);
	htab_node_t *n;

	*h = htab_hash(&t->by_src, addr, len);
	n = htab_find(&t->by_src, *h, addr, len);
	return n != NULL ? HTAB_ENTRY(n, struct ssrc, h) : NULL;
}

/* The session a new START of d from src replaces, or NULL while d has room:
 * the oldest from src when there is one, else d's oldest. */
static struct sn *
dev_victim(const gw_sessions_t *t, const struct sdev *d, const struct ssrc *src)
{
	struct sn *s;

	if (d == NULL || d->n < t->lim.per_device)
		return NULL;
	for (s = d->head; s != NULL; s = s->dnext)
		if (s->src == src)
			return s;
	return d->head;
}

/* Links s into the open set under device d and source src, either of
 * them new (not yet in its table: hd is the device's hash). */
static void
open_link(gw_sessions_t *t, struct sn *s, const char *device_id, struct sdev *d, uint64_t hd,
          const char *source, struct ssrc *src)
{
	if (d->n == 0) {
		snprintf(d->id, sizeof(d->id), "%s", device_id);
		htab_insert(&t->by_dev, &d->h, hd);
	}
	if (src->n == 0) {
		snprintf(src->addr, sizeof(src->addr), "%s", source);
		htab_insert(&t->by_src, &src->h,
		            htab_hash(&t->by_src, src->addr, strlen(src->addr)));
	}
	s->dev = d;
	s->src = src;
	s->dprev = d->tail;
	if (d->tail != NULL)
		d->tail->dnext = s;
	else
		d->head = s;
	d->tail = s;
	d->n++;
	src->n++;
	t->open++;
	htab_insert(&t->by_sid, &s->h, htab_hash(&t->by_sid, s->sid, LOGIN_SESSION_LEN));
	wheel_put(t, s, s->expires);
}

/* ---- the calls ---- */

/* A new session's id and nonce: the minter's, or random. */
static int
sn_draw(gw_sessions_t *t, struct sn *s, const char *device_id, const char *cert_id, int64_t now,
        err_t *err)
{
	if (t->lim.mint != NULL)
		return t->lim.mint(t->lim.mint_arg, device_id, cert_id, now + t->lim.ttl_s, s->sid,
		                   s->nonce, err);
	if (RAND_bytes(s->sid, sizeof(s->sid)) != 1 || RAND_bytes(s->nonce, sizeof(s->nonce)) != 1)
		return err_set(err, STB_INTERNAL, "no randomness");
	return 0;
}

int
gw_sess_open(gw_sessions_t *t, const char *device_id, const char *cert_id, const char *source,
             int64_t now, gw_sess_t *out, err_t *err)
{
	size_t dl = strlen(device_id) + 1, cl = strlen(cert_id) + 1;
	struct sn *s, *victim;
	struct sdev *d, *nd = NULL;
	struct ssrc *src, *nsrc = NULL;
	uint64_t hd, hs;
	size_t src_open;

	if (dl > GW_ID_CAP || cl > GW_ID_CAP)
		return err_set(err, STB_BAD_REQUEST, "identifier too long");
	if ((s = calloc(1, sizeof(*s) + dl + cl)) == NULL ||
	    (nd = calloc(1, sizeof(*nd))) == NULL || (nsrc = calloc(1, sizeof(*nsrc))) == NULL) {
		free(s);
		free(nd);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if (sn_draw(t, s, device_id, cert_id, now, err) == -1) {
		sn_drop(s);
		free(nd);
		free(nsrc);
		return -1;
	}
	memcpy(s->ids, device_id, dl);
	memcpy(s->ids + dl, cert_id, cl);
	s->dl = dl;
	s->expires = now + t->lim.ttl_s;
	s->state = SN_OPEN;
	pthread_mutex_lock(&t->mu);
	if (t->swept == 0)
		t->swept = now - 1;
	d = dev_find(t, device_id, &hd);
	src = src_find(t, source, &hs);
	victim = dev_victim(t, d, src);
	src_open = src == NULL ? 0 : src->n - (victim != NULL && victim->src == src);
	if (src_open >= t->lim.per_source || (victim == NULL && t->open >= t->lim.max)) {
		pthread_mutex_unlock(&t->mu);
		sn_drop(s);
		free(nd);
		free(nsrc);
		return src_open >= t->lim.per_source
		           ? err_set(err, STB_RATE_LIMITED,
		                     "too many logins in progress from %.64s; retry shortly",
		                     source)
		           : err_set(err, STB_RATE_LIMITED,
		                     "too many logins in progress; retry shortly");
	}
	if (victim != NULL) {
		open_forget(t, victim);
		/* the last of d or src may have gone with it */
		d = dev_find(t, device_id, &hd);
		src = src_find(t, source, &hs);
	}
	open_link(t, s, device_id, d != NULL ? d : nd, hd, source, src != NULL ? src : nsrc);
	if (d == NULL)
		nd = NULL; /* taken */
	if (src == NULL)
		nsrc = NULL;
	memcpy(out->sid, s->sid, sizeof(out->sid));
	memcpy(out->nonce, s->nonce, sizeof(out->nonce));
	memcpy(out->device_id, device_id, dl);
	memcpy(out->cert_id, cert_id, cl);
	out->expires = s->expires;
	pthread_mutex_unlock(&t->mu);
	free(nd);
	free(nsrc);
	return 0;
}

static void
sn_ids(const struct sn *s, gw_sess_t *out)
{
	snprintf(out->device_id, sizeof(out->device_id), "%s", s->ids);
	snprintf(out->cert_id, sizeof(out->cert_id), "%s", s->ids + s->dl);
}

int
gw_sess_take(gw_sessions_t *t, const uint8_t sid[LOGIN_SESSION_LEN], int64_t now, gw_sess_t *out,
             err_t *err)
{
	htab_node_t *n;
	struct sn *s;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	n = htab_find(&t->by_sid, htab_hash(&t->by_sid, sid, LOGIN_SESSION_LEN), sid,
	              LOGIN_SESSION_LEN);
	if (n == NULL) {
		pthread_mutex_unlock(&t->mu);
		return err_set(err, STB_NOT_FOUND,
		               "no such login session (never issued, replaced, or forgotten)");
	}
	s = HTAB_ENTRY(n, struct sn, h);
	sn_ids(s, out); /* whose it was, for the record */
	if (s->state == SN_USED)
		rc = err_set(err, STB_REPLAY,
		             "login session was already used: its nonce works once");
	else if (s->state == SN_EXPIRED || now >= s->expires)
		rc = err_set(err, STB_EXPIRED, "login session expired %lld s ago; start again",
		             (long long)(now - s->expires));
	else {
		/* consumed before anyone checks the proof: a second try fails */
		memcpy(out->sid, s->sid, sizeof(out->sid));
		memcpy(out->nonce, s->nonce, sizeof(out->nonce));
		out->expires = s->expires;
		open_retire(t, s, SN_USED);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

size_t
gw_sess_sweep(gw_sessions_t *t, int64_t now)
{
	size_t gone = 0;
	int64_t sec;

	pthread_mutex_lock(&t->mu);
	if (t->swept == 0)
		t->swept = now - 1;
	sec = t->swept + 1;
	if (now - t->swept > (int64_t)t->nslots) /* a long pause: one turn sees it all */
		sec = now - (int64_t)t->nslots + 1;
	for (; sec <= now; sec++) {
		struct sn *s = t->wheel[(uint64_t)sec % t->nslots], *next;
		for (; s != NULL; s = next) {
			next = s->wnext;
			if (s->due > now)
				continue;
			gone++;
			if (s->state == SN_OPEN)
				open_retire(t, s, SN_EXPIRED);
			else {
				wheel_del(t, s);
				htab_remove(&t->by_sid, &s->h);
				t->nrec--;
				sn_drop(s);
			}
		}
	}
	if (now > t->swept)
		t->swept = now;
	pthread_mutex_unlock(&t->mu);
	return gone;
}

size_t
gw_sess_count(gw_sessions_t *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->open;
	pthread_mutex_unlock(&t->mu);
	return n;
}
