/* apppay_emit: writes a sample of flow E's signed payloads for the
 * independent reader (cose_reader.py): DIR/op.pem (the operator's public
 * key), DIR/payload.txt (a published QR text), DIR/index.cose (a signed
 * snapshot holding that app) and DIR/expect.json (what they say). */
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "appindex.h"
#include "apppay.h"
#include "hex.h"

#define ISSUED  1800000000u
#define EXPIRES 1800086400u

static const char id1[] = "3f1e0c5b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

static FILE *
open_in(const char *dir, const char *name, const char *mode)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, mode)) == NULL)
		perror(path);
	return f;
}

int
main(int argc, char **argv)
{
	static const uint8_t enc_key[APPPAY_KEY_LEN] = {0x42};
	char text[APPPAY_TEXT_MAX + 1], refhex[2 * APPPAY_REF_LEN + 1],
	    kidhex[2 * COSE_KID_LEN + 1];
	uint8_t ref[APPPAY_REF_LEN], kid[COSE_KID_LEN];
	EVP_PKEY *key;
	appindex_t ix;
	buf_t b;
	err_t err;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: apppay_emit DIR\n");
		return 2;
	}
	if ((key = EVP_EC_gen("P-256")) == NULL)
		return 1;
	if (apppay_encode(id1, APPPAY_UNSAFE, ISSUED, EXPIRES, enc_key, key, text, sizeof(text),
	                  &err) == -1 ||
	    apppay_ref(id1, ref, &err) == -1 || cose_kid_of_key(key, kid, &err) == -1) {
		fprintf(stderr, "apppay_emit: %s\n", err.msg);
		return 1;
	}
	appindex_init(&ix);
	ix.version = 3;
	ix.issued = ISSUED;
	ix.expires = EXPIRES;
	buf_init(&b, 1 << 20);
	if (appindex_add(&ix, ref, APPPAY_UNSAFE, ISSUED, EXPIRES, "dangerous permission: SEND_SMS",
	                 &err) == -1 ||
	    appindex_encode(&ix, key, &b, &err) == -1) {
		fprintf(stderr, "apppay_emit: %s\n", err.msg);
		return 1;
	}
	hex_encode(ref, sizeof(ref), refhex);
	hex_encode(kid, sizeof(kid), kidhex);
	if ((f = open_in(argv[1], "op.pem", "w")) == NULL || PEM_write_PUBKEY(f, key) != 1)
		return 1;
	fclose(f);
	if ((f = open_in(argv[1], "payload.txt", "w")) == NULL)
		return 1;
	fprintf(f, "%s", text);
	fclose(f);
	if ((f = open_in(argv[1], "index.cose", "wb")) == NULL ||
	    fwrite(b.data, 1, b.len, f) != b.len)
		return 1;
	fclose(f);
	if ((f = open_in(argv[1], "expect.json", "w")) == NULL)
		return 1;
	fprintf(f,
	        "{\"flag\": %d, \"issued\": %u, \"expires\": %u, \"ref\": \"%s\", \"kid\": "
	        "\"%s\", \"index_version\": 3, \"id1_len\": %zu}\n",
	        APPPAY_UNSAFE, ISSUED, EXPIRES, refhex, kidhex, strlen(id1));
	fclose(f);
	appindex_clear(&ix);
	buf_free(&b);
	EVP_PKEY_free(key);
	return 0;
}
