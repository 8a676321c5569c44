/*
 * keysync: `stb-bench keysync` (flow C).
 *
 * C simulated terminals (threads, -c), each with its own anonymous TLS
 * connection to keymgmtd (-a), sync keys one after another with
 * libstbclient's stb_keysync(): every sync binds a key not bound before, so
 * each answer is a durable bind (binding + push row in one commit) and one
 * push towards the app platform.  Before the clock starts each thread, as
 * admin (--admin-cert/--admin-key), imports its share of the -n keys
 * (KM_KEY_IMPORT batches) and registers one MDN per key for --app
 * (KM_SERVICE_REGISTER).
 *
 * Figures: binds/s (syncs answered OK per second, from the first sync sent
 * to the last answer) with p50/p99 of the sync round trip; and, with
 * --platform HOST:PORT (the reference app platform, tests/peers, polled as
 * admin with ADMIN_STATS: every stored push is one store write there),
 * end-to-end pushes/s: pushes the platform stored and acknowledged, from
 * the first sync sent until the last of them was stored.  Next to them,
 * the crypto bound measured in the same run (one thread), per bind:
 * HMAC-SHA256 verify of the proof and AES-256-GCM unseal of the key (the
 * durable write is not crypto and not counted); per push: the CMS envelope
 * of one KEY_PUSH_BATCH to the platform's certificate (--platform-cert) and
 * the platform's opening of it (--platform-key), each divided by the batch
 * size keymgmtd uses (--push-batch), plus the key's unseal and the
 * platform's seal.
 *
 * For the fault tests: --acks FILE writes "ACK key_id mdn app_id push_id"
 * for every sync answered OK, and --retry-s S retries a sync whose
 * connection broke (reconnecting) for up to S seconds.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "bench.h"
#include "cmsmsg.h"
#include "keysync.h"
#include "msgenc.h"
#include "stb/stbclient.h"
#include "stbc.h"
#include "tlv.h"

#define KS_KEY_LEN     32
#define KS_BATCH       256 /* keys per KM_KEY_IMPORT (about 20 KB) */
#define KS_ID_CAP      48
#define KS_MDN_BASE    UINT64_C(8610000000000)
#define KS_PUSH_WAIT_S 120 /* the platform must have stored them by then */

typedef struct ks_key {
	char key_id[KS_ID_CAP];
	char mdn[KS_ID_CAP];
	uint8_t key[KS_KEY_LEN];
} ks_key_t;

typedef struct ks_thread {
	const bench_opts_t *o;
	bench_run_t *run;
	int idx;
	ks_key_t *keys; /* its share */
	size_t nkeys;
	stb_client_t *km;
	pthread_t tid;
	uint64_t t_last; /* ns: the last answer */
	bench_stats_t st;
} ks_thread_t;

static char ks_prefix[16];

static void
ks_note(ks_thread_t *t, const char *what, const stb_error_t *err)
{
	if (t->st.first_err[0] == '\0')
		snprintf(t->st.first_err, sizeof(t->st.first_err), "%s: %s: %.180s", what,
		         stb_status_name(err->status), err->message);
}

/* One KM_KEY_IMPORT of keys[0..n): repeated KM_KEY_ENTRY, each the nested
 * KM_KEY_ID and KM_KEY (PROTOCOL.md; msgenc has no repeated fields). */
static int
ks_import(stb_client_t *adm, const ks_key_t *keys, size_t n, stb_error_t *err)
{
	buf_t b, e;
	msg_t m;
	int rc = 0;

	buf_init(&b, 65536);
	buf_init(&e, 256);
	for (size_t i = 0; i < n && rc == 0; i++) {
		buf_reset(&e);
		if (tlv_put_str(&e, STB_TLV_KM_KEY_ID, keys[i].key_id) == -1 ||
		    tlv_put(&e, STB_TLV_KM_KEY, keys[i].key, KS_KEY_LEN) == -1 ||
		    tlv_put(&b, STB_TLV_KM_KEY_ENTRY, e.data, e.len) == -1)
			rc = stbc_fail(err, STB_TOO_LARGE, "import batch too large");
	}
	if (rc == 0)
		rc = stbc_call(adm, STB_MSG_KM_KEY_IMPORT, &b, &m, err);
	buf_wipe(&e);
	buf_wipe(&b);
	return rc;
}

