/*
 * Relay policy and sender-login check, table-driven: local domains for anyone, relaying
 * only for authenticated clients and mynetworks (IPv4, IPv6, IPv4-mapped), and the
 * networks that must not parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "policy.h"

static struct policy pol;

static int setup(void **state)
{
	static const char *const domains[] = {"Example.ORG", "example.net"};
	static const char *const nets[] = {"10.0.0.0/8", "192.0.2.128/25", "2001:db8::/32",
	                                   "198.51.100.7"};
	char *err = NULL;
	(void)state;
	return policy_init(&pol, domains, 2, nets, 4, &err);
}

static int teardown(void **state)
{
	(void)state;
	policy_free(&pol);
	return 0;
}

struct rcpt_case {
	const char *rcpt;
	bool auth;
	const char *ip;
	enum policy_rcpt want;
};

static const struct rcpt_case rcpt_cases[] = {
    {"a@example.org", false, "203.0.113.1", POLICY_RCPT_LOCAL},
    {"a@EXAMPLE.org", false, "203.0.113.1", POLICY_RCPT_LOCAL},
    {"a@example.org.", false, "203.0.113.1", POLICY_RCPT_LOCAL},
    {"a@example.net", false, "203.0.113.1", POLICY_RCPT_LOCAL},
    {"postmaster", false, "203.0.113.1", POLICY_RCPT_LOCAL},
    {"a@sub.example.org", false, "203.0.113.1", POLICY_RCPT_DENIED},
    {"a@example.org.evil", false, "203.0.113.1", POLICY_RCPT_DENIED},
    {"a@xexample.org", false, "203.0.113.1", POLICY_RCPT_DENIED},
    {"\"a@example.org\"@evil.test", false, "203.0.113.1", POLICY_RCPT_DENIED},
    {"a@evil.test", true, "203.0.113.1", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "10.1.2.3", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "11.1.2.3", POLICY_RCPT_DENIED},
    {"a@evil.test", false, "192.0.2.200", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "192.0.2.100", POLICY_RCPT_DENIED},
    {"a@evil.test", false, "198.51.100.7", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "198.51.100.8", POLICY_RCPT_DENIED},
    {"a@evil.test", false, "2001:db8:1::5", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "2001:db9::5", POLICY_RCPT_DENIED},
    {"a@evil.test", false, "::ffff:10.9.9.9", POLICY_RCPT_RELAY},
    {"a@evil.test", false, "unix", POLICY_RCPT_DENIED},
    {"a@evil.test", false, NULL, POLICY_RCPT_DENIED},
};

static void test_rcpt(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		enum policy_rcpt got = policy_check_rcpt(&pol, c->rcpt, c->auth, c->ip);
		if (got != c->want)
			fail_msg("case %zu (%s from %s): got %d want %d", i, c->rcpt,
			         c->ip ? c->ip : "NULL", got, c->want);
	}
}

static void test_networks(void **state)
{
	struct policy_network n;
	static const char *const bad[] = {"10.0.0.0/33", "10.0.0/8", "x",         "",
	                                  "/8",          "::1/129",  "10.0.0.0/", "10.0.0.0/8x"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(policy_parse_network(bad[i], &n), -1);
	assert_int_equal(policy_parse_network("0.0.0.0/0", &n), 0);
	assert_int_equal(n.prefix, 0);
	struct policy p2;
	char *err = NULL;
	static const char *const nets[] = {"10.0.0.0/8", "nonsense"};
	assert_int_equal(policy_init(&p2, NULL, 0, nets, 2, &err), -1);
	assert_non_null(err);
	free(err);
}

static void test_sender_owned(void **state)
{
	(void)state;
	assert_true(policy_sender_owned(&pol, "bob@example.org", "bob@example.org"));
	assert_true(policy_sender_owned(&pol, "bob@example.org", "BOB@Example.Org"));
	assert_true(policy_sender_owned(&pol, "bob@example.org", ""));
	assert_false(policy_sender_owned(&pol, "bob@example.org", "alice@example.org"));
	assert_false(policy_sender_owned(&pol, "bob@example.org", "bob@example.net"));
	assert_true(policy_sender_owned(&pol, "bob", "bob@example.net"));
	assert_false(policy_sender_owned(&pol, "bob", "bob@evil.test"));
	assert_false(policy_sender_owned(&pol, "bob", "bobby@example.org"));
	assert_false(policy_sender_owned(&pol, "bob", "bo@example.org"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rcpt),
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_sender_owned),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
