/*
 * stbcred protocol constants, generated from the registry (stb_proto.def).
 * Public: firmware may use the status codes and the frame layout.
 */
#ifndef STB_STBPROTO_H
#define STB_STBPROTO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STB_FRAME_MAGIC0      0x53 /* 'S' */
#define STB_FRAME_MAGIC1      0x42 /* 'B' */
#define STB_FRAME_VERSION     1
#define STB_FRAME_HDR_LEN     16
#define STB_FRAME_F_RESPONSE  0x01
#define STB_FRAME_F_ERROR     0x02
#define STB_FRAME_F_PUSH      0x04
#define STB_FRAME_F_MASK      0x07
#define STB_FRAME_DEFAULT_MAX 65536u
#define STB_FRAME_CAP         (16u * 1024u * 1024u)
#define STB_TLV_HDR_LEN       6
#define STB_TLV_F_IGNORABLE   0x8000
#define STB_ID_MAX            128

/* Status codes carried in the STATUS TLV; append-only. */
typedef enum {
#define STB_STATUS(n, c, d) STB_##n = c,
#include "stb_proto.def"
} stb_status_t;

/* Role bits for the registry's allowed-sender masks. */
enum {
#define STB_ROLE(n, b, u) STB_R_##n = 1u << (b),
#include "stb_proto.def"
};
#define STB_R_ANY 0xffffffffu

/* Message types. */
typedef enum {
#define STB_MSG(n, c, r, d) STB_MSG_##n = c,
#include "stb_proto.def"
} stb_msg_type_t;

/* TLV types. */
typedef enum {
#define STB_TLV(n, c, k, mn, mx, r, d) STB_TLV_##n = c,
#include "stb_proto.def"
} stb_tlv_type_t;

/* Short name of a status code ("NOT_FOUND"); "UNKNOWN" for others. */
__attribute__((visibility("default"))) const char *stb_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
