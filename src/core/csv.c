/* csv: the line and field reader of stbctl's CSV imports. */
#include "csv.h"

#include <string.h>

/* A line never holds '\n'; the other blanks are trimmed, '\r' included. */
static int
csv_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

void
csv_init(csv_reader_t *r, const char *text, size_t len)
{
	r->p = text;
	r->end = text + len;
	r->line = 0;
	r->records = 0;
}

/* The fields of [s, e): each trimmed, counted past CSV_FIELDS_MAX. */
static void
csv_split(const char *s, const char *e, csv_record_t *rec)
{
	rec->nf = 0;
	for (;;) {
		const char *c = memchr(s, ',', (size_t)(e - s)), *fe = c != NULL ? c : e;
		const char *fs = s;

		while (fs < fe && csv_blank(*fs))
			fs++;
		while (fe > fs && csv_blank(fe[-1]))
			fe--;
		if (rec->nf < CSV_FIELDS_MAX)
			rec->f[rec->nf] = (csv_field_t){fs, (size_t)(fe - fs)};
		rec->nf++;
		if (c == NULL)
			return;
		s = c + 1;
	}
}

int
csv_next(csv_reader_t *r, csv_record_t *rec)
{
	while (r->p < r->end) {
		const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
		const char *s = r->p, *e = nl != NULL ? nl : r->end;

		r->p = nl != NULL ? nl + 1 : r->end;
		r->line++;
		while (s < e && csv_blank(*s))
			s++;
		if (s == e || *s == '#')
			continue;
		csv_split(s, e, rec);
		rec->line = r->line;
		rec->first = r->records++ == 0;
		return 1;
	}
	return 0;
}

int
csv_is(const csv_record_t *rec, size_t i, const char *word)
{
	size_t n = strlen(word);

	return i < rec->nf && i < CSV_FIELDS_MAX && rec->f[i].n == n &&
	       memcmp(rec->f[i].s, word, n) == 0;
}

int
csv_str(const csv_record_t *rec, size_t i, char *out, size_t cap)
{
	const csv_field_t *f;

	if (i >= rec->nf || i >= CSV_FIELDS_MAX || cap == 0)
		return -1;
	f = &rec->f[i];
	if (f->n >= cap || memchr(f->s, '\0', f->n) != NULL)
		return -1;
	memcpy(out, f->s, f->n);
	out[f->n] = '\0';
	return 0;
}
