/*
 * pool: the overlay address pool, an IPv4 CIDR block.  Addresses are
 * numbered 1..size (the network and broadcast addresses are never handed
 * out); the store keeps which device holds which number.
 */
#ifndef RDV_POOL_H
#define RDV_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RDV_ADDR_MAX 16 /* "255.255.255.255" + NUL */

typedef struct rdv_pool {
	uint32_t base; /* network address, host order */
	uint32_t size; /* usable addresses */
} rdv_pool_t;

/* "10.77.0.0/16"; prefix 8..30, no host bits set.  0 or -1. */
int rdv_pool_parse(const char *cidr, rdv_pool_t *p);
/* Dotted address of number ix (1..size); -1 when outside the pool. */
int rdv_pool_addr(const rdv_pool_t *p, uint32_t ix, char out[RDV_ADDR_MAX]);
/* The lowest number not in used (ascending, may hold numbers outside the
 * pool and duplicates); 0 when the pool is full. */
uint32_t rdv_pool_first_free(const rdv_pool_t *p, const uint32_t *used, size_t n);

#endif