static int
ks_register(stb_client_t *adm, const char *mdn, const char *app, stb_error_t *err)
{
	struct msgreq_KM_SERVICE_REGISTER q = {.KM_MDN = MV_STR(mdn), .KM_APP_ID = MV_STR(app)};
	buf_t b;
	msg_t m;
	err_t e;
	int rc;

	buf_init(&b, 256);
	rc = msgenc_KM_SERVICE_REGISTER(&b, &q, &e) == -1
	         ? stbc_fail(err, e.status, "KM_SERVICE_REGISTER: %s", e.msg)
	         : stbc_call(adm, STB_MSG_KM_SERVICE_REGISTER, &b, &m, err);
	buf_free(&b);
	return rc;
}

/* Before the clock: the thread's keys imported, its MDNs registered, its
 * terminal connection up. */
static int
ks_prepare(ks_thread_t *t)
{
	const bench_opts_t *o = t->o;
	stb_client_t *adm;
	stb_error_t err;
	int rc = 0;

	if ((adm = bench_client(o, o->addr, o->admin_cert, o->admin_key, 60000, &err)) == NULL) {
		ks_note(t, "admin connect", &err);
		return -1;
	}
	for (size_t i = 0; i < t->nkeys && rc == 0; i += KS_BATCH)
		if ((rc = ks_import(adm, t->keys + i,
		                    t->nkeys - i < KS_BATCH ? t->nkeys - i : KS_BATCH, &err)) == -1)
			ks_note(t, "import", &err);
	for (size_t i = 0; i < t->nkeys && rc == 0; i++)
		if ((rc = ks_register(adm, t->keys[i].mdn, o->app, &err)) == -1)
			ks_note(t, "register", &err);
	stb_client_free(adm);
	if (rc == 0 && (t->km = bench_client(o, o->addr, NULL, NULL, 60000, &err)) == NULL) {
		ks_note(t, "terminal connect", &err);
		rc = -1;
	}
	return rc;
}

static pthread_mutex_t ks_acks_mu = PTHREAD_MUTEX_INITIALIZER;

/* --acks: one line per acknowledged sync, for a test to compare with the
 * platform's rows. */
static void
ks_ack(const ks_thread_t *t, const ks_key_t *k, const stb_keysync_result_t *res)
{
	if (t->o->acks == NULL)
		return;
	pthread_mutex_lock(&ks_acks_mu);
	fprintf(t->o->acks, "ACK %s %s %s %" PRIu64 "\n", k->key_id, k->mdn, res->app_id,
	        res->push_id);
	fflush(t->o->acks);
	pthread_mutex_unlock(&ks_acks_mu);
}

/* --retry-s: whether a failed sync is tried again, after reconnecting when
 * the connection went (keymgmtd restarting).  The proof of the retry is
 * fresh only in the next second: a REPLAY after a lost answer is retried
 * once the clock has moved on. */
static int
ks_retry(ks_thread_t *t, const stb_error_t *err, uint64_t deadline)
{
	if (t->o->retry_s <= 0 || bench_now() > deadline)
		return 0;
	switch (err->status) {
	case STB_UNAVAILABLE:
	case STB_TIMEOUT:
	case STB_INTERNAL:
		t->st.lost++;
		stb_disconnect(t->km);
		usleep(20000);
		(void)stb_connect_addr(t->km, t->o->addr, &(stb_error_t){0});
		return 1;
	case STB_REPLAY:
		usleep(250000);
		return 1;
	default:
		return 0;
	}
}

