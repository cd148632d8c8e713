/* IMAP argument parsing: valid commands rendered back as a tree, nasty ones refused. */
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

static const struct imap_args_limits limits = {.max_depth = 8, .max_args = 100};

static void render(struct buf *out, const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			(void)buf_append_char(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			(void)buf_printf(out, "A<%s>", a->str);
			break;
		case IMAP_ARG_QUOTED:
			(void)buf_printf(out, "Q<%s>", a->str);
			break;
		case IMAP_ARG_LITERAL:
			(void)buf_printf(out, "L%s<", a->literal8 ? "8" : "");
			for (size_t j = 0; j < a->len; j++)
				(void)buf_append_char(out, a->str[j] == '\0' ? '0' : a->str[j]);
			(void)buf_append_char(out, '>');
			break;
		case IMAP_ARG_STREAMED:
			(void)buf_printf(out, "S%zu<%llu>", a->stream_index,
			                 (unsigned long long)a->stream_size);
			break;
		case IMAP_ARG_LIST:
			(void)buf_append_char(out, '(');
			render(out, a->list, a->count);
			(void)buf_append_char(out, ')');
			break;
		}
	}
}

struct args_case {
	const char *input;
	size_t len;
	const char *expect; /* "tag NAME args", or "!error|tag" */
};

static const struct args_case cases[] = {
    {"a1 NOOP\r\n", 0, "a1 NOOP "},
    {"a1 noop\r\n", 0, "a1 NOOP "},
    {"a1 LOGIN alice \"s3 \\\"cr\\\\et\"\r\n", 0, "a1 LOGIN A<alice> Q<s3 \"cr\\et>"},
    {"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.512>)\r\n", 0,
     "a FETCH A<1:*> (A<FLAGS> A<BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.512>>)"},
    {"a STORE 1 +FLAGS (\\Seen \\Deleted $Junk)\r\n", 0,
     "a STORE A<1> A<+FLAGS> (A<\\Seen> A<\\Deleted> A<$Junk>)"},
    {"a LIST \"\" *\r\n", 0, "a LIST Q<> A<*>"},
    {"a LIST \"\" %\r\n", 0, "a LIST Q<> A<%>"},
    {"a SEARCH OR (FROM x) NOT (SUBJECT y) ()\r\n", 0,
     "a SEARCH A<OR> (A<FROM> A<x>) A<NOT> (A<SUBJECT> A<y>) ()"},
    {"a LOGIN {5}\r\nalice {2}\r\npw\r\n", 0, "a LOGIN L<alice> L<pw>"},
    {"a X {3+}\r\na\0b\r\n", 15, "a X L<a0b>"},
    {"a APPEND INBOX ~{3}\r\na\0b\r\n", 26, "a APPEND A<INBOX> L8<a0b>"},
    {"a APPEND INBOX (\\Seen) {20}\r\n\r\n", 0, "a APPEND A<INBOX> (A<\\Seen>) S0<20>"},
    {"a NOOP \r\n", 0, "a NOOP "},
    {"a UID FETCH 1 FLAGS\r\n", 0, "a UID A<FETCH> A<1> A<FLAGS>"},
    {"a ID NIL\r\n", 0, "a ID A<NIL>"},
    {"a SELECT \"caf\xc3\xa9\"\r\n", 0, "a SELECT Q<caf\xc3\xa9>"},
    /* Nasty inputs. */
    {"a LOGIN \"unterminated\r\n", 0, "!Unterminated quoted string|a"},
    {"a LOGIN \"nul\0\"\r\n", 16, "!NUL in quoted string|a"},
    {"a LOGIN \"bad\\escape\"\r\n", 0, "!Invalid escape in quoted string|a"},
    {"a X (a b\r\n", 0, "!Missing ')'|a"},
    {"a X a)\r\n", 0, "!Expected space|a"},
    {"a X  a\r\n", 0, "!Unexpected character|a"},
    {"a FETCH 1 BODY[HEADER\r\n", 0, "!Missing ']'|a"},
    {"a X ((((((((((x))))))))))\r\n", 0, "!Too deeply nested|a"},
    {"a X {3}\r\nab\r\n", 0, "!Literal shorter than announced|a"},
    {"a X {x}\r\n", 0, "!Invalid literal size|a"},
    {"NOOP\r\n", 0, "!Invalid tag|"},
    {"+ NOOP\r\n", 0, "!Invalid tag|"},
    {"a\r\n", 0, "!Invalid tag|"},
    {"a N$OOP\r\n", 0, "!Invalid command|a"},
    {"a NOOP", 0, "!Command not terminated|"},
    {"a X a\0b\r\n", 9, "!Expected space|a"},
};

