/*
 * DATA framing (dot-unstuffing, the only end <CRLF>.<CRLF>, bare CR/LF refused) for every
 * split of the input, the BDAT CRLF check and argument, and the header pass (Received,
 * added Message-ID/Date, caps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/buf.h"
#include "headers.h"
#include "smtp_data.h"

struct data_case {
	const char *in;
	enum smtp_data_result result;
	const char *out; /* unstuffed message when result is END */
	size_t used;     /* input bytes used at END (0: all) */
};

static const struct data_case cases[] = {
    {"a\r\n.\r\n", SMTP_DATA_END, "a\r\n", 0},
    {".\r\n", SMTP_DATA_END, "", 0},
    {"..\r\n.\r\n", SMTP_DATA_END, ".\r\n", 0},
    {"..x\r\n...\r\n.\r\n", SMTP_DATA_END, ".x\r\n..\r\n", 0},
    {"a\r\n.\r\nMAIL FROM", SMTP_DATA_END, "a\r\n", 6},
    {"a.\r\n\r\n.\r\n", SMTP_DATA_END, "a.\r\n\r\n", 0},
    {"a\r\n. \r\n.\r\n", SMTP_DATA_END, "a\r\n \r\n", 0},
    {"a\n.\r\n", SMTP_DATA_BARE_LF, NULL, 0},
    {"a\r\n.\n", SMTP_DATA_BARE_LF, NULL, 0},
    {"a\r.\r\n", SMTP_DATA_BARE_CR, NULL, 0},
    {"a\r\n.\rx", SMTP_DATA_BARE_CR, NULL, 0},
    {"\n", SMTP_DATA_BARE_LF, NULL, 0},
    {"a\r\r\n", SMTP_DATA_BARE_CR, NULL, 0},
    {"a\r\n.x\r\n", SMTP_DATA_MORE, NULL, 0},
    {"a\0b\r\n.\r\n", SMTP_DATA_END, "a\0b\r\n", 0},
};

/* Decodes in pieces of `step` bytes; returns the result and the output. */
static enum smtp_data_result decode_steps(const char *in, size_t len, size_t step, struct buf *out,
                                          size_t *used_total)
{
	struct smtp_data_decoder d;
	char tmp[64];
	size_t off = 0;

	smtp_data_decoder_init(&d);
	*used_total = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		size_t olen, used;
		assert_true(n + 2 <= sizeof(tmp));
		enum smtp_data_result r = smtp_data_decode(&d, in + off, n, tmp, &olen, &used);
		buf_append(out, tmp, olen);
		off += used;
		*used_total = off;
		if (r != SMTP_DATA_MORE)
			return r;
		assert_int_equal(used, n);
	}
	return SMTP_DATA_MORE;
}

static void test_decoder_all_splits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		/* Case 14 holds a NUL: its length is known. */
		size_t len = i == 14 ? 8 : strlen(c->in);
		for (size_t step = 1; step <= 16; step++) {
			struct buf out;
			size_t used;
			buf_init(&out, 0);
			enum smtp_data_result r = decode_steps(c->in, len, step, &out, &used);
			if (r != c->result)
				fail_msg("case %zu step %zu: result %d, want %d", i, step, r,
				         c->result);
			if (c->result == SMTP_DATA_END) {
				size_t olen = i == 14 ? 5 : strlen(c->out);
				assert_int_equal(out.len, olen);
				assert_memory_equal(out.data, c->out, olen);
				assert_int_equal(used, c->used != 0 ? c->used : len);
			}
			buf_free(&out);
		}
	}
}

static void test_crlf_check_and_bdat_arg(void **state)
{
	struct smtp_crlf_check c = {false};
	unsigned long long size;
	bool last;
	(void)state;

	assert_int_equal(smtp_crlf_check(&c, "ab\r", 3), SMTP_DATA_MORE);
	assert_int_equal(smtp_crlf_check_end(&c), SMTP_DATA_BARE_CR);
	assert_int_equal(smtp_crlf_check(&c, "\ncd\r\n", 5), SMTP_DATA_MORE);
	assert_int_equal(smtp_crlf_check_end(&c), SMTP_DATA_MORE);
	assert_int_equal(smtp_crlf_check(&c, "x\ny", 3), SMTP_DATA_BARE_LF);
	c.after_cr = false;
	assert_int_equal(smtp_crlf_check(&c, "x\ry", 3), SMTP_DATA_BARE_CR);

	assert_int_equal(smtp_bdat_parse("100", 1000, &size, &last), 0);
	assert_int_equal(size, 100);
	assert_false(last);
	assert_int_equal(smtp_bdat_parse("0 LAST", 1000, &size, &last), 0);
	assert_true(last);
	assert_int_equal(smtp_bdat_parse("7 last", 1000, &size, &last), 0);
	assert_int_equal(smtp_bdat_parse("1001", 1000, &size, &last), -1);
	assert_int_equal(smtp_bdat_parse("", 1000, &size, &last), -1);
	assert_int_equal(smtp_bdat_parse("-1", 1000, &size, &last), -1);
	assert_int_equal(smtp_bdat_parse("1 LASTX", 1000, &size, &last), -1);
	assert_int_equal(smtp_bdat_parse("99999999999999999999999", ~0ULL, &size, &last), -1);
}

