/* The outbound retry schedule: exponential backoff with a cap, and a lifetime. */
#include "retry.h"

void retry_policy_default(struct retry_policy *p)
{
	p->min_backoff_ms = 5ULL * 60 * 1000;
	p->max_backoff_ms = 60ULL * 60 * 1000;
	p->lifetime_ms = 5ULL * 24 * 3600 * 1000;
	p->delay_warning_ms = 4ULL * 3600 * 1000;
}

uint64_t retry_backoff_ms(const struct retry_policy *p, unsigned tries)
{
	if (tries == 0)
		return 0;
	uint64_t d = p->min_backoff_ms;
	/* Doubling stops at the cap, so the shift can never overflow. */
	for (unsigned i = 1; i < tries && d < p->max_backoff_ms; i++)
		d *= 2;
	return d > p->max_backoff_ms ? p->max_backoff_ms : d;
}

bool retry_expired(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms)
{
	return now_ms >= arrival_ms && now_ms - arrival_ms >= p->lifetime_ms;
}

uint64_t retry_next_try_ms(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms,
                           unsigned tries)
{
	if (retry_expired(p, arrival_ms, now_ms))
		return 0;
	uint64_t next = now_ms + retry_backoff_ms(p, tries);
	uint64_t end = arrival_ms + p->lifetime_ms;
	return next > end ? end : next;
}

bool retry_warning_due(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms,
                       bool already_warned)
{
	if (p->delay_warning_ms == 0 || already_warned)
		return false;
	if (p->delay_warning_ms >= p->lifetime_ms)
		return false;
	return now_ms >= arrival_ms && now_ms - arrival_ms >= p->delay_warning_ms;
}
