/* Unit tests for the POP3 line framing and command splitting: limits and bad input first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pop3_parse.h"

static void test_line_crlf_and_lf(void **state)
{
	(void)state;
	struct pop3_line_parser p = {0};
	size_t len, used;

	assert_int_equal(pop3_line_next(&p, "STAT\r\nLIST", 10, 255, &len, &used), POP3_LINE_OK);
	assert_int_equal(len, 4);
	assert_int_equal(used, 6);
	assert_int_equal(pop3_line_next(&p, "LIST\n", 5, 255, &len, &used), POP3_LINE_OK);
	assert_int_equal(len, 4);
	assert_int_equal(used, 5);
	/* No terminator yet, and a lone CR at the end is the first half of CRLF. */
	assert_int_equal(pop3_line_next(&p, "LIST\r", 5, 255, &len, &used), POP3_LINE_NEED_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(pop3_line_next(&p, "", 0, 255, &len, &used), POP3_LINE_NEED_MORE);
}

static void test_line_cap_exact(void **state)
{
	(void)state;
	struct pop3_line_parser p = {0};
	size_t len, used;
	char line[16];

	memset(line, 'A', 8);
	/* Exactly max bytes without terminator: still a candidate. */
	assert_int_equal(pop3_line_next(&p, line, 8, 8, &len, &used), POP3_LINE_NEED_MORE);
	memcpy(line + 8, "\r\n", 2);
	assert_int_equal(pop3_line_next(&p, line, 10, 8, &len, &used), POP3_LINE_OK);
	assert_int_equal(len, 8);
	/* max + 1 bytes: too long at once, before any terminator arrives. */
	memset(line, 'A', 9);
	assert_int_equal(pop3_line_next(&p, line, 9, 8, &len, &used), POP3_LINE_TOO_LONG);
	assert_int_equal(used, 9);
	assert_true(p.skipping);
	/* The rest of that line is skipped, whatever it contains. */
	assert_int_equal(pop3_line_next(&p, "QUIT", 4, 8, &len, &used), POP3_LINE_NEED_MORE);
	assert_int_equal(used, 4);
	assert_int_equal(pop3_line_next(&p, "xx\r\nSTAT\r\n", 10, 8, &len, &used),
	                 POP3_LINE_NEED_MORE);
	assert_int_equal(used, 4);
	assert_false(p.skipping);
	assert_int_equal(pop3_line_next(&p, "STAT\r\n", 6, 8, &len, &used), POP3_LINE_OK);
	/* A complete over-long line in one piece is reported and consumed whole. */
	assert_int_equal(pop3_line_next(&p, "AAAAAAAAAAAA\r\nX", 15, 8, &len, &used),
	                 POP3_LINE_TOO_LONG);
	assert_int_equal(used, 14);
	assert_false(p.skipping);
}

struct parse_case {
	const char *line;
	int ret;
	const char *name;
	unsigned n_args;
	const char *arg0, *arg1, *rest;
};

static const struct parse_case parse_cases[] = {
    {"STAT", 0, "STAT", 0, NULL, NULL, ""},
    {"stat", 0, "STAT", 0, NULL, NULL, ""},
    {"LiSt 3", 0, "LIST", 1, "3", NULL, "3"},
    {"TOP 1 10", 0, "TOP", 2, "1", "10", "1 10"},
    {"AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0, "AUTH", 2, "PLAIN", "AGFsaWNlAHNlY3JldA==", NULL},
    {"PASS my secret pass", 0, "PASS", 1, "my secret pass", NULL, "my secret pass"},
    {"PASS ", 0, "PASS", 1, "", NULL, ""},
    {"", -1, NULL, 0, NULL, NULL, NULL},
    {" STAT", -1, NULL, 0, NULL, NULL, NULL},
    {"STATS", -1, NULL, 0, NULL, NULL, NULL},
    {"ST4T", -1, NULL, 0, NULL, NULL, NULL},
    {"TOP 1  10", -1, NULL, 0, NULL, NULL, NULL},
    {"TOP 1 10 ", -1, NULL, 0, NULL, NULL, NULL},
    {"TOP 1 2 3", -1, NULL, 0, NULL, NULL, NULL},
    {"USER a\tb", -1, NULL, 0, NULL, NULL, NULL},
    {"USER \x80", -1, NULL, 0, NULL, NULL, NULL},
    {"LIST ", -1, NULL, 0, NULL, NULL, NULL},
};

static void test_command_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		char *line = strdup(c->line);
		struct pop3_command cmd;
		const char *error = NULL;
		int r = pop3_command_parse(line, strlen(line), &cmd, &error);
		if (r != c->ret)
			fail_msg("case %zu (%s): got %d", i, c->line, r);
		if (r < 0) {
			assert_non_null(error);
		} else {
			assert_string_equal(cmd.name, c->name);
			assert_int_equal(cmd.n_args, c->n_args);
			if (c->arg0 != NULL)
				assert_string_equal(cmd.args[0], c->arg0);
			if (c->arg1 != NULL)
				assert_string_equal(cmd.args[1], c->arg1);
			if (c->rest != NULL && c->n_args < 2)
				assert_string_equal(cmd.rest, c->rest);
		}
		free(line);
	}
}

static void test_embedded_nul(void **state)
{
	(void)state;
	char line[] = "USER a\0b";
	struct pop3_command cmd;
	const char *error;
	assert_int_equal(pop3_command_parse(line, sizeof(line) - 1, &cmd, &error), -1);
	char line2[] = "PASS a\0b";
	assert_int_equal(pop3_command_parse(line2, sizeof(line2) - 1, &cmd, &error), -1);
}

static void test_numbers(void **state)
{
	(void)state;
	unsigned n;
	assert_int_equal(pop3_parse_msgnum("1", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pop3_parse_msgnum("4294967295", &n), 0);
	assert_int_equal(n, 4294967295u);
	assert_int_equal(pop3_parse_msgnum("4294967296", &n), -1);
	assert_int_equal(pop3_parse_msgnum("99999999999999999999999", &n), -1);
	assert_int_equal(pop3_parse_msgnum("0", &n), -1);
	assert_int_equal(pop3_parse_msgnum("-1", &n), -1);
	assert_int_equal(pop3_parse_msgnum("+1", &n), -1);
	assert_int_equal(pop3_parse_msgnum("1a", &n), -1);
	assert_int_equal(pop3_parse_msgnum("", &n), -1);
	assert_int_equal(pop3_parse_count("0", &n), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_crlf_and_lf), cmocka_unit_test(test_line_cap_exact),
	    cmocka_unit_test(test_command_table),    cmocka_unit_test(test_embedded_nul),
	    cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
