/*
 * The line reader: a table of nasty inputs for every mode, the boundary at exactly max
 * bytes, and trickle tests that feed whole transcripts one byte (and random chunks) at a
 * time and require the same results as feeding them at once.
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
#include "proto/line.h"

struct line_case {
	const char *in;
	size_t in_len; /* 0: strlen */
	size_t max;
	enum line_mode mode;
	enum line_result want;
	size_t want_len;
	size_t want_used;
};

#define C(in, max, mode, want, len, used)                                                          \
	{                                                                                          \
		in, 0, max, mode, want, len, used                                                  \
	}

static const struct line_case cases[] = {
    /* CRLF mode: the strict one every SMTP/IMAP/POP3 parser uses. */
    C("HELO x\r\n", 100, LINE_MODE_CRLF, LINE_OK, 6, 8),
    C("\r\n", 100, LINE_MODE_CRLF, LINE_OK, 0, 2),
    C("", 100, LINE_MODE_CRLF, LINE_NEED_MORE, 0, 0),
    C("HELO", 100, LINE_MODE_CRLF, LINE_NEED_MORE, 0, 0),
    C("HELO\r", 100, LINE_MODE_CRLF, LINE_NEED_MORE, 0, 0),
    C("HELO\n", 100, LINE_MODE_CRLF, LINE_BARE_LF, 4, 5),
    C("\n", 100, LINE_MODE_CRLF, LINE_BARE_LF, 0, 1),
    C("HELO\rx\r\n", 100, LINE_MODE_CRLF, LINE_BARE_CR, 4, 5),
    C("\r\r\n", 100, LINE_MODE_CRLF, LINE_BARE_CR, 0, 1),
    C("a\n\r\n", 100, LINE_MODE_CRLF, LINE_BARE_LF, 1, 2),
    /* SMTP smuggling shapes: only CRLF ends a line. */
    C("\n.\r\n", 100, LINE_MODE_CRLF, LINE_BARE_LF, 0, 1),
    C(".\r.\r\n", 100, LINE_MODE_CRLF, LINE_BARE_CR, 1, 2),
    /* The cap: exactly max is fine, max + 1 without terminator is too long. */
    C("12345\r\n", 5, LINE_MODE_CRLF, LINE_OK, 5, 7),
    C("12345", 5, LINE_MODE_CRLF, LINE_NEED_MORE, 0, 0),
    C("12345\r", 5, LINE_MODE_CRLF, LINE_NEED_MORE, 0, 0),
    C("123456", 5, LINE_MODE_CRLF, LINE_TOO_LONG, 0, 0),
    C("123456\r\n", 5, LINE_MODE_CRLF, LINE_TOO_LONG, 0, 0),
    C("12345\rX", 5, LINE_MODE_CRLF, LINE_BARE_CR, 5, 6),
    C("\r\n", 0, LINE_MODE_CRLF, LINE_OK, 0, 2),
    C("x", 0, LINE_MODE_CRLF, LINE_TOO_LONG, 0, 0),
    /* A second line behind the first is left alone. */
    C("A\r\nB\r\n", 100, LINE_MODE_CRLF, LINE_OK, 1, 3),
    /* Lenient: CRLF or LF; a lone CR is an ordinary byte. */
    C("HELO\r\n", 100, LINE_MODE_LENIENT, LINE_OK, 4, 6),
    C("HELO\n", 100, LINE_MODE_LENIENT, LINE_OK, 4, 5),
    C("HE\rLO\n", 100, LINE_MODE_LENIENT, LINE_OK, 5, 6),
    C("HELO\r", 100, LINE_MODE_LENIENT, LINE_NEED_MORE, 0, 0),
    C("12345\r\n", 5, LINE_MODE_LENIENT, LINE_OK, 5, 7),
    C("12345\n", 5, LINE_MODE_LENIENT, LINE_OK, 5, 6),
    C("12345\r", 5, LINE_MODE_LENIENT, LINE_NEED_MORE, 0, 0),
    C("12345\rX", 5, LINE_MODE_LENIENT, LINE_TOO_LONG, 0, 0),
    C("123456\n", 5, LINE_MODE_LENIENT, LINE_TOO_LONG, 0, 0),
    /* LF mode (auth protocol): CR is data. */
    C("VERSION\t1\t2\n", 100, LINE_MODE_LF, LINE_OK, 11, 12),
    C("a\r\n", 100, LINE_MODE_LF, LINE_OK, 2, 3),
    C("a\rb", 100, LINE_MODE_LF, LINE_NEED_MORE, 0, 0),
    C("12345\n", 5, LINE_MODE_LF, LINE_OK, 5, 6),
    C("123456", 5, LINE_MODE_LF, LINE_TOO_LONG, 0, 0),
    C("1234\r\n", 5, LINE_MODE_LF, LINE_OK, 5, 6),
    C("12345\r\n", 5, LINE_MODE_LF, LINE_TOO_LONG, 0, 0),
};

static void test_line_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct line_case *t = &cases[i];
		size_t n = t->in_len != 0 ? t->in_len : strlen(t->in);
		size_t len = 99, used = 99;
		enum line_result r = line_next(t->in, n, t->max, t->mode, &len, &used);
		if (r != t->want || len != t->want_len || used != t->want_used)
			fail_msg("case %zu (%s): got result %d len %zu used %zu, want %d %zu %zu",
			         i, t->in, r, len, used, t->want, t->want_len, t->want_used);
	}
}

static void test_line_nul_is_data(void **state)
{
	(void)state;
	size_t len, used;
	assert_int_equal(line_next("a\0b\r\n", 5, 100, LINE_MODE_CRLF, &len, &used), LINE_OK);
	assert_int_equal(len, 3);
	assert_int_equal(used, 5);
}

