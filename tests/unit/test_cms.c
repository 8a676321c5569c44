/* test_cms: SignedData and EnvelopedData, and interop with `openssl cms`. */
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmsmsg.h"
#include "testutil.h"

static const char *const ca_exts[] = {"basicConstraints=critical,CA:TRUE",
                                      "keyUsage=critical,keyCertSign,cRLSign", NULL};
static const char *const leaf_exts[] = {"basicConstraints=critical,CA:FALSE",
                                        "keyUsage=critical,digitalSignature,keyAgreement", NULL};
static const char *const tls_exts[] = {"basicConstraints=critical,CA:FALSE",
                                       "keyUsage=critical,digitalSignature",
                                       "extendedKeyUsage=serverAuth", NULL};

typedef struct pki {
	EVP_PKEY *ca_key, *other_key, *signer_key, *recip_key, *recip2_key, *ed_key;
	X509 *ca, *other_ca, *signer, *signer2, *tls_signer, *recip, *recip2, *ed;
	X509_STORE *trust, *other_trust;
} pki_t;

static X509_STORE *
store_of(X509 *ca)
{
	X509_STORE *s = X509_STORE_new();

	assert_non_null(s);
	assert_int_equal(X509_STORE_add_cert(s, ca), 1);
	return s;
}

static int
pki_setup(void **state)
{
	pki_t *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ca_key = tu_p256();
	p->other_key = tu_p256();
	p->signer_key = tu_p256();
	p->recip_key = tu_p256();
	p->recip2_key = tu_p256();
	p->ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(p->ed_key);
	p->ca = tu_cert("CMS CA", p->ca_key, NULL, NULL, -3600, 86400, ca_exts);
	p->other_ca = tu_cert("Other CA", p->other_key, NULL, NULL, -3600, 86400, ca_exts);
	p->signer = tu_cert("operator", p->signer_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->signer2 = tu_cert("operator 2", p->recip_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->tls_signer =
	    tu_cert("tls only", p->signer_key, p->ca, p->ca_key, -3600, 86400, tls_exts);
	p->recip = tu_cert("device", p->recip_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->recip2 = tu_cert("device 2", p->recip2_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->ed = tu_cert("ed25519", p->ed_key, p->ca, p->ca_key, -3600, 86400, leaf_exts);
	p->trust = store_of(p->ca);
	p->other_trust = store_of(p->other_ca);
	*state = p;
	return 0;
}

static int
pki_teardown(void **state)
{
	pki_t *p = *state;
	X509 *certs[] = {p->ca,         p->other_ca, p->signer, p->signer2,
	                 p->tls_signer, p->recip,    p->recip2, p->ed};
	EVP_PKEY *keys[] = {p->ca_key,    p->other_key,  p->signer_key,
	                    p->recip_key, p->recip2_key, p->ed_key};

	for (size_t i = 0; i < TU_NELEM(certs); i++)
		X509_free(certs[i]);
	for (size_t i = 0; i < TU_NELEM(keys); i++)
		EVP_PKEY_free(keys[i]);
	X509_STORE_free(p->trust);
	X509_STORE_free(p->other_trust);
	free(p);
	return 0;
}

static const char content[] = "IMSI=001010000000001;K=000102030405060708090a0b0c0d0e0f";

/* Flips one bit of the first occurrence of needle in hay. */
static void
flip_in(buf_t *hay, const char *needle)
{
	uint8_t *at = memmem(hay->data, hay->len, needle, strlen(needle));

	assert_non_null(at);
	at[3] ^= 0x01;
}

enum { T_NONE, T_CONTENT, T_DETACHED_OTHER, T_GIVE_DETACHED, T_TRUNCATE };

static void
test_signed(void **state)
{
	pki_t *p = *state;
	const struct {
		const char *name;
		int mode;
		X509 *signer;
		EVP_PKEY *key;
		X509_STORE *trust;
		X509 *want;
		int tamper;
		int status;
	} cases[] = {
	    {"attached", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust, NULL, T_NONE, STB_OK},
	    {"detached", CMSMSG_DETACHED, p->signer, p->signer_key, p->trust, NULL, T_NONE, STB_OK},
	    {"required signer", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust, p->signer,
	     T_NONE, STB_OK},
	    {"another signer required", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust,
	     p->signer2, T_NONE, STB_UNAUTHENTICATED},
	    {"content tampered", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust, NULL,
	     T_CONTENT, STB_UNAUTHENTICATED},
	    {"detached, other content", CMSMSG_DETACHED, p->signer, p->signer_key, p->trust, NULL,
	     T_DETACHED_OTHER, STB_UNAUTHENTICATED},
	    {"untrusted signer", CMSMSG_ATTACHED, p->signer, p->signer_key, p->other_trust, NULL,
	     T_NONE, STB_UNAUTHENTICATED},
	    {"signer not for S/MIME", CMSMSG_ATTACHED, p->tls_signer, p->signer_key, p->trust, NULL,
	     T_NONE, STB_UNAUTHENTICATED},
	    {"attached, content also given", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust,
	     NULL, T_GIVE_DETACHED, STB_BAD_REQUEST},
	    {"detached, no content given", CMSMSG_DETACHED, p->signer, p->signer_key, p->trust,
	     NULL, T_GIVE_DETACHED, STB_BAD_REQUEST},
	    {"truncated", CMSMSG_ATTACHED, p->signer, p->signer_key, p->trust, NULL, T_TRUNCATE,
	     STB_BAD_REQUEST},
	};

	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		const uint8_t *detached = NULL;
		size_t dlen = 0;
		X509 *who = NULL;
		buf_t msg, got;
		err_t err;
		int rc;

		buf_init(&msg, CMSMSG_DER_MAX);
		buf_init(&got, CMSMSG_CONTENT_MAX);
		assert_int_equal(cmsmsg_sign(cases[i].signer, cases[i].key, NULL,
		                             (const uint8_t *)content, sizeof(content) - 1,
		                             cases[i].mode, &msg, &err),
		                 0);
		if (cases[i].mode == CMSMSG_DETACHED) {
			assert_null(memmem(msg.data, msg.len, "IMSI", 4));
			detached = (const uint8_t *)content;
			dlen = sizeof(content) - 1;
		}
		switch (cases[i].tamper) {
		case T_CONTENT:
			flip_in(&msg, "IMSI");
			break;
		case T_DETACHED_OTHER:
			detached = (const uint8_t *)"IMSI=001010000000002";
			dlen = 20;
			break;
		case T_GIVE_DETACHED:
			detached = detached ? NULL : (const uint8_t *)content;
			break;
		case T_TRUNCATE:
			msg.len--;
			break;
		default:
			break;
		}
		rc = cmsmsg_verify(cases[i].trust, cases[i].want, msg.data, msg.len, detached, dlen,
		                   &got, &who, &err);
		if (cases[i].status == STB_OK) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].name, err.msg);
			assert_non_null(who);
			assert_int_equal(X509_cmp(who, cases[i].signer), 0);
			if (cases[i].mode == CMSMSG_ATTACHED) {
				assert_int_equal(got.len, sizeof(content) - 1);
				assert_memory_equal(got.data, content, got.len);
			} else {
				assert_int_equal(got.len, 0);
			}
		} else {
			if (rc != -1 || err.status != cases[i].status)
				fail_msg("%s: rc %d status %d (%s)", cases[i].name, rc, err.status,
				         err.msg);
			assert_null(who);
		}
		assert_int_equal(ERR_peek_error(), 0);
		X509_free(who);
		buf_free(&msg);
		buf_free(&got);
	}
}

