/*
 * scanner: the validity check of every stored certificate (DESIGN 5.A
 * step 6).  Batches of rows in cert_id order; each row is due when revoked,
 * expired or inside the renewal window, else ca-authd is asked (CA_STATUS,
 * a window of requests in flight) whether it still holds it good.  Each due
 * certificate gets a pending-update row and CERT_UPDATE_NEEDED goes to its
 * STB's open connections; an STB away gets it when it next authenticates.
 *
 * The timer's scan runs on the main loop, which only accepts, so its store
 * writes wait there; CP_SCAN_NOW scans on the admin connection's loop with
 * asynchronous writes and answers when the scan is over.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "hex.h"
#include "log.h"
#include "msgenc.h"
#include "tlv.h"

#define SCAN_BATCH 256

struct scan_item {
	char cert_id[CP_ID_CAP];
	char device_id[CP_ID_CAP];
	uint8_t serial[CP_SERIAL_MAX];
	size_t serial_len;
	int64_t not_after;
	int state;
	int reason;         /* CP_REASON_* */
	int64_t revoked_at; /* from ca-authd */
	int changed;        /* the write changed the row's state */
};

struct scan {
	cp_t *cp;
	struct event_base *base;
	mbox_t *mb;            /* the worker's mailbox; NULL on the main loop */
	srv_req_t *r;          /* CP_SCAN_NOW, answered at the end */
	int timer;             /* the timer's scan: clears cp->scanning */
	char after[CP_ID_CAP]; /* the last cert_id read: the next batch starts past it */
	struct scan_item items[SCAN_BATCH];
	size_t rows; /* read in this batch, damaged ones included */
	size_t n, next_ca, outstanding;
	int ca_down;
	int64_t now;
	unsigned long scanned, due;
};

struct scan_ask {
	struct scan *s;
	size_t ix;
};

static void scan_batch(struct scan *s);

static void
scan_end(struct scan *s, const err_t *err)
{
	cp_t *cp = s->cp;

	if (err != NULL)
		log_warnx("validity scan stopped: %s", err->msg);
	else
		log_info("validity scan: %lu certificate(s), %lu due", s->scanned, s->due);
	if (s->r != NULL) {
		if (err != NULL)
			srv_reply_errt(s->r, err);
		else
			srv_reply_ok(s->r);
	}
	if (s->timer)
		__atomic_store_n(&cp->scanning, 0, __ATOMIC_RELEASE);
	free(s);
	cp_unref(cp);
}

/* ---- after the write: drop changed keys, tell the STBs ---- */

static void
scan_notify(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct scan_item *it = &s->items[i];
		if (it->reason == CP_REASON_NONE)
			continue;
		if (it->changed)
			cp_kc_invalidate(s->cp->kc, it->cert_id);
		cp_online_update_needed(s->cp, it->device_id, it->cert_id, it->reason);
	}
	scan_batch(s);
}

static int
scan_write_item(struct scan *s, struct scan_item *it, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	int fresh;

	/* the state, unless the row was renewed since it was read */
	if (it->reason == CP_REASON_REVOKED && it->state != CP_CERT_REVOKED)
		st = store_stmt(c,
		                "UPDATE certs SET state=1, revoked_at=?3 "
		                "WHERE cert_id=?1 AND serial=?2 AND state!=1",
		                err);
	else if (it->state == CP_CERT_VALID)
		st = store_stmt(c,
		                "UPDATE certs SET state=2 WHERE cert_id=?1 AND serial=?2 "
		                "AND state=0",
		                err);
	else
		st = NULL;
	if (st == NULL && err->status != STB_OK)
		return -1;
	if (st != NULL) {
		store_bind_str(st, 1, it->cert_id);
		store_bind_blob(st, 2, it->serial, it->serial_len);
		if (it->reason == CP_REASON_REVOKED)
			store_bind_int64(st, 3, it->revoked_at > 0 ? it->revoked_at : s->now);
		if (store_step(st, err) != STORE_DONE)
			return -1;
		it->changed = store_changes(st) > 0;
	}
	st = store_stmt(c,
	                "INSERT INTO pending(cert_id, device_id, reason, created) "
	                "SELECT cert_id, device_id, ?3, ?4 FROM certs "
	                "WHERE cert_id=?1 AND serial=?2 "
	                "ON CONFLICT(cert_id) DO UPDATE SET reason=excluded.reason "
	                "WHERE pending.reason!=excluded.reason",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, it->cert_id);
	store_bind_blob(st, 2, it->serial, it->serial_len);
	store_bind_int64(st, 3, it->reason);
	store_bind_int64(st, 4, s->now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	fresh = store_changes(st) > 0;
	if (!fresh)
		return 0;
	return daemon_auditf(s->cp->d, c, err, "cert_update_needed", "scanner",
	                     "cert=%s device=%s reason=%s not_after=%lld", it->cert_id,
	                     it->device_id, cp_due_reason_name(it->reason),
	                     (long long)it->not_after);
}

static int
scan_write(store_conn_t *c, void *arg, err_t *err)
{
	struct scan *s = arg;

	err_clear(err);
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].reason != CP_REASON_NONE &&
		    scan_write_item(s, &s->items[i], c, err) == -1)
			return -1;
	return 0;
}

