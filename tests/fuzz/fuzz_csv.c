/*
 * fuzz_csv: the CSV import reader (src/core/csv.c, used by
 * `cp import` and `gw import`) on arbitrary bytes, with what the importers
 * do to each record (copy the ID fields, hex-decode a secret).  Any crash,
 * leak or sanitizer report is a finding, and so is a record that breaks
 * the reader's promises: fields inside the text, trimmed, without commas
 * or newlines, lines counted upward.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "hex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void
fuzz_field(const char *text, size_t size, const csv_record_t *rec, size_t i)
{
	const csv_field_t *f = &rec->f[i];
	char s[129];
	uint8_t secret[64];
	size_t slen;

	if (f->s < text || f->s + f->n > text + size)
		abort();
	if (f->n > 0 && (fuzz_blank(f->s[0]) || fuzz_blank(f->s[f->n - 1]) ||
	                 memchr(f->s, ',', f->n) != NULL || memchr(f->s, '\n', f->n) != NULL))
		abort();
	if (csv_str(rec, i, s, sizeof(s)) == 0 && (strlen(s) != f->n || memcmp(s, f->s, f->n)))
		abort();
	if (hex_decode(f->s, f->n, secret, sizeof(secret), &slen) == 0 && slen > sizeof(secret))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t lines = 1, last = 0;
	csv_reader_t r;
	csv_record_t rec;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	csv_init(&r, text, size);
	while (csv_next(&r, &rec) == 1) {
		if (rec.line <= last || rec.line > lines || rec.nf == 0 || rec.first != (last == 0))
			abort();
		last = rec.line;
		if (rec.f[0].n > 0 && rec.f[0].s[0] == '#')
			abort(); /* a comment line is no record */
		for (size_t i = 0; i < rec.nf && i < CSV_FIELDS_MAX; i++)
			fuzz_field(text, size, &rec, i);
		if (csv_str(&rec, rec.nf, (char[4]){0}, 4) != -1 || csv_is(&rec, rec.nf, ""))
			abort(); /* past the last field there is none */
	}
	if (csv_next(&r, &rec) != 0)
		abort();
	return 0;
}
