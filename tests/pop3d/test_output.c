/* Unit tests for dot-stuffing and CRLF normalisation, fed whole and split at every byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "output.h"

struct enc_case {
	const char *in;
	int64_t body_lines; /* -1: RETR */
	const char *out;
	uint64_t size; /* RETR size (only checked for RETR cases) */
};

static const struct enc_case cases[] = {
    {"", -1, ".\r\n", 0},
    {"a\r\n", -1, "a\r\n.\r\n", 3},
    {"a\n", -1, "a\r\n.\r\n", 3},
    {"no final newline", -1, "no final newline\r\n.\r\n", 16},
    {".\r\n", -1, "..\r\n.\r\n", 3},
    {".leading\n..two\nmid.dle\n.", -1, "..leading\r\n...two\r\nmid.dle\r\n..\r\n.\r\n", 27},
    {"a\n.\nb", -1, "a\r\n..\r\nb\r\n.\r\n", 7},
    {"bare\rcr\r\n", -1, "bare\rcr\r\n.\r\n", 9},
    {"ends in cr\r", -1, "ends in cr\r\n.\r\n", 11},
    {"\n\n", -1, "\r\n\r\n.\r\n", 4},
    /* TOP: header block, blank line, then n body lines. */
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 0, "H: 1\r\nH: 2\r\n\r\n.\r\n", 0},
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 2, "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n.\r\n", 0},
    {"H: 1\r\n\r\n.b1\r\nb2", 5, "H: 1\r\n\r\n..b1\r\nb2\r\n.\r\n", 0},
    {"H: only headers", 3, "H: only headers\r\n.\r\n", 0},
};

static void encode_split(const struct enc_case *c, size_t step, struct buf *out)
{
	struct pop3_encoder e;
	size_t len = strlen(c->in);

	pop3_encoder_init(&e, c->body_lines);
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		assert_int_equal(pop3_encoder_feed(&e, c->in + i, n, out), 0);
	}
	assert_int_equal(pop3_encoder_finish(&e, out), 0);
}

static void test_encoder_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct enc_case *c = &cases[i];
		size_t len = strlen(c->in);
		for (size_t step = 1; step <= (len > 0 ? len : 1); step++) {
			struct buf out;
			buf_init(&out, 0);
			encode_split(c, step, &out);
			if (strcmp(buf_cstr(&out), c->out) != 0)
				fail_msg("case %zu step %zu: got [%s]", i, step, buf_cstr(&out));
			buf_free(&out);
		}
		if (c->body_lines < 0) {
			struct pop3_size_counter sc = {0, false};
			for (size_t j = 0; j < len; j++)
				pop3_size_feed(&sc, c->in + j, 1);
			assert_int_equal(sc.size, c->size);
		}
	}
}

static void test_encoder_output_cap(void **state)
{
	(void)state;
	struct pop3_encoder e;
	struct buf out;
	/* Worst case: every byte doubles ("\n" -> CRLF, "." at line start -> ".."). */
	buf_init(&out, 2 * 4);
	pop3_encoder_init(&e, -1);
	assert_int_equal(pop3_encoder_feed(&e, ".\n.\n", 4, &out), 0);
	assert_int_equal(out.len, 8);
	assert_int_equal(pop3_encoder_feed(&e, "x", 1, &out), -1);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encoder_cases),
	    cmocka_unit_test(test_encoder_output_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
