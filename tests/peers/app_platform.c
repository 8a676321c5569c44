/*
 * app-platform: the reference app-platform receiver of flow C, for the
 * integration tests, stb-bench keysync and the compose demo.  A daemon on
 * the house runtime (daemon_main, role app-platform): it accepts KEY_PUSH
 * and KEY_REVOKE from role keymgmtd over mutual TLS, opens the
 * CMS-enveloped key with its own key (cmsmsg_decrypt), keeps it sealed
 * under its KEK in its own SQLite and acknowledges with the push_id.  A
 * push_id seen before is acknowledged again and stored once.
 *
 * usage: app-platform -c FILE [-t]   (every daemon option, and:)
 *   enc.cert / enc.key  the certificate keymgmtd envelopes keys to, and its
 *                       key, PEM (default: tls.cert / tls.key)
 *   mode                how to treat pushes, for fault tests (below)
 *   control_file        when set, read on every push instead of mode, so a
 *                       test changes the behaviour of a running platform
 * A mode is one line:
 *   accept              store and acknowledge (the default; also an absent
 *                       or empty control file)
 *   refuse STATUS       answer every push with that status code
 *   stall MS            hold every push MS milliseconds, then UNAVAILABLE
 *   crash               exit (status 70) on a push, before storing it
 *   crash-stored        store the push durably, then exit before the ack
 *
 * Table keys: one row per push_id: mdn, key_id, app_id, the sealed key
 * (AAD "app-platform:key:<push_id>"), its SHA-256 (hex, for tests to
 * compare), the envelope as received (so `openssl cms -decrypt` can open it
 * by hand), when it arrived and when a KEY_REVOKE withdrew it.  Table
 * revokes: one row per KEY_REVOKE push_id.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmsmsg.h"
#include "daemon.h"
#include "hex.h"
#include "log.h"
#include "tlv.h"

#define AP_ID_CAP    (STB_ID_MAX + 1)
#define AP_KEY_MAX   1024 /* the largest key a push may carry */
#define AP_CRASH_RC  70
#define AP_BATCH_MAX 1024 /* keys in one KEY_PUSH_BATCH */

typedef struct ap_conf {
	char *enc_cert;
	char *enc_key;
	char *mode;
	char *control_file;
} ap_conf_t;

static ap_conf_t ap_conf;

#define OFF(f) offsetof(ap_conf_t, f)
static const cfg_opt_t ap_opts[] = {
    {"enc.cert", CFG_STR, "", 0, 0, NULL, OFF(enc_cert),
     "certificate keys are enveloped to, PEM (\"\": tls.cert)"},
    {"enc.key", CFG_STR, "", 0, 0, NULL, OFF(enc_key),
     "private key of enc.cert, PEM (\"\": tls.key)"},
    {"mode", CFG_STR, "accept", 0, 0, NULL, OFF(mode),
     "accept | refuse STATUS | stall MS | crash | crash-stored (fault tests)"},
    {"control_file", CFG_STR, "", 0, 0, NULL, OFF(control_file),
     "file read on every push that overrides mode (\"\": none)"},
};

static const char *const ap_migrations[] = {
    "CREATE TABLE keys("
    " push_id INTEGER PRIMARY KEY,"
    " mdn TEXT NOT NULL, key_id TEXT NOT NULL, app_id TEXT NOT NULL,"
    " key_sealed BLOB NOT NULL, key_sha256 TEXT NOT NULL, wrapped BLOB NOT NULL,"
    " received_at INTEGER NOT NULL, revoked_at INTEGER);"
    "CREATE INDEX keys_key_id ON keys(key_id);"
    "CREATE TABLE revokes("
    " push_id INTEGER PRIMARY KEY,"
    " mdn TEXT NOT NULL, key_id TEXT NOT NULL, app_id TEXT NOT NULL,"
    " received_at INTEGER NOT NULL);",
    /* KEY_PUSH_BATCH: the envelope once, per batch; its keys' rows point
     * at it (batch_id) and have an empty wrapped */
    "CREATE TABLE batches("
    " first_push_id INTEGER PRIMARY KEY, count INTEGER NOT NULL, wrapped BLOB NOT NULL,"
    " received_at INTEGER NOT NULL);"
    "ALTER TABLE keys ADD COLUMN batch_id INTEGER;",
};

