/* Unit tests for sealed: AES-256-GCM secrets at rest and the KEK loader. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sealed.h"
#include "testutil.h"

static const uint8_t key_a[SEALED_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const char key_a_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const uint8_t key_b[SEALED_KEY_LEN] = {
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
    0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x01};

static const char secret[] = "device secret 0123456789abcdef";
static const char aad[] = "devices:STB-000123:secret";

static int
setup_dir(void **state)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	return tu_setup_dir(state);
}

static sealed_kek_t *
kek(const uint8_t key[SEALED_KEY_LEN])
{
	sealed_kek_t *k = NULL;
	err_t err;

	assert_int_equal(sealed_kek_from_bytes(key, &k, &err), 0);
	assert_non_null(k);
	return k;
}

static void
seal(const sealed_kek_t *k, buf_t *out)
{
	err_t err;

	buf_init(out, 4096);
	assert_int_equal(sealed_seal(k, aad, strlen(aad), secret, strlen(secret), out, &err), 0);
	assert_int_equal(out->len, SEALED_OVERHEAD + strlen(secret));
}

static void
test_round_trip(void **state)
{
	sealed_kek_t *k = kek(key_a);
	uint8_t pt[128];
	size_t ptlen = 0;
	buf_t blob;
	err_t err;

	(void)state;
	seal(k, &blob);
	assert_memory_equal(blob.data, "S1", 2);
	/* the plaintext does not appear in the blob */
	assert_null(memmem(blob.data, blob.len, "device secret", 13));
	assert_int_equal(
	    sealed_open(k, aad, strlen(aad), blob.data, blob.len, pt, sizeof(pt), &ptlen, &err), 0);
	assert_int_equal(ptlen, strlen(secret));
	assert_memory_equal(pt, secret, ptlen);
	/* a buffer of exactly the plaintext size is enough */
	assert_int_equal(
	    sealed_open(k, aad, strlen(aad), blob.data, blob.len, pt, strlen(secret), &ptlen, &err),
	    0);
	buf_free(&blob);
	sealed_kek_free(k);
}

static void
test_empty_plaintext_and_aad(void **state)
{
	sealed_kek_t *k = kek(key_a);
	uint8_t pt[8];
	size_t ptlen = 99;
	buf_t blob;
	err_t err;

	(void)state;
	buf_init(&blob, 4096);
	assert_int_equal(sealed_seal(k, NULL, 0, "", 0, &blob, &err), 0);
	assert_int_equal(blob.len, SEALED_OVERHEAD);
	assert_int_equal(sealed_open(k, NULL, 0, blob.data, blob.len, pt, sizeof(pt), &ptlen, &err),
	                 0);
	assert_int_equal(ptlen, 0);
	/* an empty AAD is still bound: it does not open under another */
	assert_int_equal(sealed_open(k, "x", 1, blob.data, blob.len, pt, sizeof(pt), &ptlen, &err),
	                 -1);
	assert_int_equal(err.status, STB_UNAUTHENTICATED);
	buf_free(&blob);
	sealed_kek_free(k);
}

