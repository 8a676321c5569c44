/* device: REGISTER, the control channel and its heartbeats. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msgenc.h"
#include "rdv.h"
#include "tlv.h"

#define USER_CAP 65
#define PASS_CAP 257

struct rdv_wait {
	rdv_cstate_t *ts;
	uint32_t push_id;
	struct event *timer;
	rdv_wait_fn fn;
	void *arg;
	rdv_wait_t *next;
};

rdv_cstate_t *
rdv_cstate(srv_conn_t *c)
{
	return srv_conn_data(c);
}

/* ---- heartbeat waits ---- */

static void
wait_unlink(rdv_wait_t *w)
{
	rdv_wait_t **pp = &w->ts->waits;

	while (*pp != NULL && *pp != w)
		pp = &(*pp)->next;
	if (*pp == w)
		*pp = w->next;
	event_free(w->timer);
}

static void
wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	rdv_wait_t *w = arg;

	(void)fd;
	(void)what;
	wait_unlink(w);
	w->fn(w->ts, 0, "did not answer a heartbeat in time", w->arg);
	free(w);
}

/* RDV_HEARTBEAT to the device (the registry gives it no fields). */
static int
hb_push(rdv_cstate_t *ts, uint32_t *push_id)
{
	struct msgreq_RDV_HEARTBEAT q = {.none_ = {.set = 0}};
	err_t err;
	buf_t b;
	int rc;

	buf_init(&b, 64);
	if ((rc = msgenc_RDV_HEARTBEAT(&b, &q, &err)) == -1)
		log_warnx("heartbeat to %s not encoded (%s): %s", ts->device_id,
		          stb_status_name(err.status), err.msg);
	else
		rc = srv_conn_push(ts->conn, STB_MSG_RDV_HEARTBEAT, &b, push_id);
	buf_free(&b);
	return rc;
}

int
rdv_wait_heartbeat(rdv_cstate_t *ts, int timeout_ms, rdv_wait_fn fn, void *arg)
{
	rdv_wait_t *w = calloc(1, sizeof(*w));
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	if (w == NULL)
		return -1;
	if (hb_push(ts, &w->push_id) == -1 ||
	    (w->timer = evtimer_new(srv_conn_base(ts->conn), wait_timeout, w)) == NULL) {
		free(w);
		return -1;
	}
	w->ts = ts;
	w->fn = fn;
	w->arg = arg;
	w->next = ts->waits;
	ts->waits = w;
	evtimer_add(w->timer, &tv);
	return 0;
}

/* ---- the control channel ---- */

static void
cstate_free(rdv_cstate_t *ts)
{
	rdv_t *rdv = ts->rdv;

	while (ts->waits != NULL) {
		rdv_wait_t *w = ts->waits;
		wait_unlink(w);
		w->fn(ts, 0, "went offline", w->arg);
		free(w);
	}
	if (ts->hb_timer != NULL)
		event_free(ts->hb_timer);
	OPENSSL_cleanse(ts, sizeof(*ts));
	free(ts);
	rdv_unref(rdv);
}

static void
on_conn(srv_conn_t *c, int open, void *ctx)
{
	rdv_cstate_t *ts = srv_conn_data(c);
	rdv_entry_t *e;

	(void)ctx;
	if (open || ts == NULL)
		return;
	srv_conn_set_data(c, NULL);
	if ((e = rdv_registry_take(ts->rdv, ts->device_id, ts->gen)) != NULL) {
		log_info("device %s offline (%s)", ts->device_id, srv_conn_peer(c));
		srv_conn_unref(e->ce.conn);
		free(e);
	}
	cstate_free(ts);
}