enum { AP_ACCEPT, AP_REFUSE, AP_STALL, AP_CRASH, AP_CRASH_STORED };

typedef struct ap_mode {
	int kind;
	long arg; /* refuse: the status; stall: milliseconds */
} ap_mode_t;

typedef struct ap {
	daemon_t *d;
	X509 *cert;
	EVP_PKEY *key;
} ap_t;

typedef struct ap_batch ap_batch_t;

/* One push or revoke on its way to the store. */
typedef struct ap_job {
	ap_t *ap;
	srv_req_t *r;
	ap_batch_t *batch; /* a key of a KEY_PUSH_BATCH; first: it also writes the batch row */
	int first;
	int revoke;
	int crash_stored;
	uint64_t push_id;
	char mdn[AP_ID_CAP], key_id[AP_ID_CAP], app_id[AP_ID_CAP];
	buf_t sealed;
	buf_t wrapped;
	char sha256[2 * 32 + 1];
	int64_t now;
	int stored; /* 0: the push_id was there already */
} ap_job_t;

/* A KEY_PUSH_BATCH: one store job per key, queued together (one commit),
 * answered when the last is durable. */
struct ap_batch {
	srv_req_t *r;
	int crash_stored;
	uint32_t n, left;
	uint64_t first_id, last_id;
	int64_t now;
	buf_t wrapped;
	err_t err; /* the first failure */
};

/* ---- the mode ---- */

static int
ap_mode_parse(const char *s, ap_mode_t *m)
{
	char word[32];
	long arg = 0;
	int n;

	m->kind = AP_ACCEPT;
	m->arg = 0;
	n = sscanf(s, "%31s %ld", word, &arg);
	if (n <= 0)
		return 0;
	if (strcmp(word, "accept") == 0)
		return 0;
	if (strcmp(word, "refuse") == 0 && n == 2 && arg > 0 && arg < STATUS_COUNT) {
		m->kind = AP_REFUSE;
		m->arg = arg;
		return 0;
	}
	if (strcmp(word, "stall") == 0 && n == 2 && arg > 0 && arg <= 3600000) {
		m->kind = AP_STALL;
		m->arg = arg;
		return 0;
	}
	if (strcmp(word, "crash") == 0) {
		m->kind = AP_CRASH;
		return 0;
	}
	if (strcmp(word, "crash-stored") == 0) {
		m->kind = AP_CRASH_STORED;
		return 0;
	}
	return -1;
}

/* The mode for this push: the control file's when there is one (a file
 * that cannot be read or parsed counts as accept, with a warning). */
