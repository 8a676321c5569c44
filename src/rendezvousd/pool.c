#include "pool.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
rdv_pool_parse(const char *cidr, rdv_pool_t *p)
{
	char host[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	char *end;
	long len;
	uint32_t net, mask;
	size_t hl;

	if (slash == NULL || (hl = (size_t)(slash - cidr)) == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, cidr, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1 || slash[1] < '0' || slash[1] > '9')
		return -1;
	len = strtol(slash + 1, &end, 10);
	if (*end != '\0' || len < 8 || len > 30)
		return -1;
	net = ntohl(a.s_addr);
	mask = 0xffffffffu << (32 - len);
	if ((net & ~mask) != 0)
		return -1; /* host bits set: probably a typo */
	p->base = net;
	p->size = (~mask) - 1;
	return 0;
}

int
rdv_pool_addr(const rdv_pool_t *p, uint32_t ix, char out[RDV_ADDR_MAX])
{
	struct in_addr a;

	if (ix < 1 || ix > p->size)
		return -1;
	a.s_addr = htonl(p->base + ix);
	return inet_ntop(AF_INET, &a, out, RDV_ADDR_MAX) == NULL ? -1 : 0;
}

uint32_t
rdv_pool_first_free(const rdv_pool_t *p, const uint32_t *used, size_t n)
{
	uint32_t want = 1;

	for (size_t i = 0; i < n && want <= p->size; i++) {
		if (used[i] < want)
			continue; /* duplicate or below the range */
		if (used[i] > want)
			break;
		want++;
	}
	return want <= p->size ? want : 0;
}
