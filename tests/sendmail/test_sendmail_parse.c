/* sendmail: argument parsing, header block reading and -t recipient extraction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <cmocka.h>

#include "headers.h"
#include "sendmail.h"

static void test_args(void **state)
{
	(void)state;
	struct sendmail_opts o;
	char *a1[] = {"sendmail",         "-oi", "-t", "-f", "x@y.test", "-Fname", "-odi", "-v",
	              "bob@example.test", NULL};
	assert_int_equal(sendmail_parse_args(9, a1, &o), 0);
	assert_true(o.ignore_dots);
	assert_true(o.extract);
	assert_string_equal(o.from, "x@y.test");
	assert_string_equal(o.fullname, "name");
	assert_int_equal(o.n_rcpts, 1);
	assert_string_equal(o.rcpts[0], "bob@example.test");
	assert_int_equal(o.mode, SENDMAIL_SUBMIT);

	char *a2[] = {"/usr/bin/mailq", NULL};
	assert_int_equal(sendmail_parse_args(1, a2, &o), 0);
	assert_int_equal(o.mode, SENDMAIL_MAILQ);
	char *a3[] = {"/usr/bin/newaliases", NULL};
	assert_int_equal(sendmail_parse_args(1, a3, &o), 0);
	assert_int_equal(o.mode, SENDMAIL_NEWALIAS);
	char *a4[] = {"sendmail", "-bs", "-C", "/x.conf", NULL};
	assert_int_equal(sendmail_parse_args(4, a4, &o), 0);
	assert_int_equal(o.mode, SENDMAIL_SMTP);
	assert_string_equal(o.config_path, "/x.conf");
	char *a5[] = {"sendmail", "-bd", NULL};
	assert_int_equal(sendmail_parse_args(2, a5, &o), EX_USAGE);
	char *a6[] = {"sendmail", "-i", NULL}; /* no recipients, no -t */
	assert_int_equal(sendmail_parse_args(2, a6, &o), EX_USAGE);
	char *a7[] = {"sendmail", "-f", NULL}; /* missing argument */
	assert_int_equal(sendmail_parse_args(2, a7, &o), EX_USAGE);
}

static FILE *input(const char *text)
{
	return fmemopen((void *)text, strlen(text), "r");
}

static void test_headers_t(void **state)
{
	(void)state;
	FILE *in = input("From: a@x.test\n"
	                 "To: \"Bob, B.\" <bob@example.test>, carol@example.test (Carol)\n"
	                 "Cc: team: dave@example.test, erin@example.test;\n"
	                 "Bcc: secret@example.test,\n"
	                 "  hidden@example.test\n"
	                 "Subject: hi\n"
	                 "\n"
	                 "body\n");
	struct header_block h;
	assert_int_equal(headers_read(in, true, &h), 0);
	assert_int_equal(h.n, 5);
	char **list = NULL;
	size_t n = 0;
	headers_extract_recipients(&h, true, &list, &n);
	const char *want[] = {"bob@example.test",  "carol@example.test",  "dave@example.test",
	                      "erin@example.test", "secret@example.test", "hidden@example.test"};
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(list[i], want[i]);
		free(list[i]);
	}
	free(list);
	/* Bcc is gone, with its continuation line. */
	assert_int_equal(h.n, 4);
	assert_false(headers_has(&h, "Bcc"));
	assert_true(headers_has(&h, "subject"));
	assert_false(h.eof);
	assert_null(h.first_body_line);
	char rest[16] = "";
	assert_non_null(fgets(rest, sizeof(rest), in));
	assert_string_equal(rest, "body\n");
	headers_free(&h);
	fclose(in);
}

static void test_headers_edges(void **state)
{
	(void)state;
	struct header_block h;
	/* Without -i a lone dot ends the input, even in the headers. */
	FILE *in = input("To: a@b.test\r\n.\r\nnot read\r\n");
	assert_int_equal(headers_read(in, false, &h), 0);
	assert_true(h.eof);
	assert_int_equal(h.n, 1);
	headers_free(&h);
	fclose(in);
	/* A body without a header block. */
	in = input("just text\n");
	assert_int_equal(headers_read(in, true, &h), 0);
	assert_int_equal(h.n, 0);
	assert_string_equal(h.first_body_line, "just text");
	headers_free(&h);
	fclose(in);
	/* Over the cap. */
	size_t big = HEADERS_MAX_BYTES + 100;
	char *text = malloc(big + 1);
	memcpy(text, "X-Big: ", 7);
	memset(text + 7, 'a', big - 8);
	text[big - 1] = '\n';
	text[big] = '\0';
	in = input(text);
	assert_int_equal(headers_read(in, true, &h), -1);
	headers_free(&h);
	fclose(in);
	free(text);
	char **list = NULL;
	size_t n = 0;
	headers_parse_address_list("root, alice@x.test", &list, &n);
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "root");
	free(list[0]);
	free(list[1]);
	free(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args),
	    cmocka_unit_test(test_headers_t),
	    cmocka_unit_test(test_headers_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
