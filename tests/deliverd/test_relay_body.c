/* The relay's DATA encoder: dot-stuffing (RFC 5321 4.5.2), every line end as CRLF, the
 * final dot; the same output whether the body comes whole or one byte at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "relay_private.h"

struct body_case {
	const char *in;
	const char *out;
};

static const struct body_case cases[] = {
    {"", ".\r\n"},
    {"a\r\n", "a\r\n.\r\n"},
    {"a", "a\r\n.\r\n"},
    {".\r\n", "..\r\n.\r\n"},
    {"x\r\n.\r\n", "x\r\n..\r\n.\r\n"},
    {".x\n..y\n", "..x\r\n...y\r\n.\r\n"},
    {"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
    {"bare\rcr", "bare\r\ncr\r\n.\r\n"},
    {"cr at end\r", "cr at end\r\n.\r\n"},
    {"mid.dot\r\n", "mid.dot\r\n.\r\n"},
    {"\r\n\r\n", "\r\n\r\n.\r\n"},
    {"a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
};

static void run(const char *in, size_t chunk, struct buf *out)
{
	struct relay_body_encoder e;
	relay_body_encoder_init(&e);
	size_t len = strlen(in);
	for (size_t off = 0; off < len; off += chunk)
		relay_body_encode(&e, in + off, len - off < chunk ? len - off : chunk, out);
	relay_body_finish(&e, out);
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t chunk = 1; chunk <= 1024; chunk *= 1024) {
			struct buf out;
			buf_init(&out, 0);
			run(cases[i].in, chunk, &out);
			assert_string_equal(buf_cstr(&out), cases[i].out);
			buf_free(&out);
		}
	}
}

/* Whatever the input, the output never holds CRLF.CRLF before its end, nor a bare CR or
 * LF: the server can never see the message end early (SMTP smuggling). */
static void test_no_early_end(void **state)
{
	(void)state;
	const char alphabet[] = {'.', '\r', '\n', 'a'};
	char in[9];
	for (unsigned v = 0; v < (1u << 16); v++) {
		for (int k = 0; k < 8; k++)
			in[k] = alphabet[(v >> (2 * k)) & 3];
		in[8] = '\0';
		struct buf out;
		buf_init(&out, 0);
		run(in, 3, &out);
		const char *end = strstr(out.data, "\r\n.\r\n");
		if (out.len == 3)
			assert_string_equal(out.data, ".\r\n");
		else
			assert_true(end != NULL && (size_t)(end - out.data) + 5 == out.len);
		for (size_t i = 0; i < out.len; i++) {
			if (out.data[i] == '\r')
				assert_true(i + 1 < out.len && out.data[i + 1] == '\n');
			if (out.data[i] == '\n')
				assert_true(i > 0 && out.data[i - 1] == '\r');
		}
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_no_early_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
