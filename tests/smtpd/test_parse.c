/*
 * MAIL/RCPT path and parameter syntax, table-driven: what real clients send (forgiving
 * mode), what RFC 5321 allows (strict mode), and the nasty inputs next to the valid ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_parse.h"

struct path_case {
	const char *args;
	bool sender, strict;
	const char *address; /* NULL: must fail */
	size_t n_params;
};

static const struct path_case cases[] = {
    {"FROM:<a@example.org>", true, true, "a@example.org", 0},
    {"from:<a@example.org>", true, true, "a@example.org", 0},
    {"FROM:<>", true, true, "", 0},
    {"TO:<>", false, false, NULL, 0},
    {"FROM: user@yahoo.com", true, false, "user@yahoo.com", 0},
    {"FROM: user@yahoo.com", true, true, NULL, 0},
    {"FROM:user@yahoo.com", true, false, "user@yahoo.com", 0},
    {"FROM: <user@yahoo.com>", true, false, "user@yahoo.com", 0},
    {"FROM: <user@yahoo.com>", true, true, NULL, 0},
    {"FROM:<a@example.org> SIZE=10 BODY=8BITMIME", true, true, "a@example.org", 2},
    {"FROM:<a@example.org>  SIZE=10", true, true, NULL, 0},
    {"FROM:<a@example.org>  SIZE=10 ", true, false, "a@example.org", 1},
    {"FROM:<a@example.org> SMTPUTF8", true, true, "a@example.org", 1},
    {"FROM:<a@example.org> =x", true, true, NULL, 0},
    {"FROM:<a@example.org> SIZE=", true, true, NULL, 0},
    {"FROM:<a@example.org> A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11", true, true, NULL, 0},
    {"FROM:<a@example.org>x", true, true, NULL, 0},
    {"TO:<\"john doe\"@example.org>", false, true, "\"john doe\"@example.org", 0},
    {"TO:<\"a>b\"@example.org>", false, true, "\"a>b\"@example.org", 0},
    {"TO:<@relay.example:x@example.org>", false, true, "x@example.org", 0},
    {"TO:<Postmaster>", false, true, "Postmaster", 0},
    {"FROM:<postmaster>", true, true, NULL, 0},
    {"TO:<x@[192.0.2.1]>", false, true, "x@[192.0.2.1]", 0},
    {"TO:<x@>", false, true, NULL, 0},
    {"TO:<@example.org>", false, true, NULL, 0},
    {"TO:<x>", false, true, NULL, 0},
    {"TO:<x@@example.org>", false, true, NULL, 0},
    {"TO:<.x@example.org>", false, true, NULL, 0},
    {"TO:<x.@example.org>", false, true, NULL, 0},
    {"TO:<x..y@example.org>", false, true, NULL, 0},
    {"TO:<x@example..org>", false, true, NULL, 0},
    {"TO:<x@-example.org>", false, true, NULL, 0},
    {"TO:<x y@example.org>", false, true, NULL, 0},
    {"TO:<;sleep 66;@example.org>", false, true, NULL, 0},
    {"TO:<x@example.org", false, true, NULL, 0},
    {"TO:<<x@example.org>>", false, true, NULL, 0},
    {"TO:x@example.org>", false, false, NULL, 0},
    {"TO:", false, false, NULL, 0},
    {"TOO:<x@example.org>", false, false, NULL, 0},
    {"TO:<m\xc3\xbc@b\xc3\xbc.example>", false, true, "m\xc3\xbc@b\xc3\xbc.example", 0},
    {"TO:<x@example.org> NOTIFY=SUCCESS ORCPT=rfc822;x@example.org", false, true, "x@example.org",
     2},
};

static void test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct path_case *c = &cases[i];
		struct smtp_path p;
		const char *err = NULL;
		int r = smtp_parse_path(c->args, c->sender ? "FROM:" : "TO:", c->sender, c->strict,
		                        &p, &err);
		if (c->address == NULL) {
			if (r == 0)
				fail_msg("case %zu [%s]: accepted as [%s]", i, c->args, p.address);
			assert_non_null(err);
			assert_true(err[0] == '5');
			continue;
		}
		if (r != 0)
			fail_msg("case %zu [%s]: refused: %s", i, c->args, err);
		assert_string_equal(p.address, c->address);
		assert_int_equal(p.n_params, c->n_params);
		smtp_path_clear(&p);
	}
}

static void test_long_address(void **state)
{
	char args[1200];
	struct smtp_path p;
	const char *err;
	(void)state;
	/* 64-octet local part is fine, 65 is not; a path over 256 octets is refused. */
	memset(args, 0, sizeof(args));
	strcpy(args, "TO:<");
	memset(args + 4, 'a', 64);
	strcat(args, "@example.org>");
	assert_int_equal(smtp_parse_path(args, "TO:", false, true, &p, &err), 0);
	smtp_path_clear(&p);
	memset(args, 0, sizeof(args));
	strcpy(args, "TO:<");
	memset(args + 4, 'a', 65);
	strcat(args, "@example.org>");
	assert_int_equal(smtp_parse_path(args, "TO:", false, true, &p, &err), -1);
	memset(args, 0, sizeof(args));
	strcpy(args, "TO:<a@");
	memset(args + 6, 'b', 1000);
	strcat(args, ">");
	assert_int_equal(smtp_parse_path(args, "TO:", false, true, &p, &err), -1);
}

static void test_params_and_split(void **state)
{
	struct smtp_path p;
	const char *err;
	bool present;
	char line[] = "mail   FROM:<a@b.example>";
	char *verb, *args;
	(void)state;

	assert_int_equal(
	    smtp_parse_path("FROM:<a@example.org> size=10 smtputf8", "FROM:", true, true, &p, &err),
	    0);
	assert_string_equal(smtp_path_param(&p, "SIZE", &present), "10");
	assert_true(present);
	assert_null(smtp_path_param(&p, "SMTPUTF8", &present));
	assert_true(present);
	assert_null(smtp_path_param(&p, "BODY", &present));
	assert_false(present);
	smtp_path_clear(&p);

	smtp_split_command(line, &verb, &args);
	assert_string_equal(verb, "mail");
	assert_string_equal(args, "FROM:<a@b.example>");

	assert_true(smtp_xtext_valid("abc+2B+3D"));
	assert_false(smtp_xtext_valid("a=b"));
	assert_false(smtp_xtext_valid("a+2"));
	assert_false(smtp_xtext_valid("a+2b"));
	assert_false(smtp_xtext_valid("a b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_long_address),
	    cmocka_unit_test(test_params_and_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
