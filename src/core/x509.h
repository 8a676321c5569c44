/*
 * x509: the certificate helpers both sides need, once: the SAN URI walk,
 * certificate times as seconds since the epoch, serial numbers as bytes
 * and hex, and a strict DER parse.  (Prefix crt_: x509_ is OpenSSL's.)
 */
#ifndef STB_X509_H
#define STB_X509_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRT_SERIAL_MAX  20 /* RFC 5280 4.1.2.2: at most 20 octets */
#define CRT_SERIAL_HEX  (2 * CRT_SERIAL_MAX + 1)
#define CRT_DER_MAX     16384 /* one certificate, DER */
#define CRT_SAN_URI_MAX 1024  /* a SAN URI longer than this is skipped */

/* The SAN URIs of a media-access certificate: its device ID and its
 * certificate ID (ca-authd issues them, media-gw and ca-authd read them). */
#define CRT_DEVICE_URI "urn:stbcred:device:"
#define CRT_CERT_URI   "urn:stbcred:cert:"

/* Called for each SAN URI of a certificate that starts with the walk's
 * prefix, with the rest after the prefix (not NUL-terminated, never empty,
 * no NUL inside); returns 0 to go on, 1 to stop the walk. */
typedef int (*crt_uri_fn)(const char *rest, size_t len, void *arg);

/* Walks x's subjectAltName URIs that start with prefix, in order.  1 when
 * fn stopped the walk, 0 when it ran to the end (also: no SAN, or a SAN
 * that does not parse). */
int crt_san_uri_each(X509 *x, const char *prefix, crt_uri_fn fn, void *arg);
/* The first SAN URI starting with prefix whose rest fits out (cap bytes
 * with the NUL); 0, or -1 when there is none. */
int crt_san_uri(X509 *x, const char *prefix, char *out, size_t cap);

/* t as seconds since the epoch (UTCTime or GeneralizedTime); -1 with
 * BAD_REQUEST when t is NULL or does not parse. */
int crt_time(const ASN1_TIME *t, int64_t *out, err_t *err);

/* The serial ai (an X509's, an OCSP CertID's) as its minimal big-endian
 * magnitude: no leading zero byte, zero as one 0 byte.  -1 with
 * BAD_REQUEST when negative or longer than CRT_SERIAL_MAX bytes. */
int crt_serial_get(const ASN1_INTEGER *ai, uint8_t out[CRT_SERIAL_MAX], size_t *len, err_t *err);
/* Drops leading zero bytes of *p, keeping at least one byte. */
void crt_serial_norm(const uint8_t **p, size_t *len);
/* Uppercase hex of the first CRT_SERIAL_MAX bytes at p, NUL-terminated. */
void crt_serial_hex(const uint8_t *p, size_t len, char out[CRT_SERIAL_HEX]);
/* Reads an operator's hex serial: optional 0x, either case, an odd digit
 * count has an implied leading zero; normalised as crt_serial_norm().
 * -1 with BAD_REQUEST when empty, not hex or too long. */
int crt_serial_parse(const char *hex, uint8_t out[CRT_SERIAL_MAX], size_t *len, err_t *err);

/* Exactly one DER certificate in der/len (nothing left over, at most
 * CRT_DER_MAX bytes); NULL with BAD_REQUEST otherwise. */
X509 *crt_from_der(const uint8_t *der, size_t len, err_t *err);
/* The same, from a small process-wide memo of certificates parsed lately
 * (matched on the whole DER): for certificates that recur, such as an OCSP
 * responder's.  A new reference; thread-safe. */
X509 *crt_from_der_memo(const uint8_t *der, size_t len, err_t *err);

/* One definite-length DER TLV of tag and class (V_ASN1_UNIVERSAL, ...) at
 * *p, within end: its contents in c/clen and *p past it; -1 when what is
 * there is anything else (for walking a message's outer layers). */
int crt_der_tlv(const uint8_t **p, const uint8_t *end, int tag, int cls, const uint8_t **c,
                size_t *clen);
/* The certificates in the contents of a SET or SEQUENCE OF Certificate
 * (der/len), each from crt_from_der_memo, into x (at most cap): how many,
 * or -1 (none kept) when one is not a certificate or there are more. */
int crt_der_certs_memo(const uint8_t *der, size_t len, X509 **x, int cap);

#endif