static void
hb_tick(evutil_socket_t fd, short what, void *arg)
{
	rdv_cstate_t *ts = arg;

	(void)fd;
	(void)what;
	if (ts->hb_outstanding && ++ts->hb_missed >= ts->rdv->conf->hb_miss_max) {
		log_info("device %s missed %d heartbeats: closing its control channel",
		         ts->device_id, ts->hb_missed);
		srv_conn_close(ts->conn); /* frees ts through on_conn */
		return;
	}
	if (hb_push(ts, &ts->hb_push_id) == 0)
		ts->hb_outstanding = 1;
}

static void
on_push_rsp(srv_conn_t *c, const msg_t *m, void *ctx)
{
	rdv_cstate_t *ts = srv_conn_data(c);
	rdv_wait_t *w;

	(void)ctx;
	if (ts == NULL || m->type != STB_MSG_RDV_HEARTBEAT)
		return; /* SESSION_OFFER acknowledgements need nothing */
	if (m->req_id == ts->hb_push_id && msg_status(m) == STB_OK) {
		ts->hb_outstanding = 0;
		ts->hb_missed = 0;
	}
	for (w = ts->waits; w != NULL && w->push_id != m->req_id; w = w->next)
		;
	if (w == NULL)
		return;
	wait_unlink(w);
	if (msg_status(m) == STB_OK)
		w->fn(ts, 1, NULL, w->arg);
	else
		w->fn(ts, 0, "refused a heartbeat", w->arg);
	free(w);
}

static void
rdv_heartbeat(srv_req_t *r, const msg_t *m, void *ctx)
{
	(void)m;
	(void)ctx;
	srv_reply_ok(r);
}

/* ---- REGISTER ---- */

struct reg {
	rdv_t *rdv;
	srv_req_t *r;
	char device_id[RDV_ID_CAP];
	char username[USER_CAP];
	char endpoint[RDV_ENDPOINT_CAP];
	char actor[RDV_ID_CAP + 64];
	uint8_t key[RDV_KEY_LEN];
	uint8_t salt[RDV_SALT_LEN];
	size_t saltlen;
	uint64_t n;
	uint32_t kr, kp;
	char password[PASS_CAP];        /* until the key is derived */
	char enrol[RDV_ENROL_CODE_CAP]; /* the enrolment code, when sent */
	int has_enrol;
	uint8_t verifier[RDV_ENROL_VERIFIER_LEN]; /* the stored one it matched */
	err_t err;                                /* of the lookup */
	int fresh;                                /* first registration: store the credentials */
	int ok;                                   /* password matched */
	buf_t sealed;
	lockout_try_t lt; /* reserved before the lookup and scrypt, settled after */
	/* results of the write */
	uint32_t overlay_ix;
	int throttled_now; /* this failure guarded the device or penalised its source */
	int persist;       /* the pair's trust changed (LOCKOUT_WRITE) */
};

static void
reg_free(struct reg *g)
{
	rdv_t *rdv = g->rdv;

	/* an attempt not decided (refused for another reason, an error) */
	lockout_end(rdv->lk, &g->lt, LOCKOUT_VOID, (int64_t)time(NULL));
	buf_wipe(&g->sealed);
	OPENSSL_cleanse(g, sizeof(*g));
	free(g);
	rdv_unref(rdv);
}

static int
endpoint_ok(const char *ep)
{
	const char *colon = strrchr(ep, ':');
	char *end;
	long port;

	if (colon == NULL || colon == ep || colon[1] == '\0')
		return 0;
	for (const char *p = ep; p < colon; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(".-:[]", *p) != NULL))
			return 0;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

