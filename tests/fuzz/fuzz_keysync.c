/*
 * fuzz_keysync: the key sync SMS text and the reply SMS (src/core/keysync.c)
 * as any sender may write them.  A text that decodes must encode back to
 * the same bytes (the format has one spelling).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keysync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[KEYSYNC_SMS_MAX + 1], app[KEYSYNC_ID_MAX + 1];
	keysync_sms_t s;
	int status;
	err_t err;

	if (keysync_sms_decode((const char *)data, size, &s, &err) == 0) {
		if (keysync_sms_encode(&s, out, sizeof out, &err) != 0 || strlen(out) != size ||
		    memcmp(out, data, size) != 0)
			abort();
	}
	keysync_sms_reply_parse((const char *)data, size, &status, app, sizeof app, &err);
	return 0;
}
