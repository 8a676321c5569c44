/*
 * siphash: SipHash-2-4 (Aumasson, Bernstein), the keyed hash behind every
 * table whose keys a peer chooses (device IDs, source addresses), so that
 * nobody can craft keys that collide into one bucket.  The process key is
 * drawn once, from RAND_bytes, the first time a table asks for it (at
 * start-up: tables are made by the daemons' init).
 */
#ifndef STB_SIPHASH_H
#define STB_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SIPHASH_KEY_LEN 16

uint64_t siphash_24(const uint8_t key[SIPHASH_KEY_LEN], const void *in, size_t len);
/* A key derived from the process key and a fresh per-call number, so two
 * tables of one process hash differently too.  -1 with err when the random
 * generator fails. */
int siphash_key_new(uint8_t key[SIPHASH_KEY_LEN], err_t *err);

#endif
