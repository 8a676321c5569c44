/* signer: the signer process and its protocol, through the real process
 * (this test binary re-executed, as a daemon re-executes itself). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sealed.h"
#include "signer.h"
#include "testutil.h"
#include "tlv.h"

#define AAD "test row 1"

typedef struct fx {
	char dir[TU_DIR_MAX];
	char kek_path[TU_DIR_MAX + 16];
	sealed_kek_t *kek;
	signer_t *s;
	EVP_PKEY *key; /* the real key */
	buf_t blob;    /* sealed under AAD */
} fx_t;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
seal_key(fx_t *f, EVP_PKEY *k, const char *aad, buf_t *out)
{
	unsigned char *der = NULL;
	int n = i2d_PrivateKey(k, &der);
	err_t err;

	assert_true(n > 0);
	assert_int_equal(sealed_seal(f->kek, aad, strlen(aad), der, (size_t)n, out, &err), 0);
	OPENSSL_clear_free(der, (size_t)n);
}

static int
setup(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));
	uint8_t raw[SEALED_KEY_LEN];
	err_t err;
	int fd;

	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, sizeof(f->dir)), 0);
	snprintf(f->kek_path, sizeof(f->kek_path), "%s/kek", f->dir);
	assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
	fd = open(f->kek_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
	close(fd);
	assert_int_equal(sealed_kek_from_bytes(raw, &f->kek, &err), 0);
	assert_int_equal(signer_start("test_signer", NULL, f->kek_path, 4, &f->s, &err), 0);
	assert_non_null(f->key = EVP_EC_gen("P-256"));
	buf_init(&f->blob, SIGNER_BLOB_MAX);
	seal_key(f, f->key, AAD, &f->blob);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx_t *f = *state;

	signer_free(f->s);
	sealed_kek_free(f->kek);
	EVP_PKEY_free(f->key);
	buf_free(&f->blob);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* The public half of k as its own EVP_PKEY. */
static EVP_PKEY *
pub_of(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_PUBKEY(k, &der);
	EVP_PKEY *pub;

	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

static EVP_PKEY *
proxy_of(fx_t *f, EVP_PKEY *real, const char *aad, const buf_t *blob)
{
	EVP_PKEY *pub = pub_of(real), *k;
	err_t err;

	k = signer_pkey(f->s, pub, aad, strlen(aad), blob->data, blob->len, &err);
	EVP_PKEY_free(pub);
	assert_non_null(k);
	return k;
}

static X509 *
cert_skeleton(EVP_PKEY *pub)
{
	X509 *x = X509_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pub);
	return x;
}

/* A digest signature by the proxy, checked with the real key. */
static int
digest_sign_ok(EVP_PKEY *proxy, EVP_PKEY *real)
{
	uint8_t sig[SIGNER_SIG_MAX], msg[48];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok;

	RAND_bytes(msg, sizeof(msg));
	ok = EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, proxy) == 1 &&
	     EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(m);
	if (!ok)
		return 0;
	m = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, real) == 1 &&
	     EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

static void
test_signer_x509_sign(void **state)
{
	fx_t *f = *state;
	EVP_PKEY *proxy = proxy_of(f, f->key, AAD, &f->blob);
	X509 *x = cert_skeleton(f->key);
	X509_CRL *crl = X509_CRL_new();
	X509_REQ *rq = X509_REQ_new();
	err_t err;

	assert_true(X509_sign(x, proxy, EVP_sha256()) > 0);
	assert_int_equal(X509_verify(x, f->key), 1);
	assert_true(X509_CRL_set_version(crl, 1) && X509_CRL_sign(crl, proxy, EVP_sha256()) > 0);
	assert_int_equal(X509_CRL_verify(crl, f->key), 1);
	assert_true(X509_REQ_set_pubkey(rq, proxy) && X509_REQ_sign(rq, proxy, EVP_sha256()) > 0);
	assert_int_equal(X509_REQ_verify(rq, f->key), 1);
	assert_true(digest_sign_ok(proxy, f->key));
	assert_int_equal(EVP_PKEY_eq(proxy, f->key), 1);
	assert_int_equal(signer_take_err(&err), 0);
	X509_REQ_free(rq);
	X509_CRL_free(crl);
	X509_free(x);
	EVP_PKEY_free(proxy);
}

