/* hex: bytes as hex digits and back. */
#include "hex.h"

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
hex_put(const uint8_t *p, size_t n, char *out, const char digits[16])
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	hex_put(p, n, out, "0123456789abcdef");
}

void
hex_encode_upper(const uint8_t *p, size_t n, char *out)
{
	hex_put(p, n, out, "0123456789ABCDEF");
}

int
hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	if (len % 2 != 0 || len / 2 > cap)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_digit((unsigned char)s[2 * i]),
		    lo = hex_digit((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (outlen != NULL)
		*outlen = len / 2;
	return 0;
}
