/* SEARCH program parsing: every key family, nesting, RETURN and CHARSET, and refusals. */
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
#include "imap_search_parse.h"

static const struct imap_args_limits limits = {.max_depth = 64, .max_args = 1000};

static const char *const type_names[] = {
    "ALL",     "AND", "OR",     "NOT",    "SEQ",     "UID",    "SAVED", "FLAG",
    "KW",      "NEW", "HDR",    "BODY",   "TEXT",    "BEFORE", "ON",    "SINCE",
    "SBEFORE", "SON", "SSINCE", "LARGER", "SMALLER", "MODSEQ", "OLDER", "YOUNGER",
};

static void render(struct buf *out, const struct search_key *k)
{
	(void)buf_append_str(out, type_names[k->type]);
	if (k->str != NULL)
		(void)buf_printf(out, ":%s", k->str);
	if (k->str2 != NULL)
		(void)buf_printf(out, "=%s", k->str2);
	if (k->type == SK_FLAG)
		(void)buf_printf(out, ":%x", k->flag);
	if (k->type >= SK_BEFORE && k->type <= SK_SENTSINCE)
		(void)buf_printf(out, ":%d", k->day);
	if (k->type >= SK_LARGER)
		(void)buf_printf(out, ":%llu", (unsigned long long)k->num);
	if (k->type == SK_SEQSET || k->type == SK_UIDSET)
		(void)buf_printf(out, ":%zu", k->set.count);
	if (k->count > 0) {
		(void)buf_append_char(out, '(');
		for (size_t i = 0; i < k->count; i++) {
			if (i > 0)
				(void)buf_append_char(out, ' ');
			render(out, &k->children[i]);
		}
		(void)buf_append_char(out, ')');
	}
}

static char *parse(const char *text)
{
	struct buf line, out;
	buf_init(&line, 0);
	buf_init(&out, 0);
	(void)buf_printf(&line, "t SEARCH %s\r\n", text);
	struct imap_command cmd;
	const char *error;
	char *tag;
	if (imap_args_parse(line.data, line.len, NULL, 0, &limits, &cmd, &error, &tag) < 0) {
		free(tag);
		(void)buf_append_str(&out, "!args");
	} else {
		struct search_program prog;
		int ret = imap_search_parse(cmd.args, cmd.count, &prog, &error);
		if (ret < 0) {
			(void)buf_printf(&out, "!%d %s", ret, error);
		} else {
			if (prog.esearch)
				(void)buf_printf(&out, "R%x ", prog.returns);
			if (prog.charset != NULL)
				(void)buf_printf(&out, "C%s ", prog.charset);
			render(&out, &prog.root);
			imap_search_free(&prog);
		}
		imap_command_free(&cmd);
	}
	buf_free(&line);
	return buf_steal(&out);
}

static const struct {
	const char *in;
	const char *expect;
} cases[] = {
    {"ALL", "AND(ALL)"},
    {"UNSEEN", "AND(NOT(FLAG:10))"},
    {"seen flagged", "AND(FLAG:10 FLAG:8)"},
    {"FROM alice SUBJECT \"hello world\"", "AND(HDR:From=alice HDR:Subject=hello world)"},
    {"HEADER X-Spam \"\"", "AND(HDR:X-Spam=)"},
    {"OR FROM a (TO b CC c)", "AND(OR(HDR:From=a AND(HDR:To=b HDR:Cc=c)))"},
    {"NOT NOT DELETED", "AND(NOT(NOT(FLAG:2)))"},
    {"1:*,5 UID 10:20", "AND(SEQ:2 UID:1)"},
    {"$", "AND(SAVED)"},
    {"UID $", "AND(SAVED)"},
    {"SINCE 1-Feb-1994 BEFORE \"01-Jan-1970\"", "AND(SINCE:8797 BEFORE:0)"},
    {"SENTON 29-Feb-2024", "AND(SON:19782)"},
    {"LARGER 1000 SMALLER 5", "AND(LARGER:1000 SMALLER:5)"},
    {"KEYWORD $Junk UNKEYWORD $label1", "AND(KW:$Junk NOT(KW:$label1))"},
    {"MODSEQ 620162338", "AND(MODSEQ:620162338)"},
    {"MODSEQ \"/flags/\\\\draft\" all 620162338", "AND(MODSEQ:620162338)"},
    {"YOUNGER 3600 NEW OLD", "AND(YOUNGER:3600 NEW NOT(FLAG:20))"},
    {"BODY {5}\r\nhello TEXT x", "AND(BODY:hello TEXT:x)"},
    {"RETURN (MIN COUNT) UNSEEN", "R9 AND(NOT(FLAG:10))"},
    {"RETURN () ALL", "R4 AND(ALL)"},
    {"CHARSET UTF-8 SUBJECT \"caf\xc3\xa9\"", "CUTF-8 AND(HDR:Subject=caf\xc3\xa9)"},
    {"CHARSET iso-8859-1 BODY x", "Ciso-8859-1 AND(BODY:x)"},
    /* Refusals. */
    {"CHARSET X-NOPE BODY x", "!-2 [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"},
    {"", "!-1 Missing search key"},
    {"FROM", "!-1 Missing search argument"},
    {"OR FROM a", "!-1 Missing search argument"},
    {"BOGUS", "!-1 Unknown search key"},
    {"SINCE 31-Feb-2020", "!-1 Invalid date"},
    {"SINCE 1-Foo-2020", "!-1 Invalid date"},
    {"SINCE 2020-01-01", "!-1 Invalid date"},
    {"LARGER -1", "!-1 Invalid number"},
    {"LARGER 99999999999999999999", "!-1 Invalid number"},
    {"0", "!-1 Invalid message set"},
    {"UID x", "!-1 Invalid UID set"},
    {"()", "!-1 Missing search key"},
    {"RETURN (BOGUS) ALL", "!-1 Unknown RETURN option"},
};

static void test_search_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = parse(cases[i].in);
		if (strcmp(got, cases[i].expect) != 0) {
			print_error("'%s': expect [%s] got [%s]\n", cases[i].in, cases[i].expect,
			            got);
			fail();
		}
		free(got);
	}
}

/* NOT NOT NOT ... past the depth cap is refused, not recursed into without bound. */
static void test_search_depth_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < 500; i++)
		(void)buf_append_str(&b, "NOT ");
	(void)buf_append_str(&b, "SEEN");
	char *got = parse(b.data);
	assert_string_equal(got, "!-1 Search program too deeply nested");
	free(got);
	buf_free(&b);
}

/* A search string with a NUL (from a literal) is refused, not silently truncated. */
static void test_search_nul_string(void **state)
{
	(void)state;
	static const char line[] = "t SEARCH BODY {3}\r\na\0b\r\n";
	struct imap_command cmd;
	const char *error;
	char *tag;
	assert_int_equal(
	    imap_args_parse(line, sizeof(line) - 1, NULL, 0, &limits, &cmd, &error, &tag), 0);
	struct search_program prog;
	assert_int_equal(imap_search_parse(cmd.args, cmd.count, &prog, &error), -1);
	assert_string_equal(error, "Invalid search string");
	imap_command_free(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_search_cases),
	    cmocka_unit_test(test_search_depth_cap),
	    cmocka_unit_test(test_search_nul_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
