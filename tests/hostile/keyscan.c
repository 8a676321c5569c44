/*
 * keyscan: does a process hold the KEK or a private key?  Reads the
 * process's memory through /proc/PID/mem (root, or the same user with
 * ptrace rights) and counts the places where the KEK's 32 bytes and the
 * private scalar of a sealed key appear (big-endian as in DER, and
 * little-endian as OpenSSL's BIGNUM limbs hold it on this machine).
 *
 *   keyscan PID KEK_FILE [AAD_HEX SEALED_HEX]...
 *
 * prints "kek=N key=M" (M summed over every sealed key given).  Test
 * helper only: it opens the sealed keys itself with the KEK.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "sealed.h"

#define NEEDLES_MAX 32
#define CHUNK       (1 << 20)
#define REGION_MAX  (1UL << 30)

typedef struct needle {
	uint8_t b[32];
	int kek; /* else a key */
} needle_t;

static needle_t needles[NEEDLES_MAX];
static int nneedles;

static int
add_key(const sealed_kek_t *kek, const char *aadhex, const char *blobhex)
{
	uint8_t aad[512], blob[2048], pt[1024];
	size_t al, bl, pl;
	const unsigned char *p = pt;
	BIGNUM *priv = NULL;
	EVP_PKEY *k;
	err_t err;

	if (hex_decode(aadhex, strlen(aadhex), aad, sizeof(aad), &al) == -1 ||
	    hex_decode(blobhex, strlen(blobhex), blob, sizeof(blob), &bl) == -1 ||
	    sealed_open(kek, aad, al, blob, bl, pt, sizeof(pt), &pl, &err) == -1 ||
	    (k = d2i_AutoPrivateKey(NULL, &p, (long)pl)) == NULL) {
		fprintf(stderr, "keyscan: a sealed key does not open\n");
		return -1;
	}
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 ||
	    nneedles + 2 > NEEDLES_MAX) {
		EVP_PKEY_free(k);
		return -1;
	}
	BN_bn2binpad(priv, needles[nneedles].b, 32);
	for (int i = 0; i < 32; i++)
		needles[nneedles + 1].b[i] = needles[nneedles].b[31 - i];
	nneedles += 2;
	BN_clear_free(priv);
	EVP_PKEY_free(k);
	return 0;
}

int
main(int argc, char **argv)
{
	char path[64], line[512];
	static uint8_t buf[CHUNK + 64];
	long hits[2] = {0, 0};
	sealed_kek_t *kek;
	FILE *maps;
	int mem;
	err_t err;

	if (argc < 3 || (argc - 3) % 2 != 0) {
		fprintf(stderr, "usage: keyscan PID KEK_FILE [AAD_HEX SEALED_HEX]...\n");
		return 2;
	}
	if (sealed_kek_load(argv[2], NULL, &kek, &err) == -1) {
		fprintf(stderr, "keyscan: %s\n", err.msg);
		return 2;
	}
	/* the KEK's bytes, as sealed.c keeps them */
	{
		uint8_t k[SEALED_KEY_LEN];
		FILE *f = fopen(argv[2], "rb");
		size_t n = f ? fread(buf, 1, 128, f) : 0;
		if (f)
			fclose(f);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n == 32)
			memcpy(k, buf, 32);
		else if (hex_decode((const char *)buf, n, k, sizeof(k), NULL) == -1)
			return 2;
		memcpy(needles[0].b, k, 32);
		needles[0].kek = 1;
		nneedles = 1;
	}
	for (int i = 3; i + 1 < argc; i += 2)
		if (add_key(kek, argv[i], argv[i + 1]) == -1)
			return 2;
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	if ((maps = fopen(path, "r")) == NULL) {
		perror(path);
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	if ((mem = open(path, O_RDONLY)) == -1) {
		perror(path);
		return 2;
	}
	while (fgets(line, sizeof(line), maps) != NULL) {
		unsigned long lo, hi;
		char perms[8];

		/* past REGION_MAX is a sanitizer's shadow, reserved, not data:
		 * reading it would make the kernel back it */
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    hi - lo > REGION_MAX || strstr(line, "[vvar]") != NULL ||
		    strstr(line, "[vsyscall]") != NULL)
			continue;
		for (unsigned long off = lo; off < hi; off += CHUNK) {
			size_t want = hi - off > CHUNK + 32 ? CHUNK + 32 : hi - off;
			ssize_t n = pread(mem, buf, want, (off_t)off);
			if (n < 32)
				break;
			/* a match that starts in the 32-byte overlap is the next chunk's */
			for (int j = 0; j < nneedles; j++) {
				const uint8_t *p = buf, *end = buf + (n > CHUNK ? CHUNK + 31 : n);
				while ((p = memmem(p, (size_t)(end - p), needles[j].b, 32)) !=
				       NULL) {
					if (p - buf < CHUNK)
						hits[needles[j].kek ? 0 : 1]++;
					p++;
				}
			}
		}
	}
	fclose(maps);
	close(mem);
	sealed_kek_free(kek);
	printf("kek=%ld key=%ld\n", hits[0], hits[1]);
	return 0;
}
