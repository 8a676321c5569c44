/*
 * hss: where qualifyd gets subscription credentials {IMSI, K, OPc}.
 *
 * Two backends share one pool, a table in qualifyd's store:
 *
 *   embedded  (hss_embedded.c)  the pool is the HSS.  Rows come from
 *             `stbctl qd hss import FILE` or a generated range; each is
 *             handed to exactly one device, atomically, inside the store
 *             transaction that also spends the device's nonce.
 *   osmo-hlr  (hss_osmo.c)  the same pool, and every row handed out is
 *             also provisioned into a real HLR, osmo-hlr, through its VTY,
 *             so that the network authenticates the device afterwards.
 *
 * Row states (column state of table hss_rows):
 *
 *   FREE ──allocate──> HELD ──confirmed by the device──> DELIVERED
 *                       │ └──release (operator, package expired or the HLR
 *                       │    refused it)──> FREE
 *   FREE, HELD ──retire (operator)──> RETIRED  (removed from the HLR)
 *
 * A HELD row whose package expired unconfirmed is never handed out again
 * without an operator's `stbctl qd hss release IMSI` or `... retire IMSI`:
 * the device may have opened the package and hold K.
 *
 * Threads: hss_import/allocate/deliver/release/retire run on the store's
 * writer thread inside the batch transaction (store_write_fn); they take the
 * writer's connection.  hss_counts takes a reader connection.
 * hss_activate/hss_deactivate block (network I/O for osmo-hlr) and run on
 * a workpool thread after the write committed, never on an event loop;
 * several may run at once.
 *
 * Secrets: K and OPc are stored sealed (sealed.h) with AAD
 * "qd-hss:" IMSI ":k" and "qd-hss:" IMSI ":opc"; buffers holding them are
 * wiped by whoever owns them (hss_cred_wipe).  Never log K, OPc or OP.
 */
#ifndef STB_QD_HSS_H
#define STB_QD_HSS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "qualify.h"
#include "sealed.h"
#include "store.h"

enum {
	HSS_FREE = 0,
	HSS_HELD = 1,
	HSS_DELIVERED = 2,
	HSS_RETIRED = 3,
};

typedef struct hss_cred {
	char imsi[QUALIFY_IMSI_MAX + 1]; /* digits, NUL-terminated */
	uint8_t k[QUALIFY_KEY_LEN];
	uint8_t opc[QUALIFY_KEY_LEN];
} hss_cred_t;

typedef struct hss_counts {
	uint64_t free, held, delivered, retired;
} hss_counts_t;

#define HSS_ADDR_MAX 262 /* host:port */

/* qualifyd's config keys "hss.*" (validated by qualifyd's config table). */
typedef struct hss_conf {
	char backend[16];            /* "embedded" (default) or "osmo-hlr" */
	char osmo_vty[HSS_ADDR_MAX]; /* osmo-hlr VTY host:port; default "127.0.0.1:4258" */
	int osmo_timeout_ms;         /* one VTY exchange (connect, command, answer);
	                                default 5000, 100..60000 */
} hss_conf_t;

typedef struct hss hss_t;

/* The pool's table, one migration step of qualifyd's store (SQLite DDL). */
extern const char hss_schema[];
extern const char hss_schema_pg[]; /* the same in PostgreSQL DDL */

/* Opens the backend named in conf; kek seals K/OPc (borrowed, outlives h).
 * BAD_REQUEST for an unknown backend or a bad osmo_vty. */
int hss_open(const hss_conf_t *conf, const sealed_kek_t *kek, hss_t **out, err_t *err);
void hss_close(hss_t *h);                /* NULL-safe */
const char *hss_backend(const hss_t *h); /* "embedded" or "osmo-hlr" */

/* Writer thread.  Adds a FREE row; CONFLICT when the IMSI is in the pool,
 * BAD_REQUEST for an IMSI that is not 6..15 digits. */
