/* keymgmtd key sync: KM_KEY_SYNC over TLS, KM_SMS_INBOUND from an SMS
 * gateway and Kannel's HTTP callback; each ends, when the terminal proved
 * its key, in one store write that records the MAC, binds the key and
 * queues its KEY_PUSH (outbox). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km.h"
#include "log.h"
#include "msgenc.h"
#include "srcaddr.h"
#include "tlv.h"

#define KM_APPS_MAX 32 /* apps listed in a BAD_REQUEST */

typedef struct km_sync {
	km_t *km;
	srv_req_t *r; /* TLS and SMS_INBOUND; NULL for HTTP */
	int sms;      /* answer with a reply SMS */
	char key_id[KM_ID_CAP];
	char mdn[KM_MDN_CAP];
	char app_id[KM_ID_CAP]; /* as named, then as chosen */
	char named_app[KM_ID_CAP];
	uint64_t ts;
	uint8_t mac[KEYSYNC_MAC_LEN];
	char source[LOCKOUT_SOURCE_MAX + 1];
	char peer[64];
	lockout_try_t lt;
	int lk_flags;    /* lockout_end's, when the write settled the attempt */
	int repeat;      /* bound already: answer its push */
	buf_t push;      /* KEY_PUSH body (push_id 0) for a new binding */
	int64_t push_id; /* the answer */
	char actor[200];
} km_sync_t;

