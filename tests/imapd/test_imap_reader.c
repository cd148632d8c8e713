/*
 * IMAP command framing: every case is fed whole and then one byte at a time, and both
 * must give the same transcript of events.
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
#include "imap_reader.h"

static const struct imap_reader_limits test_limits = {
    .max_line = 64,
    .max_command = 256,
    .max_inline_literal = 16,
    .max_literal = 1000,
    .max_literals = 3,
};

/* The limits run_reader() uses (the LITERAL- test swaps in its own). */
static const struct imap_reader_limits *run_limits = &test_limits;

struct transcript {
	struct buf out;
	struct buf sink;
};

static int test_sink(const void *data, size_t len, void *context)
{
	struct transcript *t = context;
	if (memchr(data, 'F', len) != NULL) /* a stand-in for a failing disk */
		return -1;
	return buf_append(&t->sink, data, len);
}

/* Runs the reader over input, feeding `step` bytes at a time (0 = all at once). Streams
 * are accepted up to 100 bytes and refused above. */
static char *run_reader(const char *input, size_t len, size_t step)
{
	struct imap_reader *r = imap_reader_new(run_limits);
	struct transcript t;
	struct buf in;
	buf_init(&t.out, 0);
	buf_init(&t.sink, 0);
	buf_init(&in, 0);
	size_t pos = 0;
	unsigned guard = 0;
	while ((pos < len || in.len > 0) && guard++ < 100000) {
		size_t n = step == 0 ? len - pos : (len - pos < step ? len - pos : step);
		(void)buf_append(&in, input + pos, n);
		pos += n;
		for (;;) {
			enum imap_read_result res = imap_reader_feed(r, &in);
			if (res == IMAP_READ_NEED_MORE)
				break;
			if (res == IMAP_READ_CONTINUE) {
				(void)buf_append_str(&t.out, "CONT|");
			} else if (res == IMAP_READ_COMMAND) {
				size_t clen;
				const char *c = imap_reader_command(r, &clen);
				size_t ns;
				imap_reader_streamed(r, &ns);
				(void)buf_append_str(&t.out, "CMD:");
				for (size_t i = 0; i < clen; i++) /* NUL shown as '0' */
					(void)buf_append_char(&t.out, c[i] == '\0' ? '0' : c[i]);
				(void)buf_printf(&t.out, "[%zu]%s|", ns, buf_cstr(&t.sink));
				buf_reset(&t.sink);
			} else if (res == IMAP_READ_STREAM) {
				uint64_t size = imap_reader_literal_size(r);
				(void)buf_printf(&t.out, "STREAM:%llu%s|", (unsigned long long)size,
				                 imap_reader_literal_nonsync(r) ? "+" : "");
				if (size <= 100)
					imap_reader_stream_accept(r, test_sink, &t);
				else
					imap_reader_stream_refuse(r, "NO [TOOBIG] no");
			} else {
				(void)buf_printf(&t.out, "ERR:%s%s|", imap_reader_error(r),
				                 imap_reader_error_fatal(r) ? "!" : "");
				if (imap_reader_error_fatal(r))
					goto done;
			}
			if (in.len == 0 && res != IMAP_READ_STREAM && res != IMAP_READ_CONTINUE)
				break;
		}
		if (pos >= len && in.len > 0 && step != 0)
			continue;
		if (pos >= len)
			break;
	}
done:
	buf_free(&in);
	buf_free(&t.sink);
	imap_reader_free(&r);
	return buf_steal(&t.out);
}

struct reader_case {
	const char *name;
	const char *input;
	size_t len; /* 0 = strlen */
	const char *expect;
};

