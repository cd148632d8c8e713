/*
 * The LMTP framing state machine, fed whole and one byte at a time (and in other splits):
 * the resulting event transcript must be the same for every split.
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
#include "lmtp_parse.h"

/* Runs input through the parser in pieces of `step` bytes (0 = all at once) and returns
 * a transcript: "C[line]" per command, "B[body]" per complete body, "L" line too long,
 * "X" bad line, "!" when the body had a bare LF/CR. DATA and "BDAT n [LAST]" switch
 * modes as a session would. */
static char *transcript(const char *in, size_t len, size_t step, size_t max_line)
{
	struct lmtp_parser p;
	lmtp_parser_init(&p, max_line);
	struct buf pending, out, body;
	buf_init(&pending, 0);
	buf_init(&out, 0);
	buf_init(&body, 0);
	size_t fed = 0;
	for (unsigned guard = 0; guard < 1000000; guard++) {
		if (fed < len) {
			size_t n = step == 0 ? len : step;
			if (n > len - fed)
				n = len - fed;
			buf_append(&pending, in + fed, n);
			fed += n;
		}
		for (unsigned inner = 0; inner < 100000; inner++) {
			struct lmtp_token tok;
			size_t used = 0;
			enum lmtp_event ev =
			    lmtp_parser_next(&p, pending.data, pending.len, &tok, &used);
			assert_true(used <= pending.len);
			if (ev == LMTP_EV_COMMAND) {
				buf_printf(&out, "C[%.*s]", (int)tok.len, tok.data);
				char word[16] = "";
				unsigned long long size = 0;
				char last[8] = "";
				int k = sscanf(tok.data, "%15s %llu %7s", word, &size, last);
				if (tok.len == 4 && memcmp(tok.data, "DATA", 4) == 0)
					lmtp_parser_begin_data(&p);
				else if (k >= 2 && strcmp(word, "BDAT") == 0)
					lmtp_parser_begin_bdat(
					    &p, size, k == 3 && strncmp(last, "LAST", 4) == 0);
			} else if (ev == LMTP_EV_BODY) {
				assert_true(tok.len > 0);
				buf_append(&body, tok.data, tok.len);
			} else if (ev == LMTP_EV_BODY_END) {
				buf_printf(&out, "B[%s]%s", buf_cstr(&body),
				           p.body_bad_eol ? "!" : "");
				buf_reset(&body);
			} else if (ev == LMTP_EV_LINE_TOO_LONG) {
				buf_append_str(&out, "L");
			} else if (ev == LMTP_EV_BAD_LINE) {
				buf_append_str(&out, "X");
			}
			buf_consume(&pending, used);
			if (ev == LMTP_EV_NEED_MORE)
				break;
		}
		if (fed == len)
			break;
	}
	if (body.len > 0)
		buf_printf(&out, "P[%s]", buf_cstr(&body));
	buf_free(&pending);
	buf_free(&body);
	return buf_steal(&out);
}

struct parse_case {
	const char *in;
	const char *want;
	size_t max_line;
};

static const struct parse_case cases[] = {
    {"LHLO x\r\nNOOP\r\n", "C[LHLO x]C[NOOP]", 512},
    /* Incomplete line stays pending. */
    {"LHLO x\r\nNOO", "C[LHLO x]", 512},
    /* Bare LF and bare CR in command lines are refused. */
    {"NOOP\nRSET\r\n", "XC[RSET]", 512},
    {"NO\rOP\r\nQUIT\r\n", "XC[QUIT]", 512},
    /* A line exactly at the cap is fine; one byte over is refused, and skipped. */
    {"12345678\r\nNOOP\r\n", "C[12345678]C[NOOP]", 8},
    {"123456789\r\nNOOP\r\n", "LC[NOOP]", 8},
    {"123456789012345678901234567890\r\nNOOP\r\n", "LC[NOOP]", 8},
    /* DATA: dot-unstuffing, and the end is only CRLF.CRLF. */
    {"DATA\r\na\r\n..b\r\n.\r\nNOOP\r\n", "C[DATA]B[a\r\n.b\r\n]C[NOOP]", 512},
    {"DATA\r\n.\r\n", "C[DATA]B[]", 512},
    {"DATA\r\n...\r\n.\r\n", "C[DATA]B[..\r\n]", 512},
    {"DATA\r\nx.\r\n.\r\n", "C[DATA]B[x.\r\n]", 512},
    /* Smuggling: "\n.\r\n" and "\r.\r" never end the data. */
    {"DATA\r\na\n.\r\nMAIL FROM:<x>\r\n.\r\n", "C[DATA]B[a\n.\r\nMAIL FROM:<x>\r\n]!", 512},
    {"DATA\r\na\r.\r\nb\r\n.\r\n", "C[DATA]B[a\r.\r\nb\r\n]!", 512},
    {"DATA\r\na\r\n.\n.\r\n", "C[DATA]P[a\r\n\n.\r\n]", 512},
    {"DATA\r\nbare\nlf\r\n.\r\n", "C[DATA]B[bare\nlf\r\n]!", 512},
    /* Long body lines are not command lines: no cap applies to them here. */
    {"DATA\r\n0123456789abcdef\r\n.\r\n", "C[DATA]B[0123456789abcdef\r\n]", 8},
    /* BDAT: exact byte counts, CRLF.CRLF inside is just data, several chunks. */
    {"BDAT 5\r\nab\r\n.BDAT 3 LAST\r\n\r\n.", "C[BDAT 5]B[ab\r\n.]C[BDAT 3 LAST]B[\r\n.]", 512},
    {"BDAT 0 LAST\r\nQUIT\r\n", "C[BDAT 0 LAST]B[]C[QUIT]", 512},
};

static void run_case(const struct parse_case *c)
{
	static const size_t steps[] = {0, 1, 2, 3, 5, 7};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		char *got = transcript(c->in, strlen(c->in), steps[s], c->max_line);
		if (strcmp(got, c->want) != 0)
			fail_msg("input %s step %zu: got '%s' want '%s'", c->in, steps[s], got,
			         c->want);
		free(got);
	}
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* A big DATA body with many stuffed dots splits identically at every step size. */
static void test_big_body(void **state)
{
	(void)state;
	struct buf in, want;
	buf_init(&in, 0);
	buf_init(&want, 0);
	buf_append_str(&in, "DATA\r\n");
	buf_append_str(&want, "C[DATA]B[");
	for (int i = 0; i < 2000; i++) {
		buf_printf(&in, "..line %d\r\n", i);
		buf_printf(&want, ".line %d\r\n", i);
	}
	buf_append_str(&in, ".\r\n");
	buf_append_str(&want, "]");
	char *got = transcript(in.data, in.len, 13, 512);
	assert_string_equal(got, buf_cstr(&want));
	free(got);
	buf_free(&in);
	buf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_big_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
