/*
 * base45: the text encoding of RFC 9285, whose 45 characters are exactly
 * the QR code's alphanumeric mode (so a QR holds 5.5 bits per character
 * instead of byte mode's 8).  Two bytes become three characters, a last
 * odd byte two.
 */
#ifndef STB_BASE45_H
#define STB_BASE45_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Characters base45_encode writes for n bytes (without the NUL). */
size_t base45_encoded_len(size_t n);
/* Writes the n bytes at p as base45 and a NUL into out, which holds cap
 * bytes; *outlen (may be NULL) gets the characters written.  -1 with
 * TOO_LARGE when out is too small. */
int base45_encode(const uint8_t *p, size_t n, char *out, size_t cap, size_t *outlen, err_t *err);
/* Reads the len characters at s into out (cap bytes), *outlen the bytes.
 * -1 with BAD_REQUEST for a character outside the alphabet, a length of
 * 3k+1, or a group whose value is out of range (RFC 9285 section 6: "GGW"
 * is 65535 + 1); TOO_LARGE when out is too small. */
int base45_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen, err_t *err);

#endif
