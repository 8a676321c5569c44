/*
 * connreg: the online-connection registry — who is connected now, on
 * which loop — shared by every loop of a daemon.  Maps an ID (a device) to
 * its live connection(s) so that any loop can push to them: the push is
 * posted to the connection's own loop through its mailbox and runs there
 * only while the entry (matched by its generation) still stands.  An entry
 * is added on its connection's loop and taken out there (from the close
 * hook), so a job that finds it finds a live connection.
 *
 * Intrusive: a daemon embeds a connreg_ent_t in its entry to carry its own
 * fields.  Unique registries keep one entry per ID (an add returns the one
 * it replaced); others keep every connection of an ID.  One mutex, never
 * held across I/O or a callback other than connreg_foreach's.  Lookups are
 * keyed with SipHash (htab.h): the IDs are the peers' choice.
 */
#ifndef STB_CONNREG_H
#define STB_CONNREG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "htab.h"
#include "mbox.h"
#include "server.h"
#include "stb/stbproto.h"

#define CONNREG_ID_CAP (STB_ID_MAX + 1)

typedef struct connreg_ent {
	htab_node_t h;
	char id[CONNREG_ID_CAP];
	uint64_t gen; /* set by connreg_add, never 0 */
	srv_conn_t *conn;
	mbox_t *mb; /* conn's loop */
} connreg_ent_t;

typedef struct connreg connreg_t;

/* unique: one entry per ID, a newer one replacing it. */
connreg_t *connreg_new(int unique, err_t *err);
/* Gives up the owner's reference: push jobs still queued keep it alive.
 * Entries still linked stay their owners'.  NULL-safe. */
void connreg_free(connreg_t *r);

/* Fills e for conn; -1 with err when id is too long. */
int connreg_ent_init(connreg_ent_t *e, const char *id, srv_conn_t *conn, err_t *err);
/* Links e (gen assigned); on a unique registry returns the entry it
 * replaced, unlinked, for its owner to close, else NULL. */
connreg_ent_t *connreg_add(connreg_t *r, connreg_ent_t *e);
/* Unlinks id's entry whose gen matches (0: any one); NULL when none. */
connreg_ent_t *connreg_take(connreg_t *r, const char *id, uint64_t gen);
/* For a cross-loop job: the gen and mailbox of id's (first) entry; 0, or
 * -1 when id is offline. */
int connreg_find(connreg_t *r, const char *id, uint64_t *gen, mbox_t **mb);
/* On the entry's loop: its connection while (id, gen) stands, else NULL. */
srv_conn_t *connreg_conn(connreg_t *r, const char *id, uint64_t gen);
int connreg_count(connreg_t *r, const char *id);
size_t connreg_size(connreg_t *r);
/* Pushes (type, tlvs) to each connection of id, each on its own loop; the
 * number of connections it was posted to. */
int connreg_push(connreg_t *r, const char *id, uint16_t type, const buf_t *tlvs);
/* Closes each connection of id on its loop; how many. */
int connreg_kick(connreg_t *r, const char *id);
/* fn for each entry, under the lock (no other connreg call from fn); stops
 * at fn's first non-zero answer, which it returns. */
int connreg_foreach(connreg_t *r, int (*fn)(connreg_ent_t *e, void *arg), void *arg);

#endif
