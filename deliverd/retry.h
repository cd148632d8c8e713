/*
 * The retry schedule of the outbound queue: when a deferred recipient is tried again,
 * when it is given up, and when the sender gets a delay warning.
 *
 * The delay before try n+1 (n = tries made so far, n >= 1) is min_backoff * 2^(n-1),
 * capped at max_backoff; a recipient older than `lifetime` is not tried again and bounces
 * (RFC 5321 4.5.4.1: give up after at least 4-5 days). All times are milliseconds or
 * seconds since the epoch as named; nothing here reads the clock.
 */
#ifndef TERN_DELIVERD_RETRY_H
#define TERN_DELIVERD_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
	uint64_t min_backoff_ms;   /* first delay after a failed try (default 5 min) */
	uint64_t max_backoff_ms;   /* largest delay between tries (default 1 h) */
	uint64_t lifetime_ms;      /* give up this long after arrival (default 5 days) */
	uint64_t delay_warning_ms; /* warn the sender after this long (0 = never) */
};

/* The defaults named above (delay warning after 4 h). */
void retry_policy_default(struct retry_policy *p);

/* Delay in ms before the next try after `tries` failed tries (tries 0 -> 0). */
uint64_t retry_backoff_ms(const struct retry_policy *p, unsigned tries);

/*
 * When to try next (ms since the epoch) after a temporary failure at now_ms, or 0 when the
 * recipient has passed its lifetime and must bounce instead. A next try that would fall
 * after the lifetime is moved to the end of it, so the last try happens right before
 * expiry rather than never.
 */
uint64_t retry_next_try_ms(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms,
                           unsigned tries);

bool retry_expired(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms);

/* True when a delay warning is due: enabled, not sent yet, and the message is old enough. */
bool retry_warning_due(const struct retry_policy *p, uint64_t arrival_ms, uint64_t now_ms,
                       bool already_warned);

#endif
