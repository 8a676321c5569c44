/* A real TLS server (server.h) for protocol tests (prefix tu_srv_); its
 * certificates come from the test PKI of testutil.h (tu_pki_ca, tu_pki_leaf). */
#ifndef STB_TESTSRV_H
#define STB_TESTSRV_H

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
