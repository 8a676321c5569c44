/*
 * flowa: `stb-bench login` and `stb-bench issue` (flow A).
 *
 * login: C simulated STBs, each a thread with its own device ID, device
 * secret and persistent connections to media-gw and cert-proxyd, log in
 * again and again through libstbclient's stb_login().  Before the clock
 * starts the bench imports every STB into cert-proxyd and every subscriber
 * into media-gw as admin, and each STB logs in once: that first login
 * fetches its certificate (ca-authd issues it).  Measured logins take the
 * steady path: LOGIN_START, KEYINFO_REQ (one ECDSA sign at cert-proxyd),
 * LOGIN_FINISH (one ECDSA verify at ca-authd, a durable token at media-gw).
 *
 * issue: C connections (threads) to ca-authd, each with --cert/--key (an
 * admin or cert-proxyd identity), send CA_ISSUE for a CSR of their own, one
 * at a time; every answer is a new certificate, recorded durably.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "bench.h"
#include "msgenc.h"
#include "stb/stbclient.h"
#include "stbc.h"
#include "tlv.h"

#define FA_SECRET_LEN 32
#define FA_ID_MAX     64

typedef struct fa_thread {
	const bench_opts_t *o;
	bench_run_t *run;
	int idx;
	stb_client_t *a; /* login: media-gw; issue: ca-authd */
	stb_client_t *b; /* login: cert-proxyd */
	char device_id[FA_ID_MAX];
	char cert_id[FA_ID_MAX];
	uint8_t secret[FA_SECRET_LEN];
	uint8_t *csr; /* issue: DER */
	int csr_len;
	uint64_t first_ns; /* login: the first login, with its certificate fetch */
	int first_fetched;
	pthread_t tid;
	bench_stats_t st;
} fa_thread_t;

static char fa_prefix[32];

static void
fa_note(fa_thread_t *t, const char *what, const stb_error_t *err)
{
	if (t->st.first_err[0] == '\0')
		snprintf(t->st.first_err, sizeof(t->st.first_err), "%s %s: %s: %.160s", what,
		         t->device_id, stb_status_name(err->status), err->message);
}

/* ---- login ---- */

/* As admin: the STB and its secret into cert-proxyd, the subscriber into
 * media-gw. */
static int
fa_import(stb_client_t *cp_adm, stb_client_t *gw_adm, const fa_thread_t *t, stb_error_t *err)
{
	buf_t b;
	msg_t m;
	int rc;

	struct msgreq_CP_STB_IMPORT stb = {.DEVICE_ID = MV_STR(t->device_id),
	                                   .DEVICE_SECRET = MV_BYTES(t->secret, sizeof(t->secret)),
	                                   .ENABLED = MV_U(1),
	                                   .CERT_IDS = MV_STR(t->cert_id)};
	struct msgreq_GW_SUB_IMPORT sub = {
	    .DEVICE_ID = MV_STR(t->device_id), .CERT_ID = MV_STR(t->cert_id), .ENABLED = MV_U(1)};
	err_t e;

	buf_init(&b, 512);
	rc = msgenc_CP_STB_IMPORT(&b, &stb, &e) == -1
	         ? stbc_fail(err, e.status, "CP_STB_IMPORT: %s", e.msg)
	         : stbc_call(cp_adm, STB_MSG_CP_STB_IMPORT, &b, &m, err);
	buf_wipe(&b);
	if (rc == -1)
		return -1;
	buf_init(&b, 512);
	rc = msgenc_GW_SUB_IMPORT(&b, &sub, &e) == -1
	         ? stbc_fail(err, e.status, "GW_SUB_IMPORT: %s", e.msg)
	         : stbc_call(gw_adm, STB_MSG_GW_SUB_IMPORT, &b, &m, err);
	buf_free(&b);
	return rc;
}

static void *
fa_login_main(void *arg)
{
	fa_thread_t *t = arg;
	stb_login_result_t res;
	stb_error_t err;
	uint64_t t0 = bench_now();

	/* the first login fetches the certificate; not measured */
	if (stb_login(t->a, t->b, t->device_id, t->secret, sizeof(t->secret), &res, &err) == -1) {
		t->st.failures++;
		fa_note(t, "first login", &err);
		pthread_barrier_wait(&t->run->gate);
		pthread_barrier_wait(&t->run->gate);
		return NULL;
	}
	t->first_ns = bench_now() - t0;
	t->first_fetched = res.fetched;
	stb_login_result_clear(&res);
	t->st.up = 1;
	pthread_barrier_wait(&t->run->gate); /* ready */
	pthread_barrier_wait(&t->run->gate); /* main has set the clock */
	for (;;) {
		uint64_t now = bench_now();
		int rc;

		if (now >= t->run->t_stop)
			break;
		rc = stb_login(t->a, t->b, t->device_id, t->secret, sizeof(t->secret), &res, &err);
		stb_login_result_clear(&res);
		if (rc == -1) {
			t->st.errors++;
			fa_note(t, "login", &err);
			if (err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT)
				break; /* a connection is gone */
			continue;
		}
		if (now >= t->run->t_warm && bench_now() <= t->run->t_stop) {
			t->st.done++;
			hist_observe(&t->st.lat, (bench_now() - now) / 1000);
		}
	}
	t->st.t_end = bench_now();
	return NULL;
}

