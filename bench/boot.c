/*
 * boot: `stb-bench bootstrap` (flow D, qualifyd).
 *
 * Before the clock: D devices, each with a fresh P-256 key and a
 * certificate that ca-authd issues under its "device" profile (so that its
 * OCSP responder knows it), are enrolled at qualifyd as admin, and the
 * embedded HSS gets a generated range of D subscriptions.  Then C threads
 * take the devices one by one and run libstbclient's stb_bootstrap() once
 * each: registration, credential request, package fetch, checks, confirm.
 * The run ends when every device is through (or -d passes).
 *
 * The crypto bound is measured after the run, in process, from the
 * primitives one bootstrap costs on this machine (all processes share its
 * cores):
 *   each full TLS 1.3 handshake with a client certificate (H per
 *     bootstrap: 1 when the three roles share a listener, 3 when split,
 *     less those resumed):
 *       2 ECDSA signs (both CertificateVerify), 6 verifies (two chains of
 *       leaf + issuing CA, two CertificateVerify), 2 X25519 keygen + derive
 *   each resumed one (R per bootstrap: the device resumes the session of
 *     its first connection at the other roles of the same qualifyd):
 *       2 X25519 keygen + derive (psk_dhe_ke), no signature, no chain
 *   qualifyd's OCSP query for the device: 1 sign (responder), 2 verifies
 *     (answer, delegated responder certificate)
 *   the package: CMS sign (1 ECDSA sign) + envelope (1 P-256 keygen, 1
 *     P-256 derive) at qualifyd; at the device the signature and the
 *     operator chain (3 verifies) and the envelope (1 P-256 derive)
 *   the device's OCSP query for the operator certificate: 1 sign, 2 verifies
 * bound = cores / (seconds of one core per bootstrap).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "bench.h"
#include "msgenc.h"
#include "stb/stbclient.h"
#include "stbc.h"

#define BOOT_ID_MAX 64

typedef struct boot_dev {
	char id[BOOT_ID_MAX];
	stb_client_t *c;
} boot_dev_t;

typedef struct boot_thread {
	bench_run_t *run;
	boot_dev_t *devs;
	int ndevs;
	atomic_int *next;
	pthread_t tid;
	uint64_t conns;   /* TLS connections the bootstraps made */
	uint64_t resumed; /* of them, resumed sessions */
	bench_stats_t st;
} boot_thread_t;

static int
boot_fail(const char *what, const stb_error_t *err)
{
	fprintf(stderr, "stb-bench: bootstrap: %s: %s: %s\n", what, stb_status_name(err->status),
	        err->message);
	return -1;
}

static stb_client_t *
boot_client(const bench_opts_t *o, const char *addr, stb_error_t *err)
{
	stb_client_t *c = NULL;

	if (stb_client_new(&c, err) == -1)
		return NULL;
	if (stb_client_set_ca_file(c, o->ca, err) == -1 ||
	    stb_client_set_identity(c, o->admin_cert, o->admin_key, err) == -1 ||
	    stb_connect_addr(c, addr, err) == -1) {
		stb_client_free(c);
		return NULL;
	}
	stb_client_set_timeout(c, 30000);
	return c;
}

/* The admin call (type, b) on c. */
static int
boot_admin(stb_client_t *c, uint16_t type, int enc, const err_t *e, const buf_t *b, msg_t *m,
           stb_error_t *err)
{
	if (enc == -1)
		return stbc_fail(err, e->status, "%s", e->msg);
	return stbc_call(c, type, b, m, err);
}

