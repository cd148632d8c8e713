/* Sequence sets: parsing, '*' resolution in both orders, merging, and refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_seqset.h"

static const struct {
	const char *in;
	uint32_t star;
	const char *expect; /* resolved ranges "lo-hi,..." or "!" for a parse error */
} cases[] = {
    {"1", 10, "1-1"},
    {"1:*", 10, "1-10"},
    {"*", 10, "10-10"},
    {"*:1", 10, "1-10"},
    {"5:3", 10, "3-5"},
    {"1000:*", 500, "500-1000"},
    {"1,2,3,7:8,4", 10, "1-4,7-8"},
    {"1:5,3:9,20", 30, "1-9,20-20"},
    {"4294967295", 1, "4294967295-4294967295"},
    {"1:*", 0, ""},
    {"0", 10, "!"},
    {"01", 10, "!"},
    {"1:0", 10, "!"},
    {"4294967296", 10, "!"},
    {"1,", 10, "!"},
    {",1", 10, "!"},
    {"1::2", 10, "!"},
    {"", 10, "!"},
    {"1 2", 10, "!"},
    {"a", 10, "!"},
    {"-1", 10, "!"},
    {"1,2,3,4,5,6,7,8,9", 10, "!"}, /* past max_ranges = 8 */
};

static void test_seqset_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_seqset set;
		struct buf out;
		buf_init(&out, 0);
		if (imap_seqset_parse(cases[i].in, 8, &set) < 0) {
			(void)buf_append_str(&out, "!");
		} else {
			imap_seqset_resolve(&set, cases[i].star);
			for (size_t j = 0; j < set.count; j++)
				(void)buf_printf(&out, "%s%u-%u", j > 0 ? "," : "",
				                 set.ranges[j].lo, set.ranges[j].hi);
			imap_seqset_free(&set);
		}
		if (strcmp(buf_cstr(&out), cases[i].expect) != 0) {
			print_error("'%s' star %u: expect %s got %s\n", cases[i].in, cases[i].star,
			            cases[i].expect, buf_cstr(&out));
			fail();
		}
		buf_free(&out);
	}
}

static void test_seqset_contains(void **state)
{
	(void)state;
	struct imap_seqset set;
	assert_int_equal(imap_seqset_parse("2:4,10,20:*", 100, &set), 0);
	imap_seqset_resolve(&set, 25);
	static const struct {
		uint32_t v;
		bool in;
	} probes[] = {{1, false},  {2, true},  {4, true},  {5, false}, {10, true},
	              {11, false}, {20, true}, {25, true}, {26, false}};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		assert_int_equal(imap_seqset_contains(&set, probes[i].v), probes[i].in);
	assert_int_equal(imap_seqset_size(&set), 3 + 1 + 6);
	imap_seqset_free(&set);
}

static void test_seqset_dollar(void **state)
{
	(void)state;
	struct imap_seqset set;
	assert_int_equal(imap_seqset_parse("$", 8, &set), 0);
	assert_true(set.dollar);
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("$,1", 8, &set), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seqset_cases),
	    cmocka_unit_test(test_seqset_contains),
	    cmocka_unit_test(test_seqset_dollar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