static void *
ks_main(void *arg)
{
	ks_thread_t *t = arg;
	stb_keysync_result_t res;
	stb_error_t err;
	uint64_t deadline;

	if (ks_prepare(t) == 0)
		t->st.up = 1;
	else
		t->st.failures++;
	pthread_barrier_wait(&t->run->gate); /* ready */
	pthread_barrier_wait(&t->run->gate); /* main has set the clock */
	deadline = bench_now() + (uint64_t)(t->o->retry_s * 1e9);
	for (size_t i = 0; t->st.up && i < t->nkeys; i++) {
		const ks_key_t *k = &t->keys[i];
		uint64_t t0 = bench_now();
		int tries = 0, rc;

		while ((rc = stb_keysync(t->km, k->key_id, k->mdn, t->o->app, k->key, KS_KEY_LEN, 0,
		                         &res, &err)) == -1 &&
		       (err.status != STB_REPLAY || tries > 0) && ks_retry(t, &err, deadline))
			tries++;
		if (rc == -1) {
			t->st.errors++;
			ks_note(t, "sync", &err);
			if (err.status == STB_UNAVAILABLE)
				break; /* the connection is gone */
			continue;
		}
		t->t_last = bench_now();
		t->st.done++;
		hist_observe(&t->st.lat, (t->t_last - t0) / 1000);
		ks_ack(t, k, &res);
	}
	return NULL;
}

