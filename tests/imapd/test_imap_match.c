/* LIST pattern matching, including the patterns that blow up naive backtracking. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_match.h"

static void test_match_cases(void **state)
{
	(void)state;
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
	    {"*", "INBOX", true},
	    {"*", "Work/2026", true},
	    {"%", "Work", true},
	    {"%", "Work/2026", false},
	    {"Work/%", "Work/2026", true},
	    {"Work/%", "Work/2026/q1", false},
	    {"Work/*", "Work/2026/q1", true},
	    {"Work*", "Work", true},
	    {"Work*", "Workshop", true},
	    {"W%k", "Work", true},
	    {"W%k", "W/k", false},
	    {"inbox", "INBOX", true},
	    {"Inbox/%", "INBOX/x", true},
	    {"inboxes", "INBOX", false},
	    {"", "INBOX", false},
	    {"Sent", "Sent", true},
	    {"Sent", "sent", false},
	    {"%/%", "a/b", true},
	    {"%/%", "a", false},
	    {"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	     false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (imap_match(cases[i].pattern, cases[i].name, '/') != cases[i].match) {
			print_error("'%s' vs '%s'\n", cases[i].pattern, cases[i].name);
			fail();
		}
	}
}

/* A long pattern of '*' against a long name finishes (O(n*m), no backtracking). */
static void test_match_pathological(void **state)
{
	(void)state;
	struct buf p, n;
	buf_init(&p, 0);
	buf_init(&n, 0);
	for (int i = 0; i < 500; i++)
		(void)buf_append_str(&p, "*a");
	for (int i = 0; i < 1000; i++)
		(void)buf_append_char(&n, 'a');
	assert_true(imap_match(p.data, n.data, '/'));
	(void)buf_append_char(&p, 'b');
	assert_false(imap_match(p.data, n.data, '/'));
	buf_free(&p);
	buf_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_cases),
	    cmocka_unit_test(test_match_pathological),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
