/* srcaddr: the source key of a peer address. */
#include "srcaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int
srcaddr_key(const char *peer, char out[SRCADDR_MAX + 1])
{
	const char *colon = strrchr(peer, ':');
	char host[INET6_ADDRSTRLEN + 2];
	struct in6_addr a6;
	struct in_addr a4;
	size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

	for (int whole = 0; whole < 2; whole++, n = strlen(peer)) {
		const char *h = peer;
		size_t hl = n;
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl == 0 || hl >= sizeof(host))
			continue;
		memcpy(host, h, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &a4) == 1) {
			inet_ntop(AF_INET, &a4, out, SRCADDR_MAX + 1);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &a6) != 1)
			continue;
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			inet_ntop(AF_INET, &a4, out, SRCADDR_MAX + 1);
			return 0;
		}
		/* one subscriber gets a /64: its hosts are one source */
		memset(&a6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &a6, host, sizeof(host));
		snprintf(out, SRCADDR_MAX + 1, "%s/64", host);
		return 0;
	}
	snprintf(out, SRCADDR_MAX + 1, "%s", peer);
	return -1;
}