static void
ap_mode_now(ap_mode_t *m)
{
	char text[64];
	ssize_t n;
	int fd;

	if (*ap_conf.control_file == '\0') {
		(void)ap_mode_parse(ap_conf.mode, m); /* checked at start */
		return;
	}
	m->kind = AP_ACCEPT;
	if ((fd = open(ap_conf.control_file, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (ap_mode_parse(text, m) == -1) {
		log_warnx("control_file %s: '%s' is not a mode; accepting", ap_conf.control_file,
		          text);
		m->kind = AP_ACCEPT;
	}
}

/* ---- stalls ---- */

typedef struct ap_stall {
	srv_req_t *r;
	struct event *ev;
} ap_stall_t;

static void
ap_stall_fire(evutil_socket_t fd, short what, void *arg)
{
	ap_stall_t *s = arg;

	(void)fd;
	(void)what;
	srv_reply_err(s->r, STB_UNAVAILABLE, "the platform stalled (mode stall)");
	event_free(s->ev);
	free(s);
}

static void
ap_stall(srv_req_t *r, long ms)
{
	ap_stall_t *s = calloc(1, sizeof(*s));
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (s == NULL || (s->r = srv_req_defer(r)) == NULL) {
		free(s);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if ((s->ev = evtimer_new(srv_conn_base(r->conn), ap_stall_fire, s)) == NULL ||
	    evtimer_add(s->ev, &tv) == -1) {
		srv_reply_err(s->r, STB_INTERNAL, "cannot start the stall timer");
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
	}
}

/* ---- pushes ---- */

static void
ap_job_free(ap_job_t *j)
{
	buf_wipe(&j->sealed);
	buf_free(&j->wrapped);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

static int
ap_batch_row(store_conn_t *c, const ap_batch_t *b, err_t *err)
{
	store_stmt_t *st =
	    store_stmt(c,
	               "INSERT INTO batches(first_push_id, count, wrapped, received_at)"
	               " VALUES(?1, ?2, ?3, ?4) ON CONFLICT (first_push_id) DO NOTHING",
	               err);

	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, (int64_t)b->first_id);
	store_bind_int64(st, 2, (int64_t)b->n);
	store_bind_blob(st, 3, b->wrapped.data, b->wrapped.len);
	store_bind_int64(st, 4, b->now);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static int
ap_push_write(store_conn_t *c, void *arg, err_t *err)
{
	ap_job_t *j = arg;
	store_stmt_t *st;

	if (j->batch != NULL) {
		if (j->first && ap_batch_row(c, j->batch, err) == -1)
			return -1;
		st = store_stmt(c,
		                "INSERT INTO keys(push_id, mdn, key_id, app_id, key_sealed,"
		                " key_sha256, wrapped, received_at, batch_id)"
		                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, X'', ?7, ?8)"
		                " ON CONFLICT (push_id) DO NOTHING",
		                err);
		if (st == NULL)
			return -1;
		store_bind_int64(st, 7, j->now);
		store_bind_int64(st, 8, (int64_t)j->batch->first_id);
	} else {
		st = store_stmt(
		    c,
		    "INSERT INTO keys(push_id, mdn, key_id, app_id, key_sealed, key_sha256,"
		    " wrapped, received_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		    " ON CONFLICT (push_id) DO NOTHING",
		    err);
		if (st == NULL)
			return -1;
		store_bind_blob(st, 7, j->wrapped.data, j->wrapped.len);
		store_bind_int64(st, 8, j->now);
	}
	store_bind_int64(st, 1, (int64_t)j->push_id);
	store_bind_str(st, 2, j->mdn);
	store_bind_str(st, 3, j->key_id);
	store_bind_str(st, 4, j->app_id);
	store_bind_blob(st, 5, j->sealed.data, j->sealed.len);
	store_bind_str(st, 6, j->sha256);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	j->stored = store_changes(st) > 0;
	return 0;
}

static int
ap_revoke_write(store_conn_t *c, void *arg, err_t *err)
{
	ap_job_t *j = arg;
	store_stmt_t *st;

	st = store_stmt(c,
	                "INSERT INTO revokes(push_id, mdn, key_id, app_id, received_at)"
	                " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT (push_id) DO NOTHING",
	                err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, (int64_t)j->push_id);
	store_bind_str(st, 2, j->mdn);
	store_bind_str(st, 3, j->key_id);
	store_bind_str(st, 4, j->app_id);
	store_bind_int64(st, 5, j->now);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if ((j->stored = store_changes(st) > 0) == 0)
		return 0;
	st = store_stmt(c,
	                "UPDATE keys SET revoked_at=?4 WHERE mdn=?1 AND key_id=?2 AND app_id=?3"
	                " AND revoked_at IS NULL",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->mdn);
	store_bind_str(st, 2, j->key_id);
	store_bind_str(st, 3, j->app_id);
	store_bind_int64(st, 4, j->now);
	return store_step(st, err) == STORE_DONE ? 0 : -1;
}

static void ap_batch_job_done(ap_job_t *j, const err_t *err);

static void
ap_job_done(void *arg, const err_t *err)
{
	ap_job_t *j = arg;
	buf_t *b;

	if (j->batch != NULL) {
		ap_batch_job_done(j, err);
		return;
	}
	if (err->status != STB_OK) {
		srv_reply_errt(j->r, err);
		ap_job_free(j);
		return;
	}
	if (j->crash_stored) {
		log_warnx("push %" PRIu64 " stored; exiting before the ack (mode crash-stored)",
		          j->push_id);
		_exit(AP_CRASH_RC);
	}
	if (j->stored)
		log_info("%s %" PRIu64 ": key %s of %s for app %s", j->revoke ? "revoke" : "push",
		         j->push_id, j->key_id, j->mdn, j->app_id);
	b = srv_reply_begin(j->r);
	tlv_put_u64(b, STB_TLV_KM_PUSH_ID, j->push_id);
	srv_reply_end(j->r);
	ap_job_free(j);
}

/* Seals key under the KEK for j's row, and its digest. */
static int
ap_seal_key(ap_t *ap, ap_job_t *j, const uint8_t *key, size_t len, err_t *err)
{
	uint8_t md[32];
	char aad[64];

	snprintf(aad, sizeof(aad), "app-platform:key:%" PRIu64, j->push_id);
	if (EVP_Digest(key, len, md, NULL, EVP_sha256(), NULL) != 1)
		return err_set(err, STB_INTERNAL, "SHA-256 failed");
	hex_encode(md, sizeof(md), j->sha256);
	return sealed_seal(ap->d->kek, aad, strlen(aad), key, len, &j->sealed, err);
}

/* Opens an envelope (cap bytes at most); a failure is permanent. */
static int
ap_open(ap_t *ap, const uint8_t *der, size_t len, buf_t *out, const char *what, err_t *err)
{
	if (cmsmsg_decrypt(ap->key, ap->cert, der, len, out, err) == -1) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		/* repeating it will not open it either: permanent */
		return err_set(err, STB_BAD_REQUEST, "%s does not open: %s", what, why);
	}
	return 0;
}

/* Opens the envelope and seals the key under the KEK for the row. */
static int
ap_open_key(ap_t *ap, ap_job_t *j, const uint8_t *der, size_t len, err_t *err)
{
	char what[64];
	buf_t key;
	int rc;

	buf_init(&key, AP_KEY_MAX);
	snprintf(what, sizeof(what), "push %" PRIu64 ": the key", j->push_id);
	rc = ap_open(ap, der, len, &key, what, err);
	if (rc == 0)
		rc = ap_seal_key(ap, j, key.data, key.len, err);
	buf_wipe(&key);
	return rc;
}

static ap_job_t *
ap_job_new(ap_t *ap, const msg_t *m, int revoke)
{
	ap_job_t *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->ap = ap;
	j->revoke = revoke;
	j->now = (int64_t)time(NULL);
	buf_init(&j->sealed, AP_KEY_MAX + SEALED_OVERHEAD);
	buf_init(&j->wrapped, CMSMSG_DER_MAX);
	msg_get_u64(m, TLV_IX_KM_PUSH_ID, &j->push_id);
	msg_get_str(m, TLV_IX_KM_MDN, j->mdn, sizeof(j->mdn));
	msg_get_str(m, TLV_IX_KM_KEY_ID, j->key_id, sizeof(j->key_id));
	msg_get_str(m, TLV_IX_KM_APP_ID, j->app_id, sizeof(j->app_id));
	return j;
}

/* The mode first: a refusing, stalling or crashing platform does so before
 * it looks at the push.  0: go on with mode *md. */
static int
ap_mode_gate(srv_req_t *r, ap_mode_t *md)
{
	ap_mode_now(md);
	switch (md->kind) {
	case AP_REFUSE:
		srv_reply_err(r, (int)md->arg, "refused by the platform (mode refuse)");
		return -1;
	case AP_STALL:
		ap_stall(r, md->arg);
		return -1;
	case AP_CRASH:
		log_warnx("exiting on a push (mode crash)");
		_exit(AP_CRASH_RC);
	default:
		return 0;
	}
}

static void
ap_push(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ap_t *ap = d->priv;
	const uint8_t *der;
	size_t len;
	ap_mode_t md;
	ap_job_t *j;
	err_t err;

	if (ap_mode_gate(r, &md) == -1)
		return;
	if ((j = ap_job_new(ap, m, 0)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	j->crash_stored = md.kind == AP_CRASH_STORED;
	if (msg_has(m, TLV_IX_KM_KEY) ||
	    msg_get_bytes(m, TLV_IX_KM_WRAPPED_KEY, &der, &len) == -1) {
		srv_reply_err(r, STB_BAD_REQUEST,
		              "KEY_PUSH: the key goes enveloped (KM_WRAPPED_KEY), never plain");
		ap_job_free(j);
		return;
	}
	if (ap_open_key(ap, j, der, len, &err) == -1 || buf_append(&j->wrapped, der, len) == -1) {
		if (err.status == STB_OK)
			err_set(&err, STB_TOO_LARGE, "envelope too large");
		srv_reply_errt(r, &err);
		ap_job_free(j);
		return;
	}
	if (daemon_write_deferred(d, r, ap_push_write, ap_job_done, j, &j->r) == -1)
		ap_job_free(j);
}

/* ---- batches ---- */

static void
ap_batch_free(ap_batch_t *b)
{
	buf_free(&b->wrapped);
	free(b);
}

/* Drops a reference (a job, or the handler's while it queues them); the
 * last one answers. */
static void
ap_batch_unref(ap_batch_t *b)
{
	if (--b->left > 0)
		return;
	if (b->err.status != STB_OK) {
		srv_reply_errt(b->r, &b->err);
	} else {
		buf_t *o;

		if (b->crash_stored) {
			log_warnx("batch %" PRIu64 "..%" PRIu64 " stored; exiting before the ack"
			          " (mode crash-stored)",
			          b->first_id, b->last_id);
			_exit(AP_CRASH_RC);
		}
		log_info("batch of %" PRIu32 " keys, pushes %" PRIu64 "..%" PRIu64, b->n,
		         b->first_id, b->last_id);
		o = srv_reply_begin(b->r);
		tlv_put_u32(o, STB_TLV_KM_PUSH_COUNT, b->n);
		tlv_put_u64(o, STB_TLV_KM_PUSH_ID, b->last_id);
		srv_reply_end(b->r);
	}
	ap_batch_free(b);
}

static void
ap_batch_job_done(ap_job_t *j, const err_t *err)
{
	ap_batch_t *b = j->batch;

	if (err->status != STB_OK && b->err.status == STB_OK)
		b->err = *err;
	ap_job_free(j);
	ap_batch_unref(b);
}

/* One KM_PUSH_ENTRY: a KM_KEY_PUSH body with KM_KEY, for app. */
static ap_job_t *
ap_batch_entry(ap_t *ap, const uint8_t *v, uint32_t vl, const char *app, err_t *err)
{
	frame_hdr_t h = {.flags = 0, .type = STB_MSG_KM_KEY_PUSH, .len = vl};
	const uint8_t *key;
	size_t keylen;
	ap_job_t *j;
	msg_t em;

	if (msg_parse(&em, &h, v, err) == -1)
		return NULL;
	if (msg_has(&em, TLV_IX_KM_WRAPPED_KEY) ||
	    msg_get_bytes(&em, TLV_IX_KM_KEY, &key, &keylen) == -1) {
		err_set(err, STB_BAD_REQUEST, "a batch entry carries KM_KEY and no KM_WRAPPED_KEY");
		return NULL;
	}
	if ((j = ap_job_new(ap, &em, 0)) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	if (strcmp(j->app_id, app) != 0) {
		err_set(err, STB_BAD_REQUEST, "push %" PRIu64 " is for app %s, the batch for %s",
		        j->push_id, j->app_id, app);
		ap_job_free(j);
		return NULL;
	}
	if (ap_seal_key(ap, j, key, keylen, err) == -1) {
		ap_job_free(j);
		return NULL;
	}
	return j;
}

/* The batch's keys as jobs (*n of them, at most cap), from its plaintext. */
static int
ap_batch_jobs(ap_t *ap, ap_batch_t *b, const buf_t *plain, const char *app, ap_job_t **jobs,
              uint32_t cap, uint32_t *n, err_t *err)
{
	tlv_cursor_t cur;
	uint16_t type;
	const uint8_t *v;
	uint32_t vl;
	int rc;

	*n = 0;
	tlv_cursor_init(&cur, plain->data, plain->len);
	while ((rc = tlv_next(&cur, &type, &v, &vl)) == TLV_NEXT) {
		if (type != STB_TLV_KM_PUSH_ENTRY || *n >= cap)
			return err_set(
			    err, STB_BAD_REQUEST,
			    "a batch holds KM_PUSH_ENTRY TLVs, as many as KM_PUSH_COUNT");
		if ((jobs[*n] = ap_batch_entry(ap, v, vl, app, err)) == NULL)
			return -1;
		jobs[*n]->batch = b;
		jobs[*n]->first = *n == 0;
		jobs[*n]->now = b->now;
		(*n)++;
	}
	if (rc != TLV_END || *n != cap)
		return err_set(err, STB_BAD_REQUEST,
		               "batch: %" PRIu32 " of %" PRIu32 " entries read", *n, cap);
	b->first_id = jobs[0]->push_id;
	b->last_id = jobs[*n - 1]->push_id;
	return 0;
}

static void
ap_push_batch(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ap_t *ap = d->priv;
	char app[AP_ID_CAP];
	ap_job_t *jobs[AP_BATCH_MAX];
	const uint8_t *der;
	uint32_t count = 0, n = 0;
	size_t len;
	ap_mode_t md;
	ap_batch_t *b;
	buf_t plain;
	err_t err;
	int rc;

	if (ap_mode_gate(r, &md) == -1)
		return;
	msg_get_str(m, TLV_IX_KM_APP_ID, app, sizeof app);
	msg_get_u32(m, TLV_IX_KM_PUSH_COUNT, &count);
	msg_get_bytes(m, TLV_IX_KM_WRAPPED_BATCH, &der, &len);
	if (count == 0 || count > AP_BATCH_MAX) {
		srv_reply_err(r, STB_BAD_REQUEST, "a batch holds 1 to %d keys", AP_BATCH_MAX);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	b->crash_stored = md.kind == AP_CRASH_STORED;
	b->now = (int64_t)time(NULL);
	b->n = count;
	buf_init(&b->wrapped, CMSMSG_DER_MAX);
	buf_init(&plain, CMSMSG_CONTENT_MAX);
	rc = ap_open(ap, der, len, &plain, "the batch", &err);
	if (rc == 0 && buf_append(&b->wrapped, der, len) == -1)
		rc = err_set(&err, STB_TOO_LARGE, "envelope too large");
	if (rc == 0)
		rc = ap_batch_jobs(ap, b, &plain, app, jobs, count, &n, &err);
	buf_wipe(&plain);
	if (rc == 0 && (b->r = srv_req_defer(r)) == NULL)
		rc = err_set(&err, STB_INTERNAL, "out of memory");
	if (rc == -1) {
		for (uint32_t i = 0; i < n; i++)
			ap_job_free(jobs[i]);
		srv_reply_errt(r, &err);
		ap_batch_free(b);
		return;
	}
	/* every key a job of its own, queued at once: one commit for them */
	b->left = n + 1;
	for (uint32_t i = 0; i < n; i++) {
		if (store_write(d->store, srv_req_mbox(b->r), ap_push_write, ap_job_done, jobs[i],
		                &err) == -1)
			ap_job_done(jobs[i], &err);
	}
	ap_batch_unref(b);
}

static void
ap_revoke(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	ap_mode_t md;
	ap_job_t *j;

	if (ap_mode_gate(r, &md) == -1)
		return;
	if ((j = ap_job_new(d->priv, m, 1)) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	j->crash_stored = md.kind == AP_CRASH_STORED;
	if (daemon_write_deferred(d, r, ap_revoke_write, ap_job_done, j, &j->r) == -1)
		ap_job_free(j);
}

/* ---- lifecycle ---- */

static int
ap_check(err_t *err)
{
	ap_mode_t m;

	if (ap_mode_parse(ap_conf.mode, &m) == -1)
		return err_set(err, STB_BAD_REQUEST,
		               "mode: '%s' is not accept, refuse STATUS, stall MS, crash or "
		               "crash-stored",
		               ap_conf.mode);
	return 0;
}

static int
ap_load_pem(ap_t *ap, const char *cert, const char *key, err_t *err)
{
	FILE *f;

	if ((f = fopen(cert, "r")) == NULL)
		return err_set(err, STB_BAD_REQUEST, "enc.cert: cannot open %s: %s", cert,
		               strerror(errno));
	ap->cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (ap->cert == NULL)
		return err_set(err, STB_BAD_REQUEST, "enc.cert: %s holds no PEM certificate", cert);
	if ((f = fopen(key, "r")) == NULL)
		return err_set(err, STB_BAD_REQUEST, "enc.key: cannot open %s: %s", key,
		               strerror(errno));
	ap->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (ap->key == NULL)
		return err_set(err, STB_BAD_REQUEST, "enc.key: %s holds no PEM private key", key);
	if (X509_check_private_key(ap->cert, ap->key) != 1)
		return err_set(err, STB_BAD_REQUEST, "enc.key: %s does not match enc.cert %s", key,
		               cert);
	return 0;
}

static int
ap_init(daemon_t *d, err_t *err)
{
	ap_t *ap = calloc(1, sizeof(*ap));

	if (ap == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	ap->d = d;
	d->priv = ap;
	if (ap_load_pem(ap, *ap_conf.enc_cert ? ap_conf.enc_cert : d->conf.tls_cert,
	                *ap_conf.enc_key ? ap_conf.enc_key : d->conf.tls_key, err) == -1)
		return -1;
	srv_handle(d->srv, MSG_IX_KM_KEY_PUSH, ap_push);
	srv_handle(d->srv, MSG_IX_KM_KEY_PUSH_BATCH, ap_push_batch);
	srv_handle(d->srv, MSG_IX_KM_KEY_REVOKE, ap_revoke);
	return 0;
}

static void
ap_fini(daemon_t *d)
{
	ap_t *ap = d->priv;

	if (ap == NULL)
		return;
	X509_free(ap->cert);
	EVP_PKEY_free(ap->key);
	free(ap);
	d->priv = NULL;
}

static const daemon_def_t app_platform_def = {
    .name = "app-platform",
    .role = STB_R_APP_PLATFORM,
    .listen = "127.0.0.1:7190",
    .http_listen = "",
    .client_auth = "require",
    .opts = ap_opts,
    .nopts = sizeof(ap_opts) / sizeof(ap_opts[0]),
    .conf = &ap_conf,
    .migrations = ap_migrations,
    .nmigrations = sizeof(ap_migrations) / sizeof(ap_migrations[0]),
    .check = ap_check,
    .init = ap_init,
    .fini = ap_fini,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &app_platform_def);
}
