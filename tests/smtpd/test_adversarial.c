/*
 * smtpd against hostile clients: bare LF/CR and the SMTP smuggling end-of-data variants
 * (CVE-2023-51764 class), plaintext pipelined after STARTTLS (CVE-2011-0411 class), NUL
 * bytes, a 1 MB command line, 10,000 recipients, the bad-command cap, size and header
 * caps, timeouts, back-pressure from deliverd, and one-byte-at-a-time input.
 */
#include "smtpd_harness.h"

static void start(struct harness *h)
{
	h_init(h, "203.0.113.9");
	free(h_take(h));
	h_expect(h, "HELO x\r\n", "250 mx.example.org\r\n");
}

static void open_data(struct harness *h)
{
	h_expect(h, "MAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
}

static void test_bare_lf_cr_in_commands(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	h_expect(&h, "NOOP\nNOOP\r\n", "521 5.5.2 mx.example.org Error: bare <LF> received\r\n");
	assert_true(h.closed);
	h_done(&h);

	start(&h);
	h_expect(&h, "NOOP\rNOOP\r\n", "521 5.5.2 mx.example.org Error: bare <CR> received\r\n");
	assert_true(h.closed);
	h_done(&h);
}

static void test_smuggling_variants(void **state)
{
	(void)state;
	/* Each would end DATA on a lenient server, and the rest become a second, spoofed
	 * message. Here none ends DATA: the session stops, nothing is delivered. */
	static const char *const variants[] = {
	    "Subject: a\r\n\r\nbody\n.\r\n", "Subject: a\r\n\r\nbody\r\n.\n",
	    "Subject: a\r\n\r\nbody\n.\n",   "Subject: a\r\n\r\nbody\r.\r\n",
	    "Subject: a\r\n\r\nbody\r\n.\r", "Subject: a\r\n\r\nbody\r\n\r.\r\n",
	};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct harness h;
		start(&h);
		open_data(&h);
		struct buf b;
		buf_init(&b, 0);
		buf_printf(&b,
		           "%sMAIL FROM:<ceo@example.org>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n"
		           "spoofed\r\n.\r\n",
		           variants[i]);
		h_feed(&h, buf_cstr(&b));
		buf_free(&b);
		char *out = h_take(&h);
		if (strncmp(out, "521 5.5.2 mx.example.org Error: bare <", 38) != 0)
			fail_msg("variant %zu: got [%s]", i, out);
		free(out);
		assert_true(h.closed);
		assert_int_equal(h.ended, 0);
		assert_null(strstr(buf_cstr(&h.log), "ceo@"));
		h_done(&h);
	}
}

static void test_starttls_injection(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	/* RSET and MAIL arrive in the same packet as STARTTLS: they must not run. */
	h_expect(&h, "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n",
	         "220 2.0.0 Ready to start TLS\r\n");
	assert_true(h.tls_started);
	assert_int_equal(h.in.len, 0);
	assert_int_equal(h.begun, 0);
	h_expect(&h, "MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n");
	h_expect(&h, "STARTTLS\r\n", "554 5.5.1 Error: TLS already active\r\n");
	h_done(&h);
}

static void test_nul_byte(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	h_feedn(&h, "NO\0OP\r\n", 7);
	char *out = h_take(&h);
	assert_string_equal(out, "500 5.5.2 Error: NUL character in command\r\n");
	free(out);
	h_feedn(&h, "MAIL FROM:<a\0@example.org>\r\n", 28);
	out = h_take(&h);
	assert_string_equal(out, "500 5.5.2 Error: NUL character in command\r\n");
	free(out);
	h_expect(&h, "NOOP\r\n", "250 2.0.0 Ok\r\n");
	assert_int_equal(h.begun, 0);
	h_done(&h);
}

static void test_megabyte_line(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	size_t n = 1024 * 1024;
	char *big = xmalloc(n + 3);
	memset(big, 'A', n);
	memcpy(big + n, "\r\n", 3);
	h_feedn(&h, big, n + 2);
	free(big);
	char *out = h_take(&h);
	assert_string_equal(out, "500 5.5.0 Error: line too long\r\n");
	free(out);
	h_feed(&h, "NOOP\r\n");
	out = h_take(&h);
	/* One 500 for the long line (sent as soon as the cap was passed), then recovery. */
	assert_string_equal(out, "250 2.0.0 Ok\r\n");
	free(out);
	assert_false(h.closed);
	h_done(&h);

	start(&h);
	big = xmalloc(5000);
	memset(big, 'B', 5000);
	h_feedn(&h, big, 5000);
	free(big);
	out = h_take(&h);
	assert_string_equal(out, "500 5.5.0 Error: line too long\r\n");
	free(out);
	h_expect(&h, "BBBB\r\nNOOP\r\n", "250 2.0.0 Ok\r\n");
	/* A line just under the cap, one byte at a time, then one at the cap. */
	big = xmalloc(4200);
	memcpy(big, "NOOP ", 5);
	memset(big + 5, 'C', 4200 - 5);
	memcpy(big + 4094, "\r\n", 2);
	for (size_t i = 0; i < 4096; i++)
		h_feedn(&h, big + i, 1);
	out = h_take(&h);
	assert_string_equal(out, "250 2.0.0 Ok\r\n");
	free(out);
	memcpy(big + 4094, "CCC\r\n", 5);
	h_feedn(&h, big, 4099);
	out = h_take(&h);
	assert_string_equal(out, "500 5.5.0 Error: line too long\r\n");
	free(out);
	free(big);
	h_done(&h);
}

