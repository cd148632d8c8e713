/* IMAP string output: each form chosen exactly when it is safe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "proto/imap_string.h"

static void test_imap_string_forms(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		unsigned flags;
		const char *out;
	} cases[] = {
	    {"INBOX", 5, IMAP_STRING_ALLOW_ATOM, "INBOX"},
	    {"INBOX", 5, 0, "\"INBOX\""},
	    {"NIL", 3, IMAP_STRING_ALLOW_ATOM, "\"NIL\""},
	    {"", 0, IMAP_STRING_ALLOW_ATOM, "\"\""},
	    {"a b", 3, IMAP_STRING_ALLOW_ATOM, "\"a b\""},
	    {"50%", 3, IMAP_STRING_ALLOW_ATOM, "\"50%\""},
	    {"say \"hi\" \\o/", 12, 0, "\"say \\\"hi\\\" \\\\o/\""},
	    {"line\r\nbreak", 11, 0, "{11}\r\nline\r\nbreak"},
	    {"caf\xc3\xa9", 5, 0, "{5}\r\ncaf\xc3\xa9"},
	    {"caf\xc3\xa9", 5, IMAP_STRING_UTF8, "\"caf\xc3\xa9\""},
	    {"a\0b", 3, IMAP_STRING_UTF8, "{3}\r\na\0b"},
	    {"say \"hi\"", 8, IMAP_STRING_LITERAL_SPECIALS, "{8}\r\nsay \"hi\""},
	    {"back\\slash", 10, IMAP_STRING_LITERAL_SPECIALS, "{10}\r\nback\\slash"},
	    {"plain", 5, IMAP_STRING_LITERAL_SPECIALS, "\"plain\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(imap_string_append(&b, cases[i].in, cases[i].len, cases[i].flags),
		                 0);
		size_t want = cases[i].in[0] == 'a' && cases[i].len == 3 && cases[i].in[1] == '\0'
		                  ? 8
		                  : strlen(cases[i].out);
		assert_int_equal(b.len, want);
		assert_memory_equal(b.data, cases[i].out, want);
		buf_free(&b);
	}
}

static void test_imap_nstring(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(imap_nstring_append(&b, NULL, 0, 0), 0);
	assert_int_equal(imap_nstring_append(&b, "x", 1, IMAP_STRING_ALLOW_ATOM), 0);
	assert_string_equal(buf_cstr(&b), "NIL\"x\"");
	buf_free(&b);
}

/* The cache's form (ENVELOPE/BODYSTRUCTURE as Dovecot writes them). */
static void test_imap_append_nstring(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	imap_append_nstring(&b, NULL);
	buf_append_char(&b, ' ');
	imap_append_nstring(&b, "");
	buf_append_char(&b, ' ');
	imap_append_nstring(&b, "a \"q\"");
	buf_append_char(&b, ' ');
	imap_append_nstring(&b, "caf\xc3\xa9");
	buf_append_char(&b, ' ');
	imap_append_nstring_len(&b, "x\0y", 3);
	static const char want[] = "NIL \"\" {5}\r\na \"q\" {5}\r\ncaf\xc3\xa9 {3}\r\nx\0y";
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(b.data, want, b.len);
	buf_free(&b);
}

static void test_imap_string_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 6);
	assert_int_equal(imap_string_append(&b, "abcdef", 6, 0), -1);
	assert_int_equal(b.len, 0); /* nothing half-written */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_imap_string_forms),
	    cmocka_unit_test(test_imap_nstring),
	    cmocka_unit_test(test_imap_string_cap),
	    cmocka_unit_test(test_imap_append_nstring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