/* The platform's stored pushes so far: its store writes (ADMIN_STATS). */
static int
ks_platform_writes(stb_client_t *p, uint64_t *writes, stb_error_t *err)
{
	buf_t b;
	msg_t m;

	buf_init(&b, 16);
	if (stbc_call(p, STB_MSG_ADMIN_STATS, &b, &m, err) == -1) {
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	*writes = 0;
	msg_get_u64(&m, TLV_IX_STORE_WRITES, writes);
	return 0;
}

/* ---- the crypto bound ---- */

/* The crypto of one bind (HMAC verify + unseal: the durable write's share
 * is not crypto and not in it) and of one push (the batch's envelope and
 * its opening, per key at the batch size keymgmtd uses, plus the key's
 * unseal at keymgmtd and its seal at the platform, AES-256-GCM each). */
typedef struct ks_bound {
	double hmac_us, unseal_us;   /* per bind */
	int batch;                   /* keys per KEY_PUSH_BATCH */
	double envelope_us, open_us; /* per key: one batch's / batch */
	double seal_us;              /* per key, at the platform */
} ks_bound_t;

static double
ks_bind_us(const ks_bound_t *bd)
{
	return bd->hmac_us + bd->unseal_us;
}

static double
ks_push_us(const ks_bound_t *bd)
{
	return bd->envelope_us + bd->open_us + bd->unseal_us + bd->seal_us;
}

/* A batch's plaintext as keymgmtd builds it: n KM_PUSH_ENTRY TLVs. */
static int
ks_batch_plain(const uint8_t *key, int n, buf_t *out)
{
	err_t e;

	for (int i = 0; i < n; i++) {
		char kid[KS_ID_CAP];
		struct msgreq_KM_KEY_PUSH q;
		buf_t b;
		int rc;

		snprintf(kid, sizeof(kid), "kb00000000-%07d", i);
		q = (struct msgreq_KM_KEY_PUSH){.KM_PUSH_ID = MV_U(100000 + i),
		                                .KM_MDN = MV_STR("8613800000001"),
		                                .KM_KEY_ID = MV_STR(kid),
		                                .KM_APP_ID = MV_STR("bench.app"),
		                                .KM_KEY = MV_BYTES(key, KS_KEY_LEN)};
		buf_init(&b, 1024);
		rc = msgenc_KM_KEY_PUSH(&b, &q, &e);
		if (rc == 0)
			rc = tlv_put(out, STB_TLV_KM_PUSH_ENTRY, b.data, b.len);
		buf_wipe(&b);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static double
ks_secs(uint64_t t0)
{
	return (double)(bench_now() - t0) / 1e9;
}

#define KS_LOOP(out_us, secs, body)                                                                \
	do {                                                                                       \
		uint64_t t0_ = bench_now(), n_ = 0;                                                \
		while (ks_secs(t0_) < (secs)) {                                                    \
			for (int k_ = 0; k_ < 64; k_++, n_++) {                                    \
				body;                                                              \
			}                                                                          \
		}                                                                                  \
		(out_us) = ks_secs(t0_) * 1e6 / (double)n_;                                        \
	} while (0)

static X509 *
ks_read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	return x;
}

static EVP_PKEY *
ks_read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	return k;
}

/* The same calls keymgmtd and the platform make for one sync, one thread,
 * secs each. */
static int
ks_bound_measure(const bench_opts_t *o, double secs, ks_bound_t *bd, FILE *info)
{
	uint8_t key[KS_KEY_LEN], mac[KEYSYNC_MAC_LEN], kek[32], iv[12], tag[16], ct[KS_KEY_LEN],
	    pt[KS_KEY_LEN];
	EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	X509 *cert = o->platform_cert != NULL ? ks_read_cert(o->platform_cert) : NULL;
	EVP_PKEY *pk = o->platform_key != NULL ? ks_read_key(o->platform_key) : NULL;
	static const char aad[] = "bench-key-0000001";
	buf_t env, out, plain;
	err_t e;
	int len, bad = 0;

	memset(bd, 0, sizeof(*bd));
	bd->batch = o->push_batch > 0 ? o->push_batch : 64;
	if (gcm == NULL || cx == NULL || RAND_bytes(key, sizeof(key)) != 1 ||
	    RAND_bytes(kek, sizeof(kek)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1) {
		EVP_CIPHER_free(gcm);
		EVP_CIPHER_CTX_free(cx);
		return -1;
	}
	keysync_mac(key, sizeof(key), "bench-key-0000001", "8613800000001", "bench.app", 1764643200,
	            mac, &e);
	KS_LOOP(bd->hmac_us, secs,
	        bad |= keysync_mac_verify(key, sizeof(key), "bench-key-0000001", "8613800000001",
	                                  "bench.app", 1764643200, mac, sizeof(mac), &e));
	/* seal once as sealed.c does (AES-256-GCM, the row's ID as AAD), then open */
	EVP_EncryptInit_ex2(cx, gcm, kek, iv, NULL);
	EVP_EncryptUpdate(cx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad));
	EVP_EncryptUpdate(cx, ct, &len, key, (int)sizeof(key));
	EVP_EncryptFinal_ex(cx, ct + len, &len);
	EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag);
	KS_LOOP(bd->unseal_us, secs, {
		EVP_DecryptInit_ex2(cx, gcm, kek, iv, NULL);
		EVP_DecryptUpdate(cx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad));
		EVP_DecryptUpdate(cx, pt, &len, ct, (int)sizeof(ct));
		EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag);
		bad |= EVP_DecryptFinal_ex(cx, pt + len, &len) != 1;
	});
	/* the platform seals each key it stores (sealed.c: AES-256-GCM) */
	KS_LOOP(bd->seal_us, secs, {
		EVP_EncryptInit_ex2(cx, gcm, kek, iv, NULL);
		EVP_EncryptUpdate(cx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad));
		EVP_EncryptUpdate(cx, ct, &len, key, (int)sizeof(key));
		EVP_EncryptFinal_ex(cx, ct + len, &len);
		EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag);
	});
	buf_init(&env, CMSMSG_DER_MAX);
	buf_init(&out, CMSMSG_CONTENT_MAX);
	buf_init(&plain, CMSMSG_CONTENT_MAX);
	bad |= ks_batch_plain(key, bd->batch, &plain);
	if (cert != NULL) {
		/* one batch's envelope (CBC, as keymgmtd makes it) and opening */
		KS_LOOP(bd->envelope_us, secs, {
			buf_reset(&env);
			bad |= cmsmsg_encrypt(cert, plain.data, plain.len, CMSMSG_AES256_CBC, &env,
			                      &e);
		});
		if (pk != NULL)
			KS_LOOP(bd->open_us, secs, {
				buf_reset(&out);
				bad |= cmsmsg_decrypt(pk, cert, env.data, env.len, &out, &e);
			});
		bd->envelope_us /= bd->batch;
		bd->open_us /= bd->batch;
	} else
		fprintf(info, "stb-bench: no --platform-cert: the CMS envelope is not measured\n");
	buf_wipe(&out);
	buf_wipe(&plain);
	buf_free(&env);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(pt, sizeof(pt));
	X509_free(cert);
	EVP_PKEY_free(pk);
	EVP_CIPHER_CTX_free(cx);
	EVP_CIPHER_free(gcm);
	return bad ? -1 : 0;
}

