/* The verified-password cache: hits only for the same user, password and stored hash
 * within the TTL; eviction by expiry; off when sized 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "auth_cache.h"

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static bool check(struct auth_cache *c, const char *user, const char *stored, const char *pw)
{
	return auth_cache_check(c, user, stored, pw, strlen(pw));
}

static void store(struct auth_cache *c, const char *user, const char *stored, const char *pw)
{
	auth_cache_store(c, user, stored, pw, strlen(pw));
}

static void test_off(void **state)
{
	(void)state;
	assert_null(auth_cache_new(0, 1000));
	assert_null(auth_cache_new(10, 0));
	struct auth_cache *c = NULL;
	store(c, "a@x", "{PLAIN}p", "p");
	assert_false(check(c, "a@x", "{PLAIN}p", "p"));
	auth_cache_clear(c);
	auth_cache_free(&c);
}

static void test_hit_and_misses(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new(100, 60000);
	assert_non_null(c);
	auth_cache_set_clock(c, fake_clock);
	fake_now = 1000;
	assert_false(check(c, "alice@x", "$6$salt$hash", "secret"));
	store(c, "alice@x", "$6$salt$hash", "secret");
	assert_true(check(c, "alice@x", "$6$salt$hash", "secret"));
	/* Another password, another stored hash (password changed), another user. */
	assert_false(check(c, "alice@x", "$6$salt$hash", "secreT"));
	assert_false(check(c, "alice@x", "$6$salt$hash", "secret "));
	assert_false(check(c, "alice@x", "$6$salt$hash", ""));
	assert_false(check(c, "alice@x", "$6$other$hash", "secret"));
	assert_false(check(c, "bob@x", "$6$salt$hash", "secret"));
	/* Boundaries of the parts cannot be shifted: user "alice@x" + stored "y..." differs
	 * from user "alice@xy" + stored "...". */
	store(c, "u", "ab", "c");
	assert_false(check(c, "u", "a", "bc"));
	/* Passwords with NULs are compared whole. */
	auth_cache_store(c, "nul@x", "{PLAIN}", "a\0b", 3);
	assert_true(auth_cache_check(c, "nul@x", "{PLAIN}", "a\0b", 3));
	assert_false(auth_cache_check(c, "nul@x", "{PLAIN}", "a\0c", 3));
	assert_false(auth_cache_check(c, "nul@x", "{PLAIN}", "a", 1));
	uint64_t hits, stores;
	auth_cache_counts(c, &hits, &stores);
	assert_int_equal(hits, 2);
	assert_int_equal(stores, 3);
	/* The newest password of a user replaces the older one. */
	store(c, "alice@x", "$6$new$hash", "newpw");
	assert_true(check(c, "alice@x", "$6$new$hash", "newpw"));
	assert_false(check(c, "alice@x", "$6$salt$hash", "secret"));
	auth_cache_clear(c);
	assert_false(check(c, "alice@x", "$6$new$hash", "newpw"));
	auth_cache_free(&c);
	assert_null(c);
}

static void test_expiry(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new(10, 5000);
	auth_cache_set_clock(c, fake_clock);
	fake_now = 1000;
	store(c, "a@x", "h", "p");
	fake_now = 5999;
	assert_true(check(c, "a@x", "h", "p"));
	fake_now = 6000;
	assert_false(check(c, "a@x", "h", "p"));
	auth_cache_free(&c);
}

/* Four entries fit in a cache of four (one set); a fifth user evicts the entry closest to
 * expiry, and an expired entry is reused before any live one. */
static void test_eviction(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new(4, 10000);
	auth_cache_set_clock(c, fake_clock);
	char users[5][32];
	for (int i = 0; i < 5; i++)
		snprintf(users[i], sizeof(users[i]), "user%d@x", i);
	for (int i = 0; i < 4; i++) {
		fake_now = 1000 + (uint64_t)i;
		store(c, users[i], "h", "p");
	}
	for (int i = 0; i < 4; i++)
		assert_true(check(c, users[i], "h", "p"));
	fake_now = 2000;
	store(c, users[4], "h", "p");
	assert_false(check(c, users[0], "h", "p"));
	for (int i = 1; i < 5; i++)
		assert_true(check(c, users[i], "h", "p"));
	/* user1 expires first (stored at 1001): at 11001.5 only it is gone. */
	fake_now = 11001;
	store(c, users[0], "h", "p");
	assert_true(check(c, users[0], "h", "p"));
	assert_false(check(c, users[1], "h", "p"));
	for (int i = 2; i < 5; i++)
		assert_true(check(c, users[i], "h", "p"));
	auth_cache_free(&c);
}

/* A large cache spreads users over its sets: all 5,000 remain. */
static void test_many_users(void **state)
{
	(void)state;
	struct auth_cache *c = auth_cache_new(20000, 60000);
	char user[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "u%d@example.test", i);
		store(c, user, "h", "p");
	}
	int found = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "u%d@example.test", i);
		found += check(c, user, "h", "p") ? 1 : 0;
	}
	/* 4-way sets of 8192: losing more than a handful would mean a broken index. */
	assert_true(found >= 4990);
	auth_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_off),        cmocka_unit_test(test_hit_and_misses),
	    cmocka_unit_test(test_expiry),     cmocka_unit_test(test_eviction),
	    cmocka_unit_test(test_many_users),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
