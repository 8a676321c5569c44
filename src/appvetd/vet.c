/* vet: the vetter's analysis (apk.h) on the worker pool, the signed
 * verdict, and its record on the operator side. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "av.h"
#include "log.h"
#include "metrics.h"
#include "msgenc.h"
#include "peerpool.h"
#include "tlv.h"

void
av_verdict_clear(av_verdict_t *v)
{
	free(v->findings_json);
	free(v->report_json);
	memset(v, 0, sizeof(*v));
}

/* The bytes the vetter signs (PROTOCOL.md 7.2): label, id1, id2, sha256,
 * flag, vet_time, then each finding as its JSON text. */
static int
verdict_tbs(const char *id1, const av_verdict_t *v, buf_t *tbs, err_t *err)
{
	cJSON *arr = cJSON_Parse(v->findings_json), *f;
	uint8_t flag = (uint8_t)v->flag;
	char *txt;
	int rc = 0;

	if (arr == NULL || !cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return err_set(err, STB_BAD_REQUEST, "findings are not a JSON array");
	}
	if (sig_tbs_label(tbs, "STB-APPVERDICT-V1", err) == -1 ||
	    sig_tbs_str(tbs, id1, err) == -1 || sig_tbs_str(tbs, v->id2, err) == -1 ||
	    sig_tbs_bytes(tbs, v->sha256, 32, err) == -1 ||
	    sig_tbs_bytes(tbs, &flag, 1, err) == -1 || sig_tbs_u64(tbs, v->vet_time, err) == -1)
		rc = -1;
	cJSON_ArrayForEach(f, arr)
	{
		if (rc == -1)
			break;
		if ((txt = cJSON_PrintUnformatted(f)) == NULL)
			rc = err_set(err, STB_INTERNAL, "out of memory");
		else {
			rc = sig_tbs_str(tbs, txt, err);
			free(txt);
		}
	}
	cJSON_Delete(arr);
	return rc;
}

static int
verdict_sign(av_t *av, const char *id1, av_verdict_t *v, err_t *err)
{
	buf_t tbs;
	int rc;

	buf_init(&tbs, 1u << 20);
	rc = verdict_tbs(id1, v, &tbs, err);
	if (rc == 0)
		rc = sig_sign(av->vet_key, tbs.data, tbs.len, v->sig, &v->siglen, err);
	buf_free(&tbs);
	return rc;
}

/* The vetter's signature over v, by cert's key. */
static int
verdict_verify(const char *id1, const av_verdict_t *v, X509 *cert, err_t *err)
{
	buf_t tbs;
	int rc;

	buf_init(&tbs, 1u << 20);
	rc = verdict_tbs(id1, v, &tbs, err);
	if (rc == 0)
		rc = sig_verify_cert(cert, tbs.data, tbs.len, v->sig, v->siglen, err);
	buf_free(&tbs);
	return rc;
}

/* The warning a TV shows with a DENY: the UNSAFE findings' reasons. */
static void
verdict_warning(const apk_report_t *rep, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < rep->n_findings && n + 1 < cap; i++) {
		if (rep->findings[i].severity != APK_SEV_UNSAFE)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "; " : "",
		                      rep->findings[i].reason);
		if (n >= cap)
			n = cap - 1;
	}
	if (out[0] == '\0' && rep->verdict == APK_UNSAFE)
		snprintf(out, cap, "the vetter found this app unsafe");
}

int
av_vet_file(av_t *av, const char *path, const char *id1, av_verdict_t *v, err_t *err)
{
	apk_report_t rep;
	cJSON *arr, *o;

	memset(v, 0, sizeof(*v));
	if (apk_analyse(av->apk, path, &rep, err) == -1) {
		apk_report_free(&rep);
		return -1;
	}
	if ((arr = cJSON_CreateArray()) == NULL) {
		apk_report_free(&rep);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < rep.n_findings; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "code", rep.findings[i].code);
		cJSON_AddStringToObject(o, "severity", apk_severity_name(rep.findings[i].severity));
		cJSON_AddStringToObject(o, "reason", rep.findings[i].reason);
		cJSON_AddItemToArray(arr, o);
	}
	v->findings_json = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	v->report_json = apk_report_json(&rep, err);
	v->flag = rep.verdict == APK_SAFE ? AV_FLAG_SAFE : AV_FLAG_UNSAFE;
	memcpy(v->sha256, rep.sha256, 32);
	v->vet_time = (uint64_t)time(NULL);
	verdict_warning(&rep, v->warning, sizeof(v->warning));
	apk_report_free(&rep);
	if (v->findings_json == NULL || v->report_json == NULL) {
		av_verdict_clear(v);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if (av_random_id(v->id2, err) == -1 || verdict_sign(av, id1, v, err) == -1) {
		av_verdict_clear(v);
		return -1;
	}
	return 0;
}