/* ---- issue ---- */

/* A P-256 key and a CSR for it (DER); the key is only needed to sign. */
static int
fa_make_csr(fa_thread_t *t)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *p;
	int ok = 0;

	if (pk != NULL && req != NULL && name != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                               (const unsigned char *)t->device_id, -1, -1, 0) == 1 &&
	    X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, pk) == 1 &&
	    X509_REQ_sign(req, pk, EVP_sha256()) > 0 &&
	    (t->csr_len = i2d_X509_REQ(req, NULL)) > 0 &&
	    (t->csr = malloc((size_t)t->csr_len)) != NULL) {
		p = t->csr;
		ok = i2d_X509_REQ(req, &p) == t->csr_len;
	}
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

static void *
fa_issue_main(void *arg)
{
	fa_thread_t *t = arg;
	stb_error_t err;
	buf_t b;
	msg_t m;
	uint64_t n = 0;

	t->st.up = 1;
	pthread_barrier_wait(&t->run->gate); /* ready */
	pthread_barrier_wait(&t->run->gate); /* main has set the clock */
	buf_init(&b, 16384);
	for (;;) {
		uint64_t now = bench_now();
		char cert_id[FA_ID_MAX + 24];

		if (now >= t->run->t_stop)
			break;
		snprintf(cert_id, sizeof(cert_id), "%s-%" PRIu64, t->cert_id, n++);
		struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(t->csr, (size_t)t->csr_len),
		                            .CERT_PROFILE = MV_STR(t->o->profile),
		                            .DEVICE_ID = MV_STR(t->device_id),
		                            .CERT_ID = MV_STR(cert_id)};
		err_t e;

		buf_reset(&b);
		if (msgenc_CA_ISSUE(&b, &q, &e) == -1) {
			stbc_fail(&err, e.status, "CA_ISSUE: %s", e.msg);
			t->st.errors++;
			fa_note(t, "CA_ISSUE", &err);
			break;
		}
		if (stbc_call(t->a, STB_MSG_CA_ISSUE, &b, &m, &err) == -1) {
			t->st.errors++;
			fa_note(t, "CA_ISSUE", &err);
			if (err.status == STB_UNAVAILABLE || err.status == STB_TIMEOUT)
				break;
			continue;
		}
		if (now >= t->run->t_warm && bench_now() <= t->run->t_stop) {
			t->st.done++;
			hist_observe(&t->st.lat, (bench_now() - now) / 1000);
		}
	}
	buf_free(&b);
	t->st.t_end = bench_now();
	return NULL;
}

/* ---- the run ---- */

static void
fa_free(fa_thread_t *t, int n)
{
	for (int i = 0; i < n; i++) {
		stb_client_free(t[i].a);
		stb_client_free(t[i].b);
		free(t[i].csr);
		OPENSSL_cleanse(t[i].secret, sizeof(t[i].secret));
	}
	free(t);
}

/* Prepares every thread (clients, imports, CSRs): 0 or -1 (printed). */
static int
fa_prepare(bench_run_t *run, fa_thread_t *t, int n, FILE *info)
{
	const bench_opts_t *o = run->o;
	stb_client_t *cp_adm = NULL, *gw_adm = NULL;
	stb_error_t err;
	int login = o->mode == BENCH_LOGIN;

	if (login &&
	    ((gw_adm = bench_client(o, o->addr, o->admin_cert, o->admin_key, 30000, &err)) ==
	         NULL ||
	     (cp_adm = bench_client(o, o->cp_addr, o->admin_cert, o->admin_key, 30000, &err)) ==
	         NULL)) {
		fprintf(stderr, "stb-bench: admin connection: %s: %s\n",
		        stb_status_name(err.status), err.message);
		stb_client_free(gw_adm);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		fa_thread_t *x = &t[i];

		x->o = o;
		x->run = run;
		x->idx = i;
		snprintf(x->device_id, sizeof(x->device_id), "%s%04d", fa_prefix, i);
		snprintf(x->cert_id, sizeof(x->cert_id), "%s%04d.media", fa_prefix, i);
		if (RAND_bytes(x->secret, sizeof(x->secret)) != 1)
			goto fail_rand;
		if (login) {
			if (fa_import(cp_adm, gw_adm, x, &err) == -1) {
				fprintf(stderr, "stb-bench: import %s: %s: %s\n", x->device_id,
				        stb_status_name(err.status), err.message);
				goto fail;
			}
			if ((x->a = bench_client(o, o->addr, NULL, NULL, 30000, &err)) == NULL ||
			    (x->b = bench_client(o, o->cp_addr, NULL, NULL, 30000, &err)) == NULL)
				goto fail_conn;
		} else {
			if (fa_make_csr(x) == -1) {
				fprintf(stderr, "stb-bench: cannot make a CSR\n");
				goto fail;
			}
			if ((x->a = bench_client(o, o->addr, o->cert, o->key, 30000, &err)) == NULL)
				goto fail_conn;
		}
	}
	if (login)
		fprintf(info, "stb-bench: %d STBs imported into cert-proxyd and media-gw\n", n);
	stb_client_free(cp_adm);
	stb_client_free(gw_adm);
	return 0;
fail_rand:
	fprintf(stderr, "stb-bench: RAND_bytes failed\n");
	goto fail;
fail_conn:
	fprintf(stderr, "stb-bench: connect: %s: %s\n", stb_status_name(err.status), err.message);
fail:
	stb_client_free(cp_adm);
	stb_client_free(gw_adm);
	return -1;
}