static void test_args_cases(void **state)
{
	(void)state;
	static const struct imap_streamed_literal streamed[] = {{29, 20}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].input;
		size_t len = cases[i].len != 0 ? cases[i].len : strlen(in);
		bool has_stream = strstr(in, "{20}") != NULL;
		struct imap_command cmd;
		const char *error;
		char *tag;
		struct buf out;
		buf_init(&out, 0);
		if (imap_args_parse(in, len, has_stream ? streamed : NULL, has_stream ? 1 : 0,
		                    &limits, &cmd, &error, &tag) == 0) {
			(void)buf_printf(&out, "%s %s ", cmd.tag, cmd.name);
			if (cmd.count > 0)
				buf_truncate(&out, out.len - 1), (void)buf_append_char(&out, ' ');
			render(&out, cmd.args, cmd.count);
			imap_command_free(&cmd);
		} else {
			(void)buf_printf(&out, "!%s|%s", error, tag != NULL ? tag : "");
			free(tag);
		}
		if (strcmp(buf_cstr(&out), cases[i].expect) != 0) {
			print_error("case %zu: expect [%s] got [%s]\n", i, cases[i].expect,
			            buf_cstr(&out));
			fail();
		}
		buf_free(&out);
	}
}

/* 10,000 nested parentheses are refused at the depth cap, without recursion to match. */
static void test_deep_nesting_bounded(void **state)
{
	(void)state;
	struct buf in;
	buf_init(&in, 0);
	(void)buf_append_str(&in, "a SEARCH ");
	for (int i = 0; i < 10000; i++)
		(void)buf_append_char(&in, '(');
	(void)buf_append_str(&in, "\r\n");
	struct imap_command cmd;
	const char *error;
	char *tag;
	assert_int_equal(imap_args_parse(in.data, in.len, NULL, 0, &limits, &cmd, &error, &tag),
	                 -1);
	assert_string_equal(error, "Too deeply nested");
	free(tag);
	buf_free(&in);
}

static void test_too_many_args(void **state)
{
	(void)state;
	struct buf in;
	buf_init(&in, 0);
	(void)buf_append_str(&in, "a X");
	for (int i = 0; i < 101; i++)
		(void)buf_append_str(&in, " x");
	(void)buf_append_str(&in, "\r\n");
	struct imap_command cmd;
	const char *error;
	char *tag;
	assert_int_equal(imap_args_parse(in.data, in.len, NULL, 0, &limits, &cmd, &error, &tag),
	                 -1);
	assert_string_equal(error, "Too many arguments");
	free(tag);
	buf_free(&in);
}

static void test_helpers(void **state)
{
	(void)state;
	const char *in = "a LOGIN {3}\r\na\0b nil \"x\"\r\n";
	struct imap_command cmd;
	const char *error;
	char *tag;
	assert_int_equal(imap_args_parse(in, 26, NULL, 0, &limits, &cmd, &error, &tag), 0);
	assert_int_equal(cmd.count, 3);
	assert_null(imap_arg_astring(&cmd.args[0])); /* NUL inside */
	assert_true(imap_arg_is_nil(&cmd.args[1]));
	assert_string_equal(imap_arg_astring(&cmd.args[2]), "x");
	assert_false(imap_arg_atom_is(&cmd.args[2], "x")); /* quoted, not an atom */
	imap_command_free(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_cases),
	    cmocka_unit_test(test_deep_nesting_bounded),
	    cmocka_unit_test(test_too_many_args),
	    cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