static void
scan_written(void *arg, const err_t *err)
{
	struct scan *s = arg;

	if (err->status != STB_OK)
		scan_end(s, err);
	else if (cp_stopping(s->cp))
		scan_end(s, NULL);
	else
		scan_notify(s);
}

static void
scan_store(struct scan *s)
{
	size_t due = 0;
	err_t err;

	for (size_t i = 0; i < s->n; i++)
		due += s->items[i].reason != CP_REASON_NONE;
	s->due += due;
	if (due == 0)
		scan_batch(s); /* nothing to write */
	else if (s->mb == NULL) {
		if (store_write_sync(s->cp->d->store, scan_write, s, &err) == -1)
			scan_end(s, &err);
		else
			scan_notify(s);
	} else if (store_write(s->cp->d->store, s->mb, scan_write, scan_written, s, &err) == -1)
		scan_end(s, &err);
}

/* ---- revocation at ca-authd ---- */

static void scan_ask_ca(struct scan *s);

static void
scan_on_ca(void *arg, const msg_t *rsp, const err_t *perr)
{
	struct scan_ask *a = arg;
	struct scan *s = a->s;
	struct scan_item *it = &s->items[a->ix];
	uint8_t state;
	uint64_t at = 0;

	free(a);
	s->outstanding--;
	if (rsp != NULL && msg_status(rsp) == STB_OK &&
	    msg_get_u8(rsp, TLV_IX_CERT_STATE, &state) == 0) {
		it->reason = cp_due_from_ca(state);
		if (msg_get_u64(rsp, TLV_IX_REVOKED_AT, &at) == 0 && at <= INT64_MAX)
			it->revoked_at = (int64_t)at;
	} else if (rsp != NULL && msg_status(rsp) == STB_NOT_FOUND)
		it->reason = cp_due_from_ca(CP_CA_UNKNOWN);
	else if (!s->ca_down) {
		err_t err;
		cp_ca_error(rsp, perr, &err);
		log_warnx("validity scan: revocation not checked: %s", err.msg);
		s->ca_down = 1;
	}
	scan_ask_ca(s);
}

/* Keeps up to scan.ca_window CA_STATUS requests in flight; writes the
 * batch once all are answered. */
static void
scan_ask_ca(struct scan *s)
{
	while (!s->ca_down && !cp_stopping(s->cp) &&
	       s->outstanding < (size_t)s->cp->conf->scan_ca_window && s->next_ca < s->n) {
		struct scan_item *it = &s->items[s->next_ca];
		struct scan_ask *a;
		buf_t b;
		err_t err;

		if (it->reason != CP_REASON_NONE || !s->cp->conf->scan_check_revocation) {
			s->next_ca++;
			continue;
		}
		if ((a = calloc(1, sizeof(*a))) == NULL) {
			s->ca_down = 1;
			break;
		}
		a->s = s;
		a->ix = s->next_ca;
		buf_init(&b, 64);
		struct msgreq_CA_STATUS q = {.CERT_SERIAL = MV_BYTES(it->serial, it->serial_len)};
		if (msgenc_CA_STATUS(&b, &q, &err) == -1 ||
		    cp_ca_call(s->cp, s->base, s->mb, STB_MSG_CA_STATUS, &b, scan_on_ca, a, &err) ==
		        -1) {
			log_warnx("validity scan: revocation not checked: %s", err.msg);
			s->ca_down = 1;
			free(a);
		} else {
			s->outstanding++;
			s->next_ca++;
		}
		buf_free(&b);
	}
	if (s->outstanding > 0)
		return;
	if (cp_stopping(s->cp))
		scan_end(s, NULL);
	else
		scan_store(s);
}

/* ---- batches ---- */