int hss_import(hss_t *h, store_conn_t *c, const hss_cred_t *cred, int64_t now, err_t *err);
/* Writer thread.  Takes one FREE row (the lowest IMSI), marks it HELD for
 * device_id and fills *out.  UNAVAILABLE when the pool has no FREE row.
 * Rolled back with the rest of the job when the job fails. */
int hss_allocate(hss_t *h, store_conn_t *c, const char *device_id, int64_t now, hss_cred_t *out,
                 err_t *err);
/* Writer thread.  HELD by device_id -> DELIVERED; NOT_FOUND / CONFLICT. */
int hss_deliver(hss_t *h, store_conn_t *c, const char *imsi, const char *device_id, int64_t now,
                err_t *err);
/* Writer thread.  HELD -> FREE (the device it was held for is cleared);
 * CONFLICT for a row in another state, NOT_FOUND. */
int hss_release(hss_t *h, store_conn_t *c, const char *imsi, int64_t now, err_t *err);
/* Writer thread.  FREE or HELD -> RETIRED; CONFLICT for DELIVERED or
 * RETIRED, NOT_FOUND.  The caller then runs hss_deactivate. */
int hss_retire(hss_t *h, store_conn_t *c, const char *imsi, int64_t now, err_t *err);
/* Reader connection: rows per state. */
int hss_counts(hss_t *h, store_conn_t *c, hss_counts_t *out, err_t *err);

/* Workpool thread, after hss_allocate committed: make the row usable by
 * the network.  embedded: nothing.  osmo-hlr: hss_osmo_provision.  On -1
 * the caller releases the row (hss_release) and refuses the device with
 * err's status. */
int hss_activate(hss_t *h, const hss_cred_t *cred, err_t *err);
/* Workpool thread, after hss_retire committed.  osmo-hlr: hss_osmo_remove. */
int hss_deactivate(hss_t *h, const char *imsi, err_t *err);

void hss_cred_wipe(hss_cred_t *cred);

/*
 * The osmo-hlr backend (hss_osmo.c).  hss.c / hss_embedded.c calls only
 * these four; nothing else in qualifyd knows osmo-hlr.
 *
 * hss_osmo_open checks conf (osmo_vty parses as host:port, timeout in
 * range) and may connect lazily; BAD_REQUEST for bad conf.  It does not
 * fail when osmo-hlr is down (the first provision does, UNAVAILABLE).
 *
 * hss_osmo_provision makes cred's subscriber exist in osmo-hlr with
 * Milenage K and OPc, idempotently: on the VTY (enable mode)
 *     subscriber imsi <IMSI> create          (an existing one is fine)
 *     subscriber imsi <IMSI> update aud3g milenage k <32 hex> opc <32 hex>
 * 0 when both succeeded.  -1 with UNAVAILABLE (cannot connect, connection
 * lost), TIMEOUT (no answer within osmo_timeout_ms), INTERNAL (osmo-hlr
 * answered with an error; its text, which holds no key, in err).  The
 * command line holding K/OPc is built in a buffer wiped after use and
 * never logged.
 *
 * hss_osmo_remove deletes the subscriber (`subscriber imsi <IMSI>
 * delete`); a subscriber that does not exist is success.  Errors as above.
 *
 * Both may be called from several threads at once: the backend serialises
 * its VTY session (a mutex around one connection, reconnecting after an
 * error) or opens a connection per call.  hss_osmo_close closes it;
 * NULL-safe.
 */
typedef struct hss_osmo hss_osmo_t;

int hss_osmo_open(const hss_conf_t *conf, hss_osmo_t **out, err_t *err);
void hss_osmo_close(hss_osmo_t *o);
int hss_osmo_provision(hss_osmo_t *o, const hss_cred_t *cred, err_t *err);
int hss_osmo_remove(hss_osmo_t *o, const char *imsi, err_t *err);

#endif
