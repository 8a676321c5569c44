/* revpoll: revocations made through the other instances of ca-authd on
 * the same database.  Each revocation appends a row to `revocations` under
 * an id drawn from a counter whose row lock orders the instances until
 * COMMIT (certdb_revoke), so ids become visible in order; every 250 ms the
 * main loop reads the ids past the last one it applied and does what the
 * revoking instance did before answering (revoke.c): the revoked set (the
 * verified-leaf cache is checked against it on every login), the OCSP
 * cache, then the CRL.  A revocation at one instance is honoured by all
 * within about a poll.  On SQLite (one instance) it finds only its own. */
#include <event2/event.h>
#include <stdint.h>

#include "ca.h"
#include "log.h"

#define REVPOLL_MS    250
#define REVPOLL_BATCH 256

static int
revpoll_once(ca_t *ca, err_t *err)
{
	store_conn_t *c = store_reader(ca->d->store, err);
	store_stmt_t *st;
	const uint8_t *serial;
	size_t len;
	int rc, fresh = 0, n = 0;

	if (c == NULL ||
	    (st = store_stmt(
	         c, "SELECT id, serial FROM revocations WHERE id > ?1 ORDER BY id LIMIT 256",
	         err)) == NULL)
		return -1;
	store_bind_int64(st, 1, ca->revpoll_seen);
	while ((rc = store_step(st, err)) == STORE_ROW) {
		n++;
		ca->revpoll_seen = store_col_int64(st, 0);
		serial = store_col_blob(st, 1, &len);
		if (len == 0 || len > CA_SERIAL_MAX || revset_has(ca->revoked, serial, len))
			continue; /* ours (revoke.c applied it) */
		if (revset_add(ca->revoked, serial, len) == -1) {
			store_reset(st);
			return err_set(err, STB_INTERNAL, "out of memory");
		}
		ocache_revoked(ca, serial, len);
		fresh++;
	}
	store_reset(st);
	if (rc < 0)
		return -1;
	if (fresh > 0) {
		log_info("%d revocation(s) made at another instance applied", fresh);
		if (crl_refresh(ca, c, err) == -1)
			return -1;
	}
	return n == REVPOLL_BATCH ? 1 : 0;
}

static void
revpoll_tick(evutil_socket_t fd, short what, void *arg)
{
	ca_t *ca = arg;
	err_t err;
	int rc;

	(void)fd;
	(void)what;
	while ((rc = revpoll_once(ca, &err)) == 1)
		;
	if (rc == -1)
		log_warnx("revocations of the other instances not read: %s", err.msg);
}

int
revpoll_start(ca_t *ca, err_t *err)
{
	struct timeval tv = {0, REVPOLL_MS * 1000};
	store_conn_t *c;
	store_stmt_t *st;
	int rc;

	if ((c = store_reader(ca->d->store, err)) == NULL ||
	    (st = store_stmt(c, "SELECT coalesce(max(id), 0) FROM revocations", err)) == NULL)
		return -1;
	/* everything up to here is in the revoked set already (ca_load_revoked) */
	rc = store_step(st, err);
	if (rc == STORE_ROW)
		ca->revpoll_seen = store_col_int64(st, 0);
	store_reset(st);
	if (rc != STORE_ROW)
		return rc < 0 ? -1 : err_set(err, STB_INTERNAL, "revocations: no max");
	if ((ca->revpoll_timer = event_new(ca->d->base, -1, EV_PERSIST, revpoll_tick, ca)) ==
	        NULL ||
	    event_add(ca->revpoll_timer, &tv) == -1)
		return err_set(err, STB_INTERNAL, "cannot start the revocation poll");
	return 0;
}

void
revpoll_stop(ca_t *ca)
{
	if (ca->revpoll_timer != NULL)
		event_free(ca->revpoll_timer);
	ca->revpoll_timer = NULL;
}
