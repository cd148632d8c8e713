/* The relay client's SMTP reply parser: table of good and bad replies, pipelined replies,
 * one byte at a time, limits; and the EHLO keyword reader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "relay_reply.h"

struct good_case {
	const char *in;
	int code;
	const char *enh;
	const char *text;
	size_t lines;
};

static const struct good_case good[] = {
    {"250 2.0.0 Ok: queued as ABC\r\n", 250, "2.0.0", "Ok: queued as ABC", 1},
    {"220 mx.bob.test ESMTP\r\n", 220, "", "mx.bob.test ESMTP", 1},
    {"250\r\n", 250, "", "", 1},
    {"250 \r\n", 250, "", "", 1},
    {"554 5.7.1\r\n", 554, "5.7.1", "", 1},
    {"250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 250, "", "mx\nPIPELINING\nSIZE 100", 3},
    {"550-5.1.1 no such\r\n550-5.1.1 user here\r\n550 5.1.1 sorry\r\n", 550, "5.1.1",
     "no such\nuser here\nsorry", 3},
    /* Bare LF is tolerated. */
    {"421 4.3.2 bye\n", 421, "4.3.2", "bye", 1},
    /* Class must match the code's first digit; otherwise it is just text. */
    {"250 5.0.0 odd\r\n", 250, "", "5.0.0 odd", 1},
    /* Glued to text: not an enhanced code. */
    {"451 4.4.1x\r\n", 451, "", "4.4.1x", 1},
    {"452 4.123.456 big\r\n", 452, "4.123.456", "big", 1},
    {"452 4.1234.1 too many digits\r\n", 452, "", "4.1234.1 too many digits", 1},
    {"250 2.01.0 leading zero\r\n", 250, "", "2.01.0 leading zero", 1},
    {"250-\r\n250 end\r\n", 250, "", "\nend", 2},
};

static const char *const bad[] = {
    "25 short\r\n",    "abc text\r\n",         "250x text\r\n",
    "150 too low\r\n", "650 too high\r\n",     "250-a\r\n251 b\r\n",
    "250 a\rb\r\n",    "2500 four digits\r\n", "\r\n",
    "250 nul\0x\r\n",
};

static void parse_all(const char *in, size_t len, size_t chunk, struct smtp_reply *out,
                      enum smtp_reply_result *res_r, const char **err_r)
{
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p, 0, 0);
	struct buf b;
	buf_init(&b, 0);
	*res_r = SMTP_REPLY_MORE;
	for (size_t off = 0; off < len && *res_r == SMTP_REPLY_MORE; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		buf_append(&b, in + off, n);
		*res_r = smtp_reply_parse(&p, &b, out, err_r);
	}
	buf_free(&b);
	smtp_reply_parser_free(&p);
}

static void test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		/* Whole, and one byte at a time: the same reply. */
		for (size_t chunk = 1; chunk <= 4096; chunk *= 4096) {
			struct smtp_reply r;
			smtp_reply_init(&r);
			enum smtp_reply_result res;
			const char *err = NULL;
			parse_all(good[i].in, strlen(good[i].in), chunk, &r, &res, &err);
			assert_int_equal(res, SMTP_REPLY_DONE);
			assert_int_equal(r.code, good[i].code);
			assert_string_equal(r.enh, good[i].enh);
			assert_string_equal(buf_cstr(&r.text), good[i].text);
			assert_int_equal(r.n_lines, good[i].lines);
			smtp_reply_free(&r);
		}
	}
}

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			len = 13; /* the one with a NUL inside */
		struct smtp_reply r;
		smtp_reply_init(&r);
		enum smtp_reply_result res;
		const char *err = NULL;
		parse_all(bad[i], len, 1, &r, &res, &err);
		assert_int_equal(res, SMTP_REPLY_ERROR);
		assert_non_null(err);
		smtp_reply_free(&r);
	}
}

