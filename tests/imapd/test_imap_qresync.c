/*
 * The QRESYNC select parameter (RFC 7162 3.2.5) as a transcript table: command text in,
 * the parsed values or the BAD text out, with the nasty inputs (huge numbers, 0, "*",
 * reversed ranges, unbalanced seq-match lists, 10,000 ranges). Also UID set output and
 * its intersection with known UIDs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_args.h"
#include "imap_qresync.h"
#include "store/mailbox.h"

static const struct imap_args_limits limits = {16, 100000};

static void render_set(struct buf *out, const struct imap_seqset *set)
{
	for (size_t i = 0; i < set->count; i++)
		(void)buf_printf(out, "%s%u-%u", i > 0 ? "," : "", set->ranges[i].lo,
		                 set->ranges[i].hi);
}

/* "uv ms [known] [seqs/uids]" or "BAD <error>". */
static char *run(const char *params)
{
	char *text;
	assert_true(asprintf(&text, "a SELECT INBOX (QRESYNC %s)\r\n", params) > 0);
	struct imap_command cmd;
	const char *error;
	char *tag = NULL;
	struct buf out;
	buf_init(&out, 0);
	if (imap_args_parse(text, strlen(text), NULL, 0, &limits, &cmd, &error, &tag) < 0) {
		(void)buf_printf(&out, "SYNTAX %s", error);
		free(tag);
	} else {
		assert_int_equal(cmd.count, 2);
		assert_int_equal(cmd.args[1].type, IMAP_ARG_LIST);
		assert_int_equal(cmd.args[1].count, 2);
		struct imap_qresync q;
		if (imap_qresync_parse(&cmd.args[1].list[1], &q, &error) < 0) {
			(void)buf_printf(&out, "BAD %s", error);
		} else {
			(void)buf_printf(&out, "%u %llu", q.uidvalidity,
			                 (unsigned long long)q.modseq);
			if (q.has_known_uids) {
				(void)buf_append_char(&out, ' ');
				render_set(&out, &q.known_uids);
			}
			if (q.has_match) {
				(void)buf_append_char(&out, ' ');
				render_set(&out, &q.match_seqs);
				(void)buf_append_char(&out, '/');
				render_set(&out, &q.match_uids);
			}
		}
		imap_qresync_free(&q);
		imap_command_free(&cmd);
	}
	free(text);
	char *s = strdup(buf_cstr(&out));
	buf_free(&out);
	return s;
}

static const struct {
	const char *in;
	const char *expect;
} cases[] = {
    {"(67890007 90060115194045000)", "67890007 90060115194045000"},
    {"(1 1)", "1 1"},
    {"(4294967295 9223372036854775807)", "4294967295 9223372036854775807"},
    {"(67890007 20 41,43:211,214:541)", "67890007 20 41-41,43-211,214-541"},
    /* Reversed ranges are fine in a sequence set; they come out ordered and merged. */
    {"(5 20 9:3,2)", "5 20 2-9"},
    {"(5 20 1:10 (1:3,5 11:13,20))", "5 20 1-10 1-3,5-5/11-13,20-20"},
    {"(5 20 1:10 (3:1 13:11))", "5 20 1-10 1-3/11-13"},
    {"(0 20)", "BAD Invalid QRESYNC uidvalidity"},
    {"(4294967296 20)", "BAD Invalid QRESYNC uidvalidity"},
    {"(99999999999999999999999 20)", "BAD Invalid QRESYNC uidvalidity"},
    {"(5 0)", "BAD Invalid QRESYNC modseq"},
    {"(5 9223372036854775808)", "BAD Invalid QRESYNC modseq"},
    {"(5 18446744073709551616)", "BAD Invalid QRESYNC modseq"},
    {"(5 -1)", "BAD Invalid QRESYNC modseq"},
    {"(5 012)", "BAD Invalid QRESYNC modseq"},
    {"(5 12x)", "BAD Invalid QRESYNC modseq"},
    {"(5 \"12\")", "BAD Invalid QRESYNC modseq"},
    {"(5)", "BAD QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])"},
    {"()", "BAD QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])"},
    {"5", "BAD QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])"},
    {"(5 20 1:10 (1 2) x)", "BAD QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])"},
    {"(5 20 1:*)", "BAD Invalid QRESYNC known-uids"},
    {"(5 20 $)", "BAD Invalid QRESYNC known-uids"},
    {"(5 20 0:3)", "BAD Invalid QRESYNC known-uids"},
    {"(5 20 1,,2)", "BAD Invalid QRESYNC known-uids"},
    {"(5 20 (1:3))", "BAD Invalid QRESYNC known-uids"},
    {"(5 20 1:10 (1:3 11:12))", "BAD QRESYNC seq-match-data sets differ in size"},
    {"(5 20 1:10 (1,2,3 11:14))", "BAD QRESYNC seq-match-data sets differ in size"},
    {"(5 20 1:10 (1:3))", "BAD Invalid QRESYNC seq-match-data"},
    {"(5 20 1:10 (1:3 11:13 20))", "BAD Invalid QRESYNC seq-match-data"},
    {"(5 20 1:10 (1:* 11:13))", "BAD Invalid QRESYNC seq-match-data"},
    {"(5 20 1:10 ((1) (2)))", "BAD Invalid QRESYNC seq-match-data"},
    {"(5 20 1:10 1 2)", "BAD QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])"},
    /* Unbalanced parentheses never get as far as QRESYNC. */
    {"(5 20 1:10 (1 2)", "SYNTAX"},
    {"(5 20 1:10 1 2))", "SYNTAX"},
};