/* ---- the operator's vetting job: a stored app, vetted here ---- */

struct job {
	av_t *av;
	char id1[AV_ID_CAP];
	mbox_t *mb;
	av_vet_done_fn done;
	void *arg;
	err_t err;
	av_verdict_t v;
	int published, revoked;
};

static int
job_write(store_conn_t *c, void *arg, err_t *err)
{
	struct job *j = arg;
	store_stmt_t *st;
	int rc;

	st = store_stmt(c, "SELECT id3 IS NOT NULL, pub_flag FROM apps WHERE id1=?1", err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->id1);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc == STORE_DONE ? err_set(err, STB_NOT_FOUND, "app %s is gone", j->id1)
		                        : -1;
	}
	j->published = (int)store_col_int64(st, 0);
	j->revoked =
	    j->published && store_col_int64(st, 1) == AV_FLAG_SAFE && j->v.flag == AV_FLAG_UNSAFE;
	store_reset(st);
	st = store_stmt(c,
	                "UPDATE apps SET state='vetted', id2=?2, flag=?3, vet_time=?4, "
	                "verdict_sig=?5, findings=?6, report=?7, warning=?8, "
	                "revoked=CASE WHEN ?9 <> 0 THEN 1 ELSE revoked END WHERE id1=?1",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->id1);
	store_bind_str(st, 2, j->v.id2);
	store_bind_int64(st, 3, j->v.flag);
	store_bind_int64(st, 4, (int64_t)j->v.vet_time);
	store_bind_blob(st, 5, j->v.sig, j->v.siglen);
	store_bind_str(st, 6, j->v.findings_json);
	store_bind_str(st, 7, j->v.report_json);
	store_bind_str(st, 8, j->v.warning);
	store_bind_int64(st, 9, j->revoked);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	st = store_stmt(c,
	                "INSERT INTO verdicts(id2, id1, flag, vet_time, verdict_sig, findings) "
	                "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	                err);
	if (st == NULL)
		return -1;
	store_bind_str(st, 1, j->v.id2);
	store_bind_str(st, 2, j->id1);
	store_bind_int64(st, 3, j->v.flag);
	store_bind_int64(st, 4, (int64_t)j->v.vet_time);
	store_bind_blob(st, 5, j->v.sig, j->v.siglen);
	store_bind_str(st, 6, j->v.findings_json);
	if (store_step(st, err) != STORE_DONE)
		return -1;
	if (j->published && av_index_bump(c, err) == -1)
		return -1;
	if (daemon_auditf(j->av->d, c, err, "app_verdict", "vetter", "id1=%s id2=%s flag=%s%s",
	                  j->id1, j->v.id2, j->v.flag == AV_FLAG_SAFE ? "SAFE" : "UNSAFE",
	                  j->revoked ? " revoked=1" : "") == -1)
		return -1;
	if (j->revoked)
		return daemon_auditf(j->av->d, c, err, "app_revoke", "vetter", "id1=%s", j->id1);
	return 0;
}

static void
job_work(void *arg)
{
	struct job *j = arg;
	av_t *av = j->av;
	char path[UPLOAD_PATH_MAX];
	uint64_t t0 = now_ns();

	err_clear(&j->err);
	if (av_pkg_path(av, j->id1, path, sizeof(path), &j->err) == -1 ||
	    av_vet_file(av, path, j->id1, &j->v, &j->err) == -1)
		return;
	/* what a remote operator would check of a vetter's answer */
	if (verdict_verify(j->id1, &j->v, av->vet_cert, &j->err) == -1 ||
	    store_write_sync(av->d->store, job_write, j, &j->err) == -1)
		return;
	av_metrics_verdict(j->v.flag, j->revoked, (now_ns() - t0) / 1000);
	log_info("verdict for %s: %s (%s)%s", j->id1, j->v.flag == AV_FLAG_SAFE ? "SAFE" : "UNSAFE",
	         j->v.id2, j->revoked ? ", publication revoked" : "");
	if (j->published && av_index_reload(av, &j->err) == -1)
		log_warnx("check index not reloaded after the verdict for %s: %s", j->id1,
		          j->err.msg);
	err_clear(&j->err);
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	if (j->err.status != STB_OK)
		log_warnx("vetting %s failed: %s", j->id1, j->err.msg);
	if (j->done != NULL)
		j->done(j->arg, &j->err, &j->v);
	av_verdict_clear(&j->v);
	free(j);
}