static int
scan_read(struct scan *s, err_t *err)
{
	store_conn_t *c = store_reader(s->cp->d->store, err);
	store_stmt_t *st;
	int rc;

	s->n = s->rows = 0;
	if (c == NULL || (st = store_stmt(c,
	                                  "SELECT cert_id, device_id, serial, not_after, state "
	                                  "FROM certs WHERE cert_id > ?1 ORDER BY cert_id LIMIT ?2",
	                                  err)) == NULL)
		return -1;
	store_bind_str(st, 1, s->after);
	store_bind_int64(st, 2, SCAN_BATCH);
	while (s->rows < SCAN_BATCH && (rc = store_step(st, err)) == STORE_ROW) {
		struct scan_item *it = &s->items[s->n];
		size_t sl;
		const void *serial = store_col_blob(st, 2, &sl);
		s->rows++;
		memset(it, 0, sizeof(*it));
		snprintf(it->cert_id, sizeof(it->cert_id), "%s", store_col_text(st, 0, NULL));
		snprintf(s->after, sizeof(s->after), "%s", it->cert_id);
		snprintf(it->device_id, sizeof(it->device_id), "%s", store_col_text(st, 1, NULL));
		if (sl == 0 || sl > CP_SERIAL_MAX)
			continue; /* damaged: left for the admin to see */
		memcpy(it->serial, serial, sl);
		it->serial_len = sl;
		it->not_after = store_col_int64(st, 3);
		it->state = (int)store_col_int64(st, 4);
		it->reason =
		    cp_due_scan(it->state, it->not_after, s->now, s->cp->conf->scan_renew_before_s);
		s->n++;
	}
	store_reset(st);
	return rc == STORE_ROW || rc == STORE_DONE ? 0 : -1;
}

static void
scan_batch(struct scan *s)
{
	err_t err;

	if (cp_stopping(s->cp)) {
		scan_end(s, NULL);
		return;
	}
	if (scan_read(s, &err) == -1) {
		scan_end(s, &err);
		return;
	}
	if (s->rows == 0) {
		scan_end(s, NULL);
		return;
	}
	s->scanned += s->n;
	s->next_ca = 0;
	scan_ask_ca(s);
}

static int
scan_start(cp_t *cp, struct event_base *base, mbox_t *mb, srv_req_t *r, int timer)
{
	struct scan *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	cp_ref(cp);
	s->cp = cp;
	s->base = base;
	s->mb = mb;
	s->r = r;
	s->timer = timer;
	s->now = (int64_t)time(NULL);
	scan_batch(s);
	return 0;
}

/* The timer's scan runs at one instance at a time: the one that holds the
 * scan_lease row, taken (or kept) by a conditional UPDATE in the writer for
 * two scan intervals; it renews it every tick, another instance takes it
 * over once it has lapsed.  The scan's writes are conditional anyway (a
 * state changes once, a pending row is written once), so a second scanner
 * would only ask ca-authd twice; CP_SCAN_NOW runs where it is asked. */
struct lease {
	cp_t *cp;
	int won;
};

static int
lease_write(store_conn_t *c, void *arg, err_t *err)
{
	struct lease *l = arg;
	int64_t now = (int64_t)time(NULL);
	store_stmt_t *st = store_stmt(c,
	                              "UPDATE scan_lease SET holder=?1, until=?2 "
	                              "WHERE id=1 AND (holder=?1 OR until<=?3)",
	                              err);

	if (st == NULL)
		return -1;
	store_bind_str(st, 1, l->cp->scan_holder);
	store_bind_int64(st, 2, now + 2 * l->cp->conf->scan_interval_s);
	store_bind_int64(st, 3, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	l->won = store_changes(st) == 1;
	return 0;
}

static void
scan_tick(evutil_socket_t fd, short what, void *arg)
{
	cp_t *cp = arg;
	struct lease l = {cp, 0};
	err_t err;

	(void)fd;
	(void)what;
	if (__atomic_exchange_n(&cp->scanning, 1, __ATOMIC_ACQ_REL))
		return; /* the last one is still running */
	if (store_write_sync(cp->d->store, lease_write, &l, &err) == -1)
		log_warnx("validity scan: lease not taken: %s", err.msg);
	if (!l.won) {
		__atomic_store_n(&cp->scanning, 0, __ATOMIC_RELEASE);
		return; /* another instance scans */
	}
	if (scan_start(cp, cp->d->base, NULL, NULL, 1) == -1) {
		log_warnx("validity scan: out of memory");
		__atomic_store_n(&cp->scanning, 0, __ATOMIC_RELEASE);
	}
}

void
cp_scanner_scan_now(cp_t *cp, srv_req_t *r)
{
	srv_req_t *d = srv_req_defer(r);

	if (d == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (scan_start(cp, srv_conn_base(d->conn), srv_req_mbox(d), d, 0) == -1)
		srv_reply_err(d, STB_INTERNAL, "out of memory");
}

int
cp_scanner_start(cp_t *cp, err_t *err)
{
	struct timeval tv = {(time_t)cp->conf->scan_interval_s, 0};
	uint8_t id[8];

	if (RAND_bytes(id, sizeof(id)) != 1)
		return err_set(err, STB_INTERNAL, "no randomness");
	hex_encode(id, sizeof(id), cp->scan_holder);
	if ((cp->scan_timer = event_new(cp->d->base, -1, EV_PERSIST, scan_tick, cp)) == NULL ||
	    event_add(cp->scan_timer, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the validity scanner");
	return 0;
}

void
cp_scanner_stop(cp_t *cp)
{
	if (cp->scan_timer != NULL)
		event_free(cp->scan_timer);
	cp->scan_timer = NULL;
}
