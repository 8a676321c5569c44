/* enrol: the one-time enrolment code a provisioned device proves at its
 * first REGISTER.  The code is 16 random bytes shown once (32 hex digits);
 * the store keeps only its verifier, SHA-256 over a label, the device ID
 * and the code, so neither a copy of the store nor the audit log gives it
 * away.  The code is uniformly random: a plain hash is enough. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "enrol.h"
#include "hex.h"
#include "stb/stbproto.h"

#define ENROL_LABEL "STB-RDV-ENROL-V1"

static int
enrol_hash(const char *device_id, const uint8_t code[RDV_ENROL_LEN],
           uint8_t verifier[RDV_ENROL_VERIFIER_LEN])
{
	size_t il = strlen(device_id);
	uint8_t msg[sizeof(ENROL_LABEL) - 1 + 1 + STB_ID_MAX + RDV_ENROL_LEN];
	size_t n = 0;
	unsigned int ml = 0;
	int rc;

	if (il > STB_ID_MAX)
		return -1;
	memcpy(msg, ENROL_LABEL, sizeof(ENROL_LABEL) - 1);
	n = sizeof(ENROL_LABEL) - 1;
	msg[n++] = (uint8_t)il;
	memcpy(msg + n, device_id, il);
	n += il;
	memcpy(msg + n, code, RDV_ENROL_LEN);
	n += RDV_ENROL_LEN;
	rc = EVP_Digest(msg, n, verifier, &ml, EVP_sha256(), NULL) == 1 &&
	             ml == RDV_ENROL_VERIFIER_LEN
	         ? 0
	         : -1;
	OPENSSL_cleanse(msg, sizeof(msg));
	return rc;
}

int
rdv_enrol_draw(const char *device_id, char code[RDV_ENROL_CODE_CAP],
               uint8_t verifier[RDV_ENROL_VERIFIER_LEN])
{
	uint8_t raw[RDV_ENROL_LEN];
	int rc = -1;

	if (RAND_bytes(raw, sizeof(raw)) == 1 && enrol_hash(device_id, raw, verifier) == 0) {
		hex_encode(raw, sizeof(raw), code);
		rc = 0;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

int
rdv_enrol_verifier(const char *device_id, const char *code,
                   uint8_t verifier[RDV_ENROL_VERIFIER_LEN])
{
	uint8_t raw[RDV_ENROL_LEN];
	size_t n = 0;
	int rc = -1;

	if (hex_decode(code, strlen(code), raw, sizeof(raw), &n) == 0 && n == RDV_ENROL_LEN)
		rc = enrol_hash(device_id, raw, verifier);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}
