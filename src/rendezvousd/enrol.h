/*
 * enrol: the one-time enrolment code of a provisioned device.  RDV_PROVISION
 * draws it and shows it once; the store keeps only its verifier; the first
 * RDV_REGISTER must present it, and its success consumes it.
 */
#ifndef RDV_ENROL_H
#define RDV_ENROL_H

#include <stdint.h>

#define RDV_ENROL_LEN          16 /* random bytes in a code */
#define RDV_ENROL_CODE_CAP     (2 * RDV_ENROL_LEN + 1)
#define RDV_ENROL_VERIFIER_LEN 32

/* A new code for device_id (hex, NUL-terminated) and its verifier; -1 when
 * there is no randomness or the ID is too long. */
int rdv_enrol_draw(const char *device_id, char code[RDV_ENROL_CODE_CAP],
                   uint8_t verifier[RDV_ENROL_VERIFIER_LEN]);
/* The verifier of code (32 hex digits, either case) for device_id; -1 when
 * code is not one. */
int rdv_enrol_verifier(const char *device_id, const char *code,
                       uint8_t verifier[RDV_ENROL_VERIFIER_LEN]);

#endif
