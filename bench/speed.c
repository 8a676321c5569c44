/*
 * speed: the crypto bound of a full handshake on this machine, measured in
 * process with the OpenSSL the daemons link: ECDSA P-256 sign and verify,
 * X25519 key generation and derivation, one thread, a fixed time each.
 * `openssl speed -elapsed ecdsap256 ecdhx25519` measures the same sign,
 * verify and derive (it signs a 20-byte digest; the cost does not depend on
 * it).  Both divide by wall-clock time; without -elapsed, openssl speed
 * divides by user CPU time and reads some 10% higher on a VM.
 *
 * A full TLS 1.3 handshake as the suite runs it (X25519, a P-256 leaf
 * signed by an issuing CA signed by the root, no client certificate):
 *   server: 1 sign (CertificateVerify) + 1 X25519 keygen + 1 derive
 *   client: 3 verify (leaf, issuing CA, CertificateVerify) + keygen + derive
 * TLS 1.2 ECDHE-ECDSA costs the same (the sign covers ServerKeyExchange).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "bench.h"

#define BENCH_SPEED_THREADS_MAX 64

typedef struct speed_fig {
	const char *name;
	const char *key; /* JSON key */
	double per_s;
} speed_fig_t;

enum { SP_SIGN, SP_VERIFY, SP_KEYGEN, SP_DERIVE, SP_COUNT };

/* Calls op(arg) in batches of 32 for `secs`; operations per second, or -1. */
static double
speed_loop(int (*op)(void *), void *arg, double secs)
{
	uint64_t t0 = bench_now(), stop = t0 + (uint64_t)(secs * 1e9), now;
	uint64_t n = 0;

	do {
		for (int i = 0; i < 32; i++)
			if (op(arg) != 1)
				return -1;
		n += 32;
		now = bench_now();
	} while (now < stop);
	return (double)n * 1e9 / (double)(now - t0);
}

typedef struct speed_sig {
	EVP_PKEY_CTX *ctx;
	unsigned char tbs[32]; /* a SHA-256 sized digest */
	unsigned char sig[80];
	size_t siglen;
} speed_sig_t;

static int
speed_sign_once(void *arg)
{
	speed_sig_t *s = arg;

	s->siglen = sizeof(s->sig);
	return EVP_PKEY_sign(s->ctx, s->sig, &s->siglen, s->tbs, sizeof(s->tbs));
}

static int
speed_verify_once(void *arg)
{
	speed_sig_t *s = arg;

	return EVP_PKEY_verify(s->ctx, s->sig, s->siglen, s->tbs, sizeof(s->tbs));
}

static int
speed_keygen_once(void *arg)
{
	EVP_PKEY *pk = NULL;
	int rc = EVP_PKEY_keygen(arg, &pk);

	EVP_PKEY_free(pk);
	return rc;
}

typedef struct speed_dh {
	EVP_PKEY_CTX *ctx;
	unsigned char secret[32];
} speed_dh_t;

static int
speed_derive_once(void *arg)
{
	speed_dh_t *d = arg;
	size_t len = sizeof(d->secret);

	return EVP_PKEY_derive(d->ctx, d->secret, &len) == 1 && len == 32;
}

static int
speed_ecdsa(double secs, speed_fig_t *f)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	speed_sig_t s;
	int rc = -1;

	memset(s.tbs, 0x5a, sizeof(s.tbs));
	s.ctx = key != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
	if (s.ctx != NULL && EVP_PKEY_sign_init(s.ctx) == 1 &&
	    (f[SP_SIGN].per_s = speed_loop(speed_sign_once, &s, secs)) > 0 &&
	    EVP_PKEY_verify_init(s.ctx) == 1 &&
	    (f[SP_VERIFY].per_s = speed_loop(speed_verify_once, &s, secs)) > 0)
		rc = 0;
	EVP_PKEY_CTX_free(s.ctx);
	EVP_PKEY_free(key);
	return rc;
}

static int
speed_x25519(double secs, speed_fig_t *f)
{
	EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY_CTX *kg = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
	speed_dh_t d;
	int rc = -1;

	d.ctx = a != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, a, NULL) : NULL;
	if (kg != NULL && EVP_PKEY_keygen_init(kg) == 1 && b != NULL && d.ctx != NULL &&
	    (f[SP_KEYGEN].per_s = speed_loop(speed_keygen_once, kg, secs)) > 0 &&
	    EVP_PKEY_derive_init(d.ctx) == 1 && EVP_PKEY_derive_set_peer(d.ctx, b) == 1 &&
	    (f[SP_DERIVE].per_s = speed_loop(speed_derive_once, &d, secs)) > 0)
		rc = 0;
	EVP_PKEY_CTX_free(d.ctx);
	EVP_PKEY_CTX_free(kg);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	return rc;
}

/* P-256 ECDH (the CMS envelope to a device key): keygen, derive. */
static int
speed_p256dh(double secs, speed_rates_t *r)
{
	EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY_CTX *kg = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	speed_dh_t d;
	int rc = -1;

	d.ctx = a != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, a, NULL) : NULL;
	if (kg != NULL && EVP_PKEY_keygen_init(kg) == 1 &&
	    EVP_PKEY_CTX_set_group_name(kg, "P-256") == 1 && b != NULL && d.ctx != NULL &&
	    (r->p256_keygen = speed_loop(speed_keygen_once, kg, secs)) > 0 &&
	    EVP_PKEY_derive_init(d.ctx) == 1 && EVP_PKEY_derive_set_peer(d.ctx, b) == 1 &&
	    (r->p256_derive = speed_loop(speed_derive_once, &d, secs)) > 0)
		rc = 0;
	EVP_PKEY_CTX_free(d.ctx);
	EVP_PKEY_CTX_free(kg);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	return rc;
}

