/*
 * Config errors: every bad input next to the rule it breaks, each with the exact
 * "file:line:" it must be reported at and a piece of the message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/buf.h"
#include "config/config.h"
#include "test_tables.h"

struct error_case {
	const char *text;
	const char *where; /* the error starts with this */
	const char *what;  /* and contains this */
};

static const struct error_case error_cases[] = {
    /* Syntax. */
    {"nokey = 1\n", "t.conf:1: ", "unknown key 'nokey' in [global]"},
    {"\n\nlisten = x\n", "t.conf:3: ", "unknown key 'listen' in [global] (it belongs in [smtpd])"},
    {"[smtpd]\ncount = 1\n",
     "t.conf:2: ", "unknown key 'count' in [smtpd] (it belongs in [global])"},
    {"# c\n[nope]\n", "t.conf:2: ", "unknown section [nope]"},
    {"[Smtpd]\n", "t.conf:1: ", "unknown section [Smtpd]"},
    {"[]\n", "t.conf:1: ", "unknown section []"},
    {"[smtpd\n", "t.conf:1: ", "expected '[section]'"},
    {"[smtpd] x\n", "t.conf:1: ", "expected '[section]'"},
    {"count 5\n", "t.conf:1: ", "expected 'key = value'"},
    {"= 5\n", "t.conf:1: ", "missing key name"},
    {"co-unt = 5\n", "t.conf:1: ", "bad key name"},
    {"count count = 5\n", "t.conf:1: ", "bad key name"},
    {"!foo bar\n", "t.conf:1: ", "unknown directive '!foo'"},
    {"!includex y\n", "t.conf:1: ", "unknown directive '!includex'"},
    /* At the very end of the data, without a newline (ASan: no read past the end). */
    {"count = 1\n!foo", "t.conf:2: ", "unknown directive '!foo'"},
    {"count = 1\n[smtpd", "t.conf:2: ", "expected '[section]'"},
    {"count = 1\ncount", "t.conf:2: ", "expected 'key = value'"},
    {"count = 1\nbad = $", "t.conf:2: ", "unknown key 'bad'"},
    {"count = 1\nname = ${", "t.conf:2: ", "'$' must be followed by a name"},
    {"!include\n", "t.conf:1: ", "!include needs a file name"},
    {"!include   \n", "t.conf:1: ", "!include needs a file name"},
    {"  count = 1\n", "t.conf:1: ", "continuation line without"},
    {"[smtpd]\n  listen = 1\n", "t.conf:2: ", "continuation line without"},
    {"count = 1\n\ncount = 2\n",
     "t.conf:3: ", "duplicate key 'count' in [global] (first set at t.conf:1)"},
    {"[smtpd]\nlisten = a\n[global]\n[smtpd]\nlisten = b\n",
     "t.conf:5: ", "duplicate key 'listen' in [smtpd]"},
    {"count = 1\x01\n", "t.conf:1: ", "control character 0x01"},
    {"count = 1\n\x7f\n", "t.conf:2: ", "control character 0x7f"},
    {"count = 1\rflag = yes\n", "t.conf:1: ", "control character 0x0d"},
    {"count = 1\n\x1b[31m\n", "t.conf:2: ", "control character 0x1b"},
    /* Integers. */
    {"count = ten\n", "t.conf:1: ", "count: 'ten' is not an integer"},
    {"count = \n", "t.conf:1: ", "'' is not an integer"},
    {"count = 1 2\n", "t.conf:1: ", "'1 2' is not an integer"},
    {"count = 0x10\n", "t.conf:1: ", "is not an integer"},
    {"count = 101\n", "t.conf:1: ", "'101' is out of range (1..100)"},
    {"count = 0\n", "t.conf:1: ", "'0' is out of range (1..100)"},
    {"count = -1\n", "t.conf:1: ", "out of range"},
    {"big = 9223372036854775808\n", "t.conf:1: ", "too large"},
    {"big = 99999999999999999999999\n", "t.conf:1: ", "is not an integer"},
    {"mode = 0678\n", "t.conf:1: ", "a leading 0 means octal"},
    {"mode = 01000\n", "t.conf:1: ", "'01000' is out of range (0..0777)"},
    {"mode = 512\n", "t.conf:1: ", "out of range (0..0777)"},
    /* Sizes. */
    {"size = 10X\n", "t.conf:1: ", "'10X' is not a size"},
    {"size = M\n", "t.conf:1: ", "not a size"},
    {"size = 10 M\n", "t.conf:1: ", "not a size"},
    {"size = 10MB\n", "t.conf:1: ", "not a size"},
    {"size = -1\n", "t.conf:1: ", "not a size"},
    {"size = 1.5M\n", "t.conf:1: ", "not a size"},
    {"size = 2G\n", "t.conf:1: ", "'2G' is out of range (1K..1G)"},
    {"size = 1023\n", "t.conf:1: ", "out of range (1K..1G)"},
    {"size = 18014398509481984G\n", "t.conf:1: ", "too large"},
    {"size = 0\n", "t.conf:1: ", "out of range"},
    /* Times. */
    {"delay = 5x\n", "t.conf:1: ", "'5x' is not a time"},
    {"delay = 5 m\n", "t.conf:1: ", "not a time"},
    {"delay = m\n", "t.conf:1: ", "not a time"},
    {"delay = -5s\n", "t.conf:1: ", "not a time"},
    {"delay = 5mss\n", "t.conf:1: ", "not a time"},
    {"delay = 2d\n", "t.conf:1: ", "'2d' is out of range (0s..1d)"},
    {"delay = 86401s\n", "t.conf:1: ", "out of range"},
    {"delay = 18446744073709551615d\n", "t.conf:1: ", "too large"},
    /* Booleans and enums. */
    {"flag = maybe\n", "t.conf:1: ", "'maybe' is not a boolean"},
    {"flag = \n", "t.conf:1: ", "not a boolean"},
    {"flag = yes please\n", "t.conf:1: ", "not a boolean"},
    {"level = extreme\n", "t.conf:1: ", "'extreme' is not one of low|mid|high"},
    {"level = lo\n", "t.conf:1: ", "not one of"},
    {"level = low|mid\n", "t.conf:1: ", "not one of"},
    /* Expansion. */
    {"name = $nothere\n", "t.conf:1: ", "undefined name $nothere"},
    {"name = x ${nothere}y\n", "t.conf:1: ", "undefined name $nothere"},
    {"[smtpd]\ngreet = $listen2\n", "t.conf:2: ", "undefined name $listen2"},
    {"name = cost 5$\n", "t.conf:1: ", "'$' must be followed by a name"},
    {"name = ${dir\n", "t.conf:1: ", "'$' must be followed by a name"},
    {"name = ${}\n", "t.conf:1: ", "'$' must be followed by a name"},
    {"name = $-x\n", "t.conf:1: ", "'$' must be followed by a name"},
    {"a = $b\nb = $a\n", "t.conf:2: ", "expansion loop: $a depends on itself"},
    {"a = x$a\n", "t.conf:1: ", "expansion loop: $a"},
    {"a = $b\nb = $c\nc = ${a}\n", "t.conf:3: ", "expansion loop: $a"},
    /* A global key cannot see a section's key. */
    {"name = $listen\n", "t.conf:1: ", "undefined name $listen"},
    {"name = abc\ncount = $name\n",
     "t.conf:2: ", "count: 'abc' is not an integer (expanded from '$name')"},
    /* The first error in file order is the one reported. */
    {"flag = maybe\ncount = x\n", "t.conf:1: ", "not a boolean"},
    /* A default that the file's values make invalid is reported with the key. */
    {"size = 1G\n",
     "t.conf: [smtpd] limit (built-in default '$size'): ", "'1G' is out of range (1K..512M)"},
    /* Line numbers count continuation lines, comments and CRLF lines. */
    {"items = a\n  b\n\n# c\n\tc\nbogus = 1\n", "t.conf:6: ", "unknown key 'bogus'"},
    {"items = a\r\n  b\r\nbogus = 1\r\n", "t.conf:3: ", "unknown key 'bogus'"},
    {"count = 1\n  2\n", "t.conf:1: ", "'1 2' is not an integer"},
};

