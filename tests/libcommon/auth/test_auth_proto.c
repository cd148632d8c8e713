/* Tab-escaping, field splitting and strict base64, with the nasty inputs next to the
 * good ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/auth_proto.h"
#include "auth/base64.h"
#include "base/buf.h"

static void test_escape_roundtrip(void **state)
{
	static const char *const cases[][2] = {
	    {"plain", "plain"},
	    {"a\tb", "a\001tb"},
	    {"line\r\nnext", "line\001r\001nnext"},
	    {"\001", "\0011"},
	    {"", ""},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(auth_tab_escape(&b, cases[i][0]), 0);
		assert_string_equal(buf_cstr(&b), cases[i][1]);
		char *copy = strdup(buf_cstr(&b));
		assert_int_equal(auth_tab_unescape(copy), 0);
		assert_string_equal(copy, cases[i][0]);
		free(copy);
		buf_free(&b);
	}
	/* A full buffer is refused whole. */
	struct buf small;
	buf_init(&small, 4);
	assert_int_equal(auth_tab_escape(&small, "ab\tc"), -1);
	assert_int_equal(small.len, 0);
	buf_free(&small);
}

static void test_unescape_invalid(void **state)
{
	char bad1[] = "x\001";
	char bad2[] = "x\001z";
	char nul[] = "a\0010b";
	(void)state;
	assert_int_equal(auth_tab_unescape(bad1), -1);
	assert_int_equal(auth_tab_unescape(bad2), -1);
	/* \001 0 is a NUL: the C string ends there. */
	assert_int_equal(auth_tab_unescape(nul), 0);
	assert_string_equal(nul, "a");
}

static void test_split_and_find(void **state)
{
	char line[] = "AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=";
	char *f[8];
	(void)state;

	assert_int_equal(auth_split_fields(line, f, 8), 6);
	assert_string_equal(f[0], "AUTH");
	assert_string_equal(auth_field_find(f, 6, "service"), "smtp");
	assert_string_equal(auth_field_find(f, 6, "secured"), "");
	assert_string_equal(auth_field_find(f, 6, "resp"), "");
	assert_null(auth_field_find(f, 6, "serv"));
	assert_null(auth_field_find(f, 6, "nologin"));
	char many[] = "a\tb\tc\td";
	assert_int_equal(auth_split_fields(many, f, 3), -1);
	char empty[] = "";
	assert_int_equal(auth_split_fields(empty, f, 3), 1);
}

static void test_parse_uint(void **state)
{
	unsigned v;
	(void)state;
	assert_int_equal(auth_parse_uint("0", &v), 0);
	assert_int_equal(auth_parse_uint("4294967295", &v), 0);
	assert_int_equal(v, 4294967295u);
	assert_int_equal(auth_parse_uint("4294967296", &v), -1);
	assert_int_equal(auth_parse_uint("01", &v), -1);
	assert_int_equal(auth_parse_uint("-1", &v), -1);
	assert_int_equal(auth_parse_uint("", &v), -1);
	assert_int_equal(auth_parse_uint("1 ", &v), -1);
}

static void test_base64(void **state)
{
	static const char *const good[][2] = {
	    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
	};
	static const char *const bad[] = {
	    "Zg", "Zg=", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zg==Zg==", "=Zg=", "Zm9v\n", "Zm-v"};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(base64_encode(&b, good[i][0], strlen(good[i][0])), 0);
		assert_string_equal(buf_cstr(&b), good[i][1]);
		buf_reset(&b);
		assert_int_equal(base64_decode(&b, good[i][1], strlen(good[i][1])), 0);
		assert_string_equal(buf_cstr(&b), good[i][0]);
		assert_true(base64_is_valid(good[i][1], strlen(good[i][1])));
		buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		buf_append_str(&b, "keep");
		assert_int_equal(base64_decode(&b, bad[i], strlen(bad[i])), -1);
		assert_string_equal(buf_cstr(&b), "keep");
		assert_false(base64_is_valid(bad[i], strlen(bad[i])));
		buf_free(&b);
	}
	/* Binary with NULs survives. */
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(base64_decode(&b, "AGJvYgBzM2NyZXQ=", 16), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "\0bob\0s3cret", 11);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_roundtrip), cmocka_unit_test(test_unescape_invalid),
	    cmocka_unit_test(test_split_and_find),   cmocka_unit_test(test_parse_uint),
	    cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
