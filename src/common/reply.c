#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "srvint.h"
#include "tlv.h"

/* The length of text cut to at most 512 bytes without leaving half a
 * UTF-8 sequence (vsnprintf's cut or ours): the peer checks the text. */
static size_t
reply_text_len(const char *text)
{
	size_t tl = strnlen(text, 512);
	size_t i, need = 1;
	unsigned char lead;

	if (tl == 0)
		return 0;
	i = tl - 1;
	while (i > 0 && ((unsigned char)text[i] & 0xc0) == 0x80)
		i--;
	lead = (unsigned char)text[i];
	if (lead >= 0xf0)
		need = 4;
	else if (lead >= 0xe0)
		need = 3;
	else if (lead >= 0xc0)
		need = 2;
	return i + need > tl ? i : tl;
}

/* An error frame for (type, req_id), built in the worker's error buffer. */
void
reply_error(srv_conn_t *c, uint16_t type, uint32_t req_id, int status, const char *text)
{
	buf_t *b = &c->w->error;
	size_t start;

	buf_reset(b);
	if (frame_begin(b, &start) == -1 ||
	    tlv_put_u16(b, STB_TLV_STATUS, (uint16_t)status) == -1 ||
	    tlv_put(b, STB_TLV_ERROR_TEXT, text, reply_text_len(text)) == -1 ||
	    frame_end(b, start, type, STB_FRAME_F_RESPONSE | STB_FRAME_F_ERROR, req_id) == -1)
		return;
	conn_send(c, b);
}

static void
reply_account(srv_req_t *r, int status)
{
	srv_worker_t *w = r->conn->w;

	ctr_add(&w->requests, 1);
	if (status != STB_OK)
		ctr_add(&w->errors, 1);
	if (r->midx >= 0) {
		ctr_add(&w->count[r->midx][SRV_STATUS_SLOT(status)], 1);
		hist_observe(&w->latency[r->midx], (now_ns() - r->t0) / 1000);
	} else
		ctr_add(&w->unknown_type, 1);
}

void
reply_done(srv_req_t *r)
{
	srv_conn_t *c = r->conn;

	r->answered = 1;
	c->inflight--;
	/* conn_pause schedules the read on the loop: no re-entry from here */
	if (c->ssl != NULL && c->paused && c->inflight < c->srv->conf.max_inflight &&
	    conn_out_len(c) <= conn_out_high(c))
		conn_pause(c, 0);
	if (c->ssl != NULL && c->w->draining && c->inflight == 0)
		conn_close_after_flush(c);
	if (r->heap) {
		srv_conn_unref(c);
		free(r);
	}
}

buf_t *
srv_reply_begin(srv_req_t *r)
{
	buf_t *b = &r->conn->w->reply;
	size_t start;

	buf_reset(b);
	frame_begin(b, &start); /* the reply buffer always holds a header */
	return b;
}

void
srv_reply_end(srv_req_t *r)
{
	srv_conn_t *c = r->conn;
	buf_t *b = &c->w->reply;

	if (b->failed) {
		srv_reply_err(r, STB_INTERNAL, "response larger than %d bytes", SRV_RSP_MAX);
		return;
	}
	frame_end(b, 0, r->type, STB_FRAME_F_RESPONSE, r->req_id);
	/* count before the peer can see the answer and ask for the counters */
	reply_account(r, STB_OK);
	conn_send(c, b);
	reply_done(r);
}

void
srv_reply_ok(srv_req_t *r)
{
	srv_reply_begin(r);
	srv_reply_end(r);
}

void
srv_reply_err(srv_req_t *r, int status, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply_account(r, status);
	reply_error(r->conn, r->type, r->req_id, status, text);
	if (status == STB_INTERNAL)
		log_warnx("%s %s from %s: %s", r->midx >= 0 ? proto_msgs[r->midx].name : "?",
		          stb_status_name(status), r->conn->peer, text);
	else
		log_debug("%s %s from %s: %s", r->midx >= 0 ? proto_msgs[r->midx].name : "?",
		          stb_status_name(status), r->conn->peer, text);
	reply_done(r);
}

void
srv_reply_errt(srv_req_t *r, const err_t *err)
{
	srv_reply_err(r, err->status == STB_OK ? STB_INTERNAL : err->status, "%s", err->msg);
}

void
srv_reply_result(srv_req_t *r, const err_t *err)
{
	if (err->status != STB_OK)
		srv_reply_errt(r, err);
	else
		srv_reply_ok(r);
}

srv_req_t *
srv_req_defer(srv_req_t *r)
{
	srv_req_t *d = malloc(sizeof(*d));

	if (d == NULL)
		return NULL;
	*d = *r;
	d->heap = 1;
	r->answered = 1; /* the copy answers now */
	srv_conn_ref(r->conn);
	return d;
}

mbox_t *
srv_req_mbox(srv_req_t *r)
{
	return r->conn->w->mb;
}

/* Built in the push buffer: a push between srv_reply_begin and
 * srv_reply_end leaves the answer being built alone. */
int
srv_conn_push(srv_conn_t *c, uint16_t type, const buf_t *tlvs, uint32_t *req_id)
{
	buf_t *b = &c->w->push;
	size_t start;
	uint32_t id;

	if (!srv_conn_is_open(c))
		return -1;
	id = ++c->next_push_id;
	buf_reset(b);
	if (frame_begin(b, &start) == -1 ||
	    (tlvs != NULL && buf_append(b, tlvs->data, tlvs->len) == -1) ||
	    frame_end(b, start, type, STB_FRAME_F_PUSH, id) == -1)
		return -1;
	conn_send(c, b);
	if (req_id != NULL)
		*req_id = id;
	return 0;
}