static void
test_seal_appends(void **state)
{
	sealed_kek_t *k = kek(key_a);
	uint8_t pt[128];
	size_t ptlen;
	buf_t out;
	err_t err;

	(void)state;
	buf_init(&out, 4096);
	assert_int_equal(buf_append(&out, "head", 4), 0);
	assert_int_equal(sealed_seal(k, aad, strlen(aad), secret, strlen(secret), &out, &err), 0);
	assert_memory_equal(out.data, "head", 4);
	assert_int_equal(sealed_open(k, aad, strlen(aad), out.data + 4, out.len - 4, pt, sizeof(pt),
	                             &ptlen, &err),
	                 0);
	assert_memory_equal(pt, secret, ptlen);
	buf_free(&out);

	/* a buffer too small for the blob is refused and left as it was */
	buf_init(&out, SEALED_OVERHEAD + strlen(secret) - 1);
	assert_int_equal(sealed_seal(k, aad, strlen(aad), secret, strlen(secret), &out, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	sealed_kek_free(k);
}

static void
test_two_seals_differ(void **state)
{
	sealed_kek_t *k = kek(key_a);
	buf_t a, b;

	(void)state;
	seal(k, &a);
	seal(k, &b);
	assert_int_equal(a.len, b.len);
	/* fresh nonce, hence different ciphertext and tag */
	assert_memory_not_equal(a.data + 2, b.data + 2, 12);
	assert_memory_not_equal(a.data + 14, b.data + 14, a.len - 14);
	buf_free(&a);
	buf_free(&b);
	sealed_kek_free(k);
}

#define PT_CAP 128 /* the output buffer of assert_open_refused() */

/* Opening len bytes of blob under the AAD a into cap bytes of a PT_CAP-byte
 * buffer is refused with status want; the buffer holds no plaintext after. */
static void
assert_open_refused(const char *name, const sealed_kek_t *k, const char *a, size_t alen,
                    const uint8_t *blob, size_t len, size_t cap, int want, err_t *err)
{
	uint8_t pt[PT_CAP];
	size_t ptlen = 12345;

	memset(pt, 0, sizeof(pt));
	if (sealed_open(k, a, alen, blob, len, pt, cap, &ptlen, err) != -1)
		fail_msg("%s: opened", name);
	if (err->status != want)
		fail_msg("%s: status %d (%s), want %d", name, err->status, err->msg, want);
	if (memmem(pt, sizeof(pt), secret, 6) != NULL)
		fail_msg("%s: plaintext left in the output buffer", name);
	if (ptlen != 12345)
		fail_msg("%s: *ptlen was written", name);
}

static void
test_tampered_blobs_refused(void **state)
{
	enum { FLIP, TRUNC, EXTEND };
	static const struct {
		const char *name;
		int op;
		long at; /* byte to flip (negative: from the end) or bytes to cut/add */
		int want;
	} cases[] = {
	    {"bad magic 'S'", FLIP, 0, STB_BAD_REQUEST},
	    {"bad magic '1'", FLIP, 1, STB_BAD_REQUEST},
	    {"flipped first nonce byte", FLIP, 2, STB_UNAUTHENTICATED},
	    {"flipped last nonce byte", FLIP, 13, STB_UNAUTHENTICATED},
	    {"flipped first ciphertext byte", FLIP, 14, STB_UNAUTHENTICATED},
	    {"flipped last ciphertext byte", FLIP, -17, STB_UNAUTHENTICATED},
	    {"flipped first tag byte", FLIP, -16, STB_UNAUTHENTICATED},
	    {"flipped last tag byte", FLIP, -1, STB_UNAUTHENTICATED},
	    {"one byte cut", TRUNC, 1, STB_UNAUTHENTICATED},
	    {"cut to the overhead", TRUNC, (long)sizeof(secret) - 1, STB_UNAUTHENTICATED},
	    {"cut below the overhead", TRUNC, (long)sizeof(secret), STB_BAD_REQUEST},
	    {"cut to nothing", TRUNC, SEALED_OVERHEAD + (long)sizeof(secret) - 1, STB_BAD_REQUEST},
	    {"one byte added", EXTEND, 1, STB_UNAUTHENTICATED},
	};
	sealed_kek_t *k = kek(key_a);

	(void)state;
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		size_t len;
		buf_t blob;
		err_t err;
		seal(k, &blob);
		len = blob.len;
		switch (cases[i].op) {
		case FLIP:
			blob.data[cases[i].at < 0 ? (long)len + cases[i].at : cases[i].at] ^= 0x01;
			break;
		case TRUNC:
			len -= (size_t)cases[i].at;
			break;
		case EXTEND:
			assert_int_equal(buf_append(&blob, "\0", 1), 0);
			len = blob.len;
			break;
		}
		assert_open_refused(cases[i].name, k, aad, strlen(aad), blob.data, len, PT_CAP,
		                    cases[i].want, &err);
		buf_free(&blob);
	}
	sealed_kek_free(k);
}

static void
test_wrong_aad_or_kek_refused(void **state)
{
	static const struct {
		const char *name;
		const char *aad;
		size_t len;
		int other_kek;
	} cases[] = {
	    {"another row", "devices:STB-000124:secret", 25, 0},
	    {"AAD prefix", "devices:STB-000123:secre", 24, 0},
	    {"AAD longer", "devices:STB-000123:secret\0", 26, 0},
	    {"empty AAD", "", 0, 0},
	    {"wrong KEK", aad, sizeof(aad) - 1, 1},
	};
	sealed_kek_t *k = kek(key_a), *other = kek(key_b);
	buf_t blob;

	(void)state;
	seal(k, &blob);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		err_t err;
		assert_open_refused(cases[i].name, cases[i].other_kek ? other : k, cases[i].aad,
		                    cases[i].len, blob.data, blob.len, PT_CAP, STB_UNAUTHENTICATED,
		                    &err);
		assert_non_null(strstr(err.msg, "does not open"));
	}
	buf_free(&blob);
	sealed_kek_free(k);
	sealed_kek_free(other);
}

static void
test_open_into_small_buffer(void **state)
{
	sealed_kek_t *k = kek(key_a);
	buf_t blob;
	err_t err;

	(void)state;
	seal(k, &blob);
	assert_open_refused("buffer one byte short", k, aad, strlen(aad), blob.data, blob.len,
	                    strlen(secret) - 1, STB_TOO_LARGE, &err);
	buf_free(&blob);
	sealed_kek_free(k);
}

