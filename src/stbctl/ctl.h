/* ctl: what stbctl's per-daemon command files share. */
#ifndef STB_CTL_H
#define STB_CTL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "stb/stbclient.h"

typedef struct ctl {
	stb_client_t *c;
	int json;         /* --json: machine-readable output */
	const char *addr; /* where -a said, for commands that reconnect */
} ctl_t;

/* Prints "stbctl: STATUS: message" to stderr; returns the exit code 1. */
int ctl_fail(const stb_error_t *err);
/* A request the registry refuses (an argument too long, not an
 * identifier): prints "stbctl: why" to stderr; returns the exit code 2. */
int ctl_bad_request(const err_t *err);
/* Prints o as JSON and frees it; 0 or 1. */
int ctl_print_json(cJSON *o);
/* The end of a bulk import: {"<verb>": ok, "failed": bad} with --json, else
 * "<verb> <ok> <what>, <bad> failed".  The exit code: 0 when rc is 0 and
 * nothing failed, else 1. */
int ctl_print_tally(const ctl_t *x, const char *verb, const char *what, size_t ok, size_t bad,
                    int rc);
/* A string / number member of o, or "-" / 0 when absent. */
const char *ctl_jstr(const cJSON *o, const char *k);
double ctl_jnum(const cJSON *o, const char *k);
/* Unix time t as "2026-01-31T23:59:59Z" in out, or "-" when t <= 0. */
#define CTL_TIME_CAP 32
const char *ctl_time(double t, char out[CTL_TIME_CAP]);
/* Prints one entry of a list as a table row; with o NULL, the header. */
typedef void (*ctl_row_fn)(const cJSON *o);
/* Sends type with req (may be NULL) and prints the answer's JSON entries
 * (the TLV at index tix, repeated): as one array with --json, else as a
 * table through row.  The exit code. */
int ctl_list(ctl_t *x, uint16_t type, const buf_t *req, int tix, ctl_row_fn row);

/* The whole of file path ("-": stdin), NUL-terminated, at most max bytes;
 * NULL when it cannot be read or is larger.  Free with OPENSSL_clear_free
 * (an import file may hold secrets). */
char *ctl_slurp(const char *path, size_t max, size_t *len);

/* Per-daemon commands: argv after the daemon word; exit code. */
int ctl_rdv(ctl_t *x, int argc, char **argv);  /* ctlrdv.c */
int ctl_ca(ctl_t *x, int argc, char **argv);   /* ctlca.c: ca-authd */
int ctl_cp(ctl_t *x, int argc, char **argv);   /* ctlcp.c: cert-proxyd */
int ctl_gw(ctl_t *x, int argc, char **argv);   /* ctlgw.c: media-gw */
int ctl_keys(ctl_t *x, int argc, char **argv); /* ctlkeys.c: keymgmtd */
int ctl_qd(ctl_t *x, int argc, char **argv);   /* ctlqd.c: qualifyd */
int ctl_app(ctl_t *x, int argc, char **argv);  /* ctlapp.c: appvetd */

/* Each command file's lines for stbctl's usage text. */
extern const char ctl_rdv_usage[], ctl_ca_usage[], ctl_cp_usage[], ctl_gw_usage[];
extern const char ctl_keys_usage[], ctl_qd_usage[], ctl_app_usage[];

#endif
