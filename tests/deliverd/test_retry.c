/* The retry schedule: doubling from the minimum, the cap, the lifetime, delay warnings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "retry.h"

#define MIN (60ULL * 1000)

static void test_default_schedule(void **state)
{
	(void)state;
	struct retry_policy p;
	retry_policy_default(&p);
	/* 5, 10, 20, 40 minutes, then the 1 h cap for ever. */
	const uint64_t want[] = {0, 5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN, 60 * MIN};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(retry_backoff_ms(&p, i), want[i]);
	assert_int_equal(retry_backoff_ms(&p, 1000000), 60 * MIN);
	assert_int_equal(p.lifetime_ms, 5ULL * 24 * 60 * MIN);
}

static void test_configured_schedule(void **state)
{
	(void)state;
	/* A cap that is not a power-of-two multiple of the minimum is still honoured. */
	struct retry_policy p = {.min_backoff_ms = 1000,
	                         .max_backoff_ms = 5000,
	                         .lifetime_ms = 60000,
	                         .delay_warning_ms = 0};
	assert_int_equal(retry_backoff_ms(&p, 1), 1000);
	assert_int_equal(retry_backoff_ms(&p, 3), 4000);
	assert_int_equal(retry_backoff_ms(&p, 4), 5000);
	/* Huge minimum: no overflow. */
	struct retry_policy big = {.min_backoff_ms = UINT64_MAX / 2,
	                           .max_backoff_ms = UINT64_MAX,
	                           .lifetime_ms = UINT64_MAX};
	assert_true(retry_backoff_ms(&big, 64) >= UINT64_MAX / 2);
}

static void test_lifetime(void **state)
{
	(void)state;
	struct retry_policy p = {.min_backoff_ms = 1000,
	                         .max_backoff_ms = 8000,
	                         .lifetime_ms = 10000,
	                         .delay_warning_ms = 3000};
	uint64_t arrival = 1000000;
	assert_int_equal(retry_next_try_ms(&p, arrival, arrival + 100, 1), arrival + 1100);
	/* The next try would fall after expiry: it moves to the end of the lifetime. */
	assert_int_equal(retry_next_try_ms(&p, arrival, arrival + 9000, 4), arrival + 10000);
	/* At or after expiry: no more tries. */
	assert_int_equal(retry_next_try_ms(&p, arrival, arrival + 10000, 1), 0);
	assert_true(retry_expired(&p, arrival, arrival + 10000));
	assert_false(retry_expired(&p, arrival, arrival + 9999));
	/* A clock that went backwards never expires a message. */
	assert_false(retry_expired(&p, arrival, arrival - 50000));
}

static void test_warning(void **state)
{
	(void)state;
	struct retry_policy p = {.min_backoff_ms = 1000,
	                         .max_backoff_ms = 8000,
	                         .lifetime_ms = 10000,
	                         .delay_warning_ms = 3000};
	assert_false(retry_warning_due(&p, 0, 2999, false));
	assert_true(retry_warning_due(&p, 0, 3000, false));
	assert_false(retry_warning_due(&p, 0, 3000, true));
	p.delay_warning_ms = 0;
	assert_false(retry_warning_due(&p, 0, 9000, false));
	/* A warning later than the lifetime is never sent (the bounce says it all). */
	p.delay_warning_ms = 20000;
	assert_false(retry_warning_due(&p, 0, 30000, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_schedule),
	    cmocka_unit_test(test_configured_schedule),
	    cmocka_unit_test(test_lifetime),
	    cmocka_unit_test(test_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