static const struct reader_case cases[] = {
    {"simple", "a1 NOOP\r\n", 0, "CMD:a1 NOOP\r\n[0]|"},
    {"lf only accepted", "a1 NOOP\n", 0, "CMD:a1 NOOP\r\n[0]|"},
    {"pipelined", "a NOOP\r\nb CAPABILITY\r\n", 0, "CMD:a NOOP\r\n[0]|CMD:b CAPABILITY\r\n[0]|"},
    {"blank lines ignored", "\r\n\r\na NOOP\r\n", 0, "CMD:a NOOP\r\n[0]|"},
    {"sync literal", "a LOGIN {5}\r\nalice {3}\r\npw!\r\n", 0,
     "CONT|CONT|CMD:a LOGIN {5}\r\nalice {3}\r\npw!\r\n[0]|"},
    {"nonsync literal", "a LOGIN {5+}\r\nalice pw\r\n", 0, "CMD:a LOGIN {5+}\r\nalice pw\r\n[0]|"},
    {"literal with CRLF and NUL inside", "a X {4+}\r\n\r\n\0} y\r\n", 18,
     "CMD:a X {4+}\r\n\r\n0} y\r\n[0]|"},
    {"zero literal", "a X {0}\r\n\r\n", 0, "CONT|CMD:a X {0}\r\n\r\n[0]|"},
    {"literal8 marker", "a APPEND b ~{2+}\r\nhi\r\n", 0, "CMD:a APPEND b ~{2+}\r\nhi\r\n[0]|"},
    {"braces in the middle are text", "a X {5} y\r\n", 0, "CMD:a X {5} y\r\n[0]|"},
    {"no space before brace", "a X{5}\r\n", 0, "CMD:a X{5}\r\n[0]|"},
    {"stream big literal", "a APPEND INBOX {20}\r\n01234567890123456789\r\n", 0,
     "STREAM:20|CONT|CMD:a APPEND INBOX {20}\r\n\r\n[1]01234567890123456789|"},
    {"stream nonsync", "a APPEND INBOX {20+}\r\n01234567890123456789 x\r\n", 0,
     "STREAM:20+|CMD:a APPEND INBOX {20+}\r\n x\r\n[1]01234567890123456789|"},
    {"sink failure is a NO", "a APPEND INBOX {20+}\r\nFAIL4567890123456789\r\nb NOOP\r\n", 0,
     "STREAM:20+|ERR:a NO Failed to store the literal|CMD:b NOOP\r\n[0]|"},
    {"refused sync stream", "a APPEND INBOX {500}\r\nb NOOP\r\n", 0,
     "STREAM:500|ERR:a NO [TOOBIG] no|CMD:b NOOP\r\n[0]|"},
    {"refused nonsync stream is fatal", "a APPEND INBOX {500+}\r\nxxxx", 0,
     "STREAM:500+|ERR:* BYE NO [TOOBIG] no!|"},
    {"literal over max", "a APPEND INBOX {4294967296}\r\nb NOOP\r\n", 0,
     "ERR:a NO [TOOBIG] Literal too big|CMD:b NOOP\r\n[0]|"},
    {"4 GB nonsync literal is fatal", "a APPEND INBOX {4000000000+}\r\nxx", 0,
     "ERR:* BYE Literal too big!|"},
    {"literal size overflow", "a X {999999999999999999999999}\r\nb NOOP\r\n", 0,
     "ERR:a BAD Invalid literal size|CMD:b NOOP\r\n[0]|"},
    {"too many literals", "a X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\n", 0,
     "ERR:* BYE Too many literals!|"},
    {"line too long then recover",
     "a1 XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n"
     "a2 NOOP\r\n",
     0, "ERR:a1 BAD Command line too long|CMD:a2 NOOP\r\n[0]|"},
    {"too long after a literal is fatal",
     "a X {1+}\r\nz YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY\r\n",
     0, "ERR:* BYE Command too long!|"},
    {"bad tag echoed as star",
     "+++XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n", 0,
     "ERR:* BAD Command line too long|"},
    {"CR inside line kept for the parser", "a X\ry\r\n", 0, "CMD:a X\ry\r\n[0]|"},
};

