/* vet: the vetter's analysis (apk.h) on the worker pool, the signed
 * verdict, and its record on the operator side. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "av.h"
#include "log.h"
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
	                "revoked=CASE WHEN ?9 THEN 1 ELSE revoked END WHERE id1=?1",
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

	err_clear(&j->err);
	if (av_pkg_path(av, j->id1, path, sizeof(path), &j->err) == -1 ||
	    av_vet_file(av, path, j->id1, &j->v, &j->err) == -1)
		return;
	/* what a remote operator would check of a vetter's answer */
	if (verdict_verify(j->id1, &j->v, av->vet_cert, &j->err) == -1 ||
	    store_write_sync(av->d->store, job_write, j, &j->err) == -1)
		return;
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

int
av_vet_queue(av_t *av, const char *id1, mbox_t *mb, av_vet_done_fn done, void *arg, err_t *err)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
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

void
av_vet_register(daemon_t *d)
{
	if (((av_t *)d->priv)->vetter_role)
		srv_handle(d->srv, MSG_IX_APP_VET, av_vet);
}
