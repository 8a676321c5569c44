/*
 * burst: many concurrent durable writes (audit notes) against a daemon.
 * Prints "ACK <seq> <note>" for each write the daemon acknowledged, so a
 * test can kill the daemon mid-burst and check every acknowledged write
 * survived.
 *
 * usage: burst HOST PORT CA CERT KEY THREADS WRITES_PER_THREAD
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "stbc.h"
#include "tlv.h"

static const char *host, *port, *ca, *cert, *key;
static long per_thread;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
writer(void *arg)
{
	long id = (long)(intptr_t)arg;
	stb_client_t *c;
	stb_error_t err;

	if (stb_client_new(&c, &err) == -1 || stb_client_set_ca_file(c, ca, &err) == -1 ||
	    stb_client_set_identity(c, cert, key, &err) == -1 ||
	    stb_connect(c, host, port, &err) == -1) {
		fprintf(stderr, "burst %ld: %s\n", id, err.message);
		stb_client_free(c);
		return NULL;
	}
	for (long i = 0; i < per_thread; i++) {
		char note[64];
		uint64_t seq = 0;
		buf_t b;
		msg_t m;
		int rc;

		snprintf(note, sizeof(note), "burst-%ld-%ld", id, i);
		buf_init(&b, 128);
		tlv_put_str(&b, STB_TLV_NOTE_TEXT, note);
		rc = stbc_call(c, STB_MSG_ADMIN_AUDIT_NOTE, &b, &m, &err);
		buf_free(&b);
		if (rc == -1)
			break; /* the daemon went away: stop */
		msg_get_u64(&m, TLV_IX_AUDIT_SEQ, &seq);
		pthread_mutex_lock(&out_mu);
		printf("ACK %llu %s\n", (unsigned long long)seq, note);
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
	}
	stb_client_free(c);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[64];
	long n;

	if (argc != 8 || (n = atol(argv[6])) < 1 || n > 64) {
		fprintf(stderr, "usage: burst HOST PORT CA CERT KEY THREADS(1-64) WRITES\n");
		return 2;
	}
	host = argv[1];
	port = argv[2];
	ca = argv[3];
	cert = argv[4];
	key = argv[5];
	per_thread = atol(argv[7]);
	for (long i = 0; i < n; i++)
		pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i);
	for (long i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}
