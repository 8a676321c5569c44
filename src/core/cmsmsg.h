/*
 * cmsmsg: CMS (RFC 5652) messages both sides exchange: SignedData made and
 * checked against a trust store, and EnvelopedData / AuthEnvelopedData to
 * an EC recipient (ECDH key agreement, as `openssl cms -encrypt -recip
 * x.crt` makes it) opened with the recipient's key.  Flow D packs the
 * credentials as EnvelopedData inside SignedData; flow C envelopes a key to
 * an app platform.  Everything is DER; `openssl cms` reads and writes the
 * same messages.
 */
#ifndef STB_CMSMSG_H
#define STB_CMSMSG_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define CMSMSG_CONTENT_MAX (1u << 20) /* content signed or enveloped */
#define CMSMSG_DER_MAX     (2u << 20) /* one message */

enum { CMSMSG_ATTACHED, CMSMSG_DETACHED };
enum { CMSMSG_AES256_GCM, CMSMSG_AES256_CBC };

/* SignedData over data (at most CMSMSG_CONTENT_MAX bytes) by signer with
 * key (SHA-256), carrying signer and the certificates in extra (may be
 * NULL), the content inside (CMSMSG_ATTACHED) or not (CMSMSG_DETACHED);
 * the DER is appended to out.  -1 with BAD_REQUEST (key does not match,
 * sizes), TOO_LARGE (out's cap) or INTERNAL. */
int cmsmsg_sign(X509 *signer, EVP_PKEY *key, STACK_OF(X509) * extra, const uint8_t *data,
                size_t len, int mode, buf_t *out, err_t *err);

/*
 * Checks the SignedData der: every signature, and each signer's chain to
 * trust (the signer certificate must suit S/MIME signing: no extended key
 * usage or emailProtection, unless trust's parameters name another
 * purpose).  detached: the content when the message carries none (NULL
 * otherwise; both or neither is an error).  want_signer (may be NULL): the
 * certificate that must be among the signers.  Appends an attached content
 * to content (may be NULL) and sets *signer (may be NULL) to the first
 * signer's certificate, which the caller frees.  -1 with UNAUTHENTICATED
 * (signature, chain, signer), BAD_REQUEST (not one DER SignedData, sizes)
 * or TOO_LARGE.
 */
int cmsmsg_verify(X509_STORE *trust, X509 *want_signer, const uint8_t *der, size_t len,
                  const uint8_t *detached, size_t detached_len, buf_t *content, X509 **signer,
                  err_t *err);
/* The same; on success *certs gets the certificates the message carries
 * (free with sk_X509_pop_free), so that a caller looking for the signer's
 * issuer does not decode the message again. */
int cmsmsg_verify_certs(X509_STORE *trust, X509 *want_signer, const uint8_t *der, size_t len,
                        const uint8_t *detached, size_t detached_len, buf_t *content, X509 **signer,
                        STACK_OF(X509) * *certs, err_t *err);

/* Envelopes data (at most CMSMSG_CONTENT_MAX bytes) to the EC recipient
 * certificate recip: AuthEnvelopedData with CMSMSG_AES256_GCM,
 * EnvelopedData with CMSMSG_AES256_CBC (what `openssl cms -encrypt` makes
 * by default); the DER is appended to out.  -1 with BAD_REQUEST (not an
 * EC certificate, sizes), TOO_LARGE or INTERNAL. */
int cmsmsg_encrypt(X509 *recip, const uint8_t *data, size_t len, int cipher, buf_t *out,
                   err_t *err);

/* Opens the (Auth)EnvelopedData der with the recipient's key (cert, which
 * may be NULL, picks the recipient info) and appends the content to out.
 * out holds a secret: buf_wipe() it.  -1 with UNAUTHENTICATED (not for
 * this key, or tampered with), BAD_REQUEST or TOO_LARGE. */
int cmsmsg_decrypt(EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len, buf_t *out,
                   err_t *err);

#endif
