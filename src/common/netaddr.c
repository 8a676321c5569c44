#include "netaddr.h"

#include <event2/util.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
netaddr_resolve(const char *spec, struct sockaddr_storage *ss, int *sl, err_t *err)
{
	struct addrinfo hints, *res = NULL;
	const char *colon = strrchr(spec, ':');
	char host[256], *end;
	size_t hl;
	long port;
	int rc;

	*sl = (int)sizeof(*ss);
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)ss, sl) == 0)
		return 0;
	if (colon == NULL || (hl = (size_t)(colon - spec)) == 0 || hl >= sizeof(host))
		return err_set(err, STB_BAD_REQUEST, "'%s' is not host:port", spec);
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
		return err_set(err, STB_BAD_REQUEST, "'%s': the port is not 1..65535", spec);
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0 || res == NULL)
		return err_set(err, STB_BAD_REQUEST, "'%s': host name does not resolve: %s", spec,
		               rc != 0 ? gai_strerror(rc) : "no address");
	if (res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		return err_set(err, STB_INTERNAL, "'%s': address too long", spec);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = (int)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