static void test_pipelined(void **state)
{
	(void)state;
	const char *in = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n354 go on\r\n25";
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p, 0, 0);
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, in);
	struct smtp_reply r;
	smtp_reply_init(&r);
	const char *err;
	const int codes[] = {250, 250, 550, 354};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(smtp_reply_parse(&p, &b, &r, &err), SMTP_REPLY_DONE);
		assert_int_equal(r.code, codes[i]);
	}
	assert_string_equal(smtp_reply_dsn(&r), "2.0.0");
	assert_int_equal(smtp_reply_parse(&p, &b, &r, &err), SMTP_REPLY_MORE);
	assert_int_equal(b.len, 2);
	smtp_reply_free(&r);
	buf_free(&b);
	smtp_reply_parser_free(&p);
}

static void test_limits(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p, 100, 3);
	struct buf b;
	buf_init(&b, 0);
	struct smtp_reply r;
	smtp_reply_init(&r);
	const char *err;
	/* An endless line is refused before its end arrives. */
	buf_append_str(&b, "250 ");
	for (int i = 0; i < 100; i++)
		buf_append_char(&b, 'x');
	assert_int_equal(smtp_reply_parse(&p, &b, &r, &err), SMTP_REPLY_ERROR);
	smtp_reply_parser_free(&p);

	/* Exactly at the cap is fine, with CRLF. */
	smtp_reply_parser_init(&p, 100, 3);
	buf_reset(&b);
	buf_append_str(&b, "250 ");
	for (int i = 0; i < 96; i++)
		buf_append_char(&b, 'x');
	buf_append_str(&b, "\r\n");
	assert_int_equal(smtp_reply_parse(&p, &b, &r, &err), SMTP_REPLY_DONE);

	/* Too many lines. */
	buf_reset(&b);
	buf_append_str(&b, "250-a\r\n250-b\r\n250-c\r\n250 d\r\n");
	assert_int_equal(smtp_reply_parse(&p, &b, &r, &err), SMTP_REPLY_ERROR);
	smtp_reply_parser_free(&p);
	smtp_reply_free(&r);
	buf_free(&b);
}

static void test_format(void **state)
{
	(void)state;
	struct smtp_reply r;
	enum smtp_reply_result res;
	const char *err;
	smtp_reply_init(&r);
	const char *in = "550-5.1.1 <x@y>: no\r\n550 5.1.1 such \x01user\r\n";
	parse_all(in, strlen(in), 4096, &r, &res, &err);
	struct buf out;
	buf_init(&out, 0);
	smtp_reply_format(&r, &out, 200);
	assert_string_equal(buf_cstr(&out), "550 5.1.1 <x@y>: no such ?user");
	assert_string_equal(smtp_reply_dsn(&r), "5.1.1");
	buf_free(&out);
	smtp_reply_free(&r);
}

static void test_ehlo(void **state)
{
	(void)state;
	const char *in = "250-mx.bob.test Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	                 "250-STARTTLS\r\n250-AUTH LOGIN PLAIN\r\n250-8BITMIME\r\n250-dsn\r\n"
	                 "250-SMTPUTF8\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n";
	struct smtp_reply r;
	enum smtp_reply_result res;
	const char *err;
	smtp_reply_init(&r);
	parse_all(in, strlen(in), 7, &r, &res, &err);
	assert_int_equal(res, SMTP_REPLY_DONE);
	struct smtp_ehlo e;
	smtp_ehlo_parse(&r, &e);
	assert_true(e.pipelining && e.starttls && e.eightbitmime && e.dsn && e.smtputf8);
	assert_true(e.chunking && e.enhancedstatuscodes && e.size && e.auth_plain && e.auth_login);
	assert_int_equal(e.max_size, 10240000);
	smtp_reply_free(&r);

	/* The greeting line is not a keyword; prefixes of keywords are not keywords. */
	in = "250-PIPELINING\r\n250-STARTTLSX\r\n250-SIZE\r\n250 AUTH=CRAM-MD5\r\n";
	smtp_reply_init(&r);
	parse_all(in, strlen(in), 4096, &r, &res, &err);
	smtp_ehlo_parse(&r, &e);
	assert_false(e.pipelining);
	assert_false(e.starttls);
	assert_true(e.size);
	assert_int_equal(e.max_size, 0);
	assert_false(e.auth_plain);
	smtp_reply_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),      cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_pipelined), cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_format),    cmocka_unit_test(test_ehlo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