static int remote_start(av_t *av, const char *id1, struct event_base *base, mbox_t *mb,
                        av_vet_done_fn done, void *arg, err_t *err);

int
av_vet_queue(av_t *av, const char *id1, struct event_base *base, mbox_t *mb, av_vet_done_fn done,
             void *arg, err_t *err)
{
	struct job *j;

	if (av->peer != NULL)
		return remote_start(av, id1, base, mb, done, arg, err);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");

	j->av = av;
	snprintf(j->id1, sizeof(j->id1), "%s", id1);
	j->mb = mb;
	j->done = done;
	j->arg = arg;
	if (workpool_submit(av->vet, job_work, mb, job_done, j, err) == -1) {
		free(j);
		return -1;
	}
	return 0;
}

/* ---- a vetter elsewhere: upload the package to it, then APP_VET ---- */

#define REMOTE_VET_TIMEOUT_MS 600000 /* analysing 200 MiB takes a while */

struct rjob {
	struct job j;
	struct event_base *base;
	int fd;
	uint64_t size, off, t0;
	uint8_t sha[32];
	char name[AV_NAME_CAP], version[AV_VERSION_CAP];
	uint8_t upid[UPLOAD_ID_LEN];
	uint32_t chunk;
	uint8_t *buf;
	buf_t req;
};

static void
rjob_free(struct rjob *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	buf_free(&r->req);
	av_verdict_clear(&r->j.v);
	free(r);
}

static void
rjob_finish(struct rjob *r, const err_t *err)
{
	if (err->status != STB_OK)
		log_warnx("vetting %s at the vetter failed: %s", r->j.id1, err->msg);
	if (r->j.done != NULL)
		r->j.done(r->j.arg, err, &r->j.v);
	rjob_free(r);
}

static int rjob_next(struct rjob *r, err_t *err);

static void
rjob_stored(void *arg, const err_t *err)
{
	struct rjob *r = arg;
	err_t e2;

	if (err->status == STB_OK) {
		av_metrics_verdict(r->j.v.flag, r->j.revoked, (now_ns() - r->t0) / 1000);
		log_info("verdict for %s from the vetter: %s (%s)%s", r->j.id1,
		         r->j.v.flag == AV_FLAG_SAFE ? "SAFE" : "UNSAFE", r->j.v.id2,
		         r->j.revoked ? ", publication revoked" : "");
		if (r->j.published && av_index_reload(r->j.av, &e2) == -1)
			log_warnx("check index not reloaded after the verdict for %s: %s", r->j.id1,
			          e2.msg);
	}
	rjob_finish(r, err);
}

/* The warning of a verdict from its findings' JSON: the unsafe reasons. */
static void
warning_of(const char *findings, char *out, size_t cap)
{
	cJSON *arr = cJSON_Parse(findings), *f;
	const cJSON *sev, *why;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(f, arr)
	{
		sev = cJSON_GetObjectItemCaseSensitive(f, "severity");
		why = cJSON_GetObjectItemCaseSensitive(f, "reason");
		if (!cJSON_IsString(sev) || strcmp(sev->valuestring, "unsafe") != 0 ||
		    !cJSON_IsString(why) || n + 1 >= cap)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "; " : "", why->valuestring);
		if (n >= cap)
			n = cap - 1;
	}
	cJSON_Delete(arr);
}