static void test_qresync_param_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = run(cases[i].in);
		size_t n = strlen(cases[i].expect);
		bool ok = strcmp(cases[i].expect, "SYNTAX") == 0
		              ? strncmp(got, "SYNTAX", 6) == 0
		              : strcmp(got, cases[i].expect) == 0;
		if (!ok)
			fail_msg("%s: expect \"%s\" got \"%s\"", cases[i].in, cases[i].expect, got);
		(void)n;
		free(got);
	}
}

/* 10,000 ranges in known-uids and in both seq-match sets: accepted, merged correctly. */
static void test_qresync_many_ranges(void **state)
{
	(void)state;
	struct buf p, seqs, uids;
	buf_init(&p, 0);
	buf_init(&seqs, 0);
	buf_init(&uids, 0);
	for (uint32_t i = 0; i < 10000; i++) {
		(void)buf_printf(&seqs, "%s%u", i ? "," : "", 2 * i + 1);
		(void)buf_printf(&uids, "%s%u", i ? "," : "", 4 * i + 1);
	}
	(void)buf_printf(&p, "(7 100 %s (%s %s))", buf_cstr(&uids), buf_cstr(&seqs),
	                 buf_cstr(&uids));
	char *got = run(buf_cstr(&p));
	assert_int_equal(strncmp(got, "7 100 1-1,5-5,9-9,", 18), 0);
	assert_non_null(strstr(got, ",39997-39997 1-1,3-3,"));
	assert_non_null(strstr(got, ",19999-19999/1-1,5-5,"));
	free(got);
	/* One value short on one side: BAD. */
	buf_reset(&p);
	(void)buf_printf(&p, "(7 100 1:5 (%s 2,%s))", buf_cstr(&seqs), buf_cstr(&uids));
	got = run(buf_cstr(&p));
	assert_string_equal(got, "BAD QRESYNC seq-match-data sets differ in size");
	free(got);
	buf_free(&p);
	buf_free(&seqs);
	buf_free(&uids);
}

static void test_uid_set_output(void **state)
{
	(void)state;
	const struct store_uid_range r[] = {{1, 4}, {7, 7}, {10, 20}, {4000000000u, 4294967295u}};
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(imap_uid_ranges_append(&out, r, 4, NULL), 4);
	assert_string_equal(buf_cstr(&out), "1:4,7,10:20,4000000000:4294967295");
	struct imap_seqset limit;
	assert_int_equal(imap_seqset_parse("3:8,15,18:4000000001", 100, &limit), 0);
	imap_seqset_resolve(&limit, 1);
	buf_reset(&out);
	assert_int_equal(imap_uid_ranges_append(&out, r, 4, &limit), 5);
	assert_string_equal(buf_cstr(&out), "3:4,7,15,18:20,4000000000:4000000001");
	buf_reset(&out);
	assert_int_equal(imap_uid_ranges_append(&out, r, 0, &limit), 0);
	assert_string_equal(buf_cstr(&out), "");
	imap_seqset_free(&limit);
	const uint32_t uids[] = {2, 3, 4, 9, 11, 12, 4294967295u};
	buf_reset(&out);
	imap_uids_append(&out, uids, 7);
	assert_string_equal(buf_cstr(&out), "2:4,9,11:12,4294967295");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qresync_param_cases),
	    cmocka_unit_test(test_qresync_many_ranges),
	    cmocka_unit_test(test_uid_set_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
