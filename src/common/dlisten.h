/*
 * dlisten: a daemon's listeners.  The top-level listen, client_auth and
 * tls.* keys are the first ("default"); the optional `listeners` array of
 * the config file adds up to DAEMON_LISTENERS_MAX - 1 more, each entry
 * loaded through its own option table (so errors name the file, the entry
 * and the key).  daemon.c's helpers; daemons use daemon_listener().
 */
#ifndef STB_DLISTEN_H
#define STB_DLISTEN_H

#include "daemon.h"

extern const char *const dlisten_client_auth_choices[];
extern const char *const dlisten_tls_version_choices[];

/* Loads d->conf_file (NULL: defaults) into d->tabs and the listener table;
 * the file is read once (it may be a pipe). */
int dlisten_load(daemon_t *d, err_t *err);
/* Same from a JSON text (NULL: defaults); name is the source in messages. */
int dlisten_load_text(daemon_t *d, const char *text, const char *name, err_t *err);
/* The keys of a `listeners` entry, for -H. */
void dlisten_help(void);
/* A listener's server context from its own tls.* and client_auth. */
int dlisten_tls_ctx(const daemon_t *d, const daemon_listener_t *l, SSL_CTX **out, err_t *err);
/* Every listener's TLS holder and server: srv_new for the first, the
 * others srv_attach'ed to it.  Start them after the daemon's init. */
int dlisten_new(daemon_t *d, err_t *err);
/* After the daemon's init: the other listeners inherit the first's
 * handlers (as their `messages` allow), then every listener binds. */
int dlisten_start(daemon_t *d, err_t *err);
void dlisten_log(const daemon_t *d);
/* SIGHUP: each listener's certificates again; how many kept the old ones. */
int dlisten_reload(daemon_t *d);
/* The servers (after draining) and the TLS holders. */
void dlisten_free(daemon_t *d);
/* What dlisten_load allocated. */
void dlisten_conf_free(daemon_t *d);

#endif