/* A key, its certificate from ca-authd and the device's client. */
static int
boot_device(const bench_opts_t *o, stb_client_t *ca, boot_dev_t *d, stb_error_t *err)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	const uint8_t *p;
	size_t len, pos = 0;
	int dlen = -1, rc = -1;
	err_t e;
	buf_t b;
	msg_t m;

	buf_init(&b, 4096);
	if (pk == NULL || req == NULL || name == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)d->id, -1,
	                               -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pk) != 1 ||
	    X509_REQ_sign(req, pk, EVP_sha256()) <= 0 || (dlen = i2d_X509_REQ(req, &der)) <= 0) {
		stbc_fail(err, STB_INTERNAL, "cannot make a CSR");
		goto done;
	}
	struct msgreq_CA_ISSUE q = {.CSR_DER = MV_BYTES(der, (size_t)dlen),
	                            .CERT_PROFILE = MV_STR("device"),
	                            .DEVICE_ID = MV_STR(d->id)};
	if (boot_admin(ca, STB_MSG_CA_ISSUE, msgenc_CA_ISSUE(&b, &q, &e), &e, &b, &m, err) == -1 ||
	    stb_client_new(&d->c, err) == -1 || stb_client_set_ca_file(d->c, o->ca, err) == -1)
		goto done;
	stb_client_set_timeout(d->c, 30000);
	/* the identity straight into the client's context: no files */
	if (msg_get_bytes(&m, TLV_IX_CERT_DER, &p, &len) == -1)
		goto bad;
	for (int first = 1;; first = 0) {
		X509 *x = d2i_X509(NULL, &p, (long)len);
		int ok = x != NULL && (first ? SSL_CTX_use_certificate(d->c->ctx, x) == 1
		                             : SSL_CTX_add1_chain_cert(d->c->ctx, x) == 1);

		X509_free(x);
		if (!ok)
			goto bad;
		if (msg_next(&m, TLV_IX_CHAIN_DER, &pos, &p, &len) != 1)
			break;
	}
	if (SSL_CTX_use_PrivateKey(d->c->ctx, pk) != 1 || SSL_CTX_check_private_key(d->c->ctx) != 1)
		goto bad;
	rc = 0;
	goto done;
bad:
	stbc_fail(err, STB_INTERNAL, "ca-authd's certificate for %s is unusable", d->id);
done:
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	buf_free(&b);
	return rc;
}

/* Devices, their enrolment and a range of D subscriptions. */
static int
boot_prepare(const bench_opts_t *o, boot_dev_t *devs, int n, FILE *info)
{
	const char *adm_addr = o->admin_addr != NULL ? o->admin_addr : o->addr;
	stb_client_t *ca = NULL, *qd = NULL;
	uint8_t rnd[8], op[16];
	char prefix[32], imsi[16];
	stb_error_t err;
	uint64_t msin, t0 = bench_now();
	int rc = -1;
	err_t e;
	buf_t b;
	msg_t m;

	buf_init(&b, 1024);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1 || RAND_bytes(op, sizeof(op)) != 1)
		goto done;
	snprintf(prefix, sizeof(prefix), "boot-%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2], rnd[3]);
	/* MCC 001 MNC 01 (test network), a random block of MSINs */
	memcpy(&msin, rnd, sizeof(msin));
	msin = (msin % 9000000000ull) / 1000000ull * 1000000ull;
	snprintf(imsi, sizeof(imsi), "00101%010" PRIu64, msin);
	if ((ca = boot_client(o, o->ca_addr, &err)) == NULL) {
		boot_fail("ca-authd", &err);
		goto done;
	}
	if ((qd = boot_client(o, adm_addr, &err)) == NULL) {
		boot_fail("qualifyd admin", &err);
		goto done;
	}
	struct msgreq_QD_HSS_GENERATE g = {
	    .QD_IMSI = MV_STR(imsi), .QD_COUNT = MV_U((uint32_t)n), .QD_OP = MV_BYTES(op, 16)};
	if (boot_admin(qd, STB_MSG_QD_HSS_GENERATE, msgenc_QD_HSS_GENERATE(&b, &g, &e), &e, &b, &m,
	               &err) == -1) {
		boot_fail("QD_HSS_GENERATE", &err);
		goto done;
	}
	for (int i = 0; i < n; i++) {
		snprintf(devs[i].id, sizeof(devs[i].id), "%s%05d", prefix, i);
		if (boot_device(o, ca, &devs[i], &err) == -1) {
			boot_fail(devs[i].id, &err);
			goto done;
		}
		struct msgreq_QD_ENROL q = {.DEVICE_ID = MV_STR(devs[i].id)};
		buf_reset(&b);
		if (boot_admin(qd, STB_MSG_QD_ENROL, msgenc_QD_ENROL(&b, &q, &e), &e, &b, &m,
		               &err) == -1) {
			boot_fail("QD_ENROL", &err);
			goto done;
		}
	}
	fprintf(info,
	        "stb-bench: %d devices certified by ca-authd and enrolled, %d subscriptions "
	        "from %s generated, in %.1f s\n",
	        n, n, imsi, (double)(bench_now() - t0) / 1e9);
	rc = 0;
done:
	OPENSSL_cleanse(op, sizeof(op));
	buf_wipe(&b);
	stb_client_free(ca);
	stb_client_free(qd);
	return rc;
}

