/* Unit tests for csv: the CSV import reader (src/core/csv.c). */
#include <stdio.h>
#include <string.h>

#include "csv.h"
#include "testutil.h"

/* Every record of text as "line:field|field|..;" */
static void
csv_render(const char *text, size_t len, char *out, size_t cap)
{
	csv_reader_t r;
	csv_record_t rec;
	size_t o = 0;

	out[0] = '\0';
	csv_init(&r, text, len);
	while (csv_next(&r, &rec) == 1) {
		o += (size_t)snprintf(out + o, cap - o, "%zu%s:", rec.line, rec.first ? "*" : "");
		for (size_t i = 0; i < rec.nf && i < CSV_FIELDS_MAX; i++)
			o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? "|" : "",
			                      (int)rec.f[i].n, rec.f[i].s);
		if (rec.nf > CSV_FIELDS_MAX)
			o += (size_t)snprintf(out + o, cap - o, "+%zu", rec.nf - CSV_FIELDS_MAX);
		o += (size_t)snprintf(out + o, cap - o, ";");
	}
}

static void
test_records(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"", ""},
	    {"\n\n \t\r\n", ""},
	    {"a", "1*:a;"},
	    {"a,b\n", "1*:a|b;"},
	    {"a,b\r\nc,d", "1*:a|b;2:c|d;"},
	    {" a , b ,\t c \n", "1*:a|b|c;"},
	    {"# comment\n  # indented\na,b", "3*:a|b;"},
	    {"a,#b", "1*:a|#b;"},
	    {",x", "1*:|x;"},
	    {"a,,", "1*:a||;"},
	    {"\n\nlast", "3*:last;"},
	    {"1,2,3,4,5,6,7,8,9,10", "1*:1|2|3|4|5|6|7|8+2;"},
	    {"a\vb\f,c", "1*:a\vb|c;"},
	};
	char got[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		csv_render(cases[i].text, strlen(cases[i].text), got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
	}
}

/* A NUL is a byte like any other to the reader; csv_str refuses it. */
static void
test_str(void **state)
{
	static const char text[] = "device_id,abc,x\0y,0123456789";
	csv_reader_t r;
	csv_record_t rec;
	char s[8];

	(void)state;
	csv_init(&r, text, sizeof(text) - 1);
	assert_int_equal(csv_next(&r, &rec), 1);
	assert_int_equal(rec.nf, 4);
	assert_true(rec.first && csv_is(&rec, 0, "device_id"));
	assert_false(csv_is(&rec, 0, "device"));
	assert_false(csv_is(&rec, 4, ""));
	assert_int_equal(csv_str(&rec, 1, s, sizeof(s)), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(csv_str(&rec, 1, s, 3), -1); /* no room for the NUL */
	assert_int_equal(csv_str(&rec, 2, s, sizeof(s)), -1);
	assert_int_equal(csv_str(&rec, 3, s, sizeof(s)), -1); /* 10 bytes */
	assert_int_equal(csv_str(&rec, 4, s, sizeof(s)), -1);
	assert_int_equal(csv_next(&r, &rec), 0);
	assert_int_equal(csv_next(&r, &rec), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_str),
	};

	return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