int
speed_measure(double secs, speed_rates_t *r)
{
	speed_fig_t f[SP_COUNT];

	memset(f, 0, sizeof(f));
	if (speed_ecdsa(secs, f) == -1 || speed_x25519(secs, f) == -1 ||
	    speed_p256dh(secs, r) == -1)
		return -1;
	r->sign = f[SP_SIGN].per_s;
	r->verify = f[SP_VERIFY].per_s;
	r->x25519_keygen = f[SP_KEYGEN].per_s;
	r->x25519_derive = f[SP_DERIVE].per_s;
	return 0;
}

int
speed_run(const bench_opts_t *o)
{
	speed_fig_t f[SP_COUNT] = {
	    {"ecdsa-p256 sign", "ecdsa_p256_sign_per_s", 0},
	    {"ecdsa-p256 verify", "ecdsa_p256_verify_per_s", 0},
	    {"x25519 keygen", "x25519_keygen_per_s", 0},
	    {"x25519 derive", "x25519_derive_per_s", 0},
	};
	double secs = o->duration_set ? o->duration : 2.0, srv, cli, both, login;
	FILE *info = o->json ? stderr : stdout;

	fprintf(info, "speed: %s, 1 thread, %.1f s per operation\n",
	        OpenSSL_version(OPENSSL_VERSION), secs);
	if (speed_ecdsa(secs, f) == -1 || speed_x25519(secs, f) == -1) {
		fprintf(stderr, "stb-bench: speed: OpenSSL failed: %s\n",
		        ERR_error_string(ERR_get_error(), NULL));
		return 1;
	}
	/* seconds of one core per handshake, then handshakes per second */
	srv = 1 / f[SP_SIGN].per_s + 1 / f[SP_KEYGEN].per_s + 1 / f[SP_DERIVE].per_s;
	cli = 3 / f[SP_VERIFY].per_s + 1 / f[SP_KEYGEN].per_s + 1 / f[SP_DERIVE].per_s;
	both = srv + cli;
	/* flow A: cert-proxyd signs the key info, ca-authd verifies it */
	login = 1 / f[SP_SIGN].per_s + 1 / f[SP_VERIFY].per_s;
	if (o->json) {
		printf("{\"mode\":\"speed\",\"openssl\":\"%s\",\"seconds\":%.1f",
		       OpenSSL_version(OPENSSL_VERSION), secs);
		for (int i = 0; i < SP_COUNT; i++)
			printf(",\"%s\":%.0f", f[i].key, f[i].per_s);
		printf(",\"bound_server_hs_per_core_s\":%.0f,\"bound_client_hs_per_core_s\":%.0f,"
		       "\"bound_both_hs_per_core_s\":%.0f,\"bound_login_per_core_s\":%.0f}\n",
		       1 / srv, 1 / cli, 1 / both, 1 / login);
		return 0;
	}
	for (int i = 0; i < SP_COUNT; i++)
		printf("speed: %s %.0f/s\n", f[i].name, f[i].per_s);
	printf("speed: handshake crypto bound per core: server %.0f/s (1 sign + 1 keygen + 1 "
	       "derive), client %.0f/s (3 verify + 1 keygen + 1 derive), both on one core %.0f/s\n",
	       1 / srv, 1 / cli, 1 / both);
	printf("speed: login crypto bound per core: %.0f/s (1 sign + 1 verify)\n", 1 / login);
	return 0;
}

typedef struct speed_par {
	pthread_barrier_t *gate;
	double secs;
	double per_s;
	double cpu_s; /* the thread's CPU time over the loop */
} speed_par_t;

static double
speed_thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
speed_verify_thread(void *arg)
{
	speed_par_t *p = arg;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	speed_sig_t s;

	p->per_s = -1;
	memset(s.tbs, 0x5a, sizeof(s.tbs));
	s.ctx = key != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
	pthread_barrier_wait(p->gate);
	if (s.ctx != NULL && EVP_PKEY_sign_init(s.ctx) == 1 && speed_sign_once(&s) == 1 &&
	    EVP_PKEY_verify_init(s.ctx) == 1) {
		double c0 = speed_thread_cpu();

		p->per_s = speed_loop(speed_verify_once, &s, p->secs);
		p->cpu_s = speed_thread_cpu() - c0;
	}
	EVP_PKEY_CTX_free(s.ctx);
	EVP_PKEY_free(key);
	return NULL;
}

double
speed_verify_bound(int threads, double secs, double *per_cpu_s)
{
	speed_par_t p[BENCH_SPEED_THREADS_MAX];
	pthread_t tid[BENCH_SPEED_THREADS_MAX];
	pthread_barrier_t gate;
	double sum = 0, ops = 0, cpu = 0;

	if (threads < 1 || threads > BENCH_SPEED_THREADS_MAX)
		threads = threads < 1 ? 1 : BENCH_SPEED_THREADS_MAX;
	pthread_barrier_init(&gate, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		p[i] = (speed_par_t){&gate, secs, -1, 0};
		pthread_create(&tid[i], NULL, speed_verify_thread, &p[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		sum = p[i].per_s > 0 && sum >= 0 ? sum + p[i].per_s : -1;
		ops += p[i].per_s * secs;
		cpu += p[i].cpu_s;
	}
	pthread_barrier_destroy(&gate);
	if (per_cpu_s != NULL)
		*per_cpu_s = cpu > 0 ? ops / cpu : -1;
	return sum;
}