static int
reg_alloc(struct reg *g, store_conn_t *c, err_t *err)
{
	store_stmt_t *st;
	uint32_t *used = NULL;
	size_t n = 0, cap = 0;
	int rc;

	st = store_stmt(c, "SELECT overlay_ix FROM devices WHERE overlay_ix IS NOT NULL ORDER BY 1",
	                err);
	if (st == NULL)
		return -1;
	while ((rc = store_step(st, err)) == STORE_ROW) {
		if (n == cap) {
			uint32_t *nu = realloc(used, (cap = cap ? cap * 2 : 256) * sizeof(*used));
			if (nu == NULL) {
				free(used);
				store_reset(st);
				return err_set(err, STB_INTERNAL, "out of memory");
			}
			used = nu;
		}
		used[n++] = (uint32_t)store_col_int64(st, 0);
	}
	store_reset(st);
	if (rc != STORE_DONE) {
		free(used);
		return -1;
	}
	g->overlay_ix = rdv_pool_first_free(&g->rdv->pool, used, n);
	free(used);
	if (g->overlay_ix == 0)
		return err_set(err, STB_UNAVAILABLE, "overlay address pool is exhausted");
	return 0;
}

/* The failure was counted in memory (reg_looked); failures are never
 * written to lockouts (lockout.h). */
static int
reg_fail_write(struct reg *g, store_conn_t *c, err_t *err)
{
	lockout_state_t ls = {0};

	/* a wrong password is anyone's to send: counted in the refusal
	 * summaries; the failure that guards the device or starts a penalty
	 * of its source gets its row */
	if (!g->throttled_now) {
		daemon_refused(g->rdv->d, g->r, "register", "UNAUTHENTICATED", g->device_id);
		return 0;
	}
	lockout_get(g->rdv->lk, LOCKOUT_SUBJECT, g->device_id, NULL, &ls);
	return daemon_auditf(g->rdv->d, c, err, "register_denied", g->actor,
	                     "device=%s failures=%lld%s", g->device_id, (long long)ls.failures,
	                     g->throttled_now ? " throttled" : "");
}

/* The device's stored enrolment verifier into v: 1, 0 when it has none,
 * or -1 with err. */