static void test_error_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		struct config *cfg = (struct config *)1;
		char *error = NULL;
		int r = t_load(c->text, &cfg, &error);
		if (r != -1 || error == NULL || strncmp(error, c->where, strlen(c->where)) != 0 ||
		    strstr(error, c->what) == NULL) {
			print_error("case %zu: %s\n  got: %s\n  want: %s...%s\n", i, c->text,
			            error != NULL ? error : "(success)", c->where, c->what);
			fail();
		}
		assert_null(cfg);
		free(error);
	}
}

/* Loads text that must fail; returns the error (caller frees). */
static char *load_error_data(const char *text, size_t len)
{
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(t_load_data(text, len, &cfg, &error), -1);
	assert_null(cfg);
	assert_non_null(error);
	return error;
}

static void test_nul_byte_rejected(void **state)
{
	(void)state;
	static const char text[] = "count = 1\nname = a\0b\n";
	char *error = load_error_data(text, sizeof(text) - 1);
	assert_string_equal(error, "t.conf:2: NUL byte in line");
	free(error);
}

static void test_line_length_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	/* A comment of exactly the cap is fine ... */
	assert_int_equal(buf_append_char(&b, '#'), 0);
	for (size_t i = 1; i < CONFIG_LINE_MAX; i++)
		assert_int_equal(buf_append_char(&b, 'x'), 0);
	assert_int_equal(buf_append_str(&b, "\r\ncount = 5\n"), 0);
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(t_load(buf_cstr(&b), &cfg, &error), 0);
	assert_int_equal(config_int(cfg, "global", "count"), 5);
	config_free(&cfg);
	assert_null(cfg);
	/* ... one byte more is not. */
	buf_reset(&b);
	assert_int_equal(buf_append_str(&b, "count = 5\n#"), 0);
	for (size_t i = 0; i < CONFIG_LINE_MAX; i++)
		assert_int_equal(buf_append_char(&b, 'x'), 0);
	error = load_error_data(buf_cstr(&b), b.len);
	assert_string_equal(error, "t.conf:2: line longer than 65536 bytes");
	free(error);
	/* Continuation lines each under the cap but together over it. */
	buf_reset(&b);
	assert_int_equal(buf_append_str(&b, "name = x\n"), 0);
	for (int l = 0; l < 3; l++) {
		assert_int_equal(buf_append_char(&b, ' '), 0);
		for (size_t i = 0; i < CONFIG_LINE_MAX / 2; i++)
			assert_int_equal(buf_append_char(&b, 'y'), 0);
		assert_int_equal(buf_append_char(&b, '\n'), 0);
	}
	error = load_error_data(buf_cstr(&b), b.len);
	assert_string_equal(error, "t.conf:3: continued line longer than 65536 bytes");
	free(error);
	buf_free(&b);
}