/* ---- the run ---- */

static ks_key_t *
ks_keys_new(uint64_t n)
{
	ks_key_t *k = calloc(n, sizeof(*k));
	uint8_t r[4];

	if (k == NULL || RAND_bytes(r, sizeof(r)) != 1) {
		free(k);
		return NULL;
	}
	/* key IDs unique per run, so a second run on the same state binds anew */
	snprintf(ks_prefix, sizeof(ks_prefix), "kb%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(k[i].key_id, sizeof(k[i].key_id), "%s-%07" PRIu64, ks_prefix, i);
		snprintf(k[i].mdn, sizeof(k[i].mdn), "%" PRIu64,
		         KS_MDN_BASE +
		             ((uint64_t)r[0] << 24 | (uint64_t)r[1] << 16) % UINT64_C(1000000000) +
		             i);
		if (RAND_bytes(k[i].key, KS_KEY_LEN) != 1) {
			free(k);
			return NULL;
		}
	}
	return k;
}

/* CPU seconds of the server (--server-pid) and of the bench over the syncs
 * and their pushes; -1 where not measured. */
typedef struct ks_cpu {
	double server_s, bench_s;
} ks_cpu_t;

static void
ks_cpu_now(const bench_opts_t *o, ks_cpu_t *c)
{
	c->server_s = o->server_pid > 0 ? bench_proc_cpu(o->server_pid) : -1;
	c->bench_s = bench_proc_cpu((long)getpid());
}

static void
ks_cpu_since(const bench_opts_t *o, const ks_cpu_t *c0, ks_cpu_t *d)
{
	ks_cpu_now(o, d);
	d->server_s = d->server_s >= 0 && c0->server_s >= 0 ? d->server_s - c0->server_s : -1;
	d->bench_s = d->bench_s >= 0 && c0->bench_s >= 0 ? d->bench_s - c0->bench_s : -1;
}

/* microseconds of CPU per sync, or -1 */
static double
ks_us_per(double cpu_s, uint64_t n)
{
	return cpu_s >= 0 && n > 0 ? cpu_s * 1e6 / (double)n : -1;
}

