/* UTF8=ACCEPT: UTF-8 mailbox names to mUTF-7 (valid, invalid, overlong, surrogates, NUL),
 * and whole commands after ENABLE UTF8=ACCEPT, parsed then translated, rendered back. */
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
#include "imap_utf8.h"
#include "store/folder_name.h"

static const struct imap_args_limits limits = {.max_depth = 8, .max_args = 100};

struct name_case {
	const char *utf8;
	size_t len; /* 0: strlen */
	enum imap_utf8_name_error want;
	const char *mutf7; /* when OK */
};

static const struct name_case names[] = {
    {"INBOX", 0, IMAP_UTF8_NAME_OK, "INBOX"},
    {"Entw\xc3\xbcrfe/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0, IMAP_UTF8_NAME_OK,
     "Entw&APw-rfe/&ZeVnLIqe-"},
    {"A&B", 0, IMAP_UTF8_NAME_OK, "A&-B"},                   /* '&' is literal in UTF-8 names */
    {"Entw&APw-rfe", 0, IMAP_UTF8_NAME_OK, "Entw&-APw-rfe"}, /* not read as mUTF-7 */
    {"\xf0\x9f\x98\x80", 0, IMAP_UTF8_NAME_OK, "&2D3eAA-"},  /* U+1F600: a surrogate pair */
    {"\xef\xbf\xbf", 0, IMAP_UTF8_NAME_OK, "&,,8-"},         /* U+FFFF */
    {"\xf4\x8f\xbf\xbf", 0, IMAP_UTF8_NAME_OK, "&2,,f,w-"},  /* U+10FFFF, the last */
    {"\xc0\xaf", 0, IMAP_UTF8_NAME_INVALID, NULL},           /* overlong '/' */
    {"a\xc1\x81", 0, IMAP_UTF8_NAME_INVALID, NULL},          /* overlong 'A' */
    {"\xe0\x80\xae\xe0\x80\xae", 0, IMAP_UTF8_NAME_INVALID, NULL}, /* overlong ".." */
    {"\xf0\x80\x80\xaf", 0, IMAP_UTF8_NAME_INVALID, NULL},         /* 4-byte overlong */
    {"\xed\xa0\x80", 0, IMAP_UTF8_NAME_INVALID, NULL},             /* U+D800, a surrogate */
    {"\xed\xbf\xbf", 0, IMAP_UTF8_NAME_INVALID, NULL},             /* U+DFFF */
    {"\xed\xa0\xbd\xed\xb8\x80", 0, IMAP_UTF8_NAME_INVALID, NULL}, /* CESU-8 pair */
    {"\xf4\x90\x80\x80", 0, IMAP_UTF8_NAME_INVALID, NULL},         /* U+110000 */
    {"\xe6\x97", 0, IMAP_UTF8_NAME_INVALID, NULL},                 /* truncated */
    {"\x80x", 0, IMAP_UTF8_NAME_INVALID, NULL},                    /* lone continuation */
    {"\xff", 0, IMAP_UTF8_NAME_INVALID, NULL},
    {"caf\xe9", 0, IMAP_UTF8_NAME_INVALID, NULL},         /* Latin-1, not UTF-8 */
    {"a\0b", 3, IMAP_UTF8_NAME_FORBIDDEN, NULL},          /* NUL */
    {"a\xe2\x80\xa8", 0, IMAP_UTF8_NAME_FORBIDDEN, NULL}, /* U+2028 */
    {"\xe2\x80\xa9", 0, IMAP_UTF8_NAME_FORBIDDEN, NULL},  /* U+2029 */
};

