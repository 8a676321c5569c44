/*
 * signer: private keys out of the network process (after relayd's ca.c).
 * A daemon that signs starts a signer process before it opens any socket:
 * the daemon's own binary re-executed with SIGNER_ARGV, holding the KEK and
 * nothing else (no network, no store, every other descriptor closed, not
 * dumpable, no new privileges, "nobody" when started as root).  It unseals
 * private keys from the sealed blobs the daemon hands it, keeps them in a
 * bounded cache, generates and seals new keys, and signs digests.
 *
 * The daemon talks to it over socketpairs, one request at a time per
 * channel (several channels: the worker loops sign at once), in frames of
 * src/core with TLVs; every reply is awaited with a deadline.  A supervisor
 * thread restarts a signer that dies, with backoff; meanwhile signing fails
 * at once with UNAVAILABLE.  A malformed frame makes the signer exit: only
 * a broken or subverted daemon sends one.
 *
 * signer_pkey() gives OpenSSL an EVP_PKEY that holds only the public key
 * and sends its signatures here (signkey.c), so X509_sign, X509_CRL_sign,
 * OCSP_basic_sign, X509_REQ_sign and EVP_DigestSign need no change.
 */
#ifndef STB_SIGNER_H
#define STB_SIGNER_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

/* argv[1] of the re-executed daemon binary. */
#define SIGNER_ARGV "--signer-process"
/* AAD of a key signer_genkey() made and signer_reseal() has not yet bound
 * to its row: only the signer seals under it. */
#define SIGNER_PENDING_AAD  "stbcred signer pending key v1"
#define SIGNER_CHANNELS_MAX 32
#define SIGNER_FRAME_MAX    4096 /* any request or reply */
#define SIGNER_BLOB_MAX     1024 /* a sealed private key */
#define SIGNER_AAD_MAX      512
#define SIGNER_SIG_MAX      160
#define SIGNER_PUB_MAX      256
#define SIGNER_DATA_MAX     256  /* a secret sealed or opened for the daemon */
#define SIGNER_TIMEOUT_MS   2000 /* a reply, else UNAVAILABLE */

/* Message types and TLVs of the signer's own protocol (it never leaves the
 * host, so it is not in proto/stb_proto.def). */
enum {
	SIGNER_MSG_PING = 1,
	SIGNER_MSG_SIGN = 2,   /* AAD, BLOB, DIGEST -> SIG */
	SIGNER_MSG_GENKEY = 3, /* -> BLOB (under SIGNER_PENDING_AAD), PUB */
	SIGNER_MSG_RESEAL = 4, /* BLOB (pending), AAD -> BLOB (under AAD) */
	SIGNER_MSG_SEAL = 5,   /* AAD, DATA -> BLOB */
	SIGNER_MSG_OPEN = 6,   /* AAD, BLOB -> DATA, never a private key */
};
enum {
	SIGNER_TLV_STATUS = 1, /* u16, in error replies */
	SIGNER_TLV_TEXT = 2,
	SIGNER_TLV_AAD = 0x10,
	SIGNER_TLV_BLOB = 0x11,
	SIGNER_TLV_DIGEST = 0x12,
	SIGNER_TLV_SIG = 0x13,
	SIGNER_TLV_PUB = 0x14, /* SubjectPublicKeyInfo DER */
	SIGNER_TLV_DATA = 0x15,
};

typedef struct signer signer_t;

/* The signer process's main (from daemon_main when argv[1] is SIGNER_ARGV);
 * returns the exit code. */
int signer_main(int argc, char **argv);

/* Forks and execs the signer (self is the daemon's binary, NULL:
 * /proc/self/exe) with nchan channels, loading the KEK from kek_file (or
 * the systemd credential "kek"), and starts its supervisor.  Fails when
 * the first signer does not answer. */
int signer_start(const char *name, const char *self, const char *kek_file, int nchan,
                 signer_t **out, err_t *err);
void signer_free(signer_t *s);
/* The current signer's pid, 0 while none runs. */
pid_t signer_pid(signer_t *s);
/* Signers started so far (1 + restarts). */
uint64_t signer_starts(signer_t *s);

/* One exchange: type and TLVs in req (a TLV body), the reply's body in
 * *rsp (buf_init'd by the caller).  UNAVAILABLE when no signer answers in
 * time; the signer's own status when it refuses. */
int signer_call(signer_t *s, uint16_t type, const buf_t *req, buf_t *rsp, err_t *err);
/* A DER ECDSA signature of dgst by the key sealed in blob under aad. */
int signer_sign(signer_t *s, const void *aad, size_t aadlen, const void *blob, size_t bloblen,
                const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t cap, size_t *siglen,
                err_t *err);
/* A new P-256 key: its sealed blob (under SIGNER_PENDING_AAD) appended to
 * blob, and *pub its public key (the caller frees). */
int signer_genkey(signer_t *s, buf_t *blob, EVP_PKEY **pub, err_t *err);
/* Seals the key of a pending blob under aad instead (appended to out). */
int signer_reseal(signer_t *s, const void *pending, size_t plen, const void *aad, size_t aadlen,
                  buf_t *out, err_t *err);

/* Secrets other than private keys (device secrets): sealed under the KEK
 * by the signer (blob appended to out), and opened (UNAUTHENTICATED when
 * the blob does not open under aad; FORBIDDEN for a private key). */
int signer_seal(signer_t *s, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                buf_t *out, err_t *err);
int signer_open(signer_t *s, const void *aad, size_t aadlen, const void *blob, size_t bloblen,
                uint8_t *pt, size_t cap, size_t *ptlen, err_t *err);

/* ---- signkey.c: the key proxy ---- */

/* An EVP_PKEY with pub's public key whose signing is sent to s with the
 * sealed blob and its aad (copied).  NULL with err. */
EVP_PKEY *signer_pkey(signer_t *s, EVP_PKEY *pub, const void *aad, size_t aadlen, const void *blob,
                      size_t bloblen, err_t *err);
/* After an OpenSSL signing call failed: 1 and the signer's error (such as
 * UNAVAILABLE) in *err when a proxied signature on this thread failed
 * since the last call, 0 otherwise.  Clears it. */
int signer_take_err(err_t *err);

#endif
