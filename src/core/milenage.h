/*
 * milenage: the 3GPP authentication and key agreement functions f1, f1*,
 * f2, f3, f4, f5 and f5* of TS 35.206 over AES-128, and the operator
 * variant OPc = AES-128_K(OP) xor OP.
 *
 * Both sides need them: qualifyd's embedded HSS derives OPc for generated
 * subscriptions, and a device (stb-client, the GSUP test peer) computes
 * RES, CK and IK from a RAND with the K and OPc it was delivered.  K and
 * OPc are secrets: callers wipe them (OPENSSL_cleanse) after use.
 */
#ifndef STB_MILENAGE_H
#define STB_MILENAGE_H

#include <stdint.h>

#include "err.h"

#define MILENAGE_K_LEN    16 /* K, OP, OPc, RAND */
#define MILENAGE_SQN_LEN  6
#define MILENAGE_AMF_LEN  2
#define MILENAGE_MAC_LEN  8 /* MAC-A (f1), MAC-S (f1*) */
#define MILENAGE_RES_LEN  8 /* RES / XRES (f2) */
#define MILENAGE_CK_LEN   16
#define MILENAGE_IK_LEN   16
#define MILENAGE_AK_LEN   6
#define MILENAGE_AUTN_LEN 16 /* SQN xor AK || AMF || MAC-A */

/* What the device derives from one RAND (f2, f3, f4, f5). */
typedef struct milenage_keys {
	uint8_t res[MILENAGE_RES_LEN];
	uint8_t ck[MILENAGE_CK_LEN];
	uint8_t ik[MILENAGE_IK_LEN];
	uint8_t ak[MILENAGE_AK_LEN];
} milenage_keys_t;

/* OPc = AES-128_K(OP) xor OP.  -1 with INTERNAL when AES fails. */
int milenage_opc(const uint8_t k[MILENAGE_K_LEN], const uint8_t op[MILENAGE_K_LEN],
                 uint8_t opc[MILENAGE_K_LEN], err_t *err);

/* f1 (MAC-A) and f1* (MAC-S) over RAND, SQN and AMF; either output may be
 * NULL. */
int milenage_f1(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                const uint8_t rand[MILENAGE_K_LEN], const uint8_t sqn[MILENAGE_SQN_LEN],
                const uint8_t amf[MILENAGE_AMF_LEN], uint8_t mac_a[MILENAGE_MAC_LEN],
                uint8_t mac_s[MILENAGE_MAC_LEN], err_t *err);

/* f2 (RES), f3 (CK), f4 (IK) and f5 (AK) of RAND into *out. */
int milenage_f2345(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                   const uint8_t rand[MILENAGE_K_LEN], milenage_keys_t *out, err_t *err);

/* f5* (the resynchronisation AK) of RAND. */
int milenage_f5star(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                    const uint8_t rand[MILENAGE_K_LEN], uint8_t ak_s[MILENAGE_AK_LEN], err_t *err);

/* The network's AUTN for RAND and SQN: SQN xor AK || AMF || MAC-A. */
int milenage_autn(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                  const uint8_t rand[MILENAGE_K_LEN], const uint8_t sqn[MILENAGE_SQN_LEN],
                  const uint8_t amf[MILENAGE_AMF_LEN], uint8_t autn[MILENAGE_AUTN_LEN], err_t *err);

/* The device's side of an authentication: computes *out from RAND, then
 * checks that AUTN's MAC-A is the one f1 gives for the SQN it conceals
 * (written to sqn, may be NULL).  -1 with UNAUTHENTICATED when it is not
 * (the network does not hold this K/OPc); *out is wiped then.  The SQN
 * freshness window is the caller's (a USIM's) business. */
int milenage_check_autn(const uint8_t k[MILENAGE_K_LEN], const uint8_t opc[MILENAGE_K_LEN],
                        const uint8_t rand[MILENAGE_K_LEN], const uint8_t autn[MILENAGE_AUTN_LEN],
                        milenage_keys_t *out, uint8_t sqn[MILENAGE_SQN_LEN], err_t *err);

#endif