static void test_line_skip(void **state)
{
	(void)state;
	bool done = true;
	assert_int_equal(line_skip("xxxx", 4, &done), 4);
	assert_false(done);
	assert_int_equal(line_skip("", 0, &done), 0);
	assert_false(done);
	assert_int_equal(line_skip("xx\r\nNEXT\r\n", 10, &done), 4);
	assert_true(done);
	assert_int_equal(line_skip("\n", 1, &done), 1);
	assert_true(done);
}

/*
 * A transcript of what a protocol would see: each line as "OK:<text>", errors as
 * "LF:<text>", "CR:<text>", "LONG". Input is fed in chunks of the given sizes into a buffer
 * capped at max + 2, exactly as a conn would.
 */
static void line_transcript(const char *in, size_t n, size_t max, enum line_mode mode,
                            size_t (*chunk)(size_t i), struct buf *out)
{
	struct buf b;
	buf_init(&b, max + 2);
	bool skipping = false;
	size_t pos = 0;
	for (size_t round = 0; pos < n || b.len > 0; round++) {
		assert_true(round < 100000);
		if (pos < n) {
			size_t k = chunk(round);
			if (k > n - pos)
				k = n - pos;
			if (k > buf_room(&b))
				k = buf_room(&b);
			assert_int_equal(buf_append(&b, in + pos, k), 0);
			pos += k;
		}
		for (;;) {
			if (skipping) {
				bool done;
				buf_consume(&b, line_skip(b.data, b.len, &done));
				if (!done)
					break;
				skipping = false;
				continue;
			}
			size_t len, used;
			enum line_result r = line_next(buf_cstr(&b), b.len, max, mode, &len, &used);
			if (r == LINE_NEED_MORE)
				break;
			assert_true(len <= max);
			if (r == LINE_TOO_LONG) {
				buf_append_str(out, "LONG|");
				skipping = true;
				continue;
			}
			const char *tag = r == LINE_OK ? "OK:" : r == LINE_BARE_LF ? "LF:" : "CR:";
			buf_append_str(out, tag);
			buf_append(out, b.data, len);
			buf_append_char(out, '|');
			assert_true(used > 0 && used <= b.len);
			buf_consume(&b, used);
		}
		if (pos == n && b.len > 0 && !skipping) {
			size_t len, used;
			if (line_next(buf_cstr(&b), b.len, max, mode, &len, &used) ==
			    LINE_NEED_MORE)
				break; /* an unterminated tail: the peer is not done */
		}
		if (pos == n && skipping)
			break;
	}
	buf_free(&b);
}

static size_t chunk_one(size_t i)
{
	(void)i;
	return 1;
}

static size_t chunk_all(size_t i)
{
	(void)i;
	return SIZE_MAX;
}

static size_t chunk_random(size_t i)
{
	return (size_t)(((i + 1) * 2654435761u) >> 7) % 7 + 1;
}

static void test_line_trickle(void **state)
{
	(void)state;
	static const char stream[] = "EHLO a\r\n"
	                             "MAIL FROM:<x@y>\r\n"
	                             "bare\nlf\r\n"
	                             "bare\rcr\r\n"
	                             "0123456789012345678901234567890123456789\r\n"
	                             "ok\r\n"
	                             "\r\n"
	                             "0123456789012345\r\n" /* exactly max */
	                             "01234567890123456\r\n"
	                             "end\r\n"
	                             "\r\r\n\n"
	                             "tail";
	const enum line_mode modes[] = {LINE_MODE_CRLF, LINE_MODE_LENIENT, LINE_MODE_LF};
	for (size_t m = 0; m < 3; m++) {
		struct buf whole, one, rnd;
		buf_init(&whole, 0);
		buf_init(&one, 0);
		buf_init(&rnd, 0);
		line_transcript(stream, sizeof(stream) - 1, 16, modes[m], chunk_all, &whole);
		line_transcript(stream, sizeof(stream) - 1, 16, modes[m], chunk_one, &one);
		line_transcript(stream, sizeof(stream) - 1, 16, modes[m], chunk_random, &rnd);
		assert_string_equal(buf_cstr(&one), buf_cstr(&whole));
		assert_string_equal(buf_cstr(&rnd), buf_cstr(&whole));
		if (modes[m] == LINE_MODE_CRLF)
			assert_string_equal(
			    buf_cstr(&whole),
			    "OK:EHLO a|OK:MAIL FROM:<x@y>|LF:bare|OK:lf|CR:bare|OK:cr|"
			    "LONG|OK:ok|OK:|OK:0123456789012345|LONG|OK:end|CR:|"
			    "OK:|LF:|");
		buf_free(&whole);
		buf_free(&one);
		buf_free(&rnd);
	}
}

/* A gigabyte-long "line" costs only max + 2 bytes of buffer and O(max) per call. */
static void test_line_long_input_bounded(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *big = malloc(n);
	memset(big, 'A', n);
	size_t len, used;
	assert_int_equal(line_next(big, n, 512, LINE_MODE_CRLF, &len, &used), LINE_TOO_LONG);
	assert_int_equal(line_next(big, n, 512, LINE_MODE_LENIENT, &len, &used), LINE_TOO_LONG);
	assert_int_equal(line_next(big, n, 512, LINE_MODE_LF, &len, &used), LINE_TOO_LONG);
	assert_int_equal(line_next(big, n, SIZE_MAX, LINE_MODE_CRLF, &len, &used), LINE_NEED_MORE);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_table),
	    cmocka_unit_test(test_line_nul_is_data),
	    cmocka_unit_test(test_line_skip),
	    cmocka_unit_test(test_line_trickle),
	    cmocka_unit_test(test_line_long_input_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
