/* admin: the messages every daemon answers — PING and the 0x0Fxx admin set. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "daemon.h"
#include "log.h"
#include "tlv.h"
#include "workpool.h"

#define EXPORT_DEFAULT 100
#define EXPORT_MAX     1000
#define EXPORT_BYTES   60000 /* stays under a client's default max_frame */

static void
admin_ping(srv_req_t *r, const msg_t *m, void *ctx)
{
	const uint8_t *p;
	size_t len;
	buf_t *b = srv_reply_begin(r);

	(void)ctx;
	if (msg_get_bytes(m, TLV_IX_PAYLOAD, &p, &len) == 0)
		tlv_put(b, STB_TLV_PAYLOAD, p, len);
	srv_reply_end(r);
}

static void
admin_stats(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	srv_stats_t *st = srv_stats_get(d->srv);
	store_stats_t ss;
	buf_t *b;

	(void)m;
	if (st == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	store_get_stats(d->store, &ss);
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_DAEMON_NAME, d->def->name);
	tlv_put_str(b, STB_TLV_VERSION_TEXT, STBCRED_VERSION);
	tlv_put_u64(b, STB_TLV_UPTIME_S, (uint64_t)(time(NULL) - d->started));
	tlv_put_u16(b, STB_TLV_WORKERS, (uint16_t)srv_nworkers(d->srv));
	tlv_put_u32(b, STB_TLV_CONNECTIONS, st->connections);
	tlv_put_u64(b, STB_TLV_REQUESTS_TOTAL, st->requests);
	tlv_put_u64(b, STB_TLV_ERRORS_TOTAL, st->errors);
	tlv_put_u64(b, STB_TLV_STORE_COMMITS, ss.commits);
	tlv_put_u64(b, STB_TLV_STORE_WRITES, ss.writes);
	tlv_put_u32(b, STB_TLV_STORE_QUEUE, ss.queued);
	for (int i = 0; i < MSG_IX_COUNT; i++)
		for (int k = 0; k < STATUS_COUNT; k++) {
			uint8_t rec[12];
			if (st->count[i][k] == 0)
				continue;
			store_be16(rec, proto_msgs[i].num);
			store_be16(rec + 2, (uint16_t)k);
			store_be64(rec + 4, st->count[i][k]);
			tlv_put(b, STB_TLV_MSG_COUNT, rec, sizeof(rec));
		}
	free(st);
	srv_reply_end(r);
}

struct export_ctx {
	buf_t *b;
	size_t budget;
};

static int
export_one(const audit_rec_t *rec, void *arg)
{
	struct export_ctx *x = arg;
	char json[AUDIT_JSON_MAX];
	size_t len;

	if (audit_rec_json(rec, json, sizeof(json)) == -1)
		return -1; /* cannot happen: AUDIT_JSON_MAX covers full escaping */
	len = strlen(json);
	if (x->b->len + len + STB_TLV_HDR_LEN > x->budget)
		return -1; /* the client asks again from the next seq */
	return tlv_put(x->b, STB_TLV_AUDIT_RECORD, json, len);
}

static void
admin_audit_export(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	uint64_t since = 1;
	uint32_t limit = EXPORT_DEFAULT;
	struct export_ctx x;
	store_conn_t *c;
	err_t err;

	msg_get_u64(m, TLV_IX_AUDIT_SEQ, &since);
	msg_get_u32(m, TLV_IX_AUDIT_LIMIT, &limit);
	if (limit == 0 || limit > EXPORT_MAX)
		limit = EXPORT_MAX;
	if ((c = store_reader(d->store, &err)) == NULL) {
		srv_reply_errt(r, &err);
		return;
	}
	x.b = srv_reply_begin(r);
	x.budget = EXPORT_BYTES;
	if (audit_export(c, since, limit, export_one, &x, &err) == -1) {
		srv_reply_errt(r, &err);
		return;
	}
	srv_reply_end(r);
}

/* ADMIN_AUDIT_VERIFY walks the whole chain (one HMAC a row: 0.4 s at
 * 30,000 rows), so it runs on an admin job thread and answers from there,
 * never on a worker loop; at most audit.verify_jobs walk at once. */
struct verify {
	daemon_t *d;
	srv_req_t *r;
	uint64_t count, bad;
	uint8_t head[AUDIT_MAC_LEN];
	err_t err;
	int rc;
};

