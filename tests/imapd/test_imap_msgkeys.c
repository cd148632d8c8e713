/* SORT/THREAD keys: RFC 5256 base subjects, first addresses, Message-ID lists (dates:
 * test_imap_date.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_msgkeys.h"

static void test_base_subject(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"hello", "hello"},
	    {"Re: hello", "hello"},
	    {"RE: Re: re:hello", "hello"},
	    {"Fwd: hello (fwd)", "hello"},
	    {"Fw: [list] Re: hello", "hello"},
	    {"[list] hello", "hello"},
	    {"[list]", "[list]"},
	    {"Re[2]: hello", "hello"},
	    {"[Fwd: Re: hello]", "hello"},
	    {"  spaced \t  out  ", "spaced out"},
	    {"Re:", ""},
	    {"Reply about it", "Reply about it"},
	    {"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;
		buf_init(&out, 0);
		imap_base_subject(cases[i].in, &out);
		if (strcmp(buf_cstr(&out), cases[i].out) != 0) {
			print_error("'%s': want '%s' got '%s'\n", cases[i].in, cases[i].out,
			            buf_cstr(&out));
			fail();
		}
		buf_free(&out);
	}
}

static void test_addresses_and_ids(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	imap_first_mailbox("Alice Example <Alice@example.test>, bob@x", &b);
	assert_string_equal(buf_cstr(&b), "Alice");
	buf_reset(&b);
	imap_first_mailbox("no address here", &b);
	assert_string_equal(buf_cstr(&b), "");
	buf_reset(&b);
	imap_first_display("\"Example, Alice\" <alice@example.test>", &b);
	assert_string_equal(buf_cstr(&b), "Example, Alice");
	buf_reset(&b);
	imap_first_display("<alice@example.test>", &b);
	assert_string_equal(buf_cstr(&b), "alice@example.test");
	buf_reset(&b);
	imap_first_display("=?UTF-8?Q?Z=C3=B6e?= <z@example.test>", &b);
	assert_string_equal(buf_cstr(&b), "Z\xc3\xb6"
	                                  "e");
	buf_free(&b);
	char **ids;
	size_t n = imap_msgid_list("<a@x> junk <b@y>\n <c@z>", &ids);
	assert_int_equal(n, 3);
	assert_string_equal(ids[0], "a@x");
	assert_string_equal(ids[2], "c@z");
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_subject),
	    cmocka_unit_test(test_addresses_and_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