static void
ks_report(const bench_opts_t *o, uint64_t binds, uint64_t errors, double bsecs, const hist_t *h,
          uint64_t pushes, double psecs, const ks_bound_t *bd, int ncpu, const ks_cpu_t *cpu,
          const char *first_err)
{
	double per_sync = ks_bind_us(bd) + ks_push_us(bd);
	double bound1 = per_sync > 0 ? 1e6 / per_sync : 0;
	double bind1 = ks_bind_us(bd) > 0 ? 1e6 / ks_bind_us(bd) : 0;
	double push1 = ks_push_us(bd) > 0 ? 1e6 / ks_push_us(bd) : 0;
	double brate = bsecs > 0 ? (double)binds / bsecs : 0;
	double prate = psecs > 0 ? (double)pushes / psecs : 0;

	if (o->json) {
		printf(
		    "{\"mode\":\"keysync\",\"terminals\":%d,\"binds\":%" PRIu64
		    ",\"bind_seconds\":%.3f,\"binds_per_s\":%.1f,\"errors\":%" PRIu64
		    ",\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},\"pushes\":%" PRIu64
		    ",\"push_seconds\":%.3f,\"pushes_per_s\":%.1f,\"bound\":{\"hmac_verify_us\":%."
		    "2f,"
		    "\"unseal_us\":%.2f,\"bind_crypto_us\":%.2f,\"bind_bound_one_core\":%.1f,"
		    "\"batch\":%d,\"envelope_us\":%.2f,\"platform_open_us\":%.2f,"
		    "\"platform_seal_us\":%.2f,\"push_crypto_us\":%.2f,"
		    "\"push_bound_one_core\":%.1f,\"syncs_per_s_one_core\":%.1f,\"cores\":%d,"
		    "\"syncs_per_s\":%.1f},\"cpu_us_per_sync\":{\"server\":%.1f,\"bench\":%.1f}}\n",
		    o->conns, binds, bsecs, brate, errors, (double)hist_quantile(h, 0.5),
		    (double)hist_quantile(h, 0.99), (double)h->max_us, pushes, psecs, prate,
		    bd->hmac_us, bd->unseal_us, ks_bind_us(bd), bind1, bd->batch, bd->envelope_us,
		    bd->open_us, bd->seal_us, ks_push_us(bd), push1, bound1, ncpu, bound1 * ncpu,
		    ks_us_per(cpu->server_s, binds), ks_us_per(cpu->bench_s, binds));
		return;
	}
	printf("keysync: %d terminals, %" PRIu64 " binds in %.2f s: %.0f binds/s, p50 %" PRIu64
	       " us, p99 %" PRIu64 " us, max %" PRIu64 " us, errors %" PRIu64 "\n",
	       o->conns, binds, bsecs, brate, hist_quantile(h, 0.5), hist_quantile(h, 0.99),
	       h->max_us, errors);
	if (o->platform_addr != NULL)
		printf("keysync: %" PRIu64
		       " pushes stored and acknowledged by the platform in %.2f s "
		       "(from the first sync): %.0f pushes/s end to end\n",
		       pushes, psecs, prate);
	printf("keysync: crypto bound (one thread) per bind: HMAC-SHA256 verify %.2f us + "
	       "AES-256-GCM unseal %.2f us = %.2f us, %.0f binds/s per core (the durable "
	       "write's share is not crypto and not in it)\n",
	       bd->hmac_us, bd->unseal_us, ks_bind_us(bd), bind1);
	printf("keysync: crypto bound (one thread) per push, batches of %d: CMS envelope %.2f us + "
	       "platform open %.2f us (one batch's / %d) + unseal %.2f us + platform seal %.2f "
	       "us = %.2f us, %.0f pushes/s per core\n",
	       bd->batch, bd->envelope_us, bd->open_us, bd->batch, bd->unseal_us, bd->seal_us,
	       ks_push_us(bd), push1);
	printf("keysync: bind and push together: %.0f syncs/s per core, %.0f on %d cores\n", bound1,
	       bound1 * ncpu, ncpu);
	if (cpu->server_s >= 0)
		printf("keysync: CPU per sync, first sync to last push: server %.1f us, bench %.1f "
		       "us\n",
		       ks_us_per(cpu->server_s, binds), ks_us_per(cpu->bench_s, binds));
	if (first_err[0] != '\0')
		printf("keysync: first error: %s\n", first_err);
}

/* Waits until the platform has stored want pushes past base; the time
 * from t0 (ns) to then in *secs, and the count in *got. */
static int
ks_wait_pushes(const bench_opts_t *o, uint64_t base, uint64_t want, uint64_t t0, uint64_t *got,
               double *secs, FILE *info)
{
	stb_client_t *p;
	stb_error_t err;
	uint64_t w = base, deadline = bench_now() + (uint64_t)KS_PUSH_WAIT_S * 1000000000u;

	if ((p = bench_client(o, o->platform_addr, o->admin_cert, o->admin_key, 60000, &err)) ==
	    NULL) {
		fprintf(info, "stb-bench: platform %s: %s\n", o->platform_addr, err.message);
		return -1;
	}
	while (ks_platform_writes(p, &w, &err) == 0 && w - base < want && bench_now() < deadline)
		usleep(2000);
	*secs = (double)(bench_now() - t0) / 1e9;
	*got = w - base;
	stb_client_free(p);
	return 0;
}

