/* Unit tests for the capped growable buffer: limits first, then the ordinary cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/log.h"

static void test_append_up_to_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(b.len, 8);
	assert_string_equal(buf_cstr(&b), "12345678");
	/* One byte past the maximum is refused and leaves the buffer as it was. */
	assert_int_equal(buf_append(&b, "9", 1), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(buf_cstr(&b), "12345678");
	assert_int_equal(buf_room(&b), 0);
	buf_free(&b);
}

static void test_append_huge_len_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 16);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	/* A length that would overflow len + n must not wrap around the check. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(b.len, 2);
	buf_free(&b);
}

static void test_printf_respects_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "abc"), 0);
	assert_string_equal(buf_cstr(&b), "42-abc");
	assert_int_equal(buf_printf(&b, "%s", "toolong"), -1);
	assert_string_equal(buf_cstr(&b), "42-abc");
	assert_int_equal(buf_printf(&b, "%s", "1234"), 0);
	assert_int_equal(b.len, 10);
	buf_free(&b);
}

static void test_consume_and_truncate(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_str(&b, "hello world"), 0);
	buf_consume(&b, 6);
	assert_string_equal(buf_cstr(&b), "world");
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "wor");
	buf_truncate(&b, 100);
	assert_string_equal(buf_cstr(&b), "wor");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void test_binary_and_nul(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	assert_int_equal(b.data[3], '\0');
	char *s = buf_steal(&b);
	assert_memory_equal(s, "a\0b", 4);
	free(s);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void test_empty_buffer_is_empty_string(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void test_log_sanitize(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		size_t max;
		const char *out;
	} cases[] = {
		{"plain", 5, 100, "plain"},
		{"a\r\nb", 4, 100, "a??b"},
		{"nul\0x", 5, 100, "nul?x"},
		{"\x1b[31mred", 8, 100, "?[31mred"},
		{"\xc3\xa9t\xc3\xa9", 5, 100, "??t??"},
		{"abcdef", 6, 3, "abc..."},
		{"", 0, 10, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		assert_string_equal(log_sanitize(&b, cases[i].in, cases[i].len, cases[i].max),
				    cases[i].out);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_up_to_max),
		cmocka_unit_test(test_append_huge_len_refused),
		cmocka_unit_test(test_printf_respects_max),
		cmocka_unit_test(test_consume_and_truncate),
		cmocka_unit_test(test_binary_and_nul),
		cmocka_unit_test(test_empty_buffer_is_empty_string),
		cmocka_unit_test(test_log_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
