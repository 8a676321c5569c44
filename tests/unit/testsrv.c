/* A real TLS server (server.h) for protocol tests, on the throwaway PKI of
 * testutil.h (tu_pki_*). */
#include "testsrv.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int
tu_srv_start(tu_srv_t *t, const char *dir, const srv_conf_t *conf, void *ctx, void (*reg)(srv_t *s))
{
	char cert[512], key[512], ca[512];
	tls_conf_t tc = {.cert = tu_pki_path(cert, sizeof(cert), dir, "srv.crt"),
	                 .key = tu_pki_path(key, sizeof(key), dir, "srv.key"),
	                 .ca = tu_pki_path(ca, sizeof(ca), dir, "ca.crt"),
	                 .client_auth = TLS_CLIENT_AUTH_OPTIONAL};
	srv_conf_t sc = *conf;
	SSL_CTX *sctx;
	err_t err;
	const char *colon;

	memset(t, 0, sizeof(*t));
	signal(SIGPIPE, SIG_IGN); /* as daemon.c: a write to a peer that left */
	evthread_use_pthreads();
	if ((sctx = tls_server_ctx_new(&tc, &err)) == NULL) {
		fprintf(stderr, "tu_srv_start: %s\n", err.msg);
		return -1;
	}
	tls_holder_init(&t->holder, sctx);
	sc.listen = "127.0.0.1:0";
	if ((t->base = event_base_new()) == NULL ||
	    (t->srv = srv_new(&sc, &t->holder, ctx, &err)) == NULL)
		return -1;
	if (reg != NULL)
		reg(t->srv);
	if (srv_start(t->srv, t->base, &err) == -1) {
		fprintf(stderr, "tu_srv_start: %s\n", err.msg);
		return -1;
	}
	snprintf(t->addr, sizeof(t->addr), "%s", srv_bound(t->srv));
	colon = strrchr(t->addr, ':');
	t->port = colon != NULL ? atoi(colon + 1) : 0;
	return pthread_create(&t->thread, NULL, tu_loop_main, t->base) == 0 ? 0 : -1;
}

void
tu_srv_stop(tu_srv_t *t)
{
	/* the accepting loop first: then nothing but us touches the listener */
	event_base_loopexit(t->base, NULL); /* a timer: holds even before the loop runs */
	pthread_join(t->thread, NULL);
	srv_drain(t->srv, 500);
	srv_free(t->srv);
	event_base_free(t->base);
	tls_holder_destroy(&t->holder);
}
