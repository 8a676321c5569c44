#include "err.h"

#include <stdarg.h>
#include <stdio.h>

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