static void test_value_cap_after_expansion(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_str(&b, "a = "), 0);
	for (size_t i = 0; i < CONFIG_VALUE_MAX / 3; i++)
		assert_int_equal(buf_append_char(&b, 'v'), 0);
	assert_int_equal(buf_append_str(&b, "\nb = $a$a\nc = $b$b\n"), 0);
	char *error = load_error_data(buf_cstr(&b), b.len);
	assert_string_equal(error, "t.conf:3: value longer than 16384 bytes after expansion");
	free(error);
	/* A value longer than the cap without any expansion. */
	buf_reset(&b);
	assert_int_equal(buf_append_str(&b, "\na = "), 0);
	for (size_t i = 0; i <= CONFIG_VALUE_MAX; i++)
		assert_int_equal(buf_append_char(&b, 'v'), 0);
	error = load_error_data(buf_cstr(&b), b.len);
	assert_string_equal(error, "t.conf:2: value longer than 16384 bytes after expansion");
	free(error);
	buf_free(&b);
}

/* Many references to one key cost one expansion each, not one per path (no blow-up). */
static void test_expansion_fan_out_is_linear(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_str(&b, "c = \nb = "), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_append_str(&b, "$c"), 0);
	assert_int_equal(buf_append_str(&b, "\na = "), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_append_str(&b, "$b"), 0);
	assert_int_equal(buf_append_str(&b, "\nname = ${a}ok\n"), 0);
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(t_load(buf_cstr(&b), &cfg, &error), 0);
	assert_string_equal(config_str(cfg, "global", "name"), "ok");
	config_free(&cfg);
	buf_free(&b);
}

static void test_expansion_depth_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	/* k0 -> k1 -> ... -> k16: 16 levels are allowed. */
	assert_int_equal(buf_append_str(&b, "[chain]\n"), 0);
	for (int i = 0; i < CONFIG_EXPAND_DEPTH_MAX; i++)
		assert_int_equal(buf_printf(&b, "k%d = $k%d\n", i, i + 1), 0);
	assert_int_equal(buf_printf(&b, "k%d = end\n", CONFIG_EXPAND_DEPTH_MAX), 0);
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(t_load(buf_cstr(&b), &cfg, &error), 0);
	assert_string_equal(config_str(cfg, "chain", "k0"), "end");
	config_free(&cfg);
	/* One more level is refused, at the key where the cap is hit. */
	buf_reset(&b);
	assert_int_equal(buf_append_str(&b, "[chain]\n"), 0);
	for (int i = 0; i <= CONFIG_EXPAND_DEPTH_MAX; i++)
		assert_int_equal(buf_printf(&b, "k%d = $k%d\n", i, i + 1), 0);
	assert_int_equal(buf_printf(&b, "k%d = end\n", CONFIG_EXPAND_DEPTH_MAX + 1), 0);
	error = load_error_data(buf_cstr(&b), b.len);
	assert_string_equal(error, "t.conf:18: expansion of $k17 nests more than 16 deep");
	free(error);
	buf_free(&b);
}

static void test_data_over_file_cap(void **state)
{
	(void)state;
	size_t len = CONFIG_FILE_MAX + 1;
	char *text = malloc(len);
	assert_non_null(text);
	memset(text, '\n', len);
	char *error = load_error_data(text, len);
	assert_string_equal(error, "t.conf: file too large (more than 1048576 bytes)");
	free(error);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_cases),
	    cmocka_unit_test(test_nul_byte_rejected),
	    cmocka_unit_test(test_line_length_cap),
	    cmocka_unit_test(test_value_cap_after_expansion),
	    cmocka_unit_test(test_expansion_fan_out_is_linear),
	    cmocka_unit_test(test_expansion_depth_cap),
	    cmocka_unit_test(test_data_over_file_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