int
flowa_run(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	int n = o->conns, login = o->mode == BENCH_LOGIN, rc = 1;
	fa_thread_t *t = calloc((size_t)n, sizeof(*t));
	bench_stats_t tot;
	uint64_t first_max = 0, first_sum = 0, fetched = 0;
	uint8_t rnd[4];

	if (t == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		free(t);
		return 1;
	}
	snprintf(fa_prefix, sizeof(fa_prefix), "bench-%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2],
	         rnd[3]);
	if (fa_prepare(run, t, n, info) == -1) {
		fa_free(t, n);
		return 1;
	}
	pthread_barrier_init(&run->gate, NULL, (unsigned)n + 1);
	{
		uint64_t t0 = bench_now();

		for (int i = 0; i < n; i++)
			pthread_create(&t[i].tid, NULL, login ? fa_login_main : fa_issue_main,
			               &t[i]);
		pthread_barrier_wait(&run->gate); /* login: every first login is done */
		if (login)
			fprintf(info,
			        "stb-bench: first logins (certificate fetch) done in %.1f s\n",
			        (double)(bench_now() - t0) / 1e9);
	}
	run->t_warm = bench_now() + (uint64_t)(o->warmup * 1e9);
	run->t_stop = run->t_warm + (uint64_t)(o->duration * 1e9);
	fflush(info);
	pthread_barrier_wait(&run->gate); /* go */
	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < n; i++) {
		pthread_join(t[i].tid, NULL);
		bench_stats_add(&tot, &t[i].st);
		if (t[i].first_ns > first_max)
			first_max = t[i].first_ns;
		first_sum += t[i].first_ns;
		fetched += (uint64_t)t[i].first_fetched;
	}
	{
		double rate = (double)tot.done / o->duration;
		double p50 = (double)hist_quantile(&tot.lat, 0.50);
		double p99 = (double)hist_quantile(&tot.lat, 0.99);
		const char *what = login ? "logins" : "certificates";

		if (o->json)
			printf("{\"mode\":\"%s\",\"clients\":%d,\"ready\":%" PRIu64
			       ",\"seconds\":%.3f,\"done\":%" PRIu64
			       ",\"per_s\":%.1f,\"p50_us\":%.1f,"
			       "\"p99_us\":%.1f,\"errors\":%" PRIu64 ",\"failures\":%" PRIu64
			       ",\"first_fetched\":%" PRIu64 ",\"first_login_avg_us\":%.1f}\n",
			       login ? "login" : "issue", n, tot.up, o->duration, tot.done, rate,
			       p50, p99, tot.errors, tot.failures, fetched,
			       tot.up > 0 ? (double)first_sum / (double)tot.up / 1000.0 : 0.0);
		else {
			printf("%s: %" PRIu64 "/%d clients, %.1f %s/s over %.1f s (%" PRIu64
			       "), p50 %.0f us, p99 %.0f us\n",
			       login ? "login" : "issue", tot.up, n, rate, what, o->duration,
			       tot.done, p50, p99);
			if (login)
				printf("first logins: %" PRIu64
				       " fetched a certificate, average %.1f ms, "
				       "slowest %.1f ms\n",
				       fetched,
				       tot.up > 0 ? (double)first_sum / (double)tot.up / 1e6 : 0.0,
				       (double)first_max / 1e6);
			printf("errors %" PRIu64 ", failures %" PRIu64 "\n", tot.errors,
			       tot.failures);
		}
		if (tot.first_err[0] != '\0')
			fprintf(stderr, "stb-bench: first error: %s\n", tot.first_err);
	}
	rc = tot.done > 0 && tot.errors == 0 && tot.failures == 0 ? 0 : 1;
	pthread_barrier_destroy(&run->gate);
	fa_free(t, n);
	return rc;
}
