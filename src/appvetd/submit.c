/* submit: chunked upload sessions (upload.h) and APP_SUBMIT, which turns a
 * complete upload into an app with its ID1 and queues its vetting. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "av.h"
#include "log.h"
#include "tlv.h"

/* What upload.h does not keep for us: each open session's digest and size,
 * which the ID1 of its app needs. */
#define SESS_MAX 1024
static struct sess {
	uint8_t id[UPLOAD_ID_LEN];
	uint8_t sha256[32];
	uint64_t size;
	int used;
} sessions[SESS_MAX];
static pthread_mutex_t sess_lock = PTHREAD_MUTEX_INITIALIZER;

static void
sess_put(const uint8_t id[UPLOAD_ID_LEN], const uint8_t sha[32], uint64_t size)
{
	size_t i, victim = 0;

	pthread_mutex_lock(&sess_lock);
	for (i = 0; i < SESS_MAX; i++)
		if (!sessions[i].used)
			break;
	/* more sessions than we remember are impossible (upload's cap is at
	 * most SESS_MAX, checked at start); keep going with slot 0 anyway */
	victim = i < SESS_MAX ? i : 0;
	memcpy(sessions[victim].id, id, UPLOAD_ID_LEN);
	memcpy(sessions[victim].sha256, sha, 32);
	sessions[victim].size = size;
	sessions[victim].used = 1;
	pthread_mutex_unlock(&sess_lock);
}

/* Takes (and forgets, when take) the digest of session id. */
static int
sess_get(const uint8_t id[UPLOAD_ID_LEN], uint8_t sha[32], uint64_t *size, int take)
{
	int found = 0;

	pthread_mutex_lock(&sess_lock);
	for (size_t i = 0; i < SESS_MAX; i++)
		if (sessions[i].used && CRYPTO_memcmp(sessions[i].id, id, UPLOAD_ID_LEN) == 0) {
			memcpy(sha, sessions[i].sha256, 32);
			*size = sessions[i].size;
			if (take)
				sessions[i].used = 0;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&sess_lock);
	return found;
}

void
av_owner(srv_req_t *r, char *out, size_t cap)
{
	/* the certificate, not the connection: a resume comes on a new one */
	snprintf(out, cap, "%s", srv_conn_subject(r->conn));
}

static uint32_t
chunk_max(const av_t *av)
{
	long long mf = av->d->conf.max_frame - 1024;

	return mf < AV_CHUNK_MAX ? (uint32_t)(mf > 1024 ? mf : 1024) : AV_CHUNK_MAX;
}

