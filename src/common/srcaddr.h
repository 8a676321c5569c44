/*
 * srcaddr: what "one source" is, for everything counted per source (guessing
 * penalties in lockout.c, refusal summaries in refusal.c): the IPv4 address,
 * or the IPv6 /64, since one subscriber gets a /64 and picks its hosts' low
 * bits freely.  connguard.c applies the same rule to a sockaddr at accept.
 */
#ifndef STB_SRCADDR_H
#define STB_SRCADDR_H

/* The longest key ("ffff:ffff:ffff:ffff::/64" fits; a peer that is no
 * address is cut here). */
#define SRCADDR_MAX 63

/* The source key of a peer "ip:port" ("[v6]:port" or "v6:port", as
 * srv_conn_peer says): the IPv4 address, or the IPv6 /64 as
 * "2001:db8:1:2::/64" (an IPv4-mapped address is its IPv4).  0, or -1 when
 * peer is no address (out is then peer, truncated: still one key per peer). */
int srcaddr_key(const char *peer, char out[SRCADDR_MAX + 1]);

#endif
