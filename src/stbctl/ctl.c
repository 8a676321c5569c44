/* ctl: what stbctl's per-daemon command files share. */
#include "ctl.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stbc.h"
#include "tlv.h"

int
ctl_fail(const stb_error_t *err)
{
	fprintf(stderr, "stbctl: %s: %s\n", stb_status_name(err->status), err->message);
	return 1;
}

int
ctl_bad_request(const err_t *err)
{
	fprintf(stderr, "stbctl: %s: %s\n", stb_status_name(err->status), err->msg);
	return 2;
}

int
ctl_print_json(cJSON *o)
{
	char *s = cJSON_Print(o);

	if (s == NULL)
		return 1;
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
	return 0;
}

int
ctl_print_tally(const ctl_t *x, const char *verb, const char *what, size_t ok, size_t bad, int rc)
{
	if (x->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, verb, (double)ok);
		cJSON_AddNumberToObject(o, "failed", (double)bad);
		ctl_print_json(o);
	} else
		printf("%s %zu %s, %zu failed\n", verb, ok, what, bad);
	return rc == 0 && bad == 0 ? 0 : 1;
}

const char *
ctl_jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "-";
}

double
ctl_jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *
ctl_time(double t, char out[CTL_TIME_CAP])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		return "-";
	strftime(out, CTL_TIME_CAP, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

int
ctl_list(ctl_t *x, uint16_t type, const buf_t *req, int tix, ctl_row_fn row)
{
	const uint8_t *p;
	size_t pos = 0, len;
	stb_error_t err;
	cJSON *arr;
	msg_t m;

	if (stbc_call(x->c, type, req, &m, &err) == -1)
		return ctl_fail(&err);
	arr = cJSON_CreateArray();
	if (!x->json)
		row(NULL);
	while (msg_next(&m, tix, &pos, &p, &len) == 1) {
		cJSON *o = cJSON_ParseWithLength((const char *)p, len);
		if (o == NULL)
			continue;
		if (x->json)
			cJSON_AddItemToArray(arr, o);
		else {
			row(o);
			cJSON_Delete(o);
		}
	}
	if (x->json)
		return ctl_print_json(arr);
	cJSON_Delete(arr);
	return 0;
}

char *
ctl_slurp(const char *path, size_t max, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *text = NULL, *nt;
	size_t cap = 0, n;

	*len = 0;
	if (fp == NULL)
		return NULL;
	do {
		if (*len == cap) {
			nt = cap < max ? realloc(text, (cap = cap ? cap * 2 : 65536) + 1) : NULL;
			if (nt == NULL) {
				OPENSSL_clear_free(text, *len);
				if (fp != stdin)
					fclose(fp);
				return NULL;
			}
			text = nt;
		}
		n = fread(text + *len, 1, cap - *len, fp);
		*len += n;
	} while (n > 0);
	if (fp != stdin)
		fclose(fp);
	text[*len] = '\0';
	return text;
}
