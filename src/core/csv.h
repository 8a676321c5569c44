/*
 * csv: the line and field reader of CSV imports (stbctl cp import,
 * gw import, keymgmtd key files).  One record per line, fields split at commas with the blanks
 * around each trimmed; blank lines and lines starting with '#' are
 * skipped.  No quoting: none of the imported fields may hold a comma.  The
 * reader only points into the text; nothing is copied or allocated.
 */
#ifndef STB_CSV_H
#define STB_CSV_H

#include <stddef.h>

#define CSV_FIELDS_MAX 8

typedef struct csv_field {
	const char *s;
	size_t n;
} csv_field_t;

typedef struct csv_reader {
	const char *p, *end;
	size_t line;    /* physical lines read so far */
	size_t records; /* records returned so far */
} csv_reader_t;

typedef struct csv_record {
	size_t line; /* 1-based, for messages */
	int first;   /* the file's first record (where a header may be) */
	size_t nf;   /* fields on the line; only the first CSV_FIELDS_MAX are in f */
	csv_field_t f[CSV_FIELDS_MAX];
} csv_record_t;

void csv_init(csv_reader_t *r, const char *text, size_t len);
/* The next record: 1, or 0 at the end of the text. */
int csv_next(csv_reader_t *r, csv_record_t *rec);
/* 1 when field i is there and is exactly word. */
int csv_is(const csv_record_t *rec, size_t i, const char *word);
/* Field i as a C string in out: -1 when it is absent, holds a NUL or does
 * not fit in cap bytes with its terminator. */
int csv_str(const csv_record_t *rec, size_t i, char *out, size_t cap);

#endif