static void
sync_free(km_sync_t *s)
{
	buf_free(&s->push);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* Counts an anonymous refusal in the summaries, no log line and no write. */
static void
sync_refused(km_sync_t *s, int status)
{
	daemon_t *d = s->km->d;

	if (d->refusals != NULL)
		refusal_count(d->refusals, s->peer, s->sms ? "sms_sync" : "key_sync",
		              stb_status_name(status), s->key_id);
}

/* 1 and the key when key_id is imported; 0 for an unknown one, after the
 * same work on the dummy key (km.h), which is left in key for the MAC
 * check so that an unknown key_id is not answered faster than a wrong MAC. */
static int
sync_key(km_sync_t *s, uint8_t *key, size_t *keylen, err_t *err)
{
	km_t *km = s->km;
	store_conn_t *c = store_reader(km->d->store, err);
	store_stmt_t *st;
	int rc;

	if (c == NULL)
		return -1;
	if ((st = store_stmt(c, "SELECT sealed FROM keys WHERE key_id=?1", err)) == NULL)
		return -1;
	store_bind_str(st, 1, s->key_id);
	if ((rc = store_step(st, err)) == STORE_ROW) {
		size_t blen;
		const void *blob = store_col_blob(st, 0, &blen);

		rc = sealed_open(km->d->kek, s->key_id, strlen(s->key_id), blob, blen, key,
		                 KEYSYNC_KEY_MAX, keylen, err);
		store_reset(st);
		return rc == -1 ? -1 : 1;
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (sealed_open(km->d->kek, "", 0, km->dummy_sealed.data, km->dummy_sealed.len, key,
	                KEYSYNC_KEY_MAX, keylen, err) == -1)
		return -1;
	return 0;
}

/* The app: the one named (must be open for the MDN), or the MDN's only one. */
static int
sync_app(km_sync_t *s, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	char list[KM_APPS_MAX * (KM_ID_CAP + 1)] = "";
	size_t used = 0;
	int n = 0, found = 0, rc;

	st = store_stmt(c, "SELECT app_id FROM services WHERE mdn=?1 ORDER BY app_id", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, s->mdn);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		const char *app = store_col_text(st, 0, NULL);

		if (s->named_app[0] && strcmp(app, s->named_app) == 0)
			found = 1;
		if (n == 0)
			snprintf(s->app_id, sizeof s->app_id, "%s", app);
		if (n < KM_APPS_MAX && used < sizeof list) {
			int w =
			    snprintf(list + used, sizeof list - used, "%s%s", n ? " " : "", app);
			if (w > 0)
				used += (size_t)w;
		}
		n++;
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (s->named_app[0]) {
		if (!found)
			return err_set(err, STB_NOT_FOUND, "MDN %s has not opened app %s", s->mdn,
			               s->named_app);
		snprintf(s->app_id, sizeof s->app_id, "%s", s->named_app);
		return 0;
	}
	if (n == 0)
		return err_set(err, STB_NOT_FOUND, "MDN %s has no app opened", s->mdn);
	if (n > 1)
		return err_set(err, STB_BAD_REQUEST, "MDN %s has several apps, name one of: %s",
		               s->mdn, list);
	return 0;
}

/* The key's bindings, on the writer's conn c: CONFLICT when
 * another MDN holds it; s->repeat and s->push_id when this one is bound. */
static int
sync_bound(km_sync_t *s, store_conn_t *c, err_t *err)
{
	store_stmt_t *st =
	    store_stmt(c, "SELECT mdn, app_id, push_id FROM bindings WHERE key_id=?1", err);
	int rc, conflict = 0;

	if (st == NULL)
		return -1;
	s->repeat = 0;
	store_bind_str(st, 1, s->key_id);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		if (strcmp(store_col_text(st, 0, NULL), s->mdn) != 0)
			conflict = 1;
		else if (strcmp(store_col_text(st, 1, NULL), s->app_id) == 0) {
			s->repeat = 1;
			s->push_id = store_col_int64(st, 2);
		}
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (conflict)
		return err_set(err, STB_CONFLICT, "key %s is bound to another MDN", s->key_id);
	return 0;
}

/* The KEY_PUSH body of a new binding: the key is enveloped with its batch
 * when the push goes (push.c). */
static int
sync_body(km_sync_t *s, err_t *err)
{
	if (km_platform(s->km, s->app_id) == NULL)
		return err_set(err, STB_UNAVAILABLE, "app %s is not a configured platform",
		               s->app_id);
	buf_reset(&s->push);
	return km_push_body(s->key_id, s->mdn, s->app_id, &s->push, err);
}

/* Everything before the write, on the caller's loop: -1 with err for a
 * refusal (the attempt is settled then). */
static int
sync_check(km_sync_t *s, err_t *err)
{
	uint8_t key[KEYSYNC_KEY_MAX];
	size_t keylen = 0;
	int64_t now = (int64_t)time(NULL), left;
	int rc, mv;

	if (keysync_mdn_check(s->mdn, err) == -1)
		return -1;
	if ((left = lockout_begin(s->km->lk, s->key_id, s->source, now, &s->lt)) != 0)
		return err_set(err, STB_RATE_LIMITED, "too many failed proofs; retry in %lld s",
		               (long long)left);
	rc = sync_key(s, key, &keylen, err);
	if (rc == -1) {
		OPENSSL_cleanse(key, sizeof key);
		return -1;
	}
	/* checked for an unknown key_id too (the dummy key): the same time */
	mv = keysync_mac_verify(key, keylen, s->key_id, s->mdn, s->named_app, s->ts, s->mac,
	                        sizeof s->mac, err);
	OPENSSL_cleanse(key, sizeof key);
	if (rc == 0 || mv == -1) {
		if (rc == 1 && err->status != STB_UNAUTHENTICATED)
			return -1;
		lockout_end(s->km->lk, &s->lt, LOCKOUT_WRONG, now);
		return err_set(err, STB_UNAUTHENTICATED, "unknown key_id or wrong MAC");
	}
	if ((uint64_t)now > s->ts + (uint64_t)s->km->conf->sync_window_s ||
	    s->ts > (uint64_t)now + (uint64_t)s->km->conf->sync_window_s) {
		return err_set(err, STB_EXPIRED, "the timestamp is more than %lld s from now",
		               s->km->conf->sync_window_s);
	}
	/* the app (the MDN's services) and the binding (CONFLICT, or bound
	 * already) are looked at in the write alone, on the writer's warm page
	 * cache (a reader's is reset by every commit): a refused write leaves
	 * no row, the body is cheap to make */
	return 0;
}

/* The binding of a new sync and its audit row. */
static int
sync_bind(km_sync_t *s, store_conn_t *c, int64_t now, err_t *err)
{
	store_stmt_t *st = store_stmt(c,
	                              "INSERT INTO bindings(key_id, app_id, mdn, push_id, bound_at)"
	                              " VALUES(?1, ?2, ?3, ?4, ?5)",
	                              err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, s->key_id);
	store_bind_str(st, 2, s->app_id);
	store_bind_str(st, 3, s->mdn);
	store_bind_int64(st, 4, s->push_id);
	store_bind_int64(st, 5, now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	return daemon_auditf(s->km->d, c, err, "bind", s->actor, "key=%s mdn=%s app=%s push=%lld",
	                     s->key_id, s->mdn, s->app_id, (long long)s->push_id);
}

/* The attempt is settled in the write that ends it well (the MAC was
 * checked on the loop), so a pair's new trust commits with its binding,
 * not in a write of its own.  A batch that is run again finds it settled
 * and writes the trust again. */
static int
sync_trust(km_sync_t *s, store_conn_t *c, int64_t now, err_t *err)
{
	if (s->lt.held)
		s->lk_flags = lockout_end(s->km->lk, &s->lt, LOCKOUT_RIGHT, now);
	if (!(s->lk_flags & LOCKOUT_WRITE))
		return 0;
	return lockout_persist(s->km->lk, c, &s->lt, err);
}

static int
sync_write(store_conn_t *c, void *arg, err_t *err)
{
	km_sync_t *s = arg;
	km_t *km = s->km;
	int64_t now = (int64_t)time(NULL);
	store_stmt_t *st;
	int rc;

	if (sync_app(s, c, err) == -1 || sync_body(s, err) == -1)
		return -1;
	/* a MAC is good once: kept until its timestamp leaves the window */
	st = store_stmt(c, "INSERT INTO sync_macs(mac, expires) VALUES(?1, ?2)", err);
	if (st == NULL)
		return -1;
	store_bind_blob(st, 1, s->mac, sizeof s->mac);
	store_bind_int64(st, 2, (int64_t)s->ts + s->km->conf->sync_window_s);
	if ((rc = store_step(st, err)) == STORE_UNIQUE)
		return err_set(err, STB_REPLAY, "this key sync MAC was used before");
	if (rc != STORE_DONE)
		return -1;
	/* expired MACs go at most once a second (km->pruned: writer only) */
	if (km->pruned != now) {
		st = store_stmt(c, "DELETE FROM sync_macs WHERE expires < ?1", err);
		if (st == NULL)
			return -1;
		store_bind_int64(st, 1, now - 1);
		if (store_step(st, err) != STORE_DONE)
			return -1;
		km->pruned = now;
	}
	if (sync_bound(s, c, err) == -1)
		return -1;
	if (!s->repeat && (outbox_enqueue(km->ob, c, s->app_id, STB_MSG_KM_KEY_PUSH, &s->push,
	                                  s->key_id, km_now_ms(), &s->push_id, err) == -1 ||
	                   sync_bind(s, c, now, err) == -1))
		return -1;
	return sync_trust(s, c, now, err);
}

/* Settles the attempt once the outcome is known, unless the write did
 * (sync_trust), and wakes the push worker for a new binding. */
static void
sync_settle(km_sync_t *s, const err_t *err)
{
	int64_t now = (int64_t)time(NULL);
	int rc;
	err_t e;

	if (s->lt.held) {
		rc = lockout_end(s->km->lk, &s->lt,
		                 err->status == STB_OK ? LOCKOUT_RIGHT : LOCKOUT_VOID, now);
		if ((rc & LOCKOUT_WRITE) &&
		    lockout_persist_job(s->km->lk, s->km->d->store,
		                        s->r != NULL ? srv_req_mbox(s->r) : s->km->main_mb, &s->lt,
		                        &e) == -1)
			log_warnx("key sync: %s", e.msg);
	}
	if (err->status == STB_OK && !s->repeat)
		outbox_kick(s->km->ob);
}

static void
sync_reply(km_sync_t *s, const err_t *err)
{
	buf_t *b;

	if (err->status != STB_OK)
		sync_refused(s, err->status);
	if (s->sms) {
		char text[KEYSYNC_SMS_MAX + 1];
		err_t e;

		if (keysync_sms_reply(err->status, s->app_id, text, sizeof text, &e) == -1)
			snprintf(text, sizeof text, "KS1 ERR INTERNAL");
		b = srv_reply_begin(s->r);
		tlv_put_str(b, STB_TLV_KM_SMS_REPLY, text);
		srv_reply_end(s->r);
		return;
	}
	if (err->status != STB_OK) {
		srv_reply_errt(s->r, err);
		return;
	}
	b = srv_reply_begin(s->r);
	tlv_put_str(b, STB_TLV_KM_APP_ID, s->app_id);
	tlv_put_u64(b, STB_TLV_KM_PUSH_ID, (uint64_t)s->push_id);
	srv_reply_end(s->r);
}

static void
sync_done(void *arg, const err_t *err)
{
	km_sync_t *s = arg;

	sync_settle(s, err);
	sync_reply(s, err);
	sync_free(s);
}

static km_sync_t *
sync_new(km_t *km, const char *peer)
{
	km_sync_t *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->km = km;
	buf_init(&s->push, OUTBOX_BODY_MAX);
	snprintf(s->peer, sizeof s->peer, "%s", peer);
	return s;
}

/* Runs a filled sync for a TLS request r. */
static void
sync_run(km_sync_t *s, srv_req_t *r)
{
	err_t err;

	snprintf(s->actor, sizeof s->actor, "%s@%s", s->mdn, s->peer);
	if (sync_check(s, &err) == -1) {
		s->r = r;
		sync_settle(s, &err);
		sync_reply(s, &err);
		sync_free(s);
		return;
	}
	if ((s->r = srv_req_defer(r)) == NULL) {
		err_set(&err, STB_INTERNAL, "out of memory");
		s->r = r;
		sync_done(s, &err);
		return;
	}
	if (store_write(s->km->d->store, srv_req_mbox(s->r), sync_write, sync_done, s, &err) == -1)
		sync_done(s, &err);
}

static void
km_key_sync(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	km_sync_t *s = sync_new(d->priv, srv_conn_peer(r->conn));
	const uint8_t *mac;
	size_t maclen;

	if (s == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (msg_get_str(m, TLV_IX_KM_KEY_ID, s->key_id, sizeof s->key_id) == -1 ||
	    msg_get_str(m, TLV_IX_KM_MDN, s->mdn, sizeof s->mdn) == -1 ||
	    msg_get_u64(m, TLV_IX_KM_TIMESTAMP, &s->ts) == -1 ||
	    msg_get_bytes(m, TLV_IX_KM_MAC, &mac, &maclen) == -1 || maclen != sizeof s->mac) {
		srv_reply_err(r, STB_BAD_REQUEST, "KM_KEY_SYNC fields");
		sync_free(s);
		return;
	}
	memcpy(s->mac, mac, sizeof s->mac);
	if (msg_has(m, TLV_IX_KM_APP_ID))
		msg_get_str(m, TLV_IX_KM_APP_ID, s->named_app, sizeof s->named_app);
	srcaddr_key(srv_conn_peer(r->conn), s->source);
	sync_run(s, r);
}

/* A key sync SMS: the MDN is the network's sender; guessing is counted
 * per sender MDN (the gateway is every SMS's source address). */
static int
sync_from_sms(km_sync_t *s, const char *mdn, const char *text, size_t len, err_t *err)
{
	keysync_sms_t sms;

	s->sms = 1;
	snprintf(s->mdn, sizeof s->mdn, "%.15s", mdn);
	snprintf(s->source, sizeof s->source, "sms:%.15s", mdn);
	if (keysync_mdn_check(mdn, err) == -1 || strlen(mdn) >= sizeof s->mdn)
		return err_set(err, STB_BAD_REQUEST, "the sender is not an MDN");
	if (keysync_sms_decode(text, len, &sms, err) == -1)
		return -1;
	snprintf(s->key_id, sizeof s->key_id, "%s", sms.key_id);
	snprintf(s->named_app, sizeof s->named_app, "%s", sms.app_id);
	s->ts = sms.timestamp;
	memcpy(s->mac, sms.mac, sizeof s->mac);
	OPENSSL_cleanse(&sms, sizeof sms);
	return 0;
}

static void
km_sms_inbound(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	km_sync_t *s = sync_new(d->priv, srv_conn_peer(r->conn));
	char mdn[32], text[KEYSYNC_SMS_MAX + 1];
	err_t err;

	if (s == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (msg_get_str(m, TLV_IX_KM_ORIGINATOR_MDN, mdn, sizeof mdn) == -1 ||
	    msg_get_str(m, TLV_IX_KM_SMS_TEXT, text, sizeof text) == -1) {
		srv_reply_err(r, STB_BAD_REQUEST, "KM_SMS_INBOUND fields");
		sync_free(s);
		return;
	}
	if (sync_from_sms(s, mdn, text, strlen(text), &err) == -1) {
		s->r = r;
		sync_reply(s, &err);
		sync_free(s);
		return;
	}
	sync_run(s, r);
}

/* ---- Kannel's smsbox get-url: GET /kannel/sms?from=%p&text=%a ---- */

static int
sync_write_now(km_sync_t *s, err_t *err)
{
	if (sync_check(s, err) == -1)
		return -1;
	/* HTTP routes answer before they return: wait for the commit (the
	 * main loop only accepts and runs the push worker) */
	return store_write_sync(s->km->d->store, sync_write, s, err);
}

static void
km_http_sms(struct evhttp_request *req, void *arg)
{
	daemon_t *d = arg;
	km_t *km = d->priv;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params = {0};
	const char *from, *text;
	char peer[64] = "-", reply[KEYSYNC_SMS_MAX + 1];
	km_sync_t *s;
	err_t err;

	if (!(httpd_peer_roles(req) & STB_R_SMS_GW)) {
		httpd_reply(req, 403, "Forbidden", "text/plain", "role sms-gw required\n", 21);
		return;
	}
	httpd_peer_addr(req, peer, sizeof peer);
	if (q == NULL || evhttp_parse_query_str(q, &params) != 0 ||
	    (from = evhttp_find_header(&params, "from")) == NULL ||
	    (text = evhttp_find_header(&params, "text")) == NULL) {
		evhttp_clear_headers(&params);
		httpd_reply(req, 400, "Bad Request", "text/plain", "want ?from=%p&text=%a\n", 22);
		return;
	}
	if ((s = sync_new(km, peer)) == NULL) {
		evhttp_clear_headers(&params);
		httpd_reply(req, 500, "Internal", "text/plain", "", 0);
		return;
	}
	/* Kannel may send the sender with a leading + */
	if (from[0] == '+')
		from++;
	snprintf(s->actor, sizeof s->actor, "%.15s@%s", from, peer);
	err_clear(&err);
	if (strlen(text) > KEYSYNC_SMS_MAX) {
		err_set(&err, STB_BAD_REQUEST, "longer than one SMS");
	} else if (strlen(from) >= 32 || sync_from_sms(s, from, text, strlen(text), &err) == -1) {
		if (err.status == STB_OK)
			err_set(&err, STB_BAD_REQUEST, "bad sender");
	} else if (sync_write_now(s, &err) == 0) {
		err_clear(&err);
	}
	evhttp_clear_headers(&params);
	if (err.status != STB_OK)
		sync_refused(s, err.status);
	sync_settle(s, &err);
	if (keysync_sms_reply(err.status, s->app_id, reply, sizeof reply, &err) == -1)
		snprintf(reply, sizeof reply, "KS1 ERR INTERNAL");
	httpd_reply(req, 200, "OK", "text/plain; charset=utf-8", reply, strlen(reply));
	sync_free(s);
}

int
km_http_register(daemon_t *d, err_t *err)
{
	return httpd_route(d, "/kannel/sms", EVHTTP_REQ_GET, 0, km_http_sms, d, err);
}

void
km_sync_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_KM_KEY_SYNC, km_key_sync);
	srv_handle(d->srv, MSG_IX_KM_SMS_INBOUND, km_sms_inbound);
}