/* Writes a key file with the given mode (chmod after create: umask-proof). */
static void
write_key(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* True when k opens a blob sealed under key. */
static int
kek_is(const sealed_kek_t *k, const uint8_t key[SEALED_KEY_LEN])
{
	sealed_kek_t *ref = kek(key);
	uint8_t pt[128];
	size_t ptlen;
	buf_t blob;
	err_t err;
	int ok;

	seal(ref, &blob);
	ok = sealed_open(k, aad, strlen(aad), blob.data, blob.len, pt, sizeof(pt), &ptlen, &err) ==
	     0;
	buf_free(&blob);
	sealed_kek_free(ref);
	return ok;
}

static void
test_kek_load_good_files(void **state)
{
	char upper[sizeof(key_a_hex)];
	struct {
		const char *name;
		const void *p;
		size_t n;
	} cases[] = {
	    {"64 hex digits", key_a_hex, 64},
	    {"64 hex digits and a newline",
	     "000102030405060708090a0b0c0d0e0f"
	     "101112131415161718191a1b1c1d1e1f\n",
	     65},
	    {"64 hex digits and CRLF",
	     "000102030405060708090a0b0c0d0e0f"
	     "101112131415161718191a1b1c1d1e1f\r\n",
	     66},
	    {"64 upper-case hex digits", upper, 64},
	    {"32 raw bytes", key_a, 32},
	};
	char path[128];

	(void)state;
	for (size_t i = 0; i < sizeof(upper); i++)
		upper[i] = (char)(key_a_hex[i] >= 'a' && key_a_hex[i] <= 'f' ? key_a_hex[i] - 32
		                                                             : key_a_hex[i]);
	snprintf(path, sizeof(path), "%s/kek", tu_dir);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		sealed_kek_t *k = NULL;
		err_t err;
		write_key(path, cases[i].p, cases[i].n, 0600);
		if (sealed_kek_load(path, "kek", &k, &err) != 0)
			fail_msg("%s: refused: %s", cases[i].name, err.msg);
		if (!kek_is(k, key_a))
			fail_msg("%s: loaded a different key", cases[i].name);
		sealed_kek_free(k);
	}
	/* a raw key may end in a newline byte: it is key material, not text */
	{
		uint8_t nl_key[32];
		sealed_kek_t *k = NULL;
		err_t err;
		memcpy(nl_key, key_a, 32);
		nl_key[31] = '\n';
		write_key(path, nl_key, 32, 0600);
		if (sealed_kek_load(path, "kek", &k, &err) != 0)
			fail_msg("raw key ending in 0x0a refused: %s", err.msg);
		assert_true(kek_is(k, nl_key));
		sealed_kek_free(k);
	}
	/* owner read-only is fine too */
	write_key(path, key_a_hex, 64, 0400);
	{
		sealed_kek_t *k = NULL;
		err_t err;
		assert_int_equal(sealed_kek_load(path, NULL, &k, &err), 0);
		sealed_kek_free(k);
	}
	unlink(path);
}

