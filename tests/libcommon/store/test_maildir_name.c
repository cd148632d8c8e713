/* Unit tests for Maildir file names: flag letters, keywords letters, ,S= and base names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/maildir_name.h"

static void test_flags_parse(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		unsigned int flags;
		uint32_t keywords;
	} cases[] = {
	    {"1.M1P1.host", 0, 0},
	    {"1.M1P1.host:2,", 0, 0},
	    {"1.M1P1.host:2,S", STORE_FLAG_SEEN, 0},
	    {"1.M1P1.host,S=12:2,DFPRST",
	     STORE_FLAG_DRAFT | STORE_FLAG_FLAGGED | STORE_FLAG_PASSED | STORE_FLAG_ANSWERED |
	         STORE_FLAG_SEEN | STORE_FLAG_DELETED,
	     0},
	    {"1.M1P1.host:2,Sac", STORE_FLAG_SEEN, 0x5},
	    {"1.M1P1.host:2,z", 0, 1u << 25},
	    /* Unknown letters and experimental info ("1,") are ignored, not fatal. */
	    {"1.M1P1.host:2,SX9", STORE_FLAG_SEEN, 0},
	    {"1.M1P1.host:1,S", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned int flags;
		uint32_t kw;
		maildir_name_get_flags(cases[i].name, &flags, &kw);
		assert_int_equal(flags, cases[i].flags);
		assert_int_equal(kw, cases[i].keywords);
	}
}

static void test_flags_set(void **state)
{
	(void)state;
	char *n = maildir_name_set_flags(
	    "1.M1P1.host,S=5:2,S", STORE_FLAG_DELETED | STORE_FLAG_ANSWERED | STORE_FLAG_SEEN, 0x3);
	assert_string_equal(n, "1.M1P1.host,S=5:2,RSTab");
	free(n);
	n = maildir_name_set_flags("1.M1P1.host", 0, 0);
	assert_string_equal(n, "1.M1P1.host:2,");
	free(n);
	n = maildir_name_set_flags("x", STORE_FLAGS_ALL, 1u << 25);
	assert_string_equal(n, "x:2,DFPRSTz");
	unsigned int flags;
	uint32_t kw;
	maildir_name_get_flags(n, &flags, &kw);
	assert_int_equal(flags, STORE_FLAGS_ALL);
	assert_int_equal(kw, 1u << 25);
	free(n);
}

static void test_size_and_base(void **state)
{
	(void)state;
	uint64_t size = 0;
	assert_true(maildir_name_get_size("1.M1P1.host,S=1234:2,S", 'S', &size));
	assert_int_equal(size, 1234);
	assert_true(maildir_name_get_size("1.M1P1.host,S=10,W=12:2,S", 'W', &size));
	assert_int_equal(size, 12);
	assert_false(maildir_name_get_size("1.M1P1.host:2,S", 'S', &size));
	assert_false(maildir_name_get_size("1.M1P1.host,S=:2,", 'S', &size));
	assert_false(maildir_name_get_size("1.M1P1.host,S=12x", 'S', &size));
	assert_false(maildir_name_get_size("1.M1P1.host,S=99999999999999999999999", 'S', &size));
	/* ",S=" after the ':' is flag info, not size. */
	assert_false(maildir_name_get_size("1.M1P1.host:2,S=5", 'S', &size));
	assert_int_equal(maildir_name_base_len("abc:2,S"), 3);
	assert_int_equal(maildir_name_base_len("abc"), 3);
	assert_true(maildir_name_is_valid("1.M1P1.host"));
	assert_false(maildir_name_is_valid(".hidden"));
	assert_false(maildir_name_is_valid("a/b"));
	assert_false(maildir_name_is_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_parse),
	    cmocka_unit_test(test_flags_set),
	    cmocka_unit_test(test_size_and_base),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