static void
verify_work(void *arg)
{
	struct verify *v = arg;
	store_conn_t *c = store_reader(v->d->store, &v->err);

	v->rc =
	    c == NULL ? -1 : audit_verify(c, v->d->audit_key, &v->count, &v->bad, v->head, &v->err);
}

static void
verify_done(void *arg)
{
	struct verify *v = arg;
	buf_t *b;

	if (v->rc == -1)
		srv_reply_errt(v->r, &v->err);
	else {
		b = srv_reply_begin(v->r);
		tlv_put_u64(b, STB_TLV_AUDIT_COUNT, v->count);
		if (v->bad != 0)
			tlv_put_u64(b, STB_TLV_AUDIT_BAD_SEQ, v->bad);
		else if (v->count > 0)
			tlv_put(b, STB_TLV_AUDIT_HEAD, v->head, sizeof(v->head));
		srv_reply_end(v->r);
		if (v->bad != 0)
			log_warnx("audit chain broken at record %llu", (unsigned long long)v->bad);
	}
	free(v);
}

static void
admin_audit_verify(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct verify *v = calloc(1, sizeof(*v));
	err_t err;

	(void)m;
	if (v == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	v->d = d;
	if ((v->r = srv_req_defer(r)) == NULL) {
		free(v);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (workpool_submit(d->admin_jobs, verify_work, srv_req_mbox(v->r), verify_done, v, &err) ==
	    -1) {
		srv_reply_errt(v->r, &err);
		free(v);
	}
}

struct note {
	daemon_t *d;
	srv_req_t *r;
	uint64_t seq;
	char actor[160];
	char text[1025];
};

static int
note_write(store_conn_t *c, void *arg, err_t *err)
{
	struct note *n = arg;

	return daemon_audit(n->d, c, "operator_note", n->actor, n->text, &n->seq, err);
}

static void
note_done(void *arg, const err_t *err)
{
	struct note *n = arg;

	if (err->status != STB_OK)
		srv_reply_errt(n->r, err);
	else {
		buf_t *b = srv_reply_begin(n->r);
		tlv_put_u64(b, STB_TLV_AUDIT_SEQ, n->seq);
		srv_reply_end(n->r);
	}
	free(n);
}

static void
admin_audit_note(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	struct note *n = calloc(1, sizeof(*n));
	err_t err;

	if (n == NULL || msg_get_str(m, TLV_IX_NOTE_TEXT, n->text, sizeof(n->text)) == -1) {
		free(n);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	n->d = d;
	snprintf(n->actor, sizeof(n->actor), "%s@%s", srv_conn_subject(r->conn),
	         srv_conn_peer(r->conn));
	if ((n->r = srv_req_defer(r)) == NULL) {
		free(n);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	/* answered in note_done, once the note is durable */
	if (store_write(d->store, srv_req_mbox(r), note_write, note_done, n, &err) == -1) {
		srv_reply_errt(n->r, &err);
		free(n);
	}
}

static void
admin_config_dump(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	char *json = cfg_dump_json(d->tabs, 2);
	buf_t *b;

	(void)m;
	if (json == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	b = srv_reply_begin(r);
	tlv_put_str(b, STB_TLV_CONFIG_JSON, json);
	free(json);
	srv_reply_end(r);
}

int
admin_register(daemon_t *d, err_t *err)
{
	int n = (int)d->conf.audit_verify_jobs;

	if ((d->admin_jobs = workpool_new("admin", n, (size_t)n, err)) == NULL)
		return -1;
	srv_handle(d->srv, MSG_IX_PING, admin_ping);
	srv_handle(d->srv, MSG_IX_ADMIN_STATS, admin_stats);
	srv_handle(d->srv, MSG_IX_ADMIN_AUDIT_EXPORT, admin_audit_export);
	srv_handle(d->srv, MSG_IX_ADMIN_AUDIT_VERIFY, admin_audit_verify);
	srv_handle(d->srv, MSG_IX_ADMIN_AUDIT_NOTE, admin_audit_note);
	srv_handle(d->srv, MSG_IX_ADMIN_CONFIG_DUMP, admin_config_dump);
	return 0;
}

void
admin_stop(daemon_t *d)
{
	workpool_free(d->admin_jobs);
	d->admin_jobs = NULL;
}
