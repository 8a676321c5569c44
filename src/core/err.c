#include "err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
err_set(err_t *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void
err_clear(err_t *err)
{
	if (err == NULL)
		return;
	err->status = STB_OK;
	err->msg[0] = '\0';
}

int
err_set_ossl(err_t *err, int status, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	va_list ap;
	size_t n;

	ERR_clear_error();
	if (err == NULL)
		return -1;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	if (e != 0 && n + 3 < sizeof(err->msg)) {
		const char *r = ERR_reason_error_string(e);
		if (r != NULL)
			snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", r);
	}
	return -1;
}