static void
test_signer_unknown_key(void **state)
{
	fx_t *f = *state;
	EVP_PKEY *proxy = proxy_of(f, f->key, "another row", &f->blob);
	uint8_t dg[32] = {1}, sig[SIGNER_SIG_MAX];
	X509 *x = cert_skeleton(f->key);
	size_t sl;
	buf_t junk;
	err_t err;

	/* the blob does not open under another row's AAD */
	assert_true(X509_sign(x, proxy, EVP_sha256()) <= 0);
	assert_int_equal(signer_take_err(&err), 1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(signer_take_err(&err), 0);
	/* nor does a blob of random bytes */
	buf_init(&junk, 256);
	for (int i = 0; i < 80; i++)
		buf_append(&junk, "\x5a", 1);
	assert_int_equal(signer_sign(f->s, AAD, strlen(AAD), junk.data, junk.len, dg, 32, sig,
	                             sizeof(sig), &sl, &err),
	                 -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	buf_free(&junk);
	X509_free(x);
	EVP_PKEY_free(proxy);
}

static void
test_signer_bad_sizes(void **state)
{
	fx_t *f = *state;
	uint8_t dg[100] = {0}, sig[SIGNER_SIG_MAX], big[SIGNER_BLOB_MAX + 8] = {0};
	size_t sl;
	buf_t req, rsp;
	err_t err;
	uint64_t starts = signer_starts(f->s);

	/* digests of 10 and 100 bytes, a blob over the maximum: refused, the
	 * signer stays */
	assert_int_equal(signer_sign(f->s, AAD, strlen(AAD), f->blob.data, f->blob.len, dg, 10, sig,
	                             sizeof(sig), &sl, &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(signer_sign(f->s, AAD, strlen(AAD), f->blob.data, f->blob.len, dg, 100,
	                             sig, sizeof(sig), &sl, &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(signer_sign(f->s, AAD, strlen(AAD), big, sizeof(big), dg, 32, sig,
	                             sizeof(sig), &sl, &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	/* a signature buffer too small for the answer */
	assert_int_equal(signer_sign(f->s, AAD, strlen(AAD), f->blob.data, f->blob.len, dg, 32, sig,
	                             8, &sl, &err),
	                 -1);
	/* an unknown request type */
	buf_init(&req, SIGNER_FRAME_MAX + 64);
	buf_init(&rsp, SIGNER_FRAME_MAX);
	assert_int_equal(signer_call(f->s, 99, &req, &rsp, &err), -1);
	assert_int_equal(err.status, STB_UNSUPPORTED);
	/* a request over the frame limit never leaves */
	for (int i = 0; i < SIGNER_FRAME_MAX + 1; i++)
		buf_append(&req, "x", 1);
	assert_int_equal(signer_call(f->s, SIGNER_MSG_SIGN, &req, &rsp, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(signer_starts(f->s), starts);
	/* a body that breaks the TLV rules (one TLV twice, one cut short):
	 * the signer exits rather than guess */
	buf_reset(&req);
	tlv_put(&req, SIGNER_TLV_AAD, "a", 1);
	tlv_put(&req, SIGNER_TLV_AAD, "b", 1);
	assert_int_equal(signer_call(f->s, SIGNER_MSG_SIGN, &req, &rsp, &err), -1);
	assert_int_equal(err.status, STB_UNAVAILABLE);
	buf_free(&req);
	buf_free(&rsp);
}

/* Waits (bounded) for a signer that signs again. */
static void
wait_recovered(fx_t *f, uint64_t starts_before)
{
	EVP_PKEY *proxy = proxy_of(f, f->key, AAD, &f->blob);
	int64_t until = now_ms() + 20000;
	int ok = 0;
	err_t err;

	while (!ok && now_ms() < until) {
		ok = signer_starts(f->s) > starts_before && digest_sign_ok(proxy, f->key);
		if (!ok) {
			signer_take_err(&err);
			usleep(50000);
		}
	}
	assert_true(ok);
	EVP_PKEY_free(proxy);
}

static void
test_signer_recovers_after_bad_frame(void **state)
{
	fx_t *f = *state;

	/* the previous case made it exit */
	wait_recovered(f, 1);
}

static void
test_signer_killed(void **state)
{
	fx_t *f = *state;
	EVP_PKEY *proxy = proxy_of(f, f->key, AAD, &f->blob);
	uint64_t starts = signer_starts(f->s);
	pid_t pid = signer_pid(f->s);
	int64_t t0;
	err_t err;

	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	/* signing fails at once with UNAVAILABLE, never hangs */
	t0 = now_ms();
	assert_false(digest_sign_ok(proxy, f->key));
	assert_int_equal(signer_take_err(&err), 1);
	assert_int_equal(err.status, STB_UNAVAILABLE);
	assert_true(now_ms() - t0 < SIGNER_TIMEOUT_MS + 2000);
	wait_recovered(f, starts);
	assert_int_not_equal(signer_pid(f->s), pid);
	EVP_PKEY_free(proxy);
}

static void
test_signer_genkey_reseal(void **state)
{
	fx_t *f = *state;
	EVP_PKEY *pub = NULL, *proxy, *proxy2;
	uint8_t dg[32] = {2}, sig[SIGNER_SIG_MAX];
	buf_t pending, row, other;
	size_t sl;
	err_t err;

	buf_init(&pending, SIGNER_BLOB_MAX);
	buf_init(&row, SIGNER_BLOB_MAX);
	buf_init(&other, SIGNER_BLOB_MAX);
	assert_int_equal(signer_genkey(f->s, &pending, &pub, &err), 0);
	proxy = signer_pkey(f->s, pub, SIGNER_PENDING_AAD, strlen(SIGNER_PENDING_AAD), pending.data,
	                    pending.len, &err);
	assert_non_null(proxy);
	assert_true(digest_sign_ok(proxy, pub));
	/* bound to its row: it signs under the row's AAD only */
	assert_int_equal(signer_reseal(f->s, pending.data, pending.len, "row 9", 5, &row, &err), 0);
	proxy2 = signer_pkey(f->s, pub, "row 9", 5, row.data, row.len, &err);
	assert_non_null(proxy2);
	assert_true(digest_sign_ok(proxy2, pub));
	/* a row's key never moves to another row, nor back to pending */
	assert_int_equal(signer_reseal(f->s, row.data, row.len, "row 10", 6, &other, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(signer_reseal(f->s, f->blob.data, f->blob.len, "row 10", 6, &other, &err),
	                 -1);
	assert_int_equal(signer_reseal(f->s, pending.data, pending.len, SIGNER_PENDING_AAD,
	                               strlen(SIGNER_PENDING_AAD), &other, &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(
	    signer_sign(f->s, "row 10", 6, row.data, row.len, dg, 32, sig, sizeof(sig), &sl, &err),
	    -1);
	EVP_PKEY_free(proxy2);
	EVP_PKEY_free(proxy);
	EVP_PKEY_free(pub);
	buf_free(&pending);
	buf_free(&row);
	buf_free(&other);
}

static void
test_signer_seal_open(void **state)
{
	fx_t *f = *state;
	uint8_t secret[32], back[64];
	size_t n = 0;
	buf_t blob;
	err_t err;

	RAND_bytes(secret, sizeof(secret));
	buf_init(&blob, 256);
	assert_int_equal(signer_seal(f->s, "stb:dev-1", 9, secret, sizeof(secret), &blob, &err), 0);
	assert_int_equal(
	    signer_open(f->s, "stb:dev-1", 9, blob.data, blob.len, back, sizeof(back), &n, &err),
	    0);
	assert_int_equal(n, sizeof(secret));
	assert_memory_equal(back, secret, n);
	/* another row's AAD does not open it */
	assert_int_equal(
	    signer_open(f->s, "stb:dev-2", 9, blob.data, blob.len, back, sizeof(back), &n, &err),
	    -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	/* a sealed private key is never handed out */
	assert_int_equal(signer_open(f->s, AAD, strlen(AAD), f->blob.data, f->blob.len, back,
	                             sizeof(back), &n, &err),
	                 -1);
	assert_int_equal(err.status, STB_FORBIDDEN);
	/* nor sealed as pending (that AAD is the signer's own) */
	buf_reset(&blob);
	assert_int_equal(signer_seal(f->s, SIGNER_PENDING_AAD, strlen(SIGNER_PENDING_AAD), secret,
	                             sizeof(secret), &blob, &err),
	                 -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	buf_free(&blob);
}

/* ---- several threads at once ---- */

#define CONC_THREADS 4
#define CONC_SIGS    250

struct conc {
	fx_t *f;
	EVP_PKEY *proxy;
	int bad;
};

static void *
conc_run(void *arg)
{
	struct conc *c = arg;

	for (int i = 0; i < CONC_SIGS; i++)
		if (!digest_sign_ok(c->proxy, c->f->key))
			c->bad++;
	return NULL;
}

static void
test_signer_concurrent(void **state)
{
	fx_t *f = *state;
	struct conc c[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	int64_t t0 = now_ms(), dt;

	for (int i = 0; i < CONC_THREADS; i++) {
		c[i] = (struct conc){f, proxy_of(f, f->key, AAD, &f->blob), 0};
		assert_int_equal(pthread_create(&th[i], NULL, conc_run, &c[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].bad, 0);
		EVP_PKEY_free(c[i].proxy);
	}
	dt = now_ms() - t0;
	/* the same work in this process, for the cost of the round trip */
	t0 = now_ms();
	for (int i = 0; i < CONC_THREADS; i++) {
		c[i] = (struct conc){f, f->key, 0};
		EVP_PKEY_up_ref(f->key);
		assert_int_equal(pthread_create(&th[i], NULL, conc_run, &c[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].bad, 0);
		EVP_PKEY_free(c[i].proxy);
	}
	printf("# %d signatures (each verified) from %d threads: %lld ms through the signer, "
	       "%lld ms in process\n",
	       CONC_THREADS * CONC_SIGS, CONC_THREADS, (long long)dt, (long long)(now_ms() - t0));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signer_x509_sign),
	    cmocka_unit_test(test_signer_unknown_key),
	    cmocka_unit_test(test_signer_bad_sizes),
	    cmocka_unit_test(test_signer_recovers_after_bad_frame),
	    cmocka_unit_test(test_signer_killed),
	    cmocka_unit_test(test_signer_genkey_reseal),
	    cmocka_unit_test(test_signer_seal_open),
	    cmocka_unit_test(test_signer_concurrent),
	};

	/* the signer process is this binary again */
	if (argc >= 2 && strcmp(argv[1], SIGNER_ARGV) == 0)
		return signer_main(argc, argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}
