/* avmetrics: appvetd's own counters (verdicts, publications, revocations,
 * checks, vetting time) as Prometheus text at /appvetd/metrics, beside the
 * daemon's /metrics. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "av.h"
#include "metrics.h"

static _Atomic uint64_t verdicts[2], publications[2], revocations;

/* Checks are counted per thread, each in a slot on its own cache line: one
 * shared counter would bounce between the worker loops on every check.
 * Threads past the slots share them (still exact, only slower). */
#define CHECK_SLOTS 16
static struct {
	_Alignas(64) _Atomic uint64_t n[2];
} check_slot[CHECK_SLOTS];
static _Atomic unsigned check_threads;
static _Thread_local int check_mine = -1;
static hist_t vet_time; /* hist_observe is lock-free */

void
av_metrics_verdict(int flag, int revoked, uint64_t us)
{
	atomic_fetch_add(&verdicts[flag == AV_FLAG_SAFE ? 0 : 1], 1);
	if (revoked)
		atomic_fetch_add(&revocations, 1);
	hist_observe(&vet_time, us);
}

void
av_metrics_publication(int flag)
{
	atomic_fetch_add(&publications[flag == AV_FLAG_SAFE ? 0 : 1], 1);
}

void
av_metrics_check(int allow)
{
	if (check_mine < 0)
		check_mine = (int)(atomic_fetch_add(&check_threads, 1) % CHECK_SLOTS);
	/* relaxed: only this thread writes its slot, unless past CHECK_SLOTS */
	atomic_fetch_add_explicit(&check_slot[check_mine].n[allow ? 0 : 1], 1,
	                          memory_order_relaxed);
}

static uint64_t
checks_total(int i)
{
	uint64_t n = 0;

	for (int s = 0; s < CHECK_SLOTS; s++)
		n += atomic_load_explicit(&check_slot[s].n[i], memory_order_relaxed);
	return n;
}

static void
metrics_http(struct evhttp_request *req, void *arg)
{
	av_t *av = arg;
	buf_t out;
	size_t nix;

	pthread_rwlock_rdlock(&av->ix_lock);
	nix = av->nix;
	pthread_rwlock_unlock(&av->ix_lock);
	buf_init(&out, 1u << 16);
	buf_printf(&out,
	           "# TYPE stbcred_app_verdicts_total counter\n"
	           "stbcred_app_verdicts_total{flag=\"SAFE\"} %llu\n"
	           "stbcred_app_verdicts_total{flag=\"UNSAFE\"} %llu\n",
	           (unsigned long long)verdicts[0], (unsigned long long)verdicts[1]);
	buf_printf(&out,
	           "# TYPE stbcred_app_publications_total counter\n"
	           "stbcred_app_publications_total{flag=\"SAFE\"} %llu\n"
	           "stbcred_app_publications_total{flag=\"UNSAFE\"} %llu\n",
	           (unsigned long long)publications[0], (unsigned long long)publications[1]);
	buf_printf(&out,
	           "# TYPE stbcred_app_revocations_total counter\n"
	           "stbcred_app_revocations_total %llu\n",
	           (unsigned long long)revocations);
	buf_printf(&out,
	           "# TYPE stbcred_app_checks_total counter\n"
	           "stbcred_app_checks_total{result=\"ALLOW\"} %llu\n"
	           "stbcred_app_checks_total{result=\"DENY\"} %llu\n",
	           (unsigned long long)checks_total(0), (unsigned long long)checks_total(1));
	av_check_metrics(av, &out);
	buf_printf(&out, "# TYPE stbcred_app_published gauge\nstbcred_app_published %zu\n", nix);
	buf_printf(&out, "# TYPE stbcred_app_vet_queue gauge\nstbcred_app_vet_queue %zu\n",
	           av->vet != NULL ? workpool_queued(av->vet) : 0);
	buf_printf(&out, "# TYPE stbcred_app_vet_seconds histogram\n");
	hist_write_prom(&out, "stbcred_app_vet_seconds", "", &vet_time);
	if (out.failed)
		httpd_reply(req, 500, "metrics too large", "text/plain", "", 0);
	else
		httpd_reply(req, 200, "OK", "text/plain; version=0.0.4", out.data, out.len);
	buf_free(&out);
}

int
av_metrics_register(av_t *av, err_t *err)
{
	return httpd_route(av->d, "/appvetd/metrics", EVHTTP_REQ_GET, 0, metrics_http, av, err);
}
