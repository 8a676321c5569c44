/* base45: RFC 9285 (see base45.h). */
#include "base45.h"

static const char base45_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/* The value of one character, or -1. */
static int
base45_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	switch (c) {
	case ' ':
		return 36;
	case '$':
		return 37;
	case '%':
		return 38;
	case '*':
		return 39;
	case '+':
		return 40;
	case '-':
		return 41;
	case '.':
		return 42;
	case '/':
		return 43;
	case ':':
		return 44;
	default:
		return -1;
	}
}

size_t
base45_encoded_len(size_t n)
{
	return n / 2 * 3 + (n % 2) * 2;
}

int
base45_encode(const uint8_t *p, size_t n, char *out, size_t cap, size_t *outlen, err_t *err)
{
	size_t need, o = 0;

	if (n > (SIZE_MAX - 1) / 2)
		return err_set(err, STB_TOO_LARGE, "base45: input too long");
	need = base45_encoded_len(n);
	if (cap == 0 || need > cap - 1)
		return err_set(err, STB_TOO_LARGE, "base45: %zu characters do not fit in %zu", need,
		               cap);
	for (size_t i = 0; i + 1 < n; i += 2) {
		unsigned v = (unsigned)p[i] << 8 | p[i + 1];
		out[o++] = base45_alphabet[v % 45];
		out[o++] = base45_alphabet[v / 45 % 45];
		out[o++] = base45_alphabet[v / 2025];
	}
	if (n % 2) {
		unsigned v = p[n - 1];
		out[o++] = base45_alphabet[v % 45];
		out[o++] = base45_alphabet[v / 45];
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

int
base45_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen, err_t *err)
{
	size_t o = 0;

	if (len % 3 == 1)
		return err_set(err, STB_BAD_REQUEST, "base45: a length of 3k+1 characters");
	if (len / 3 * 2 + (len % 3 ? 1 : 0) > cap)
		return err_set(err, STB_TOO_LARGE, "base45: decoded bytes do not fit in %zu", cap);
	for (size_t i = 0; i < len; i += 3) {
		size_t k = len - i >= 3 ? 3 : 2;
		unsigned long v = 0, mul = 1;

		for (size_t j = 0; j < k; j++) {
			int d = base45_value((unsigned char)s[i + j]);
			if (d < 0)
				return err_set(err, STB_BAD_REQUEST,
				               "base45: character %zu is not in the alphabet",
				               i + j);
			v += (unsigned long)d * mul;
			mul *= 45;
		}
		if (k == 3) {
			if (v > 0xffff)
				return err_set(err, STB_BAD_REQUEST,
				               "base45: group at %zu is out of range", i);
			out[o++] = (uint8_t)(v >> 8);
			out[o++] = (uint8_t)v;
		} else {
			if (v > 0xff)
				return err_set(err, STB_BAD_REQUEST,
				               "base45: last group is out of range");
			out[o++] = (uint8_t)v;
		}
	}
	if (outlen != NULL)
		*outlen = o;
	return 0;
}