/* Credentials go nowhere: the bench only proves they arrived. */
static int
boot_store(void *ctx, const stb_credentials_t *cr)
{
	(void)ctx;
	return cr->imsi[0] != '\0' ? 0 : -1;
}

static void *
boot_main(void *arg)
{
	boot_thread_t *t = arg;
	const bench_opts_t *o = t->run->o;
	stb_bootstrap_conf_t conf = {
	    .reg_addr = o->addr, .operator_ca_file = o->operator_ca, .ocsp_url = o->ocsp_url};

	pthread_barrier_wait(&t->run->gate);
	for (;;) {
		int i = atomic_fetch_add(t->next, 1);
		stb_bootstrap_result_t res;
		stb_error_t err;
		uint64_t t0 = bench_now();

		if (i >= t->ndevs || t0 >= t->run->t_stop)
			break;
		conf.device_id = t->devs[i].id;
		if (stb_bootstrap(t->devs[i].c, &conf, boot_store, NULL, &res, &err) == -1) {
			t->st.errors++;
			if (t->st.first_err[0] == '\0')
				snprintf(t->st.first_err, sizeof(t->st.first_err), "%s: %s: %.180s",
				         t->devs[i].id, stb_status_name(err.status), err.message);
			continue;
		}
		t->st.done++;
		t->conns += (uint64_t)res.connections;
		t->resumed += (uint64_t)res.resumed;
		hist_observe(&t->st.lat, (bench_now() - t0) / 1000);
	}
	t->st.t_end = bench_now();
	return NULL;
}