static void
test_kek_load_refused(void **state)
{
	static const char hex63[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1";
	static const char hex65[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0";
	static const char nothex[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g";
	static const struct {
		const char *name;
		const void *p;
		size_t n;
		mode_t mode;
		int want;
		const char *word;
	} cases[] = {
	    {"mode 0644", key_a_hex, 64, 0644, STB_FORBIDDEN, "0644"},
	    {"mode 0640", key_a_hex, 64, 0640, STB_FORBIDDEN, "0640"},
	    {"mode 0604", key_a_hex, 64, 0604, STB_FORBIDDEN, "0604"},
	    {"mode 0601", key_a_hex, 64, 0601, STB_FORBIDDEN, "0600"},
	    {"31 raw bytes", key_a, 31, 0600, STB_BAD_REQUEST, "64 hex"},
	    {"33 raw bytes", "0123456789abcdef0123456789abcdefX", 33, 0600, STB_BAD_REQUEST,
	     "32 raw"},
	    {"63 hex digits", hex63, 63, 0600, STB_BAD_REQUEST, "64 hex"},
	    {"65 hex digits", hex65, 65, 0600, STB_BAD_REQUEST, "64 hex"},
	    {"64 characters, one not hex", nothex, 64, 0600, STB_BAD_REQUEST, "64 hex"},
	    {"empty file", "", 0, 0600, STB_BAD_REQUEST, "64 hex"},
	};
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/kek", tu_dir);
	for (size_t i = 0; i < TU_NELEM(cases); i++) {
		sealed_kek_t *k = NULL;
		err_t err;
		int rc;
		write_key(path, cases[i].p, cases[i].n, cases[i].mode);
		rc = sealed_kek_load(path, "kek", &k, &err);
		if (rc != -1 || err.status != cases[i].want)
			fail_msg("%s: rc %d status %d (%s)", cases[i].name, rc, err.status,
			         err.msg);
		if (strstr(err.msg, path) == NULL || strstr(err.msg, cases[i].word) == NULL)
			fail_msg("%s: \"%s\" does not name the file and \"%s\"", cases[i].name,
			         err.msg, cases[i].word);
		assert_null(k);
		unlink(path);
	}
}

static void
test_kek_load_missing(void **state)
{
	char path[128];
	sealed_kek_t *k = NULL;
	err_t err;

	(void)state;
	snprintf(path, sizeof(path), "%s/absent", tu_dir);
	assert_int_equal(sealed_kek_load(path, "kek", &k, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(sealed_kek_load(NULL, "kek", &k, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(sealed_kek_load("", NULL, &k, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_null(k);
}

/* sealed_kek_load(path, name) loads key. */
static void
assert_loads(const char *path, const char *name, const uint8_t key[SEALED_KEY_LEN])
{
	sealed_kek_t *k = NULL;
	err_t err;

	assert_int_equal(sealed_kek_load(path, name, &k, &err), 0);
	assert_true(kek_is(k, key));
	sealed_kek_free(k);
}

static void
test_kek_credentials_directory_wins(void **state)
{
	char creds[128], credfile[160], path[128];
	sealed_kek_t *k = NULL;
	err_t err;

	(void)state;
	snprintf(creds, sizeof(creds), "%s/creds", tu_dir);
	snprintf(credfile, sizeof(credfile), "%s/kek", creds);
	snprintf(path, sizeof(path), "%s/kek-file", tu_dir);
	assert_int_equal(mkdir(creds, 0700), 0);
	/* systemd credentials are protected by their directory, not the mode */
	write_key(credfile, key_a, 32, 0444);
	write_key(path, key_b, 32, 0600);

	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
	assert_loads(path, "kek", key_a);
	/* the credential wins even when no path is configured */
	assert_loads(NULL, "kek", key_a);
	/* another credential name falls back to the path */
	assert_loads(path, "other", key_b);
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);

	assert_int_equal(sealed_kek_load(path, "kek", &k, &err), 0);
	assert_true(kek_is(k, key_b));
	assert_false(kek_is(k, key_a));
	sealed_kek_free(k);
	unlink(credfile);
	unlink(path);
	rmdir(creds);
}

static void
test_derive(void **state)
{
	/* HKDF-SHA256, no salt, IKM key_a, info "audit" (openssl kdf HKDF) */
	static const uint8_t want_audit[32] = {0xad, 0xa3, 0x48, 0xd6, 0x4c, 0x25, 0x35, 0x69,
	                                       0x9a, 0x93, 0xa7, 0x52, 0xaa, 0x50, 0x5c, 0xd2,
	                                       0x22, 0x46, 0xad, 0xac, 0xfb, 0x78, 0x95, 0x65,
	                                       0xac, 0x5d, 0xe0, 0x02, 0x63, 0xd0, 0x7c, 0x2a};
	sealed_kek_t *ka = kek(key_a), *kb = kek(key_b);
	uint8_t a1[32], a2[32], s1[32], b1[32];
	err_t err;

	(void)state;
	assert_int_equal(sealed_derive(ka, "audit", a1, &err), 0);
	assert_int_equal(sealed_derive(ka, "audit", a2, &err), 0);
	assert_int_equal(sealed_derive(ka, "sessions", s1, &err), 0);
	assert_int_equal(sealed_derive(kb, "audit", b1, &err), 0);
	/* a derived key never changes: stored audit chains depend on it */
	assert_memory_equal(a1, want_audit, 32);
	assert_memory_equal(a1, a2, 32);
	assert_memory_not_equal(a1, s1, 32);
	assert_memory_not_equal(a1, b1, 32);
	assert_memory_not_equal(a1, key_a, 32);
	sealed_kek_free(ka);
	sealed_kek_free(kb);
	sealed_kek_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_empty_plaintext_and_aad),
	    cmocka_unit_test(test_seal_appends),
	    cmocka_unit_test(test_two_seals_differ),
	    cmocka_unit_test(test_tampered_blobs_refused),
	    cmocka_unit_test(test_wrong_aad_or_kek_refused),
	    cmocka_unit_test(test_open_into_small_buffer),
	    cmocka_unit_test(test_kek_load_good_files),
	    cmocka_unit_test(test_kek_load_refused),
	    cmocka_unit_test(test_kek_load_missing),
	    cmocka_unit_test(test_kek_credentials_directory_wins),
	    cmocka_unit_test(test_derive),
	};

	return cmocka_run_group_tests_name("sealed", tests, setup_dir, tu_teardown_dir);
}
