/*
 * hex: bytes as hex digits and back, for keys, serials, tokens and IDs in
 * files, logs, audit details and command lines.
 */
#ifndef STB_HEX_H
#define STB_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* Writes n bytes as 2n lowercase digits and a NUL: out holds 2n + 1. */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* The same with uppercase digits (certificate serials). */
void hex_encode_upper(const uint8_t *p, size_t n, char *out);
/* Reads the len digits at s (either case; no prefix, no blanks) into the
 * len / 2 bytes of out, which holds cap, and sets *outlen (may be NULL) to
 * len / 2.  -1 when len is odd, a character is not a hex digit or the
 * bytes do not fit: *outlen is left alone, out may hold some bytes. */
int hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#endif