/* A message's certificates: what it carries, in its order, the same
 * objects from one message of the signer to the next (the memo); a
 * certificate changed inside the message is not the remembered one and
 * fails the chain. */
static void
test_signed_certs(void **state)
{
	pki_t *p = *state;
	STACK_OF(X509) *extra = sk_X509_new_null(), *c1 = NULL, *c2 = NULL, *c3 = NULL, *plain;
	const unsigned char *rp;
	CMS_ContentInfo *ci;
	unsigned char *sder = NULL;
	int sn = i2d_X509(p->signer, &sder);
	X509 *s1 = NULL, *s2 = NULL, *s3 = NULL;
	uint8_t *at;
	buf_t m, out;
	err_t err;

	assert_true(sn > 0);
	assert_non_null(extra);
	assert_int_equal(sk_X509_push(extra, p->ca), 1);
	buf_init(&m, 8192);
	buf_init(&out, 8192);
	assert_int_equal(cmsmsg_sign(p->signer, p->signer_key, extra, (const uint8_t *)content,
	                             strlen(content), CMSMSG_ATTACHED, &m, &err),
	                 0);
	rp = m.data;
	assert_non_null(ci = d2i_CMS_ContentInfo(NULL, &rp, (long)m.len));
	assert_non_null(plain = CMS_get1_certs(ci));
	assert_int_equal(sk_X509_num(plain), 2);
	for (int i = 0; i < 2; i++) {
		STACK_OF(X509) **c = i == 0 ? &c1 : &c2;
		X509 **s = i == 0 ? &s1 : &s2;

		buf_reset(&out);
		assert_int_equal(
		    cmsmsg_verify_certs(p->trust, NULL, m.data, m.len, NULL, 0, &out, s, c, &err),
		    0);
		assert_int_equal(out.len, strlen(content));
		assert_memory_equal(out.data, content, out.len);
		assert_int_equal(sk_X509_num(*c), 2);
		for (int j = 0; j < 2; j++) /* as OpenSSL's own parse gives them */
			assert_int_equal(X509_cmp(sk_X509_value(*c, j), sk_X509_value(plain, j)),
			                 0);
		assert_int_equal(X509_cmp(*s, p->signer), 0);
	}
	assert_ptr_equal(sk_X509_value(c1, 0), sk_X509_value(c2, 0));
	assert_ptr_equal(sk_X509_value(c1, 1), sk_X509_value(c2, 1));
	/* the signer certificate's signature changed inside the message */
	at = memmem(m.data, m.len, sder, (size_t)sn);
	assert_non_null(at);
	at[sn - 1] ^= 0x01;
	assert_int_equal(
	    cmsmsg_verify_certs(p->trust, NULL, m.data, m.len, NULL, 0, &out, &s3, &c3, &err), -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	assert_null(s3);
	assert_null(c3);
	assert_int_equal(ERR_peek_error(), 0);
	X509_free(s1);
	X509_free(s2);
	sk_X509_pop_free(c1, X509_free);
	sk_X509_pop_free(c2, X509_free);
	sk_X509_pop_free(plain, X509_free);
	CMS_ContentInfo_free(ci);
	sk_X509_free(extra);
	OPENSSL_free(sder);
	buf_free(&m);
	buf_free(&out);
}

static void
test_sign_refusals(void **state)
{
	pki_t *p = *state;
	uint8_t *big = calloc(1, CMSMSG_CONTENT_MAX + 1);
	buf_t msg, small;
	err_t err;

	assert_non_null(big);
	buf_init(&msg, CMSMSG_DER_MAX);
	buf_init(&small, 64);
	/* the key is not the signer's */
	assert_int_equal(
	    cmsmsg_sign(p->signer, p->recip_key, NULL, big, 4, CMSMSG_ATTACHED, &msg, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(cmsmsg_sign(p->signer, p->signer_key, NULL, big, CMSMSG_CONTENT_MAX + 1,
	                             CMSMSG_ATTACHED, &msg, &err),
	                 -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(
	    cmsmsg_sign(p->signer, p->signer_key, NULL, big, 4, CMSMSG_ATTACHED, &small, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(cmsmsg_verify(p->trust, NULL, big, 16, NULL, 0, NULL, NULL, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(
	    cmsmsg_verify(p->trust, NULL, big, CMSMSG_DER_MAX + 1, NULL, 0, NULL, NULL, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	/* an EnvelopedData is not SignedData */
	assert_int_equal(cmsmsg_encrypt(p->recip, big, 4, CMSMSG_AES256_GCM, &msg, &err), 0);
	assert_int_equal(
	    cmsmsg_verify(p->trust, NULL, msg.data, msg.len, NULL, 0, NULL, NULL, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ERR_peek_error(), 0);
	buf_free(&msg);
	buf_free(&small);
	free(big);
}

static void
test_enveloped(void **state)
{
	pki_t *p = *state;
	const struct {
		const char *name;
		int cipher;
		EVP_PKEY *key;
		X509 *cert;
		int tamper;
		int status;
	} cases[] = {
	    {"GCM", CMSMSG_AES256_GCM, p->recip_key, p->recip, T_NONE, STB_OK},
	    {"CBC", CMSMSG_AES256_CBC, p->recip_key, p->recip, T_NONE, STB_OK},
	    {"GCM, no cert given", CMSMSG_AES256_GCM, p->recip_key, NULL, T_NONE, STB_OK},
	    {"GCM, wrong recipient", CMSMSG_AES256_GCM, p->recip2_key, p->recip2, T_NONE,
	     STB_UNAUTHENTICATED},
	    {"CBC, wrong recipient", CMSMSG_AES256_CBC, p->recip2_key, NULL, T_NONE,
	     STB_UNAUTHENTICATED},
	    {"GCM, tampered", CMSMSG_AES256_GCM, p->recip_key, p->recip, T_CONTENT,
	     STB_UNAUTHENTICATED},
	    {"truncated", CMSMSG_AES256_CBC, p->recip_key, p->recip, T_TRUNCATE, STB_BAD_REQUEST},
	};

	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		buf_t msg, got;
		err_t err;
		int rc;

		buf_init(&msg, CMSMSG_DER_MAX);
		buf_init(&got, CMSMSG_CONTENT_MAX);
		assert_int_equal(cmsmsg_encrypt(p->recip, (const uint8_t *)content,
		                                sizeof(content) - 1, cases[i].cipher, &msg, &err),
		                 0);
		assert_null(memmem(msg.data, msg.len, "IMSI", 4));
		{
			const unsigned char *dp = msg.data;
			CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &dp, (long)msg.len);
			assert_non_null(cms);
			assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)),
			                 cases[i].cipher == CMSMSG_AES256_GCM
			                     ? NID_id_smime_ct_authEnvelopedData
			                     : NID_pkcs7_enveloped);
			CMS_ContentInfo_free(cms);
		}
		if (cases[i].tamper == T_CONTENT)
			msg.data[msg.len - 40] ^= 0x01; /* in the ciphertext or the tag */
		else if (cases[i].tamper == T_TRUNCATE)
			msg.len--;
		rc = cmsmsg_decrypt(cases[i].key, cases[i].cert, msg.data, msg.len, &got, &err);
		if (cases[i].status == STB_OK) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].name, err.msg);
			assert_int_equal(got.len, sizeof(content) - 1);
			assert_memory_equal(got.data, content, got.len);
		} else if (rc != -1 || err.status != cases[i].status) {
			fail_msg("%s: rc %d status %d (%s)", cases[i].name, rc, err.status,
			         err.msg);
		}
		assert_int_equal(ERR_peek_error(), 0);
		buf_free(&msg);
		buf_wipe(&got);
	}
}

static void
test_encrypt_refusals(void **state)
{
	pki_t *p = *state;
	uint8_t *big = calloc(1, CMSMSG_CONTENT_MAX + 1);
	buf_t msg, got;
	err_t err;

	assert_non_null(big);
	buf_init(&msg, CMSMSG_DER_MAX);
	buf_init(&got, 8);
	assert_int_equal(cmsmsg_encrypt(p->ed, big, 4, CMSMSG_AES256_GCM, &msg, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(cmsmsg_encrypt(p->recip, big, 4, 9, &msg, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(
	    cmsmsg_encrypt(p->recip, big, CMSMSG_CONTENT_MAX + 1, CMSMSG_AES256_GCM, &msg, &err),
	    -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	/* the content does not fit the caller's buffer */
	assert_int_equal(cmsmsg_encrypt(p->recip, big, 64, CMSMSG_AES256_GCM, &msg, &err), 0);
	assert_int_equal(cmsmsg_decrypt(p->recip_key, p->recip, msg.data, msg.len, &got, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	/* a SignedData is not EnvelopedData */
	msg.len = 0;
	assert_int_equal(
	    cmsmsg_sign(p->signer, p->signer_key, NULL, big, 4, CMSMSG_ATTACHED, &msg, &err), 0);
	assert_int_equal(cmsmsg_decrypt(p->recip_key, NULL, msg.data, msg.len, &got, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(ERR_peek_error(), 0);
	buf_free(&msg);
	buf_free(&got);
	free(big);
}

/* ---- interop with the openssl command line ---- */

static char paths[8][TU_DIR_MAX + 16];
enum { F_CA, F_SIGNER, F_SIGNER_KEY, F_RECIP, F_RECIP_KEY, F_MSG, F_CMS, F_OUT };

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void
read_file(const char *path, buf_t *b)
{
	uint8_t chunk[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(b, chunk, n), 0);
	fclose(f);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 20, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 20);
	strcat(cmd, " 2>/dev/null");
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

static int
interop_setup(void **state)
{
	pki_t *p = *state;
	static const char *const names[] = {"ca.pem",    "signer.pem", "signer.key", "recip.pem",
	                                    "recip.key", "msg",        "msg.cms",    "out"};

	tu_setup_dir(NULL);
	for (size_t i = 0; i < TU_NELEM(names); i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", tu_dir, names[i]);
	tu_write_cert(paths[F_CA], p->ca);
	tu_write_cert(paths[F_SIGNER], p->signer);
	tu_write_key(paths[F_SIGNER_KEY], p->signer_key);
	tu_write_cert(paths[F_RECIP], p->recip);
	tu_write_key(paths[F_RECIP_KEY], p->recip_key);
	write_file(paths[F_MSG], content, sizeof(content) - 1);
	return 0;
}

static void
expect_out(void)
{
	buf_t got;

	buf_init(&got, CMSMSG_CONTENT_MAX);
	read_file(paths[F_OUT], &got);
	assert_int_equal(got.len, sizeof(content) - 1);
	assert_memory_equal(got.data, content, got.len);
	buf_free(&got);
}

static void
test_interop_enveloped(void **state)
{
	static const char *const theirs[] = {"", "-aes-256-gcm", "-aes-256-cbc -aes256-wrap"};
	pki_t *p = *state;
	buf_t msg;
	err_t err;

	/* ours, opened by openssl cms -decrypt */
	for (int c = CMSMSG_AES256_GCM; c <= CMSMSG_AES256_CBC; c++) {
		buf_init(&msg, CMSMSG_DER_MAX);
		assert_int_equal(cmsmsg_encrypt(p->recip, (const uint8_t *)content,
		                                sizeof(content) - 1, c, &msg, &err),
		                 0);
		write_file(paths[F_CMS], msg.data, msg.len);
		buf_free(&msg);
		run("openssl cms -decrypt -binary -inform DER -in %s -recip %s -inkey %s -out %s",
		    paths[F_CMS], paths[F_RECIP], paths[F_RECIP_KEY], paths[F_OUT]);
		expect_out();
	}
	/* theirs (the default cipher first), opened by us */
	for (size_t i = 0; i < TU_NELEM(theirs); i++) {
		buf_t got;
		run("openssl cms -encrypt -binary %s -outform DER -in %s -out %s -recip %s",
		    theirs[i], paths[F_MSG], paths[F_CMS], paths[F_RECIP]);
		buf_init(&msg, CMSMSG_DER_MAX);
		buf_init(&got, CMSMSG_CONTENT_MAX);
		read_file(paths[F_CMS], &msg);
		if (cmsmsg_decrypt(p->recip_key, p->recip, msg.data, msg.len, &got, &err) != 0)
			fail_msg("openssl cms -encrypt %s: %s", theirs[i], err.msg);
		assert_int_equal(got.len, sizeof(content) - 1);
		assert_memory_equal(got.data, content, got.len);
		buf_free(&msg);
		buf_wipe(&got);
	}
}

static void
test_interop_signed(void **state)
{
	pki_t *p = *state;
	buf_t msg, got;
	X509 *who = NULL;
	err_t err;

	/* ours, attached and detached, checked by openssl cms -verify */
	buf_init(&msg, CMSMSG_DER_MAX);
	assert_int_equal(cmsmsg_sign(p->signer, p->signer_key, NULL, (const uint8_t *)content,
	                             sizeof(content) - 1, CMSMSG_ATTACHED, &msg, &err),
	                 0);
	write_file(paths[F_CMS], msg.data, msg.len);
	run("openssl cms -verify -binary -inform DER -in %s -CAfile %s -out %s", paths[F_CMS],
	    paths[F_CA], paths[F_OUT]);
	expect_out();
	msg.len = 0;
	assert_int_equal(cmsmsg_sign(p->signer, p->signer_key, NULL, (const uint8_t *)content,
	                             sizeof(content) - 1, CMSMSG_DETACHED, &msg, &err),
	                 0);
	write_file(paths[F_CMS], msg.data, msg.len);
	run("openssl cms -verify -binary -inform DER -in %s -content %s -CAfile %s -out %s",
	    paths[F_CMS], paths[F_MSG], paths[F_CA], paths[F_OUT]);
	expect_out();
	buf_free(&msg);
	/* theirs, checked by us */
	run("openssl cms -sign -binary -nodetach -outform DER -in %s -out %s -signer %s -inkey %s",
	    paths[F_MSG], paths[F_CMS], paths[F_SIGNER], paths[F_SIGNER_KEY]);
	buf_init(&msg, CMSMSG_DER_MAX);
	buf_init(&got, CMSMSG_CONTENT_MAX);
	read_file(paths[F_CMS], &msg);
	assert_int_equal(
	    cmsmsg_verify(p->trust, p->signer, msg.data, msg.len, NULL, 0, &got, &who, &err), 0);
	assert_int_equal(got.len, sizeof(content) - 1);
	assert_memory_equal(got.data, content, got.len);
	X509_free(who);
	buf_free(&msg);
	buf_free(&got);
}

static int
interop_teardown(void **state)
{
	(void)state;
	return tu_teardown_dir(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signed),
	    cmocka_unit_test(test_signed_certs),
	    cmocka_unit_test(test_sign_refusals),
	    cmocka_unit_test(test_enveloped),
	    cmocka_unit_test(test_encrypt_refusals),
	    cmocka_unit_test_setup_teardown(test_interop_enveloped, interop_setup,
	                                    interop_teardown),
	    cmocka_unit_test_setup_teardown(test_interop_signed, interop_setup, interop_teardown),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