static void test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct name_case *c = &names[i];
		size_t len = c->len != 0 ? c->len : strlen(c->utf8);
		struct buf out;
		buf_init(&out, 0);
		(void)buf_append_str(&out, "keep");
		enum imap_utf8_name_error got = imap_utf8_name_to_internal(c->utf8, len, &out);
		if (got != c->want)
			fail_msg("case %zu: got %d want %d", i, got, c->want);
		if (c->mutf7 != NULL) {
			assert_int_equal(out.len, 4 + strlen(c->mutf7));
			assert_memory_equal(out.data + 4, c->mutf7, strlen(c->mutf7));
			/* ... and back: the store's mapping gives the same UTF-8. */
			struct buf back;
			buf_init(&back, 0);
			assert_int_equal(folder_name_to_utf8(buf_cstr(&out) + 4, &back), 0);
			assert_int_equal(back.len, len);
			assert_memory_equal(back.data, c->utf8, len);
			buf_free(&back);
		} else {
			assert_int_equal(out.len, 4); /* unchanged on error */
		}
		buf_free(&out);
	}
}

/* C0/C1 controls pass the UTF-8 step and are refused by the store's name check. */
static void test_controls_refused_by_store(void **state)
{
	(void)state;
	static const char *const controls[] = {"a\x01", "a\x7f", "a\xc2\x85", "a\xc2\x9f"};
	for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
		struct buf m, dir;
		buf_init(&m, 0);
		buf_init(&dir, 0);
		assert_int_equal(imap_utf8_name_to_internal(controls[i], strlen(controls[i]), &m),
		                 IMAP_UTF8_NAME_OK);
		const char *error;
		assert_int_equal(folder_name_to_dir(buf_cstr(&m), &dir, &error), -1);
		buf_free(&m);
		buf_free(&dir);
	}
}

static void render(struct buf *out, const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			(void)buf_append_char(out, ' ');
		if (a->type == IMAP_ARG_LIST) {
			(void)buf_append_char(out, '(');
			render(out, a->list, a->count);
			(void)buf_append_char(out, ')');
		} else {
			(void)buf_printf(out, "<%s>", a->str);
		}
	}
}

struct cmd_case {
	const char *input;
	const char *expect; /* rendered args, or "BAD"/"NO" */
};

