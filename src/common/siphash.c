/* siphash: SipHash-2-4 and the per-process key (see siphash.h). */
#include "siphash.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t
siphash_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t
siphash_24(const uint8_t key[SIPHASH_KEY_LEN], const void *in, size_t len)
{
	const uint8_t *p = in, *end = p + (len & ~(size_t)7);
	uint64_t k0 = siphash_le64(key), k1 = siphash_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)len << 56;

	for (; p != end; p += 8) {
		m = siphash_le64(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static pthread_once_t siphash_once = PTHREAD_ONCE_INIT;
static uint8_t siphash_process_key[SIPHASH_KEY_LEN];
static int siphash_process_ok;
static uint64_t siphash_seq;

static void
siphash_process_init(void)
{
	siphash_process_ok = RAND_bytes(siphash_process_key, sizeof(siphash_process_key)) == 1;
}

int
siphash_key_new(uint8_t key[SIPHASH_KEY_LEN], err_t *err)
{
	uint8_t in[9];
	uint64_t seq, h0, h1;

	pthread_once(&siphash_once, siphash_process_init);
	if (!siphash_process_ok)
		return err_set(err, STB_INTERNAL, "no random hash key: RAND_bytes failed");
	seq = __atomic_add_fetch(&siphash_seq, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 8; i++)
		in[i] = (uint8_t)(seq >> (8 * i));
	in[8] = 0;
	h0 = siphash_24(siphash_process_key, in, sizeof(in));
	in[8] = 1;
	h1 = siphash_24(siphash_process_key, in, sizeof(in));
	for (int i = 0; i < 8; i++) {
		key[i] = (uint8_t)(h0 >> (8 * i));
		key[8 + i] = (uint8_t)(h1 >> (8 * i));
	}
	OPENSSL_cleanse(&h0, sizeof(h0));
	OPENSSL_cleanse(&h1, sizeof(h1));
	return 0;
}
