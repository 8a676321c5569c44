/*
 * fuzz_frame: the frame decoder and the registry validator on arbitrary
 * bytes, as a daemon meets them.  Any crash, leak, out-of-bounds access or
 * undefined behaviour is a finding; every accepted message must also be
 * readable through all getters without tripping anything.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	frame_hdr_t h;
	msg_t m;
	err_t err;

	/* a stream may hold several frames back to back */
	while (size > 0) {
		int rc = frame_decode(data, size, 65536, &h);
		size_t flen;

		if (rc != FRAME_OK)
			return 0;
		flen = STB_FRAME_HDR_LEN + (size_t)h.len;
		if (msg_parse(&m, &h, data + STB_FRAME_HDR_LEN, &err) == 0) {
			msg_check_role(&m, STB_R_ANONYMOUS, &err);
			for (int t = 0; t < TLV_IX_COUNT; t++) {
				uint64_t v64;
				uint32_t v32;
				uint16_t v16;
				uint8_t v8;
				const uint8_t *p;
				size_t len, pos = 0;
				char s[4200];

				msg_get_u8(&m, t, &v8);
				msg_get_u16(&m, t, &v16);
				msg_get_u32(&m, t, &v32);
				msg_get_u64(&m, t, &v64);
				msg_get_bytes(&m, t, &p, &len);
				msg_get_str(&m, t, s, sizeof(s));
				while (msg_next(&m, t, &pos, &p, &len) == 1)
					;
			}
			msg_status(&m);
		}
		data += flen;
		size -= flen;
	}
	return 0;
}