static const struct cmd_case cmds[] = {
    {"a CREATE \"Entw\xc3\xbcrfe/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"\r\n",
     "<Entw&APw-rfe/&ZeVnLIqe->"},
    {"a CREATE A&B\r\n", "<A&-B>"},
    {"a SELECT INBOX\r\n", "<INBOX>"},
    {"a EXAMINE \"INBOX/\xc3\x84\"\r\n", "<INBOX/&AMQ->"},
    {"a RENAME \"\xc3\x84\" {3}\r\n\xc3\x96x\r\n", "<&AMQ-> <&ANY-x>"},
    {"a STATUS \"\xc3\xa9t\xc3\xa9\" (MESSAGES)\r\n", "<&AOk-t&AOk-> (<MESSAGES>)"},
    {"a COPY 1:2 \"\xc3\x9c\"\r\n", "<1:2> <&ANw->"},
    {"a MOVE 1 \"\xc3\x9c\"\r\n", "<1> <&ANw->"},
    {"a UID COPY 1:* \"\xc3\x9c\"\r\n", "<COPY> <1:*> <&ANw->"},
    {"a uid move 7 \"\xc3\x9c\"\r\n", "<move> <7> <&ANw->"},
    {"a SUBSCRIBE \"\xc3\x9c\"\r\n", "<&ANw->"},
    {"a GETACL \"\xc3\x9c\"\r\n", "<&ANw->"},
    {"a APPEND \"\xc3\x9c\" UTF8 (~{4}\r\n\xff\xfe\x00x)\r\n", "<&ANw-> <UTF8> (<\xff\xfe>)"},
    /* LIST patterns stay UTF-8 (matched against UTF-8 names). */
    {"a LIST \"\" \"\xe6\x97\xa5*\"\r\n", "<> <\xe6\x97\xa5*>"},
    {"a LIST \"\" {2}\r\n\xc3\xa4\r\n", "<> <\xc3\xa4>"},
    {"a LIST \"\" \"\xff*\"\r\n", "BAD"},
    {"a LSUB \"\" {2}\r\n\xc0\xaf\r\n", "BAD"},
    /* Invalid names. */
    {"a SELECT \"\xc0\xaf\"\r\n", "BAD"},
    {"a CREATE \"x/\xed\xa0\x80\"\r\n", "BAD"},
    {"a CREATE {4}\r\n\xf4\x90\x80\x80\r\n", "BAD"},
    {"a DELETE \"caf\xe9\"\r\n", "BAD"},
    {"a RENAME INBOX \"\xe6\x97\"\r\n", "BAD"},
    {"a CREATE \"a\xe2\x80\xa8\"\r\n", "NO"},
    /* A literal name with a NUL is left for the handler's BAD (not an astring). */
    {"a CREATE {3}\r\na\x00"
     "b\r\n",
     "<a>"},
    /* SEARCH: no CHARSET, UTF-8 strings. */
    {"a SEARCH CHARSET UTF-8 SUBJECT x\r\n", "BAD"},
    {"a SEARCH charset US-ASCII ALL\r\n", "BAD"},
    {"a SEARCH RETURN (ALL) CHARSET UTF-8 ALL\r\n", "BAD"},
    {"a UID SEARCH CHARSET UTF-8 ALL\r\n", "BAD"},
    {"a UID SEARCH SUBJECT \"Gr\xc3\xbc\xc3\x9f\x65\"\r\n",
     "<SEARCH> <SUBJECT> <Gr\xc3\xbc\xc3\x9f\x65>"},
    {"a SEARCH SUBJECT {2}\r\n\xc0\xaf\r\n", "BAD"},
    {"a SEARCH SUBJECT \"\xe9t\xe9\"\r\n", "BAD"},
    /* SORT and THREAD: only UTF-8 (RFC 6855 erratum 4029). */
    {"a SORT (DATE) US-ASCII ALL\r\n", "BAD"},
    {"a SORT (DATE) utf-8 ALL\r\n", "(<DATE>) <utf-8> <ALL>"},
    {"a UID THREAD REFERENCES ISO-8859-1 ALL\r\n", "BAD"},
    {"a THREAD REFERENCES UTF-8 ALL\r\n", "<REFERENCES> <UTF-8> <ALL>"},
    /* Quoted strings must be UTF-8 in any command; message literals are left alone. */
    {"a ID (\"name\" \"\xff\")\r\n", "BAD"},
    {"a APPEND INBOX {3}\r\n\xff\xfex\r\n", "<INBOX> <\xff\xfex>"},
};

static void test_commands(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd_case *c = &cmds[i];
		size_t len = strlen(c->input);
		/* The NUL and literal8 cases carry bytes strlen cannot see. */
		if (strstr(c->input, "{3}\r\na") != NULL)
			len = 14 + 3 + 2;
		else if (strstr(c->input, "~{4}") != NULL)
			len = strlen(c->input) + strlen(c->input + strlen(c->input) + 1) + 1;
		struct imap_command cmd;
		const char *error, *status;
		char *tag;
		if (imap_args_parse(c->input, len, NULL, 0, &limits, &cmd, &error, &tag) < 0)
			fail_msg("case %zu does not parse: %s", i, error);
		struct buf got;
		buf_init(&got, 0);
		if (imap_utf8_command_in(&cmd, &status, &error) < 0)
			(void)buf_append_str(&got, status);
		else
			render(&got, cmd.args, cmd.count);
		if (strcmp(buf_cstr(&got), c->expect) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, buf_cstr(&got), c->expect);
		buf_free(&got);
		imap_command_free(&cmd);
	}
}

static void test_valid(void **state)
{
	(void)state;
	assert_true(imap_utf8_valid("", 0));
	assert_true(imap_utf8_valid("plain", 5));
	assert_true(imap_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_false(imap_utf8_valid("\xc3", 1));
	assert_false(imap_utf8_valid("\xc3\xa9\xc3", 3));
	assert_false(imap_utf8_valid("\xf8\x88\x80\x80\x80", 5)); /* 5-byte form */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_controls_refused_by_store),
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
