/* outbox: the transactional outbox and its delivery worker (outbox.h). */
#include "outbox.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifecycle.h"
#include "log.h"
#include "metrics.h"

#define OB_NAME_MAX 64

const char outbox_schema[] = "CREATE TABLE outbox("
                             " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " dest TEXT NOT NULL,"
                             " msg_type INTEGER NOT NULL,"
                             " body BLOB NOT NULL,"
                             " ref TEXT NOT NULL DEFAULT '',"
                             " state TEXT NOT NULL DEFAULT 'pending'"
                             "  CHECK (state IN ('pending', 'delivered', 'failed')),"
                             " tries INTEGER NOT NULL DEFAULT 0,"
                             " next_at INTEGER NOT NULL,"
                             " lease_until INTEGER NOT NULL DEFAULT 0,"
                             " last_error TEXT,"
                             " ack BLOB,"
                             " created_at INTEGER NOT NULL,"
                             " delivered_at INTEGER);"
                             "CREATE INDEX outbox_due ON outbox(state, next_at);"
                             "CREATE INDEX outbox_by_dest ON outbox(dest, state);";

static const char sql_insert[] =
    "INSERT INTO outbox(dest, msg_type, body, ref, state, tries, next_at, lease_until,"
    " created_at) VALUES(?1, ?2, ?3, ?4, 'pending', 0, ?5, 0, ?5) RETURNING id";
static const char sql_due[] =
    "SELECT id, dest, msg_type, body, ref, tries FROM outbox WHERE state = 'pending'"
    " AND next_at <= ?1 AND lease_until <= ?1 ORDER BY next_at, id LIMIT ?2";
static const char sql_lease[] = "UPDATE outbox SET lease_until = ?2 WHERE id = ?1";
static const char sql_delivered[] =
    "UPDATE outbox SET state = 'delivered', tries = tries + 1, delivered_at = ?2, ack = ?3,"
    " lease_until = 0, last_error = COALESCE(?4, last_error) WHERE id = ?1 AND state = 'pending'";
static const char sql_again[] =
    "UPDATE outbox SET tries = tries + 1, next_at = ?2, lease_until = 0, last_error = ?3"
    " WHERE id = ?1 AND state = 'pending'";
static const char sql_failed[] =
    "UPDATE outbox SET state = 'failed', tries = tries + 1, lease_until = 0, last_error = ?2"
    " WHERE id = ?1 AND state = 'pending'";
static const char sql_retry[] =
    "UPDATE outbox SET state = 'pending', tries = 0, next_at = ?2, lease_until = 0"
    " WHERE id = ?1 AND state = 'failed'";
static const char sql_exists[] = "SELECT count(*) FROM outbox WHERE id = ?1";
static const char sql_counts[] = "SELECT state, count(*) FROM outbox GROUP BY state";
static const char sql_counts_dest[] =
    "SELECT state, count(*) FROM outbox WHERE dest = ?1 GROUP BY state";
const char outbox_list_sql[] =
    "SELECT id, dest, ref, state, tries, next_at, last_error, created_at, delivered_at"
    " FROM outbox WHERE state = ?2 ORDER BY id DESC LIMIT ?1";

static const char *const ob_state_names[] = {"pending", "delivered", "failed"};

/* What a result does to its row. */
enum ob_plan { OB_DELIVERED, OB_AGAIN, OB_FAILED };

/* A claimed row, from its claim until its result is recorded. */
struct ob_item {
	outbox_t *ob;
	outbox_item_t it; /* points into the copies below */
	char *dest, *ref;
	uint8_t *body;
	int done_called;
	/* the result, for the write that records it */
	enum ob_plan plan;
	int64_t now, next_at;
	char msg[ERR_MSG_MAX + 32]; /* "<status name>: <message>" */
	int has_msg;
	uint8_t *ack;
	size_t ack_len;
	struct ob_item *prev, *next; /* the outbox's in-flight list */
	struct ob_item *rec_next;    /* results waiting for their write */
};

/* One claim: a store write that leases up to want due rows. */
struct ob_claim {
	outbox_t *ob;
	int64_t now, lease_until;
	int want;
	int64_t *skip; /* rows this process has in flight */
	int nskip;
	struct ob_item *got; /* the claimed rows, through next */
	int ngot;
};

