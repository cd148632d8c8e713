/* Address and destination parsing of the relay: relayhost forms and the recipient domain
 * (a quoted local part may itself hold '@'). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "relay_private.h"

struct rh_case {
	const char *in;
	int ok;
	const char *host;
	int port;
	bool mx;
};

static const struct rh_case cases[] = {
    {"[smtp.example.net]:587", 0, "smtp.example.net", 587, false},
    {"[192.0.2.1]", 0, "192.0.2.1", 25, false},
    {"[2001:db8::1]:2525", 0, "2001:db8::1", 2525, false},
    {"example.net", 0, "example.net", 25, true},
    {"example.net:26", 0, "example.net", 26, true},
    {"[]:25", -1, NULL, 0, false},
    {"[host", -1, NULL, 0, false},
    {"[host]x", -1, NULL, 0, false},
    {"[host]:", -1, NULL, 0, false},
    {"[host]:0", -1, NULL, 0, false},
    {"[host]:65536", -1, NULL, 0, false},
    {"host:25x", -1, NULL, 0, false},
    {"host:-1", -1, NULL, 0, false},
};

static void test_relayhost(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct relay_settings s;
		memset(&s, 0, sizeof(s));
		char *err = NULL;
		int r = relay_parse_relayhost(cases[i].in, &s, &err);
		assert_int_equal(r, cases[i].ok);
		if (r == 0) {
			assert_string_equal(s.relayhost, cases[i].host);
			assert_int_equal(s.relayhost_port, cases[i].port);
			assert_int_equal(s.relayhost_mx, cases[i].mx);
		} else {
			assert_non_null(err);
			free(err);
		}
		free(s.relayhost);
	}
}

static void test_rcpt_domain(void **state)
{
	(void)state;
	assert_string_equal(relay_rcpt_domain("bob@bob.test"), "bob.test");
	assert_string_equal(relay_rcpt_domain("\"a@b\"@c.test"), "c.test");
	assert_string_equal(relay_rcpt_domain("user@[192.0.2.1]"), "[192.0.2.1]");
	assert_string_equal(relay_rcpt_domain("postmaster"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_relayhost),
	    cmocka_unit_test(test_rcpt_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
