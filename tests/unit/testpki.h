/* A throwaway PKI for unit tests over real TLS (prefix tu_pki_): a CA and
 * leaf certificates with stbcred role URIs, written as PEM files. */
#ifndef STB_TESTPKI_H
#define STB_TESTPKI_H

#include <stddef.h>

/* Writes dir/ca.crt (self-signed P-256 CA) and keeps the CA for tu_pki_leaf;
 * 0 or -1. */
int tu_pki_ca(const char *dir);
/* Writes dir/name.crt and dir/name.key, signed by the CA, with
 * urn:stbcred:role:<role> in its SAN (no URI when role is NULL); 0 or -1. */
int tu_pki_leaf(const char *dir, const char *name, const char *role);
/* dir/name into out. */
const char *tu_pki_path(char *out, size_t cap, const char *dir, const char *name);
/* Forgets the CA. */
void tu_pki_free(void);

#endif