struct outbox {
	lifecycle_t lc;
	store_t *store;
	struct event_base *base;
	mbox_t *mb;
	outbox_conf_t conf;
	char name[OB_NAME_MAX];
	struct event *tick;
	int started;
	int stopping;    /* no new claims */
	int closed;      /* outbox_stop returned: the store is not touched again */
	int claiming;    /* a claim write is out */
	int more;        /* the last claim was full: claim again when a slot frees */
	int kick_posted; /* atomic */
	uint32_t writes; /* claim and result writes out */
	/* results reported in one turn of the loop, recorded in one write */
	struct ob_item *rec_head, **rec_tail;
	int rec_posted;
	struct ob_item *items;
	/* atomics, for metrics on any thread */
	uint32_t in_flight;
	uint64_t delivered, retried, failed, claimed;
};

static void ob_claim(outbox_t *ob);

const char *
outbox_state_name(int state)
{
	if (state < 0 || state >= (int)(sizeof(ob_state_names) / sizeof(ob_state_names[0])))
		return "unknown";
	return ob_state_names[state];
}

int
outbox_state_parse(const char *name)
{
	for (int i = 0;
	     name != NULL && i < (int)(sizeof(ob_state_names) / sizeof(ob_state_names[0])); i++)
		if (strcmp(name, ob_state_names[i]) == 0)
			return i;
	return -1;
}

int
outbox_status_permanent(int status)
{
	switch (status) {
	case STB_BAD_REQUEST:
	case STB_UNSUPPORTED:
	case STB_FORBIDDEN:
	case STB_CONFLICT:
	case STB_TOO_LARGE:
		return 1;
	default:
		return 0;
	}
}

static int64_t
ob_wall_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
ob_now(const outbox_t *ob)
{
	return ob->conf.clock(ob->conf.clock_arg);
}

/* The delay before attempt tries + 1, tries >= 1 attempts having failed. */
static int64_t
ob_backoff(const outbox_conf_t *c, int64_t tries)
{
	int64_t lo = c->backoff_min_ms, hi = lo;
	uint64_t r;

	for (int64_t i = 1; i < tries && hi < c->backoff_max_ms; i++)
		hi *= 2;
	if (hi > c->backoff_max_ms)
		hi = c->backoff_max_ms;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return hi;
	return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

/* ---- rows written by the caller's jobs ---- */

static int
ob_step_done(store_stmt_t *st, err_t *err)
{
	int rc = store_step(st, err);

	store_reset(st);
	return rc == STORE_DONE ? 0 : -1;
}

int
outbox_enqueue(outbox_t *ob, store_conn_t *c, const char *dest, uint16_t msg_type,
               const buf_t *body, const char *ref, int64_t now, int64_t *id, err_t *err)
{
	static const uint8_t empty[1];
	store_stmt_t *st;
	int rc;

	(void)ob;
	if (dest == NULL || dest[0] == '\0' || strlen(dest) > OUTBOX_DEST_MAX)
		return err_set(err, STB_BAD_REQUEST, "outbox: destination missing or too long");
	if (ref != NULL && strlen(ref) > OUTBOX_REF_MAX)
		return err_set(err, STB_BAD_REQUEST, "outbox: ref too long");
	if (body == NULL || body->failed || body->len > OUTBOX_BODY_MAX)
		return err_set(err, STB_TOO_LARGE, "outbox: body missing or above %d bytes",
		               OUTBOX_BODY_MAX);
	if ((st = store_stmt(c, sql_insert, err)) == NULL)
		return -1;
	store_bind_str(st, 1, dest);
	store_bind_int64(st, 2, msg_type);
	store_bind_blob(st, 3, body->len > 0 ? body->data : empty, body->len);
	store_bind_str(st, 4, ref != NULL ? ref : "");
	store_bind_int64(st, 5, now);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return rc == STORE_DONE ? err_set(err, STB_INTERNAL, "outbox: insert gave no id")
		                        : -1;
	}
	if (id != NULL)
		*id = store_col_int64(st, 0);
	rc = store_step(st, err);
	store_reset(st);
	return rc == STORE_DONE ? 0 : -1;
}

