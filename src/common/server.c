/* server: what the srv_* API has that is no one part's: stats, metrics and
 * addresses.  The rest is listener.c, conn.c and reply.c (srvint.h). */
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "srvint.h"

void
srv_sockaddr_str(const struct sockaddr *sa, int peer, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0, v6 = !peer;

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		v6 = 0;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	/* a peer's v6 address goes without brackets, as it always did */
	snprintf(out, cap, v6 && !peer ? "[%s]:%d" : "%s:%d", host, port);
}

void
srv_addr_str(int fd, int peer, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
	              : getsockname(fd, (struct sockaddr *)&ss, &sl);

	srv_sockaddr_str(rc == 0 ? (struct sockaddr *)&ss : NULL, peer, out, cap);
}

int
srv_parse_addr(const char *spec, struct sockaddr_storage *ss, int *sl)
{
	const char *colon = strrchr(spec, ':');
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hl;
	long port;

	if (colon == NULL || (hl = (size_t)(colon - spec)) == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*sl = sizeof(*a);
	return 0;
}

srv_stats_t *
srv_stats_get(srv_t *s)
{
	srv_stats_t *st = calloc(1, sizeof(*st));
	srv_t *p = s->primary;

	if (st == NULL)
		return NULL;
	if (s == p) {
		/* the primary answers for every listener */
		st->connections = __atomic_load_n(&p->nconns, __ATOMIC_RELAXED);
		st->accepted = ctr_get(&p->accepted);
		st->rejected = ctr_get(&p->rejected);
		st->refused_source = ctr_get(&p->refused_source);
		st->evicted = ctr_get(&p->evicted);
		for (int i = 0; i < p->nattached; i++) {
			st->accepted += ctr_get(&p->attached[i]->accepted);
			st->rejected += ctr_get(&p->attached[i]->rejected);
			st->refused_source += ctr_get(&p->attached[i]->refused_source);
			st->evicted += ctr_get(&p->attached[i]->evicted);
		}
	} else {
		st->connections = __atomic_load_n(&s->lconns, __ATOMIC_RELAXED);
		st->accepted = ctr_get(&s->accepted);
		st->rejected = ctr_get(&s->rejected);
		st->refused_source = ctr_get(&s->refused_source);
		st->evicted = ctr_get(&s->evicted);
	}
	/* requests are counted per worker, over every listener */
	for (int i = 0; i < p->nworkers; i++) {
		srv_worker_t *w = &p->workers[i];
		st->requests += ctr_get(&w->requests);
		st->errors += ctr_get(&w->errors);
		st->unknown_type += ctr_get(&w->unknown_type);
		for (int m = 0; m < MSG_IX_COUNT; m++) {
			for (int k = 0; k < STATUS_COUNT; k++)
				st->count[m][k] += ctr_get(&w->count[m][k]);
			hist_merge(&st->latency[m], &w->latency[m]);
		}
	}
	return st;
}

static int
srv_write_listener(srv_t *l, buf_t *out)
{
	return buf_printf(out,
	                  "stbcred_listener_connections{listener=\"%s\"} %u\n"
	                  "stbcred_listener_accepted_total{listener=\"%s\"} %llu\n"
	                  "stbcred_listener_rejected_total{listener=\"%s\"} %llu\n"
	                  "stbcred_listener_refused_source_total{listener=\"%s\"} %llu\n"
	                  "stbcred_listener_evicted_total{listener=\"%s\"} %llu\n"
	                  "stbcred_listener_accept_errors_total{listener=\"%s\"} %llu\n",
	                  l->name, __atomic_load_n(&l->lconns, __ATOMIC_RELAXED), l->name,
	                  (unsigned long long)ctr_get(&l->accepted), l->name,
	                  (unsigned long long)ctr_get(&l->rejected), l->name,
	                  (unsigned long long)ctr_get(&l->refused_source), l->name,
	                  (unsigned long long)ctr_get(&l->evicted), l->name,
	                  (unsigned long long)connguard_accept_errors(l->guard));
}

int
srv_write_metrics(srv_t *s, buf_t *out)
{
	srv_stats_t *st = srv_stats_get(s);
	srv_t *p = s->primary;
	int rc = 0;

	if (st == NULL)
		return -1;
	rc |= buf_printf(
	    out,
	    "# HELP stbcred_connections open TLS connections\n# TYPE stbcred_connections "
	    "gauge\nstbcred_connections %u\n"
	    "# HELP stbcred_connections_accepted_total TLS connections accepted\n# TYPE "
	    "stbcred_connections_accepted_total counter\n"
	    "stbcred_connections_accepted_total %llu\n"
	    "# HELP stbcred_connections_rejected_total TLS connections refused at "
	    "max_connections\n# TYPE stbcred_connections_rejected_total counter\n"
	    "stbcred_connections_rejected_total %llu\n"
	    "# HELP stbcred_connections_refused_source_total TLS connections refused at "
	    "max_connections_per_source\n# TYPE stbcred_connections_refused_source_total counter\n"
	    "stbcred_connections_refused_source_total %llu\n"
	    "# HELP stbcred_connections_evicted_total unfinished TLS handshakes closed to make "
	    "room\n# TYPE stbcred_connections_evicted_total counter\n"
	    "stbcred_connections_evicted_total %llu\n",
	    st->connections, (unsigned long long)st->accepted, (unsigned long long)st->rejected,
	    (unsigned long long)st->refused_source, (unsigned long long)st->evicted);
	/* each listener's share of the totals above */
	rc |= buf_printf(
	    out,
	    "# HELP stbcred_listener_connections open TLS connections per listener\n# TYPE "
	    "stbcred_listener_connections gauge\n"
	    "# HELP stbcred_listener_accepted_total TLS connections accepted per listener\n# TYPE "
	    "stbcred_listener_accepted_total counter\n"
	    "# HELP stbcred_listener_rejected_total TLS connections refused at max_connections per "
	    "listener\n# TYPE stbcred_listener_rejected_total counter\n"
	    "# HELP stbcred_listener_refused_source_total TLS connections refused by the "
	    "per-source cap per listener\n# TYPE stbcred_listener_refused_source_total counter\n"
	    "# HELP stbcred_listener_evicted_total unfinished TLS handshakes closed per "
	    "listener\n# TYPE stbcred_listener_evicted_total counter\n"
	    "# HELP stbcred_listener_accept_errors_total accept() failures per listener (such as "
	    "out of descriptors)\n# TYPE stbcred_listener_accept_errors_total counter\n");
	rc |= srv_write_listener(p, out);
	for (int i = 0; i < p->nattached; i++)
		rc |= srv_write_listener(p->attached[i], out);
	rc |= buf_printf(out, "# HELP stbcred_requests_total requests answered by message and "
	                      "status\n# TYPE stbcred_requests_total counter\n");
	for (int m = 0; m < MSG_IX_COUNT; m++)
		for (int k = 0; k < STATUS_COUNT; k++)
			if (st->count[m][k] != 0)
				rc |=
				    buf_printf(out,
				               "stbcred_requests_total{type=\"%s\",status=\"%s\"} "
				               "%llu\n",
				               proto_msgs[m].name, stb_status_name(k),
				               (unsigned long long)st->count[m][k]);
	rc |= buf_printf(out,
	                 "stbcred_requests_total{type=\"UNKNOWN\",status=\"UNSUPPORTED\"} %llu\n",
	                 (unsigned long long)st->unknown_type);
	rc |= buf_printf(out, "# HELP stbcred_request_seconds time from a request read to its "
	                      "answer written\n# TYPE stbcred_request_seconds histogram\n");
	for (int m = 0; m < MSG_IX_COUNT; m++) {
		char label[96];
		if (st->latency[m].count == 0)
			continue;
		snprintf(label, sizeof(label), "type=\"%s\"", proto_msgs[m].name);
		rc |= hist_write_prom(out, "stbcred_request_seconds", label, &st->latency[m]);
	}
	free(st);
	return rc == 0 ? 0 : -1;
}