/* The vetter's answer: the pinned certificate, its signature, our digest. */
static int
rjob_verdict(struct rjob *r, const msg_t *m, err_t *err)
{
	av_verdict_t *v = &r->j.v;
	const uint8_t *p, *der;
	size_t len, derlen, pos = 0;
	uint8_t flag = 0;
	cJSON *arr = cJSON_CreateArray(), *o;

	msg_get_str(m, TLV_IX_APP_ID2, v->id2, sizeof(v->id2));
	msg_get_u8(m, TLV_IX_APP_FLAG, &flag);
	v->flag = flag;
	msg_get_bytes(m, TLV_IX_APP_SHA256, &p, &len);
	memcpy(v->sha256, p, 32);
	msg_get_u64(m, TLV_IX_APP_VET_TIME, &v->vet_time);
	msg_get_bytes(m, TLV_IX_APP_VERDICT_SIG, &p, &len);
	memcpy(v->sig, p, len);
	v->siglen = len;
	msg_get_bytes(m, TLV_IX_CERT_DER, &der, &derlen);
	while (arr != NULL && msg_next(m, TLV_IX_APP_FINDING, &pos, &p, &len) == 1)
		if ((o = cJSON_ParseWithLength((const char *)p, len)) != NULL)
			cJSON_AddItemToArray(arr, o);
	v->findings_json = arr != NULL ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	v->report_json = strdup("{\"vetter\":\"remote\"}");
	if (v->findings_json == NULL || v->report_json == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	warning_of(v->findings_json, v->warning, sizeof(v->warning));
	if (v->flag == AV_FLAG_UNSAFE && v->warning[0] == '\0')
		snprintf(v->warning, sizeof(v->warning), "the vetter found this app unsafe");
	if (v->flag != AV_FLAG_SAFE && v->flag != AV_FLAG_UNSAFE)
		return err_set(err, STB_BAD_REQUEST,
		               "the vetter's flag %u is neither SAFE nor UNSAFE", flag);
	if (derlen != r->j.av->vet_cert_der_len ||
	    CRYPTO_memcmp(der, r->j.av->vet_cert_der, derlen) != 0)
		return err_set(err, STB_UNAUTHENTICATED,
		               "the verdict is signed by another certificate than vet.cert");
	if (CRYPTO_memcmp(v->sha256, r->sha, 32) != 0)
		return err_set(err, STB_UNAUTHENTICATED, "the vetter analysed another package");
	return verdict_verify(r->j.id1, v, r->j.av->vet_cert, err);
}

static void
rjob_on_vet(void *arg, const msg_t *rsp, const err_t *err)
{
	struct rjob *r = arg;
	err_t e;

	if (err->status != STB_OK) {
		rjob_finish(r, err);
		return;
	}
	if (rjob_verdict(r, rsp, &e) == -1 ||
	    store_write(r->j.av->d->store, r->j.mb, job_write, rjob_stored, r, &e) == -1)
		rjob_finish(r, &e);
}

static void
rjob_on_chunk(void *arg, const msg_t *rsp, const err_t *err)
{
	struct rjob *r = arg;
	uint64_t next = 0;
	err_t e;

	if (err->status != STB_OK) {
		rjob_finish(r, err);
		return;
	}
	msg_get_u64(rsp, TLV_IX_APP_OFFSET, &next);
	if (next <= r->off || next > r->size) {
		err_set(&e, STB_BAD_REQUEST, "the vetter's upload offset %llu makes no sense",
		        (unsigned long long)next);
		rjob_finish(r, &e);
		return;
	}
	r->off = next;
	if (rjob_next(r, &e) == -1)
		rjob_finish(r, &e);
}

static void
rjob_on_begin(void *arg, const msg_t *rsp, const err_t *err)
{
	struct rjob *r = arg;
	const uint8_t *id;
	size_t len;
	err_t e;

	if (err->status != STB_OK) {
		rjob_finish(r, err);
		return;
	}
	msg_get_bytes(rsp, TLV_IX_APP_UPLOAD_ID, &id, &len);
	memcpy(r->upid, id, UPLOAD_ID_LEN);
	msg_get_u32(rsp, TLV_IX_APP_CHUNK_MAX, &r->chunk);
	if (r->chunk == 0 || r->chunk > AV_CHUNK_MAX)
		r->chunk = AV_CHUNK_MAX;
	if ((r->buf = malloc(r->chunk)) == NULL) {
		err_set(&e, STB_INTERNAL, "out of memory");
		rjob_finish(r, &e);
		return;
	}
	if (rjob_next(r, &e) == -1)
		rjob_finish(r, &e);
}

/* The next chunk, or APP_VET once the vetter has it all (on the loop: a
 * chunk is one short pread). */
static int
rjob_next(struct rjob *r, err_t *err)
{
	av_t *av = r->j.av;
	size_t n;
	ssize_t got;

	buf_reset(&r->req);
	if (r->off == r->size) {
		struct msgreq_APP_VET q = {.APP_UPLOAD_ID = MV_BYTES(r->upid, UPLOAD_ID_LEN),
		                           .APP_ID1 = MV_STR(r->j.id1),
		                           .APP_NAME = MV_STR(r->name),
		                           .APP_VERSION = MV_STR(r->version)};
		if (msgenc_APP_VET(&r->req, &q, err) == -1)
			return -1;
		return peerpool_call(av->peer, r->base, r->j.mb, STB_MSG_APP_VET, &r->req,
		                     REMOTE_VET_TIMEOUT_MS, rjob_on_vet, r, err);
	}
	n = r->size - r->off < r->chunk ? (size_t)(r->size - r->off) : r->chunk;
	got = pread(r->fd, r->buf, n, (off_t)r->off);
	if (got != (ssize_t)n)
		return err_set(err, STB_INTERNAL, "cannot read the package of %s", r->j.id1);
	{
		struct msgreq_APP_UPLOAD_CHUNK q = {.APP_UPLOAD_ID =
		                                        MV_BYTES(r->upid, UPLOAD_ID_LEN),
		                                    .APP_OFFSET = MV_U(r->off),
		                                    .APP_CHUNK = MV_BYTES(r->buf, n)};
		if (msgenc_APP_UPLOAD_CHUNK(&r->req, &q, err) == -1)
			return -1;
	}
	return peerpool_call(av->peer, r->base, r->j.mb, STB_MSG_APP_UPLOAD_CHUNK, &r->req, 0,
	                     rjob_on_chunk, r, err);
}

static int
remote_start(av_t *av, const char *id1, struct event_base *base, mbox_t *mb, av_vet_done_fn done,
             void *arg, err_t *err)
{
	struct rjob *r = calloc(1, sizeof(*r));
	char path[UPLOAD_PATH_MAX];
	store_conn_t *c;
	store_stmt_t *st;
	const void *sha;
	size_t len;
	int rc;

	if (r == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	r->fd = -1;
	r->j.av = av;
	snprintf(r->j.id1, sizeof(r->j.id1), "%s", id1);
	r->j.mb = mb;
	r->j.done = done;
	r->j.arg = arg;
	r->base = base;
	r->t0 = now_ns();
	buf_init(&r->req, AV_CHUNK_MAX + 1024);
	if ((c = store_reader(av->d->store, err)) == NULL ||
	    (st = store_stmt(c, "SELECT name, version, sha256, size FROM apps WHERE id1=?1",
	                     err)) == NULL) {
		rjob_free(r);
		return -1;
	}
	store_bind_str(st, 1, id1);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		rjob_free(r);
		return rc == STORE_DONE ? err_set(err, STB_NOT_FOUND, "no app %s", id1) : -1;
	}
	snprintf(r->name, sizeof(r->name), "%s", store_col_text(st, 0, NULL));
	snprintf(r->version, sizeof(r->version), "%s", store_col_text(st, 1, NULL));
	sha = store_col_blob(st, 2, &len);
	if (len == 32)
		memcpy(r->sha, sha, 32);
	r->size = (uint64_t)store_col_int64(st, 3);
	store_reset(st);
	if (av_pkg_path(av, id1, path, sizeof(path), err) == -1 ||
	    (r->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rjob_free(r);
		return err->status != STB_OK ? -1
		                             : err_set(err, STB_INTERNAL, "cannot open %s", path);
	}
	{
		struct msgreq_APP_UPLOAD_BEGIN q = {.APP_SIZE = MV_U(r->size),
		                                    .APP_SHA256 = MV_BYTES(r->sha, 32)};
		if (msgenc_APP_UPLOAD_BEGIN(&r->req, &q, err) == -1 ||
		    peerpool_call(av->peer, base, mb, STB_MSG_APP_UPLOAD_BEGIN, &r->req, 0,
		                  rjob_on_begin, r, err) == -1) {
			rjob_free(r);
			return -1;
		}
	}
	return 0;
}

/* ---- APP_VET: the vetter side, for an operator elsewhere ---- */

struct vreq {
	av_t *av;
	srv_req_t *r;
	char path[UPLOAD_PATH_MAX];
	char id1[AV_ID_CAP];
	err_t err;
	av_verdict_t v;
};

static void
vreq_work(void *arg)
{
	struct vreq *q = arg;

	err_clear(&q->err);
	av_vet_file(q->av, q->path, q->id1, &q->v, &q->err);
	unlink(q->path);
}

static void
vreq_done(void *arg)
{
	struct vreq *q = arg;
	cJSON *arr, *f;
	char *txt;
	buf_t *b;

	if (q->err.status != STB_OK)
		srv_reply_errt(q->r, &q->err);
	else {
		b = srv_reply_begin(q->r);
		tlv_put_str(b, STB_TLV_APP_ID2, q->v.id2);
		tlv_put_u8(b, STB_TLV_APP_FLAG, (uint8_t)q->v.flag);
		tlv_put(b, STB_TLV_APP_SHA256, q->v.sha256, 32);
		tlv_put_u64(b, STB_TLV_APP_VET_TIME, q->v.vet_time);
		tlv_put(b, STB_TLV_APP_VERDICT_SIG, q->v.sig, q->v.siglen);
		tlv_put(b, STB_TLV_CERT_DER, q->av->vet_cert_der, q->av->vet_cert_der_len);
		arr = cJSON_Parse(q->v.findings_json);
		cJSON_ArrayForEach(f, arr)
		{
			if ((txt = cJSON_PrintUnformatted(f)) != NULL)
				tlv_put_str(b, STB_TLV_APP_FINDING, txt);
			free(txt);
		}
		cJSON_Delete(arr);
		srv_reply_end(q->r);
	}
	av_verdict_clear(&q->v);
	free(q);
}

static void
av_vet(srv_req_t *r, const msg_t *m, void *ctx)
{
	daemon_t *d = ctx;
	av_t *av = d->priv;
	char owner[UPLOAD_OWNER_MAX];
	const uint8_t *id;
	size_t idlen;
	struct vreq *q = calloc(1, sizeof(*q));
	int fd = -1;
	err_t err;

	if (q == NULL) {
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	q->av = av;
	msg_get_bytes(m, TLV_IX_APP_UPLOAD_ID, &id, &idlen);
	msg_get_str(m, TLV_IX_APP_ID1, q->id1, sizeof(q->id1));
	av_owner(r, owner, sizeof(owner));
	if (upload_commit(av->up, id, owner, (int64_t)time(NULL), q->path, sizeof(q->path), &fd,
	                  &err) == -1) {
		free(q);
		srv_reply_errt(r, &err);
		return;
	}
	/* a remote operator's re-vet means the newest blocklist too */
	if (apk_ctx_reload_blocklist(av->apk, &err) == -1)
		log_warnx("blocklist not reloaded, vetting with the one loaded: %s", err.msg);
	close(fd);
	if ((q->r = srv_req_defer(r)) == NULL) {
		unlink(q->path);
		free(q);
		srv_reply_err(r, STB_INTERNAL, "out of memory");
		return;
	}
	if (workpool_submit(av->vet, vreq_work, srv_req_mbox(q->r), vreq_done, q, &err) == -1) {
		unlink(q->path);
		srv_reply_errt(q->r, &err);
		free(q);
	}
}

int
av_vet_resume(av_t *av, err_t *err)
{
	store_conn_t *c;
	store_stmt_t *st;
	char id1[AV_ID_CAP];
	size_t queued = 0, left = 0;
	err_t e;
	int rc;

	if ((av->main_mb = mbox_new(av->d->base)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((c = store_reader(av->d->store, err)) == NULL ||
	    (st = store_stmt(c, "SELECT id1 FROM apps WHERE state='submitted' ORDER BY rowid",
	                     err)) == NULL)
		return -1;
	while ((rc = store_step(st, err)) == STORE_ROW) {
		snprintf(id1, sizeof(id1), "%s", store_col_text(st, 0, NULL));
		if (av_vet_queue(av, id1, av->d->base, av->main_mb, NULL, NULL, &e) == 0)
			queued++;
		else if (left++ == 0)
			log_warnx("vetting %s not queued at start-up: %s (APP_REVET queues it)",
			          id1, e.msg);
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (queued > 0 || left > 0)
		log_info("%zu app(s) left submitted by the last run queued for vetting%s", queued,
		         left > 0 ? "; some were not (see above)" : "");
	return 0;
}

void
av_vet_register(daemon_t *d)
{
	if (((av_t *)d->priv)->vetter_role)
		srv_handle(d->srv, MSG_IX_APP_VET, av_vet);
}