int
outbox_retry(outbox_t *ob, store_conn_t *c, int64_t id, int64_t now, err_t *err)
{
	store_stmt_t *st;
	int rc;

	(void)ob;
	if ((st = store_stmt(c, sql_retry, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	store_bind_int64(st, 2, now);
	if (ob_step_done(st, err) == -1)
		return -1;
	if (store_changes(st) == 1)
		return 0;
	if ((st = store_stmt(c, sql_exists, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	if ((rc = store_step(st, err)) != STORE_ROW) {
		store_reset(st);
		return -1;
	}
	rc = store_col_int64(st, 0) > 0;
	store_reset(st);
	if (rc)
		return err_set(err, STB_CONFLICT, "outbox: row %lld is not failed", (long long)id);
	return err_set(err, STB_NOT_FOUND, "outbox: no row %lld", (long long)id);
}

int
outbox_counts(outbox_t *ob, store_conn_t *reader, const char *dest, int64_t *pending,
              int64_t *delivered, int64_t *failed, err_t *err)
{
	int64_t n[3] = {0, 0, 0};
	store_stmt_t *st;
	int rc;

	(void)ob;
	if ((st = store_stmt(reader, dest != NULL ? sql_counts_dest : sql_counts, err)) == NULL)
		return -1;
	if (dest != NULL)
		store_bind_str(st, 1, dest);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		int s = outbox_state_parse(store_col_text(st, 0, NULL));
		if (s >= 0)
			n[s] = store_col_int64(st, 1);
	}
	store_reset(st);
	if (rc != STORE_DONE)
		return -1;
	if (pending != NULL)
		*pending = n[OUTBOX_PENDING];
	if (delivered != NULL)
		*delivered = n[OUTBOX_DELIVERED];
	if (failed != NULL)
		*failed = n[OUTBOX_FAILED];
	return 0;
}

static void
ob_json_int(cJSON *o, const char *k, store_stmt_t *st, int col)
{
	if (store_col_is_null(st, col))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, (double)store_col_int64(st, col));
}

static void
ob_json_text(cJSON *o, const char *k, store_stmt_t *st, int col)
{
	if (store_col_is_null(st, col))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddStringToObject(o, k, store_col_text(st, col, NULL));
}

cJSON *
outbox_list_row(store_stmt_t *st, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	(void)arg;
	if (o == NULL)
		return NULL;
	ob_json_int(o, "id", st, 0);
	ob_json_text(o, "dest", st, 1);
	ob_json_text(o, "ref", st, 2);
	ob_json_text(o, "state", st, 3);
	ob_json_int(o, "tries", st, 4);
	ob_json_int(o, "next_at", st, 5);
	ob_json_text(o, "last_error", st, 6);
	ob_json_int(o, "created_at", st, 7);
	ob_json_int(o, "delivered_at", st, 8);
	return o;
}

/* ---- items ---- */

static struct ob_item *
ob_item_new(outbox_t *ob, store_stmt_t *st)
{
	size_t dlen, rlen, blen;
	const char *dest = store_col_text(st, 1, &dlen);
	const char *ref = store_col_text(st, 4, &rlen);
	const void *body = store_col_blob(st, 3, &blen);
	struct ob_item *x;

	if ((x = calloc(1, sizeof(*x) + dlen + 1 + rlen + 1 + blen + 1)) == NULL)
		return NULL;
	x->ob = ob;
	x->dest = (char *)(x + 1);
	x->ref = x->dest + dlen + 1;
	x->body = (uint8_t *)x->ref + rlen + 1;
	memcpy(x->dest, dest, dlen);
	memcpy(x->ref, ref, rlen);
	if (blen > 0)
		memcpy(x->body, body, blen);
	x->it.id = store_col_int64(st, 0);
	x->it.dest = x->dest;
	x->it.msg_type = (uint16_t)store_col_int64(st, 2);
	x->it.body = x->body;
	x->it.body_len = blen;
	x->it.ref = x->ref;
	x->it.tries = store_col_int64(st, 5);
	return x;
}

static void
ob_item_free(struct ob_item *x)
{
	if (x == NULL)
		return;
	free(x->ack);
	free(x);
}

static void
ob_items_free(struct ob_item *x)
{
	struct ob_item *next;

	for (; x != NULL; x = next) {
		next = x->next;
		ob_item_free(x);
	}
}

static void
ob_link(outbox_t *ob, struct ob_item *x)
{
	x->prev = NULL;
	x->next = ob->items;
	if (ob->items != NULL)
		ob->items->prev = x;
	ob->items = x;
	__atomic_fetch_add(&ob->in_flight, 1, __ATOMIC_RELAXED);
}

/* Drops x from the in-flight list, frees it, and its reference. */
static void
ob_finish(struct ob_item *x)
{
	outbox_t *ob = x->ob;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		ob->items = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	__atomic_fetch_sub(&ob->in_flight, 1, __ATOMIC_RELAXED);
	ob_item_free(x);
	if (ob->more)
		ob_claim(ob);
	lifecycle_unref(&ob->lc);
}

/* ---- recording a result ---- */

static int
ob_record_write(store_conn_t *c, void *arg, err_t *err)
{
	struct ob_item *x = arg;
	const char *msg = x->has_msg ? x->msg : NULL;
	store_stmt_t *st;

	switch (x->plan) {
	case OB_DELIVERED:
		if ((st = store_stmt(c, sql_delivered, err)) == NULL)
			return -1;
		store_bind_int64(st, 2, x->now);
		store_bind_blob(st, 3, x->ack, x->ack_len);
		store_bind_str(st, 4, msg);
		break;
	case OB_AGAIN:
		if ((st = store_stmt(c, sql_again, err)) == NULL)
			return -1;
		store_bind_int64(st, 2, x->next_at);
		store_bind_str(st, 3, msg);
		break;
	default:
		if ((st = store_stmt(c, sql_failed, err)) == NULL)
			return -1;
		store_bind_str(st, 2, msg);
		break;
	}
	store_bind_int64(st, 1, x->it.id);
	return ob_step_done(st, err);
}

/* The rows' results and, through conf.recorded, what the daemon writes
 * with them: one job for every result reported in one turn of the loop. */
static int
ob_records_write(store_conn_t *c, void *arg, err_t *err)
{
	struct ob_item *x;
	outbox_t *ob = ((struct ob_item *)arg)->ob;

	for (x = arg; x != NULL; x = x->rec_next) {
		int state = x->plan == OB_DELIVERED ? OUTBOX_DELIVERED
		            : x->plan == OB_AGAIN   ? OUTBOX_PENDING
		                                    : OUTBOX_FAILED;

		if (ob_record_write(c, x, err) == -1)
			return -1;
		if (ob->conf.recorded != NULL &&
		    ob->conf.recorded(ob->conf.recorded_arg, c, &x->it, state,
		                      x->has_msg ? x->msg : NULL, err) == -1)
			return -1;
	}
	return 0;
}

static void
ob_records_done(void *arg, const err_t *err)
{
	struct ob_item *x, *next;
	outbox_t *ob = ((struct ob_item *)arg)->ob;

	ob->writes--;
	for (x = arg; x != NULL; x = next) {
		next = x->rec_next;
		if (err->status != STB_OK)
			log_warnx("outbox %s: row %lld: cannot record the result: %s (left to its "
			          "lease)",
			          ob->name, (long long)x->it.id, err->msg);
		else if (x->plan == OB_DELIVERED)
			ctr_add(&ob->delivered, 1);
		else if (x->plan == OB_AGAIN)
			ctr_add(&ob->retried, 1);
		else
			ctr_add(&ob->failed, 1);
		ob_finish(x);
	}
}

/* On the loop, after the turn that reported the results. */
static void
ob_records_flush(void *arg)
{
	outbox_t *ob = arg;
	struct ob_item *head = ob->rec_head, *x, *next;
	err_t err;

	err_clear(&err);
	ob->rec_head = NULL;
	ob->rec_tail = &ob->rec_head;
	ob->rec_posted = 0;
	if (head != NULL && !ob->closed &&
	    store_write(ob->store, ob->mb, ob_records_write, ob_records_done, head, &err) == 0) {
		lifecycle_unref(&ob->lc);
		return;
	}
	ob->writes--;
	for (x = head; x != NULL; x = next) {
		next = x->rec_next;
		if (!ob->closed)
			log_warnx("outbox %s: row %lld: cannot record the result: %s (left to its "
			          "lease)",
			          ob->name, (long long)x->it.id, err.msg);
		ob_finish(x);
	}
	lifecycle_unref(&ob->lc);
}

/* Queues x's result for the write of this turn's results. */
static void
ob_record(outbox_t *ob, struct ob_item *x)
{
	x->rec_next = NULL;
	*ob->rec_tail = x;
	ob->rec_tail = &x->rec_next;
	if (ob->rec_posted)
		return;
	ob->writes++;
	lifecycle_ref(&ob->lc);
	if (mbox_post(ob->mb, ob_records_flush, ob) == 0) {
		ob->rec_posted = 1;
		return;
	}
	lifecycle_unref(&ob->lc);
	ob->writes--;
	/* no mailbox: record what is queued now, alone */
	ob->writes++;
	lifecycle_ref(&ob->lc);
	ob->rec_posted = 1;
	ob_records_flush(ob);
}

static void
ob_result(void *done_arg, const err_t *res, const void *ack, size_t ack_len)
{
	struct ob_item *x = done_arg;
	outbox_t *ob = x->ob;
	int status = res != NULL ? res->status : STB_INTERNAL;

	if (x->done_called) {
		log_warnx("outbox %s: row %lld: send result reported twice", ob->name,
		          (long long)x->it.id);
		return;
	}
	x->done_called = 1;
	if (ob->closed) { /* stopped: the lease brings it back */
		ob_finish(x);
		return;
	}
	x->now = ob_now(ob);
	if (status == STB_OK) {
		x->plan = OB_DELIVERED;
		if (ack_len > OUTBOX_ACK_MAX) {
			snprintf(x->msg, sizeof(x->msg), "ack of %zu bytes not kept", ack_len);
			x->has_msg = 1;
		} else if (ack_len > 0 && (x->ack = malloc(ack_len)) == NULL) {
			snprintf(x->msg, sizeof(x->msg), "ack not kept: out of memory");
			x->has_msg = 1;
		} else if (ack_len > 0) {
			memcpy(x->ack, ack, ack_len);
			x->ack_len = ack_len;
		}
	} else {
		snprintf(x->msg, sizeof(x->msg), "%s: %s", stb_status_name(status),
		         res != NULL && res->msg[0] != '\0' ? res->msg : "send failed");
		x->has_msg = 1;
		if (outbox_status_permanent(status) || x->it.tries + 1 >= ob->conf.max_tries)
			x->plan = OB_FAILED;
		else {
			x->plan = OB_AGAIN;
			x->next_at = x->now + ob_backoff(&ob->conf, x->it.tries + 1);
		}
	}
	ob_record(ob, x);
}

/* ---- claiming ---- */

static void
ob_claim_free(struct ob_claim *cl)
{
	ob_items_free(cl->got);
	free(cl->skip);
	free(cl);
}

static int
ob_skipped(const struct ob_claim *cl, int64_t id)
{
	for (int i = 0; i < cl->nskip; i++)
		if (cl->skip[i] == id)
			return 1;
	return 0;
}

static int
ob_claim_write(store_conn_t *c, void *arg, err_t *err)
{
	struct ob_claim *cl = arg;
	struct ob_item *x, **tail = &cl->got;
	store_stmt_t *st;
	int rc = STORE_DONE;

	ob_items_free(cl->got); /* a batch that is run again */
	cl->got = NULL;
	cl->ngot = 0;
	if ((st = store_stmt(c, sql_due, err)) == NULL)
		return -1;
	store_bind_int64(st, 1, cl->now);
	store_bind_int64(st, 2, (int64_t)cl->want + cl->nskip);
	while (cl->ngot < cl->want && (rc = store_step(st, err)) == STORE_ROW) {
		if (ob_skipped(cl, store_col_int64(st, 0)))
			continue;
		if ((x = ob_item_new(cl->ob, st)) == NULL) {
			store_reset(st);
			return err_set(err, STB_INTERNAL, "out of memory");
		}
		*tail = x;
		tail = &x->next;
		cl->ngot++;
	}
	store_reset(st);
	if (cl->ngot < cl->want && rc != STORE_DONE)
		return -1;
	for (x = cl->got; x != NULL; x = x->next) {
		if ((st = store_stmt(c, sql_lease, err)) == NULL)
			return -1;
		store_bind_int64(st, 1, x->it.id);
		store_bind_int64(st, 2, cl->lease_until);
		if (ob_step_done(st, err) == -1)
			return -1;
	}
	return 0;
}

static void
ob_claim_done(void *arg, const err_t *err)
{
	struct ob_claim *cl = arg;
	outbox_t *ob = cl->ob;
	struct ob_item *x, *next;

	ob->writes--;
	if (err->status != STB_OK)
		log_warnx("outbox %s: claim failed: %s", ob->name, err->msg);
	if (err->status != STB_OK || ob->stopping) {
		/* stopping: what was claimed waits for its lease */
		ob->claiming = 0;
		ob_claim_free(cl);
		lifecycle_unref(&ob->lc);
		return;
	}
	ob->more = cl->ngot == cl->want;
	x = cl->got;
	cl->got = NULL;
	ob_claim_free(cl);
	/* still claiming while handing out: a result reported from within send
	 * must not start a claim that misses the rows not yet listed */
	for (; x != NULL; x = next) {
		next = x->next;
		ob_link(ob, x);
		lifecycle_ref(&ob->lc);
		ctr_add(&ob->claimed, 1);
		ob->conf.send(ob->conf.send_arg, &x->it, ob_result, x);
	}
	ob->claiming = 0;
	if (ob->more)
		ob_claim(ob);
	lifecycle_unref(&ob->lc);
}

/* Claims what is due, unless a claim is out or the window is full. */
static void
ob_claim(outbox_t *ob)
{
	struct ob_claim *cl;
	uint32_t n = __atomic_load_n(&ob->in_flight, __ATOMIC_RELAXED);
	err_t err;
	int i = 0;

	if (!ob->started || ob->stopping || ob->claiming || n >= (uint32_t)ob->conf.window)
		return;
	if ((cl = calloc(1, sizeof(*cl))) == NULL ||
	    (n > 0 && (cl->skip = calloc(n, sizeof(*cl->skip))) == NULL)) {
		free(cl);
		log_warnx("outbox %s: out of memory", ob->name);
		return;
	}
	for (struct ob_item *x = ob->items; x != NULL && i < (int)n; x = x->next)
		cl->skip[i++] = x->it.id;
	cl->nskip = i;
	cl->ob = ob;
	cl->want = ob->conf.window - (int)n;
	cl->now = ob_now(ob);
	cl->lease_until = cl->now + ob->conf.lease_ms;
	ob->claiming = 1;
	ob->writes++;
	lifecycle_ref(&ob->lc);
	if (store_write(ob->store, ob->mb, ob_claim_write, ob_claim_done, cl, &err) == -1) {
		ob->claiming = 0;
		ob->writes--;
		ob_claim_free(cl);
		lifecycle_unref(&ob->lc);
		log_warnx("outbox %s: cannot claim: %s", ob->name, err.msg);
	}
}

static void
ob_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ob_claim(arg);
}

static void
ob_kicked(void *arg)
{
	outbox_t *ob = arg;

	__atomic_store_n(&ob->kick_posted, 0, __ATOMIC_RELEASE);
	ob_claim(ob);
	lifecycle_unref(&ob->lc);
}

void
outbox_kick(outbox_t *ob)
{
	if (ob == NULL || __atomic_exchange_n(&ob->kick_posted, 1, __ATOMIC_ACQ_REL))
		return;
	lifecycle_ref(&ob->lc);
	if (mbox_post(ob->mb, ob_kicked, ob) == -1) {
		__atomic_store_n(&ob->kick_posted, 0, __ATOMIC_RELEASE);
		lifecycle_unref(&ob->lc);
	}
}

/* ---- life ---- */

static void
ob_teardown(void *arg)
{
	free(arg);
}

outbox_t *
outbox_new(store_t *s, struct event_base *base, mbox_t *mb, const outbox_conf_t *conf, err_t *err)
{
	outbox_t *ob;
	outbox_conf_t c = *conf;

	if (c.window == 0)
		c.window = 16;
	if (c.max_tries == 0)
		c.max_tries = 10;
	if (c.backoff_min_ms == 0)
		c.backoff_min_ms = 1000;
	if (c.backoff_max_ms == 0)
		c.backoff_max_ms = 300000;
	if (c.lease_ms == 0)
		c.lease_ms = 60000;
	if (c.poll_ms == 0)
		c.poll_ms = 1000;
	if (c.clock == NULL)
		c.clock = ob_wall_ms;
	if (s == NULL || base == NULL || mb == NULL || c.send == NULL) {
		err_set(err, STB_INTERNAL, "outbox: store, loop, mailbox and send needed");
		return NULL;
	}
	if (c.window < 1 || c.window > OUTBOX_WINDOW_MAX || c.max_tries < 1 ||
	    c.backoff_min_ms < 1 || c.backoff_max_ms < c.backoff_min_ms || c.lease_ms < 1 ||
	    c.poll_ms < 1) {
		err_set(err, STB_INTERNAL, "outbox: configuration out of range");
		return NULL;
	}
	if ((ob = calloc(1, sizeof(*ob))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	snprintf(ob->name, sizeof(ob->name), "%s", c.name != NULL ? c.name : "outbox");
	c.name = ob->name;
	ob->conf = c;
	ob->store = s;
	ob->base = base;
	ob->mb = mb;
	ob->rec_tail = &ob->rec_head;
	lifecycle_init(&ob->lc, ob_teardown, ob);
	if ((ob->tick = event_new(base, -1, EV_PERSIST, ob_tick, ob)) == NULL) {
		free(ob);
		err_set(err, STB_INTERNAL, "outbox: cannot make its timer");
		return NULL;
	}
	return ob;
}

int
outbox_start(outbox_t *ob, err_t *err)
{
	struct timeval tv = {ob->conf.poll_ms / 1000, (ob->conf.poll_ms % 1000) * 1000};

	if (ob->started || ob->stopping)
		return err_set(err, STB_INTERNAL, "outbox %s: already started or stopped",
		               ob->name);
	if (event_add(ob->tick, &tv) == -1)
		return err_set(err, STB_INTERNAL, "outbox %s: cannot arm its timer", ob->name);
	ob->started = 1;
	ob_claim(ob);
	return 0;
}

static void
ob_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

void
outbox_stop(outbox_t *ob, int wait_ms)
{
	struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
	struct event *ev = NULL;
	int expired = 0;

	if (ob == NULL || ob->closed)
		return;
	ob->stopping = 1;
	event_del(ob->tick);
	if (wait_ms > 0 && (ev = evtimer_new(ob->base, ob_deadline, &expired)) != NULL &&
	    evtimer_add(ev, &tv) == 0)
		while ((ob->writes > 0 || ob->items != NULL) && !expired)
			if (event_base_loop(ob->base, EVLOOP_ONCE) == -1)
				break;
	if (ev != NULL)
		event_free(ev);
	if (ob->writes > 0 || ob->items != NULL)
		log_warnx("outbox %s: stopped with %u in flight (left to their leases)", ob->name,
		          __atomic_load_n(&ob->in_flight, __ATOMIC_RELAXED));
	ob->closed = 1;
}

void
outbox_free(outbox_t *ob)
{
	if (ob == NULL)
		return;
	outbox_stop(ob, 0);
	event_free(ob->tick);
	ob->tick = NULL;
	lifecycle_unref(&ob->lc);
}

void
outbox_get_stats(outbox_t *ob, outbox_stats_t *st)
{
	st->delivered = ctr_get(&ob->delivered);
	st->retried = ctr_get(&ob->retried);
	st->failed = ctr_get(&ob->failed);
	st->claimed = ctr_get(&ob->claimed);
	st->in_flight = __atomic_load_n(&ob->in_flight, __ATOMIC_RELAXED);
}

int
outbox_metrics(outbox_t *ob, buf_t *out)
{
	outbox_stats_t s;

	outbox_get_stats(ob, &s);
	return buf_printf(out,
	                  "# HELP stbcred_outbox_delivered_total outbox items delivered by "
	                  "destination\n# TYPE stbcred_outbox_delivered_total counter\n"
	                  "stbcred_outbox_delivered_total{outbox=\"%s\"} %llu\n"
	                  "# HELP stbcred_outbox_retried_total outbox delivery attempts that will "
	                  "be retried\n# TYPE stbcred_outbox_retried_total counter\n"
	                  "stbcred_outbox_retried_total{outbox=\"%s\"} %llu\n"
	                  "# HELP stbcred_outbox_failed_total outbox items marked failed after "
	                  "their tries\n# TYPE stbcred_outbox_failed_total counter\n"
	                  "stbcred_outbox_failed_total{outbox=\"%s\"} %llu\n"
	                  "# HELP stbcred_outbox_in_flight outbox deliveries under way\n# TYPE "
	                  "stbcred_outbox_in_flight gauge\n"
	                  "stbcred_outbox_in_flight{outbox=\"%s\"} %u\n",
	                  ob->name, (unsigned long long)s.delivered, ob->name,
	                  (unsigned long long)s.retried, ob->name, (unsigned long long)s.failed,
	                  ob->name, s.in_flight);
}