static int collect(void *ctx, const char *data, size_t len)
{
	return buf_append(ctx, data, len);
}

static const char *run_msg(struct buf *out, bool add, size_t max_header, const char *in,
                           size_t step, enum smtp_msg_error *err_r)
{
	struct smtp_msg m;
	struct smtp_msg_info info = {
	    .hostname = "mx.example.org",
	    .helo = "client",
	    .client_ip = "192.0.2.9",
	    .protocol = "ESMTP",
	    .queue_id = "ABC123",
	    .add_missing = add,
	    .max_header_size = max_header,
	    .max_message_size = 10000,
	    .now = 0,
	};
	size_t len = strlen(in);
	buf_reset(out);
	smtp_msg_begin(&m, &info, collect, out);
	for (size_t off = 0; off < len; off += step)
		smtp_msg_write(&m, in + off, len - off < step ? len - off : step);
	*err_r = smtp_msg_end(&m);
	smtp_msg_free(&m);
	const char *p = strstr(buf_cstr(out), "ABC123; ");
	return p != NULL ? strstr(p, "\r\n") + 2 : "";
}

static void test_headers(void **state)
{
	struct buf out;
	enum smtp_msg_error e;
	(void)state;
	buf_init(&out, 0);
	for (size_t step = 1; step < 8; step++) {
		const char *m =
		    run_msg(&out, true, 1000, "Subject: a\r\n b\r\n\r\nbody\r\n", step, &e);
		assert_int_equal(e, SMTP_MSG_OK);
		assert_string_equal(m, "Subject: a\r\n b\r\nMessage-ID: <ABC123@mx.example.org>\r\n"
		                       "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n\r\nbody\r\n");
	}
	assert_true(strncmp(buf_cstr(&out),
	                    "Received: from client (unknown [192.0.2.9])\r\n\tby "
	                    "mx.example.org (tern) with ESMTP id ABC123; ",
	                    90) == 0);
	/* IPv6 clients are written as RFC 5321 address literals. */
	{
		struct smtp_msg m6;
		struct smtp_msg_info i6 = {.hostname = "h",
		                           .helo = "c",
		                           .client_ip = "2001:db8::7",
		                           .protocol = "ESMTP",
		                           .queue_id = "Q",
		                           .max_header_size = 100,
		                           .max_message_size = 100};
		const char *want6 = "Received: from c (unknown [IPv6:2001:db8::7])\r\n";
		buf_reset(&out);
		smtp_msg_begin(&m6, &i6, collect, &out);
		smtp_msg_end(&m6);
		smtp_msg_free(&m6);
		assert_true(strncmp(buf_cstr(&out), want6, strlen(want6)) == 0);
	}
	/* No empty line: the separator is put in before the first non-header line. */
	const char *m = run_msg(&out, false, 1000, "Hello there\r\n", 3, &e);
	assert_string_equal(m, "\r\nHello there\r\n");
	/* Only headers, no final CRLF (BDAT): the message still ends with CRLF. */
	m = run_msg(&out, true, 1000, "Message-ID: <x@y>\r\nDate: now", 5, &e);
	assert_string_equal(m, "Message-ID: <x@y>\r\nDate: now\r\n");
	/* Only complete header lines and no body: the header buffer is empty (and unallocated)
	 * at the end; found by fuzz_smtp under UBSan (NULL + 0). */
	m = run_msg(&out, false, 1000, "Subject: a\r\n", 4, &e);
	assert_int_equal(e, SMTP_MSG_OK);
	assert_string_equal(m, "Subject: a\r\n");
	/* Header cap. */
	m = run_msg(&out, false, 20, "Subject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\nx\r\n", 4, &e);
	assert_int_equal(e, SMTP_MSG_HEADER_TOO_BIG);
	buf_free(&out);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decoder_all_splits),
	    cmocka_unit_test(test_crlf_check_and_bdat_arg),
	    cmocka_unit_test(test_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