/* CPU seconds (user + system) of process pid, or -1 (/proc/PID/stat). */
double
bench_proc_cpu(long pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	/* after the command name in parentheses: state (field 3) ... utime
	 * (14), stime (15) */
	if (!ok || (p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#define BOOT_CPU_MAX 8 /* processes whose CPU the report breaks down */

/* CPU seconds of this process ([0]) and of the servers named in
 * $STB_BENCH_CPU_PIDS (space-separated: qualifyd, ca-authd, its signer),
 * so that the report can say how much CPU one bootstrap really takes and
 * where.  Returns how many entries of cpu[] are filled. */
static int
boot_cpu(double cpu[BOOT_CPU_MAX], long pid[BOOT_CPU_MAX])
{
	const char *env = getenv("STB_BENCH_CPU_PIDS");
	struct rusage ru;
	int n = 1;

	cpu[0] = 0;
	pid[0] = (long)getpid();
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu[0] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	for (const char *p = env; p != NULL && *p != '\0' && n < BOOT_CPU_MAX;) {
		char *end;
		long id = strtol(p, &end, 10);
		double c;

		if (end == p)
			break;
		if (id > 0 && (c = bench_proc_cpu(id)) >= 0) {
			pid[n] = id;
			cpu[n++] = c;
		}
		p = end;
	}
	return n;
}

/* The name of process pid (/proc/PID/comm), for the CPU breakdown. */
static void
boot_comm(long pid, char *out, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	snprintf(out, cap, "%ld", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(out, (int)cap, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* Seconds of one core per bootstrap with h full and hr resumed
 * handshakes, from rates r. */
static double
boot_cost(const speed_rates_t *r, double h, double hr)
{
	double kx = 2 / r->x25519_keygen + 2 / r->x25519_derive;
	double hs = 2 / r->sign + 6 / r->verify + kx;
	double ocsp = 1 / r->sign + 2 / r->verify;
	double pkg = 1 / r->sign + 1 / r->p256_keygen + 1 / r->p256_derive;
	double open = 3 / r->verify + 1 / r->p256_derive;

	return h * hs + hr * kx + 2 * ocsp + pkg + open;
}

int
boot_run(bench_run_t *run, FILE *info)
{
	const bench_opts_t *o = run->o;
	int n = o->devices, nt = o->conns < n ? o->conns : n, rc = 1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	boot_dev_t *devs = calloc((size_t)n, sizeof(*devs));
	boot_thread_t *t = calloc((size_t)nt, sizeof(*t));
	atomic_int next = 0;
	bench_stats_t tot;
	speed_rates_t r;
	uint64_t t0, t1 = 0, conns = 0, resumed = 0;
	double secs, rate, h, hr, bound, cpu0 = 0, cpu1 = 0, c0[BOOT_CPU_MAX], c1[BOOT_CPU_MAX];
	long p0[BOOT_CPU_MAX], p1[BOOT_CPU_MAX];
	char per[BOOT_CPU_MAX * 48] = "", perj[BOOT_CPU_MAX * 48] = "";
	int nsrv = 0, n0, n1;

	if (devs == NULL || t == NULL || boot_prepare(o, devs, n, info) == -1)
		goto out;
	pthread_barrier_init(&run->gate, NULL, (unsigned)nt + 1);
	for (int i = 0; i < nt; i++) {
		t[i] = (boot_thread_t){.run = run, .devs = devs, .ndevs = n, .next = &next};
		pthread_create(&t[i].tid, NULL, boot_main, &t[i]);
	}
	t0 = bench_now();
	run->t_warm = t0;
	run->t_stop = t0 + (uint64_t)(o->duration_set ? o->duration * 1e9 : 3600e9);
	fflush(info);
	n0 = boot_cpu(c0, p0);
	pthread_barrier_wait(&run->gate);
	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < nt; i++) {
		pthread_join(t[i].tid, NULL);
		bench_stats_add(&tot, &t[i].st);
		conns += t[i].conns;
		resumed += t[i].resumed;
		if (t[i].st.t_end > t1)
			t1 = t[i].st.t_end;
	}
	pthread_barrier_destroy(&run->gate);
	n1 = boot_cpu(c1, p1);
	/* the same processes at both ends (a server that died is left out) */
	for (int i = 0; i < n1; i++)
		for (int j = 0; j < n0; j++) {
			char name[32];
			double ms;
			size_t l = strlen(per), lj = strlen(perj);

			if (p0[j] != p1[i])
				continue;
			cpu0 += c0[j];
			cpu1 += c1[i];
			nsrv += i > 0;
			ms = tot.done > 0 ? 1000 * (c1[i] - c0[j]) / (double)tot.done : 0;
			boot_comm(p1[i], name, sizeof(name));
			snprintf(per + l, sizeof(per) - l, "%s%s %.2f", l ? ", " : "", name, ms);
			snprintf(perj + lj, sizeof(perj) - lj, "%s\"%s\":%.3f", lj ? "," : "", name,
			         ms);
		}
	secs = (double)(t1 - t0) / 1e9;
	rate = secs > 0 ? (double)tot.done / secs : 0;
	h = tot.done > 0 ? (double)(conns - resumed) / (double)tot.done : 1;
	hr = tot.done > 0 ? (double)resumed / (double)tot.done : 0;
	fprintf(info, "stb-bench: measuring the crypto bound (1 s per primitive)...\n");
	fflush(info);
	if (speed_measure(1.0, &r) == -1) {
		fprintf(stderr, "stb-bench: speed: OpenSSL failed\n");
		goto out;
	}
	bound = (double)(cores > 0 ? cores : 1) / boot_cost(&r, h, hr);
	if (o->json)
		printf("{\"mode\":\"bootstrap\",\"devices\":%d,\"threads\":%d,\"done\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"seconds\":%.3f,\"per_s\":%.1f,\"p50_us\":%" PRIu64
		       ",\"p99_us\":%" PRIu64
		       ",\"handshakes_per_bootstrap\":%.2f,\"resumed_per_bootstrap\":%.2f,"
		       "\"cores\":%ld,"
		       "\"bound_per_s\":%.1f,\"of_bound\":%.3f,\"sign_per_s\":%.0f,"
		       "\"verify_per_s\":%.0f,\"x25519_keygen_per_s\":%.0f,"
		       "\"x25519_derive_per_s\":%.0f,\"p256_keygen_per_s\":%.0f,"
		       "\"p256_derive_per_s\":%.0f,\"cpu_ms_per_bootstrap\":%.3f,"
		       "\"crypto_ms_per_bootstrap\":%.3f,"
		       "\"cpu_ms_per_bootstrap_by_process\":{%s}}\n",
		       n, nt, tot.done, tot.errors, secs, rate, hist_quantile(&tot.lat, 0.5),
		       hist_quantile(&tot.lat, 0.99), h, hr, cores, bound, rate / bound, r.sign,
		       r.verify, r.x25519_keygen, r.x25519_derive, r.p256_keygen, r.p256_derive,
		       tot.done > 0 ? 1000 * (cpu1 - cpu0) / (double)tot.done : 0,
		       1000 * boot_cost(&r, h, hr), perj);
	else {
		printf("bootstrap: %" PRIu64 "/%d devices in %.2f s by %d threads: %.1f "
		       "bootstraps/s, p50 %.1f ms, p99 %.1f ms, errors %" PRIu64 "\n",
		       tot.done, n, secs, nt, rate, (double)hist_quantile(&tot.lat, 0.5) / 1000,
		       (double)hist_quantile(&tot.lat, 0.99) / 1000, tot.errors);
		printf("bootstrap: crypto per bootstrap: %.2f full mutual-TLS handshakes (2 ECDSA "
		       "sign, 6 verify, 2 X25519 keygen+derive each), %.2f resumed (2 X25519 "
		       "keygen+derive each), 2 OCSP (1 sign, 2 verify each), CMS sign+envelope (1 "
		       "sign, 1 P-256 keygen+derive), CMS verify+open (3 verify, 1 P-256 derive)\n",
		       h, hr);
		printf(
		    "bootstrap: primitives on one core: sign %.0f/s, verify %.0f/s, X25519 keygen "
		    "%.0f/s derive %.0f/s, P-256 keygen %.0f/s derive %.0f/s\n",
		    r.sign, r.verify, r.x25519_keygen, r.x25519_derive, r.p256_keygen,
		    r.p256_derive);
		printf(
		    "bootstrap: crypto bound on %ld cores: %.1f bootstraps/s; measured %.1f%% of "
		    "it\n",
		    cores, bound, 100 * rate / bound);
		if (tot.done > 0)
			printf("bootstrap: CPU used while measuring (the bench and %d server "
			       "processes): %.2f s, %.2f ms per bootstrap, of which crypto %.2f ms "
			       "(%.0f%%)\n",
			       nsrv, cpu1 - cpu0, 1000 * (cpu1 - cpu0) / (double)tot.done,
			       1000 * boot_cost(&r, h, hr),
			       100 * boot_cost(&r, h, hr) / ((cpu1 - cpu0) / (double)tot.done));
		if (tot.done > 0)
			printf("bootstrap: CPU ms per bootstrap by process: %s\n", per);
	}
	if (tot.first_err[0] != '\0')
		fprintf(stderr, "stb-bench: first error: %s\n", tot.first_err);
	rc = tot.done > 0 && tot.errors == 0 ? 0 : 1;
out:
	for (int i = 0; devs != NULL && i < n; i++)
		stb_client_free(devs[i].c);
	free(devs);
	free(t);
	return rc;
}