int
keysync_run(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	uint64_t n = o->requests > 0 ? o->requests : (uint64_t)o->conns * 200, base = 0, t0,
	         t_last = 0, binds = 0, errors = 0, pushes = 0;
	int nt = o->conns, ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), rc = 1;
	ks_thread_t *t = calloc((size_t)nt, sizeof(*t));
	ks_key_t *keys = ks_keys_new(n);
	char first_err[256] = "";
	double bsecs = 0, psecs = 0;
	ks_cpu_t cpu0, cpu;
	ks_bound_t bd;
	hist_t lat;
	size_t off = 0;

	memset(&lat, 0, sizeof(lat));
	if (t == NULL || keys == NULL) {
		fprintf(stderr, "stb-bench: out of memory\n");
		goto out;
	}
	if (o->platform_addr != NULL) {
		stb_client_t *p;
		stb_error_t err;
		if ((p = bench_client(o, o->platform_addr, o->admin_cert, o->admin_key, 60000,
		                      &err)) == NULL ||
		    ks_platform_writes(p, &base, &err) == -1) {
			fprintf(info, "stb-bench: platform %s: %s\n", o->platform_addr,
			        err.message);
			stb_client_free(p);
			goto out;
		}
		stb_client_free(p);
	}
	fprintf(info, "stb-bench: keysync: %d terminals, %" PRIu64 " keys (%s-*), app %s\n", nt, n,
	        ks_prefix, o->app);
	pthread_barrier_init(&run->gate, NULL, (unsigned)nt + 1);
	for (int i = 0; i < nt; i++) {
		size_t share = (size_t)(n / (uint64_t)nt + ((uint64_t)i < n % (uint64_t)nt));
		t[i] =
		    (ks_thread_t){.o = o, .run = run, .idx = i, .keys = keys + off, .nkeys = share};
		off += share;
		if (pthread_create(&t[i].tid, NULL, ks_main, &t[i]) != 0) {
			fprintf(stderr, "stb-bench: cannot start thread\n");
			exit(1); /* threads already started wait on the barrier */
		}
	}
	pthread_barrier_wait(&run->gate); /* imported, registered, connected */
	fprintf(info, "stb-bench: keysync: prepared; syncing\n");
	fflush(info);
	ks_cpu_now(o, &cpu0);
	t0 = bench_now();
	pthread_barrier_wait(&run->gate);
	for (int i = 0; i < nt; i++) {
		pthread_join(t[i].tid, NULL);
		binds += t[i].st.done;
		errors += t[i].st.errors + t[i].st.failures;
		t_last = t[i].t_last > t_last ? t[i].t_last : t_last;
		hist_merge(&lat, &t[i].st.lat);
		if (first_err[0] == '\0' && t[i].st.first_err[0] != '\0')
			snprintf(first_err, sizeof(first_err), "%s", t[i].st.first_err);
		stb_client_free(t[i].km);
	}
	bsecs = t_last > t0 ? (double)(t_last - t0) / 1e9 : 0;
	if (o->platform_addr != NULL &&
	    ks_wait_pushes(o, base, binds, t0, &pushes, &psecs, info) == -1)
		goto out;
	ks_cpu_since(o, &cpu0, &cpu);
	if (ks_bound_measure(o, 0.5, &bd, info) == -1) {
		fprintf(stderr, "stb-bench: the crypto bound loop failed\n");
		goto out;
	}
	ks_report(o, binds, errors, bsecs, &lat, pushes, psecs, &bd, ncpu, &cpu, first_err);
	rc = binds == n && errors == 0 && (o->platform_addr == NULL || pushes >= binds) ? 0 : 1;
	pthread_barrier_destroy(&run->gate);
out:
	if (keys != NULL)
		OPENSSL_cleanse(keys, n * sizeof(*keys));
	free(keys);
	free(t);
	return rc;
}
