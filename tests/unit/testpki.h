/* A throwaway PKI for unit tests over real TLS (prefix tu_pki_): a CA and
 * leaf certificates with stbcred role URIs, written as PEM files. */
#ifndef STB_TESTPKI_H
#define STB_TESTPKI_H

#include <stddef.h>

/* Writes dir/ca.crt (self-signed P-256 CA) and keeps the CA for tu_pki_leaf;
 * 0 or -1. */
int tu_pki_ca(const char *dir);
/* Writes dir/name.crt and dir/name.key, signed by the CA, with
 * urn:stbcred:role:<role> in its SAN (no URI when role is NULL); 0 or -1. */
int tu_pki_leaf(const char *dir, const char *name, const char *role);
/* dir/name into out. */
const char *tu_pki_path(char *out, size_t cap, const char *dir, const char *name);
/* Forgets the CA. */
void tu_pki_free(void);

/* ---- a real TLS server (server.h) for protocol tests ---- */
#include <pthread.h>

#include "server.h"

typedef struct tu_srv {
	struct event_base *base; /* the accepting loop, in its own thread */
	pthread_t thread;
	tls_holder_t holder;
	srv_t *srv;
	char addr[80]; /* bound "127.0.0.1:port" */
	int port;
} tu_srv_t;

/* dir/srv.crt and dir/srv.key (tu_pki_leaf "srv") serve on 127.0.0.1:0 with
 * conf's limits (listen is ignored), client certificates optional against
 * dir/ca.crt; reg registers handlers before the start.  0 or -1. */
int tu_srv_start(tu_srv_t *t, const char *dir, const srv_conf_t *conf, void *ctx,
                 void (*reg)(srv_t *s));
void tu_srv_stop(tu_srv_t *t);
#endif
