/* lifecycle: reference count, stopping flag, teardown (see lifecycle.h). */
#include "lifecycle.h"

#include "log.h"

void
lifecycle_init(lifecycle_t *lc, void (*teardown)(void *arg), void *arg)
{
	lc->refs = 1;
	lc->stopping = 0;
	lc->teardown = teardown;
	lc->arg = arg;
}

void
lifecycle_ref(lifecycle_t *lc)
{
	__atomic_fetch_add(&lc->refs, 1, __ATOMIC_RELAXED);
}

void
lifecycle_unref(lifecycle_t *lc)
{
	int left = __atomic_sub_fetch(&lc->refs, 1, __ATOMIC_ACQ_REL);

	if (left > 0)
		return;
	if (left < 0)
		fatalx("lifecycle: reference dropped twice");
	if (lc->teardown != NULL)
		lc->teardown(lc->arg); /* may free lc */
}

void
lifecycle_stop(lifecycle_t *lc)
{
	__atomic_store_n(&lc->stopping, 1, __ATOMIC_RELEASE);
}

int
lifecycle_stopping(const lifecycle_t *lc)
{
	return __atomic_load_n(&lc->stopping, __ATOMIC_ACQUIRE);
}