static int
reg_enrol_stored(const struct reg *g, store_conn_t *c, uint8_t v[RDV_ENROL_VERIFIER_LEN],
                 err_t *err)
{
	store_stmt_t *st;
	const void *blob;
	size_t bl = 0;
	int rc, found;

	st = store_stmt(c, "SELECT verifier FROM enrolments WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, g->device_id);
	rc = store_step(st, err);
	blob = rc == STORE_ROW ? store_col_blob(st, 0, &bl) : NULL;
	found = blob != NULL && bl == RDV_ENROL_VERIFIER_LEN;
	if (found)
		memcpy(v, blob, RDV_ENROL_VERIFIER_LEN);
	store_reset(st);
	return rc != STORE_ROW && rc != STORE_DONE ? -1 : found;
}

/* In the write of a first registration: the enrolment code it proved is
 * still the device's (not reissued, not used meanwhile); consumes it. */
static int
reg_enrol_consume(struct reg *g, store_conn_t *c, err_t *err)
{
	uint8_t v[RDV_ENROL_VERIFIER_LEN];
	store_stmt_t *st;
	int rc = reg_enrol_stored(g, c, v, err);

	if (rc == -1)
		return -1;
	if (rc == 0 || CRYPTO_memcmp(v, g->verifier, sizeof(v)) != 0)
		return err_set(err, STB_CONFLICT,
		               "the enrolment code of %s was replaced or used meanwhile",
		               g->device_id);
	st = store_stmt(c, "DELETE FROM enrolments WHERE device_id=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, g->device_id);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static int
reg_write(store_conn_t *c, void *arg, err_t *err)
{
	struct reg *g = arg;
	int64_t now = (int64_t)time(NULL);
	store_stmt_t *st;
	int has_cred, rc;
	char addr[RDV_ADDR_MAX];

	g->overlay_ix = 0;
	if (!g->ok)
		return reg_fail_write(g, c, err);
	st = store_stmt(c,
	                "SELECT CASE WHEN cred IS NULL THEN 0 ELSE 1 END, overlay_ix "
	                "FROM devices WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, g->device_id);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc < 0 ? -1
		              : err_set(err, STB_FORBIDDEN, "device %s is not provisioned",
		                        g->device_id);
	}
	has_cred = (int)store_col_int64(st, 0);
	if (!store_col_is_null(st, 1))
		g->overlay_ix = (uint32_t)store_col_int64(st, 1);
	store_reset(st);
	if (g->persist && lockout_persist(g->rdv->lk, c, &g->lt, err) == -1)
		return -1;
	if (g->fresh && has_cred)
		return err_set(err, STB_CONFLICT,
		               "device %s was registered by another connection meanwhile",
		               g->device_id);
	if (g->fresh && reg_enrol_consume(g, c, err) == -1)
		return -1;
	if (g->overlay_ix == 0 || g->overlay_ix > g->rdv->pool.size) {
		g->overlay_ix = 0;
		if (reg_alloc(g, c, err) == -1)
			return -1;
	}
	st = store_stmt(c,
	                "UPDATE devices SET overlay_ix=?2, endpoint=?3, last_seen=?4, holder=?12, "
	                "username=CASE WHEN ?5 <> 0 THEN ?6 ELSE username END, "
	                "cred=CASE WHEN ?5 <> 0 THEN ?7 ELSE cred END, "
	                "salt=CASE WHEN ?5 <> 0 THEN ?8 ELSE salt END, "
	                "kdf_n=CASE WHEN ?5 <> 0 THEN ?9 ELSE kdf_n END, "
	                "kdf_r=CASE WHEN ?5 <> 0 THEN ?10 ELSE kdf_r END, "
	                "kdf_p=CASE WHEN ?5 <> 0 THEN ?11 ELSE kdf_p END WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, g->device_id);
	store_bind_int64(st, 2, g->overlay_ix);
	store_bind_str(st, 3, g->endpoint);
	store_bind_int64(st, 4, now);
	store_bind_int64(st, 5, g->fresh);
	store_bind_str(st, 6, g->username);
	store_bind_blob(st, 7, g->sealed.data, g->sealed.len);
	store_bind_blob(st, 8, g->salt, g->saltlen);
	store_bind_int64(st, 9, (int64_t)g->n);
	store_bind_int64(st, 10, g->kr);
	store_bind_int64(st, 11, g->kp);
	/* with several instances, where CONNECT_REQs for it are forwarded */
	store_bind_str(st, 12, rdv_cluster_self(g->rdv));
	if (store_step(st, err) != STORE_DONE)
		return -1;
	rdv_pool_addr(&g->rdv->pool, g->overlay_ix, addr);
	return daemon_auditf(g->rdv->d, c, err, "register", g->actor,
	                     "device=%s overlay=%s endpoint=%s%s", g->device_id, addr, g->endpoint,
	                     g->fresh ? " enrolled" : "");
}

static int
reg_attach(struct reg *g, srv_conn_t *conn)
{
	rdv_t *rdv = g->rdv;
	rdv_cstate_t *ts = calloc(1, sizeof(*ts));
	rdv_entry_t *e = calloc(1, sizeof(*e));
	int ms = (int)rdv->conf->hb_interval_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (ts == NULL || e == NULL || connreg_ent_init(&e->ce, g->device_id, conn, NULL) == -1 ||
	    (ts->hb_timer = event_new(srv_conn_base(conn), -1, EV_PERSIST, hb_tick, ts)) == NULL) {
		free(ts);
		free(e);
		return -1;
	}
	rdv_ref(rdv);
	ts->rdv = rdv;
	ts->conn = conn;
	memcpy(ts->device_id, g->device_id, sizeof(ts->device_id));
	memcpy(ts->key, g->key, sizeof(ts->key));
	memcpy(ts->endpoint, g->endpoint, sizeof(ts->endpoint));
	rdv_pool_addr(&rdv->pool, g->overlay_ix, ts->overlay);
	memcpy(e->overlay, ts->overlay, sizeof(e->overlay));
	memcpy(e->endpoint, g->endpoint, sizeof(e->endpoint));
	snprintf(e->peer, sizeof(e->peer), "%s", srv_conn_peer(conn));
	e->since = time(NULL);
	srv_conn_ref(conn);
	rdv_registry_kick(rdv_registry_add(rdv, e));
	ts->gen = e->ce.gen;
	srv_conn_set_data(conn, ts);
	evtimer_add(ts->hb_timer, &tv);
	log_info("device %s online at %s overlay %s", ts->device_id, srv_conn_peer(conn),
	         ts->overlay);
	return 0;
}

static void
reg_done(void *arg, const err_t *err)
{
	struct reg *g = arg;
	srv_req_t *r = g->r;
	buf_t *b;

	if (err->status != STB_OK)
		srv_reply_errt(r, err);
	else if (!g->ok)
		srv_reply_err(r, STB_UNAUTHENTICATED, "wrong username or password for device %s%s",
		              g->device_id,
		              g->throttled_now ? "; guesses limited after repeated failures" : "");
	else if (srv_conn_data(r->conn) != NULL)
		srv_reply_err(r, STB_CONFLICT, "this connection is already registered");
	else if (srv_conn_is_open(r->conn) && reg_attach(g, r->conn) == -1)
		srv_reply_err(r, STB_INTERNAL, "out of memory");
	else {
		rdv_cstate_t *ts = srv_conn_data(r->conn);
		b = srv_reply_begin(r);
		tlv_put_str(b, STB_TLV_RDV_OVERLAY_ADDR, ts != NULL ? ts->overlay : "0.0.0.0");
		tlv_put(b, STB_TLV_RDV_KDF_SALT, g->salt, g->saltlen);
		tlv_put_u64(b, STB_TLV_RDV_KDF_N, g->n);
		tlv_put_u32(b, STB_TLV_RDV_KDF_R, g->kr);
		tlv_put_u32(b, STB_TLV_RDV_KDF_P, g->kp);
		tlv_put_u32(b, STB_TLV_RDV_LEASE_S, (uint32_t)g->rdv->conf->lease_s);
		tlv_put_u32(b, STB_TLV_RDV_HB_INTERVAL_MS, (uint32_t)g->rdv->conf->hb_interval_ms);
		srv_reply_end(r);
	}
	reg_free(g);
}

/* A device that never registered must prove its enrolment code (enrol.h)
 * before it may set a password: checked before any scrypt, refused with
 * no write and no log line (the code is 128 random bits: nothing to lock). */
static int
reg_enrol_check(struct reg *g, store_conn_t *c, err_t *err)
{
	uint8_t mine[RDV_ENROL_VERIFIER_LEN];
	int rc = reg_enrol_stored(g, c, g->verifier, err), ok;

	if (rc == -1)
		return -1;
	if (rc == 0)
		return err_set(err, STB_UNAUTHENTICATED,
		               "device %s has no enrolment code: provision it again", g->device_id);
	if (!g->has_enrol)
		return err_set(err, STB_UNAUTHENTICATED,
		               "device %s is not enrolled: its first RDV_REGISTER needs the "
		               "enrolment code from provisioning",
		               g->device_id);
	ok = rdv_enrol_verifier(g->device_id, g->enrol, mine) == 0 &&
	     CRYPTO_memcmp(mine, g->verifier, sizeof(mine)) == 0;
	OPENSSL_cleanse(mine, sizeof(mine));
	if (!ok)
		return err_set(err, STB_UNAUTHENTICATED, "wrong enrolment code for device %s",
		               g->device_id);
	return 0;
}

/* Reads the device row: provisioned, and the stored credentials. */
static int
reg_lookup(struct reg *g, const char *password, size_t pwlen, err_t *err)
{
	rdv_t *rdv = g->rdv;
	store_conn_t *c = store_reader(rdv->d->store, err);
	store_stmt_t *st;
	uint8_t stored[RDV_KEY_LEN];
	size_t sl = 0, blen;
	const void *blob;
	int rc = -1, user_ok;
	char user[USER_CAP] = "";

	if (c == NULL)
		return -1;
	st = store_stmt(c,
	                "SELECT username, cred, salt, kdf_n, kdf_r, kdf_p "
	                "FROM devices WHERE device_id=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, g->device_id);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc < 0 ? -1
		              : err_set(err, STB_FORBIDDEN, "device %s is not provisioned",
		                        g->device_id);
	}
	rc = -1;
	if (store_col_is_null(st, 1)) {
		store_reset(st);
		if (reg_enrol_check(g, c, err) == -1)
			return -1;
		g->fresh = 1;
		g->saltlen = RDV_SALT_LEN;
		g->n = (uint64_t)rdv->conf->kdf_n;
		g->kr = (uint32_t)rdv->conf->kdf_r;
		g->kp = (uint32_t)rdv->conf->kdf_p;
		if (RAND_bytes(g->salt, RDV_SALT_LEN) != 1 ||
		    rdv_kdf_derive(password, pwlen, g->salt, g->saltlen, g->n, g->kr, g->kp,
		                   g->key) == -1 ||
		    sealed_seal(rdv->d->kek, g->device_id, strlen(g->device_id), g->key,
		                RDV_KEY_LEN, &g->sealed, err) == -1)
			return err_set(err, STB_INTERNAL, "cannot derive the wrap key");
		g->ok = 1;
		return 0;
	}
	snprintf(user, sizeof(user), "%s", store_col_text(st, 0, NULL));
	blob = store_col_blob(st, 2, &blen);
	g->n = (uint64_t)store_col_int64(st, 3);
	g->kr = (uint32_t)store_col_int64(st, 4);
	g->kp = (uint32_t)store_col_int64(st, 5);
	if (blen < 16 || blen > sizeof(g->salt)) {
		store_reset(st);
		return err_set(err, STB_INTERNAL, "stored salt of %s is damaged", g->device_id);
	}
	memcpy(g->salt, blob, blen);
	g->saltlen = blen;
	blob = store_col_blob(st, 1, &blen);
	if (sealed_open(rdv->d->kek, g->device_id, strlen(g->device_id), blob, blen, stored,
	                sizeof(stored), &sl, err) == -1 ||
	    sl != RDV_KEY_LEN) {
		store_reset(st);
		return err_set(err, STB_INTERNAL, "stored credentials of %s do not open",
		               g->device_id);
	}
	store_reset(st);
	if (rdv_kdf_derive(password, pwlen, g->salt, g->saltlen, g->n, g->kr, g->kp, g->key) == -1)
		err_set(err, STB_INTERNAL, "cannot derive the wrap key");
	else {
		user_ok = strlen(user) == strlen(g->username) &&
		          CRYPTO_memcmp(user, g->username, strlen(user)) == 0;
		g->ok = (CRYPTO_memcmp(stored, g->key, RDV_KEY_LEN) == 0) & user_ok;
		rc = 0;
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	return rc;
}

/* On a kdf thread: the row, scrypt, the comparison. */
static void
reg_work(void *arg)
{
	struct reg *g = arg;

	if (reg_lookup(g, g->password, strlen(g->password), &g->err) == 0)
		err_clear(&g->err);
	else if (g->err.status == STB_OK)
		err_set(&g->err, STB_INTERNAL, "registration failed");
	OPENSSL_cleanse(g->password, sizeof(g->password));
}

/* Reserves the attempt (lockout.h) or answers RATE_LIMITED: a throttled
 * source costs no lookup, no scrypt and no write, and attempts pipelined
 * or on other loops count as soon as they are reserved. */
static int
reg_throttled(rdv_t *rdv, srv_req_t *r, struct reg *g)
{
	char source[LOCKOUT_SOURCE_MAX + 1];
	int64_t left;

	srcaddr_key(srv_conn_peer(r->conn), source);
	if ((left = lockout_begin(rdv->lk, g->device_id, source, (int64_t)time(NULL), &g->lt)) == 0)
		return 0;
	srv_reply_err(r, STB_RATE_LIMITED, "too many failed attempts from %s; retry in %lld s",
	              source, (long long)left);
	return 1;
}

/* Back on the connection's loop: settle the attempt, record it, then
 * answer. */
static void
reg_looked(void *arg)
{
	struct reg *g = arg;
	err_t err;
	int rc;

	if (g->err.status != STB_OK) {              /* not decided: reg_free releases the attempt */
		if (g->err.status == STB_FORBIDDEN) /* not provisioned: anyone can ask */
			daemon_refused(g->rdv->d, g->r, "register", stb_status_name(g->err.status),
			               g->device_id);
		srv_reply_errt(g->r, &g->err);
		reg_free(g);
		return;
	}
	if (rdv_stopping(g->rdv)) {
		srv_reply_err(g->r, STB_UNAVAILABLE, "rendezvousd is shutting down");
		reg_free(g);
		return;
	}
	rc = lockout_end(g->rdv->lk, &g->lt, g->ok ? LOCKOUT_RIGHT : LOCKOUT_WRONG,
	                 (int64_t)time(NULL));
	g->throttled_now = (rc & (LOCKOUT_GUARDED | LOCKOUT_PENALISED)) != 0;
	g->persist = (rc & LOCKOUT_WRITE) != 0;
	if (store_write(g->rdv->d->store, srv_req_mbox(g->r), reg_write, reg_done, g, &err) == -1) {
		srv_reply_errt(g->r, &err);
		reg_free(g);
	}
}

static void
rdv_register(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	rdv_t *rdv = d->priv;
	struct reg *g;
	err_t err;

	if (srv_conn_data(r->conn) != NULL) {
		srv_reply_err(r, STB_CONFLICT, "this connection is already registered");
		return;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	rdv_ref(rdv);
	g->rdv = rdv;
	buf_init(&g->sealed, RDV_KEY_LEN + SEALED_OVERHEAD);
	if (msg_get_str(m, TLV_IX_RDV_DEVICE_ID, g->device_id, sizeof(g->device_id)) == -1 ||
	    msg_get_str(m, TLV_IX_RDV_USERNAME, g->username, sizeof(g->username)) == -1 ||
	    msg_get_str(m, TLV_IX_RDV_ENDPOINT, g->endpoint, sizeof(g->endpoint)) == -1 ||
	    msg_get_str(m, TLV_IX_RDV_PASSWORD, g->password, sizeof(g->password)) == -1) {
		srv_reply_err(r, STB_BAD_REQUEST, "RDV_REGISTER fields too long");
		reg_free(g);
		return;
	}
	g->has_enrol = msg_get_str(m, TLV_IX_RDV_ENROL_CODE, g->enrol, sizeof(g->enrol)) == 0;
	snprintf(g->actor, sizeof(g->actor), "%s@%s", g->device_id, srv_conn_peer(r->conn));
	if (!endpoint_ok(g->endpoint)) {
		srv_reply_err(r, STB_BAD_REQUEST, "endpoint '%s' is not host:port", g->endpoint);
		reg_free(g);
		return;
	}
	if (reg_throttled(rdv, r, g)) {
		reg_free(g);
		return;
	}
	if ((g->r = srv_req_defer(r)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		reg_free(g);
		return;
	}
	if (workpool_submit(rdv->kdf, reg_work, srv_req_mbox(r), reg_looked, g, &err) == -1) {
		srv_reply_errt(g->r, &err); /* RATE_LIMITED when full, UNAVAILABLE when stopping */
		reg_free(g);
	}
}

void
rdv_device_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_RDV_REGISTER, rdv_register);
	srv_handle(d->srv, MSG_IX_RDV_HEARTBEAT, rdv_heartbeat);
	srv_on_conn(d->srv, on_conn);
	srv_on_push_response(d->srv, on_push_rsp);
}