static void test_ten_thousand_rcpts(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	h_expect(&h, "MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok\r\n");
	unsigned ok = 0, full = 0;
	for (unsigned i = 0; i < 10000; i++) {
		char line[64];
		snprintf(line, sizeof(line), "RCPT TO:<u%u@example.org>\r\n", i);
		h_feed(&h, line);
		char *out = h_take(&h);
		if (strcmp(out, "250 2.1.5 Ok\r\n") == 0)
			ok++;
		else if (strcmp(out, "452 4.5.3 Error: too many recipients\r\n") == 0)
			full++;
		else
			fail_msg("rcpt %u: [%s]", i, out);
		free(out);
	}
	assert_int_equal(ok, 100);
	assert_int_equal(full, 9900);
	assert_false(h.closed);
	h_done(&h);
}

static void test_error_cap(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	for (int i = 0; i < 19; i++)
		h_expect(&h, "BOGUS\r\n", "502 5.5.2 Error: command not recognized\r\n");
	h_expect(&h, "BOGUS\r\nNOOP\r\n",
	         "502 5.5.2 Error: command not recognized\r\n"
	         "421 4.7.0 mx.example.org Error: too many errors\r\n");
	assert_true(h.closed);
	h_done(&h);
}

static void test_timeout(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	open_data(&h);
	h_feed(&h, "half a message");
	smtp_session_timeout(h.s);
	char *out = h_take(&h);
	assert_string_equal(out, "421 4.4.2 mx.example.org Error: timeout exceeded\r\n");
	free(out);
	assert_true(h.closed);
	h_done(&h);
	assert_int_equal(h.ended, 0);
}

static void test_size_and_header_caps(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	open_data(&h);
	char *chunk = xmalloc(1000);
	memset(chunk, 'x', 998);
	memcpy(chunk + 998, "\r\n", 2);
	h_feed(&h, "Subject: big\r\n\r\n");
	for (int i = 0; i < 1100; i++)
		h_feedn(&h, chunk, 1000);
	h_expect(&h, ".\r\n", "552 5.3.4 Message size exceeds fixed limit\r\n");
	assert_int_equal(h.ended, 0);
	/* The session goes on. */
	open_data(&h);
	for (int i = 0; i < 10; i++) {
		memcpy(chunk, "X-Long: ", 8);
		h_feedn(&h, chunk, 1000);
	}
	h_expect(&h, "\r\nbody\r\n.\r\n", "552 5.3.4 Message header size exceeds limit\r\n");
	assert_int_equal(h.ended, 0);
	free(chunk);
	h_done(&h);
}

static void test_backpressure(void **state)
{
	struct harness h;
	(void)state;
	start(&h);
	h.backpressure_every = 1;
	open_data(&h);
	h_feed(&h, "Subject: x\r\n\r\nline 1\r\n");
	assert_false(h.want_input);
	h_feed(&h, "line 2\r\n.\r\nNOOP\r\n");
	char *out = h_take(&h);
	assert_string_equal(out, "");
	free(out);
	for (int i = 0; i < 100 && h.ended == 0; i++)
		smtp_session_delivery_drained(h.s), h_pump(&h);
	assert_int_equal(h.ended, 1);
	out = h_take(&h);
	assert_non_null(strstr(out, "250 2.0.0 Ok: queued as "));
	assert_non_null(strstr(out, "\r\n250 2.0.0 Ok\r\n"));
	free(out);
	assert_true(h.want_input);
	assert_non_null(strstr(buf_cstr(&h.msg), "line 1\r\nline 2\r\n"));
	h_done(&h);
}

static char *strip_ids(char *s)
{
	char *p = s;
	while ((p = strstr(p, "queued as ")) != NULL) {
		p += 10;
		char *e = strstr(p, "\r\n");
		memmove(p, e, strlen(e) + 1);
	}
	return s;
}

static void test_trickle(void **state)
{
	static const char session[] =
	    "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\nRCPT TO:"
	    "<nobody@example.org>\r\nDATA\r\nSubject: t\r\n\r\n..x\r\n.\r\nMAIL "
	    "FROM:<b@example.com>"
	    "\r\nRCPT TO:<t@example.org>\r\nBDAT 5\r\nab\r\ncBDAT 2 LAST\r\nd\n";
	struct harness whole, trickle;
	(void)state;
	h_init(&whole, "203.0.113.9");
	h_feed(&whole, session);
	h_init(&trickle, "203.0.113.9");
	for (size_t i = 0; i < sizeof(session) - 1; i++)
		h_feedn(&trickle, session + i, 1);
	char *a = strip_ids(h_take(&whole)), *b = strip_ids(h_take(&trickle));
	assert_string_equal(a, b);
	/* The final chunk ends in a bare LF: refused. */
	assert_non_null(strstr(a, "521 5.5.2"));
	assert_true(whole.closed && trickle.closed);
	assert_int_equal(whole.msg.len > 0, 1);
	free(a);
	free(b);
	h_done(&whole);
	h_done(&trickle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bare_lf_cr_in_commands),
	    cmocka_unit_test(test_smuggling_variants),
	    cmocka_unit_test(test_starttls_injection),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_megabyte_line),
	    cmocka_unit_test(test_ten_thousand_rcpts),
	    cmocka_unit_test(test_error_cap),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_size_and_header_caps),
	    cmocka_unit_test(test_backpressure),
	    cmocka_unit_test(test_trickle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