static void test_reader_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].input);
		char *whole = run_reader(cases[i].input, len, 0);
		char *trickle = run_reader(cases[i].input, len, 1);
		if (strcmp(whole, cases[i].expect) != 0 || strcmp(trickle, cases[i].expect) != 0) {
			print_error("case '%s'\n expect: %s\n whole:  %s\n trickle: %s\n",
			            cases[i].name, cases[i].expect, whole, trickle);
			fail();
		}
		free(whole);
		free(trickle);
	}
}

/* LITERAL- (RFC 7888 4): non-synchronising literals up to the limit (4096 in imapd, 8
 * here) pass; a larger one gets a tagged BAD [TOOBIG] and is fatal, since its bytes
 * are already on the wire; synchronising literals of any size are unaffected. */
static const struct reader_case minus_cases[] = {
    {"at the limit", "a LOGIN {8+}\r\n12345678 {2+}\r\npw\r\n", 0,
     "CMD:a LOGIN {8+}\r\n12345678 {2+}\r\npw\r\n[0]|"},
    {"over the limit", "a LOGIN {9+}\r\n123456789\r\nb NOOP\r\n", 0,
     "ERR:a BAD [TOOBIG] Non-synchronizing literal over 4096 bytes!|"},
    {"second literal over the limit", "a LOGIN {1+}\r\nx {12+}\r\n", 0,
     "ERR:a BAD [TOOBIG] Non-synchronizing literal over 4096 bytes!|"},
    {"sync literal over the limit", "a LOGIN {9}\r\n123456789 x\r\n", 0,
     "CONT|CMD:a LOGIN {9}\r\n123456789 x\r\n[0]|"},
    {"streamed sync literal", "a APPEND INBOX {50}\r\n", 0, "STREAM:50|CONT|"},
};

static void test_literal_minus(void **state)
{
	(void)state;
	struct imap_reader_limits minus = test_limits;
	minus.max_nonsync_literal = 8;
	run_limits = &minus;
	for (size_t i = 0; i < sizeof(minus_cases) / sizeof(minus_cases[0]); i++) {
		const struct reader_case *c = &minus_cases[i];
		size_t len = strlen(c->input);
		char *whole = run_reader(c->input, len, 0);
		char *trickle = run_reader(c->input, len, 1);
		if (strcmp(whole, c->expect) != 0 || strcmp(trickle, c->expect) != 0) {
			print_error("case '%s'\n expect: %s\n whole:  %s\n trickle: %s\n", c->name,
			            c->expect, whole, trickle);
			fail();
		}
		free(whole);
		free(trickle);
	}
	run_limits = &test_limits;
	/* Without the limit (LITERAL+), the same input passes. */
	const char *big = "a LOGIN {9+}\r\n123456789\r\n";
	char *plus = run_reader(big, strlen(big), 0);
	assert_string_equal(plus, "CMD:a LOGIN {9+}\r\n123456789\r\n[0]|");
	free(plus);
}

/* A 1 MB command line costs no more than the line cap. */
static void test_megabyte_line_bounded(void **state)
{
	(void)state;
	struct imap_reader *r = imap_reader_new(&test_limits);
	struct buf in;
	buf_init(&in, 0);
	(void)buf_append_str(&in, "a1 ");
	for (int i = 0; i < 1024 * 1024; i++)
		(void)buf_append_char(&in, 'x');
	(void)buf_append_str(&in, "\r\na2 NOOP\r\n");
	assert_int_equal(imap_reader_feed(r, &in), IMAP_READ_ERROR);
	assert_string_equal(imap_reader_error(r), "a1 BAD Command line too long");
	assert_int_equal(imap_reader_feed(r, &in), IMAP_READ_COMMAND);
	size_t len;
	assert_string_equal(imap_reader_command(r, &len), "a2 NOOP\r\n");
	buf_free(&in);
	imap_reader_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reader_cases),
	    cmocka_unit_test(test_megabyte_line_bounded),
	    cmocka_unit_test(test_literal_minus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