static void
av_upload_begin(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char owner[UPLOAD_OWNER_MAX];
	uint8_t id[UPLOAD_ID_LEN];
	const uint8_t *sha;
	size_t shalen;
	uint64_t size = 0;
	err_t err;
	buf_t *b;

	msg_get_u64(m, TLV_IX_APP_SIZE, &size);
	msg_get_bytes(m, TLV_IX_APP_SHA256, &sha, &shalen);
	if (size == 0) {
		srv_reply_err(r, STB_BAD_REQUEST, "an empty package");
		return;
	}
	if (size > (uint64_t)av->conf->max_size) {
		srv_reply_err(r, STB_TOO_LARGE,
		              "package of %llu bytes is over submit.max_size %lld",
		              (unsigned long long)size, av->conf->max_size);
		return;
	}
	av_owner(r, owner, sizeof(owner));
	if (upload_begin(av->up, owner, size, sha, (int64_t)time(NULL), id, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	sess_put(id, sha, size);
	b = srv_reply_begin(r);
	tlv_put(b, STB_TLV_APP_UPLOAD_ID, id, sizeof(id));
	tlv_put_u32(b, STB_TLV_APP_CHUNK_MAX, chunk_max(av));
	srv_reply_end(r);
}

static void
av_upload_chunk(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char owner[UPLOAD_OWNER_MAX];
	const uint8_t *id, *data;
	size_t idlen, len;
	uint64_t off = 0, next = 0;
	err_t err;
	buf_t *b;

	msg_get_bytes(m, TLV_IX_APP_UPLOAD_ID, &id, &idlen);
	msg_get_u64(m, TLV_IX_APP_OFFSET, &off);
	msg_get_bytes(m, TLV_IX_APP_CHUNK, &data, &len);
	if (len > chunk_max(av)) {
		srv_reply_err(r, STB_TOO_LARGE, "chunk of %zu bytes is over APP_CHUNK_MAX %u", len,
		              chunk_max(av));
		return;
	}
	av_owner(r, owner, sizeof(owner));
	if (upload_chunk(av->up, id, owner, off, data, len, (int64_t)time(NULL), &next, &err) ==
	    -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_u64(b, STB_TLV_APP_OFFSET, next);
	srv_reply_end(r);
}

static void
av_upload_offset(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char owner[UPLOAD_OWNER_MAX];
	const uint8_t *id;
	size_t idlen;
	uint64_t off = 0;
	err_t err;
	buf_t *b;

	msg_get_bytes(m, TLV_IX_APP_UPLOAD_ID, &id, &idlen);
	av_owner(r, owner, sizeof(owner));
	if (upload_offset(av->up, id, owner, (int64_t)time(NULL), &off, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_u64(b, STB_TLV_APP_OFFSET, off);
	srv_reply_end(r);
}

/* ---- APP_SUBMIT ---- */

struct sub {
	av_t *av;
	srv_req_t *r;
	mbox_t *mb;
	struct event_base *base;
	char spool[UPLOAD_PATH_MAX];
	char final[UPLOAD_PATH_MAX];
	char id1[65];
	char name[AV_NAME_CAP];
	char version[AV_VERSION_CAP];
	char actor[200];
	uint8_t sha256[32];
	uint64_t size;
};

static int
sub_write(store_conn_t *c, void *arg, err_t *err)
{
	struct sub *s = arg;
	store_stmt_t *st;
	int rc;

	st = store_stmt(c,
	                "INSERT INTO apps(id1, name, version, sha256, size, submitted, submitter, "
	                "state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'submitted')",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, s->id1);
	store_bind_str(st, 2, s->name);
	store_bind_str(st, 3, s->version);
	store_bind_blob(st, 4, s->sha256, 32);
	store_bind_int64(st, 5, (int64_t)s->size);
	store_bind_int64(st, 6, (int64_t)time(NULL));
	store_bind_str(st, 7, s->actor);
	rc = store_step(st, err);
	if (rc == STORE_UNIQUE)
		return err_set(err, STB_CONFLICT,
		               "%s %s with this package was submitted already as %s", s->name,
		               s->version, s->id1);
	if (rc != STORE_DONE)
		return -1;
	if (daemon_auditf(s->av->d, c, err, "app_submit", s->actor,
	                  "id1=%s name=%s version=%s "
	                  "size=%llu",
	                  s->id1, s->name, s->version, (unsigned long long)s->size) == -1)
		return -1;
	/* the package moves into place with its row (fsynced by upload) */
	if (rename(s->spool, s->final) == -1)
		return err_set(err, STB_INTERNAL, "cannot move the package to %s: %s", s->final,
		               strerror(errno));
	s->spool[0] = '\0';
	return 0;
}

static void
sub_done(void *arg, const err_t *err)
{
	struct sub *s = arg;
	err_t e2;
	buf_t *b;

	if (s->spool[0] != '\0')
		unlink(s->spool);
	if (err->status != STB_OK)
		srv_reply_errt(s->r, err);
	else {
		b = srv_reply_begin(s->r);
		tlv_put_str(b, STB_TLV_APP_ID1, s->id1);
		tlv_put_str(b, STB_TLV_APP_QR_PAYLOAD, s->id1);
		srv_reply_end(s->r);
		log_info("submitted %s %s as %s (%llu bytes)", s->name, s->version, s->id1,
		         (unsigned long long)s->size);
		if (av_vet_queue(s->av, s->id1, s->base, s->mb, NULL, NULL, &e2) == -1)
			log_warnx("vetting %s not queued: %s (APP_REVET queues it again)", s->id1,
			          e2.msg);
	}
	free(s);
}

static void
av_submit(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char owner[UPLOAD_OWNER_MAX];
	const uint8_t *id;
	size_t idlen;
	struct sub *s;
	int fd = -1;
	err_t err;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	s->av = av;
	s->mb = srv_req_mbox(r);
	s->base = srv_conn_base(r->conn);
	msg_get_bytes(m, TLV_IX_APP_UPLOAD_ID, &id, &idlen);
	msg_get_str(m, TLV_IX_APP_NAME, s->name, sizeof(s->name));
	msg_get_str(m, TLV_IX_APP_VERSION, s->version, sizeof(s->version));
	snprintf(s->actor, sizeof(s->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	av_owner(r, owner, sizeof(owner));
	if (!sess_get(id, s->sha256, &s->size, 0)) {
		free(s);
		srv_reply_err(r, STB_NOT_FOUND, "no such upload session");
		return;
	}
	if (upload_commit(av->up, id, owner, (int64_t)time(NULL), s->spool, sizeof(s->spool), &fd,
	                  &err) == -1) {
		if (err.status != STB_CONFLICT)
			sess_get(id, s->sha256, &s->size, 1);
		free(s);
		srv_reply_errt(r, &err);
		return;
	}
	close(fd);
	sess_get(id, s->sha256, &s->size, 1);
	if (av_id1(av, s->sha256, s->name, s->version, s->id1, &err) == -1) {
		unlink(s->spool);
		free(s);
		srv_reply_errt(r, &err);
		return;
	}
	if (av_pkg_path(av, s->id1, s->final, sizeof(s->final), &err) == -1) {
		unlink(s->spool);
		free(s);
		srv_reply_errt(r, &err);
		return;
	}
	if (daemon_write_deferred(d, r, sub_write, sub_done, s, &s->r) == -1) {
		unlink(s->spool);
		free(s);
	}
}

void
av_submit_register(daemon_t *d)
{
	srv_handle(d->srv, MSG_IX_APP_UPLOAD_BEGIN, av_upload_begin);
	srv_handle(d->srv, MSG_IX_APP_UPLOAD_CHUNK, av_upload_chunk);
	srv_handle(d->srv, MSG_IX_APP_UPLOAD_OFFSET, av_upload_offset);
	if (((av_t *)d->priv)->operator_role)
		srv_handle(d->srv, MSG_IX_APP_SUBMIT, av_submit);
}
