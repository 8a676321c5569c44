/* netaddr: "host:port" for the peers a daemon calls: an IP literal
 * ("10.0.0.1:7101", "[::1]:7101") or a host name that resolves
 * (getaddrinfo, first address), as the unit files and compose name them. */
#ifndef STB_NETADDR_H
#define STB_NETADDR_H

#include <sys/socket.h>

#include "err.h"

/* 0 with *ss and *sl filled; -1 with err naming spec and why.  A host name
 * blocks for the lookup: call it at start-up or on a thread that may. */
int netaddr_resolve(const char *spec, struct sockaddr_storage *ss, int *sl, err_t *err);

#endif
