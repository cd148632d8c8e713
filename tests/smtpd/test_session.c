/*
 * smtpd session transcripts: the ordinary conversations (the telnet tutorial, ESMTP with
 * pipelining, BDAT, DSN, SMTPUTF8), the relay matrix, submission with AUTH and STARTTLS,
 * and the delivery side's answers (unknown user, deliverd down, partial failure).
 */
#include "smtpd_harness.h"

#define GREETING "220 mx.example.org ESMTP tern\r\n"

static void greeted(struct harness *h)
{
	char *out = h_take(h);
	assert_string_equal(out, GREETING);
	free(out);
}

static void test_telnet_tutorial(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	/* As typed in the classic tutorials: lower case, no angle brackets. */
	h_expect(&h, "helo lo\r\n", "250 mx.example.org\r\n");
	h_expect(&h, "mail from: user@yahoo.com\r\n", "250 2.1.0 Ok\r\n");
	h_expect(&h, "rcpt to: tester@example.org\r\n", "250 2.1.5 Ok\r\n");
	h_expect(&h, "data\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect(&h, "Subject: test\r\n", "");
	h_expect(&h, "\r\n", "");
	h_expect(&h, "Hello, this is a test.\r\n", "");
	h_expect_prefix(&h, ".\r\n", "250 2.0.0 Ok: queued as ");
	h_expect(&h, "quit\r\n", "221 2.0.0 Bye\r\n");
	assert_true(h.closed);
	assert_string_equal(buf_cstr(&h.log), "MAIL FROM:<user@yahoo.com>\n"
	                                      "RCPT TO:<tester@example.org>\nDATA\n.\nQUIT\n");
	const char *m = buf_cstr(&h.msg);
	const char *rcvd = "Received: from lo (unknown [203.0.113.9])\r\n\tby mx.example.org "
	                   "(tern) with SMTP id ";
	assert_memory_equal(m, rcvd, strlen(rcvd));
	assert_non_null(strstr(m, "\r\n\tfor <tester@example.org>; "));
	const char *body = strstr(m, "Subject: test\r\n\r\nHello, this is a test.\r\n");
	assert_non_null(body);
	assert_string_equal(body, "Subject: test\r\n\r\nHello, this is a test.\r\n");
	/* Port 25 adds nothing but Received. */
	assert_null(strstr(m, "Message-ID:"));
	h_done(&h);
}

static void test_strict_mode(void **state)
{
	struct harness h;
	(void)state;
	h_init_role(&h, "203.0.113.9", SMTP_ROLE_SMTP);
	h.set.strict = true;
	h_start(&h);
	greeted(&h);
	h_expect(&h, "helo lo\r\n", "250 mx.example.org\r\n");
	h_expect(&h, "mail from: user@yahoo.com\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	h_expect(&h, "MAIL FROM:<user@yahoo.com>\r\n", "250 2.1.0 Ok\r\n");
	h_expect(&h, "RCPT TO: <tester@example.org>\r\n",
	         "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
	h_done(&h);
}

static void test_ehlo_and_pipelining(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect(&h, "EHLO client.example.com\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n250-STARTTLS\r\n"
	         "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	         "250 CHUNKING\r\n");
	/* RFC 2920: one group, the replies in order, in one write. */
	h_expect(&h,
	         "MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100\r\nRCPT TO:<x@example.org>\r\n"
	         "RCPT TO:<nobody@example.org>\r\nRCPT TO:<y@example.net>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.org>: Recipient "
	         "address rejected: User unknown in virtual mailbox table\r\n250 2.1.5 Ok\r\n"
	         "354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect_prefix(&h, "Subject: hi\r\n\r\n..dot\r\n.\r\n", "250 2.0.0 Ok: queued as ");
	assert_non_null(strstr(buf_cstr(&h.msg), "\r\n\r\n.dot\r\n"));
	assert_null(strstr(buf_cstr(&h.msg), "\tfor <"));
	assert_non_null(
	    strstr(buf_cstr(&h.log), "MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100\n"));
	h_done(&h);
}

static void test_relay_matrix(void **state)
{
	struct harness h;
	(void)state;
	/* Outside mynetworks, not authenticated: local yes, remote no. */
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect(&h, "EHLO x\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"
	         "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	         "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	h_expect(&h, "MAIL FROM:<s@spam.test>\r\n", "250 2.1.0 Ok\r\n");
	h_expect(&h, "RCPT TO:<victim@elsewhere.test>\r\n",
	         "554 5.7.1 <victim@elsewhere.test>: Relay access denied\r\n");
	h_expect(&h, "RCPT TO:<victim@example.org.evil.test>\r\n",
	         "554 5.7.1 <victim@example.org.evil.test>: Relay access denied\r\n");
	h_expect(&h, "RCPT TO:<\"x@example.org\"@elsewhere.test>\r\n",
	         "554 5.7.1 <\"x@example.org\"@elsewhere.test>: Relay access denied\r\n");
	h_expect(&h, "RCPT TO:<@example.org:victim@elsewhere.test>\r\n",
	         "554 5.7.1 <victim@elsewhere.test>: Relay access denied\r\n");
	h_expect(&h, "RCPT TO:<tester@EXAMPLE.ORG>\r\n", "250 2.1.5 Ok\r\n");
	h_expect(&h, "RCPT TO:<postmaster>\r\n", "250 2.1.5 Ok\r\n");
	assert_null(strstr(buf_cstr(&h.log), "elsewhere"));
	h_done(&h);

	/* In mynetworks: relaying allowed. */
	h_init(&h, "192.0.2.77");
	greeted(&h);
	h_expect(&h, "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@elsewhere.test>\r\n",
	         "250 mx.example.org\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	h_done(&h);
}

static void test_submission_auth(void **state)
{
	struct harness h;
	(void)state;
	h_init_role(&h, "203.0.113.9", SMTP_ROLE_SUBMISSION);
	h_start(&h);
	greeted(&h);
	/* Before TLS: no AUTH offered, AUTH and MAIL refused. */
	h_expect(&h, "EHLO x\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"
	         "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	         "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "530 5.7.0 Must issue a STARTTLS command first\r\n");
	h_expect(&h, "MAIL FROM:<bob@example.org>\r\n",
	         "530 5.7.0 Must issue a STARTTLS command first\r\n");
	assert_int_equal(h.auth_begun, 0);
	h_expect(&h, "STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n");
	assert_true(h.tls_started);
	/* RFC 3207 4.2: EHLO again; AUTH is offered now. */
	h_expect(&h, "MAIL FROM:<bob@example.org>\r\n",
	         "503 5.5.1 Error: send HELO/EHLO first\r\n");
	h_expect(&h, "EHLO x\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"
	         "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
	         "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	h_expect(&h, "MAIL FROM:<bob@example.org>\r\n", "530 5.7.0 Authentication required\r\n");
	/* A wrong password: the reply waits for the timer (the failure delay). */
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==\r\n", "");
	assert_int_equal(h.timer_calls, 1);
	assert_int_equal(h.timer_ms, 100);
	smtp_session_timer(h.s);
	char *out = h_take(&h);
	assert_string_equal(out, "535 5.7.8 Error: authentication failed: invalid credentials\r\n");
	free(out);
	/* The second failure waits twice as long. */
	h_expect(&h, "AUTH PLAIN\r\n", "334 \r\n");
	h_expect(&h, "AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==\r\n", "");
	assert_int_equal(h.timer_ms, 200);
	smtp_session_timer(h.s);
	free(h_take(&h));
	/* Abort with "*". */
	h_expect(&h, "AUTH LOGIN\r\n", "334 \r\n");
	h_expect(&h, "*\r\n", "501 5.7.0 Authentication aborted\r\n");
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "235 2.7.0 Authentication successful\r\n");
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "503 5.5.1 Error: already authenticated\r\n");
	/* Sender-login check, then relaying as an authenticated user. */
	h_expect(&h, "MAIL FROM:<alice@example.org>\r\n",
	         "553 5.7.1 <alice@example.org>: Sender address rejected: not owned by user "
	         "bob@example.org\r\n");
	h_expect(&h, "MAIL FROM:<bob@example.org>\r\nRCPT TO:<friend@elsewhere.test>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect_prefix(&h, "Subject: hi\r\n\r\nbody\r\n.\r\n", "250 2.0.0 Ok: queued as ");
	const char *m = buf_cstr(&h.msg);
	assert_non_null(strstr(m, "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"));
	assert_non_null(strstr(m, "(Authenticated sender: bob@example.org)\r\n"));
	assert_non_null(strstr(m, " with ESMTPSA id "));
	/* Submission adds Message-ID and Date before the empty line. */
	assert_non_null(strstr(m, "Subject: hi\r\nMessage-ID: <"));
	assert_non_null(strstr(m, "\r\nDate: "));
	assert_non_null(strstr(m, "\r\n\r\nbody\r\n"));
	h_done(&h);
}

static void test_submission_keeps_headers(void **state)
{
	struct harness h;
	(void)state;
	h_init_role(&h, "203.0.113.9", SMTP_ROLE_SUBMISSIONS);
	h_start(&h);
	greeted(&h);
	h_expect(&h, "EHLO x\r\nAUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"
	         "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	         "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
	         "235 2.7.0 Authentication successful\r\n");
	h_expect(&h, "MAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect_prefix(
	    &h, "Message-Id: <1@x>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nb\r\n.\r\n",
	    "250 2.0.0");
	const char *m = buf_cstr(&h.msg);
	assert_null(strstr(m, "Message-ID: <"));
	assert_null(strstr(m, "\r\nDate: "));
	h_done(&h);
}

static void test_auth_down_and_loopback(void **state)
{
	struct harness h;
	(void)state;
	/* Port 25 on loopback: plaintext AUTH allowed without TLS; authd down -> 454. */
	h_init(&h, "127.0.0.1");
	greeted(&h);
	h.auth_down = true;
	h_expect(&h, "EHLO x\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"
	         "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"
	         "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
	         "250-SMTPUTF8\r\n250 CHUNKING\r\n");
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "454 4.7.0 Temporary authentication failure\r\n");
	h.auth_down = false;
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "235 2.7.0 Authentication successful\r\n");
	h_done(&h);

	/* Not loopback, no TLS: plaintext mechanisms are neither offered nor accepted. */
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect_prefix(&h, "EHLO x\r\n", "250-mx.example.org\r\n");
	h_expect(&h, "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\n",
	         "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
	h_expect(&h, "AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication type\r\n");
	assert_int_equal(h.auth_begun, 0);
	h_done(&h);
}

static void test_deliverd_down(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h.dlv_down = true;
	h_expect(&h, "HELO x\r\nMAIL FROM:<a@example.com>\r\n",
	         "250 mx.example.org\r\n451 4.3.0 Error: delivery service unavailable, try "
	         "again later\r\n");
	h.dlv_down = false;
	h_expect(&h, "MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok\r\n");
	h_done(&h);
}

static void test_partial_failure_is_4xx(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h.end_fail = "b@example.org";
	h.end_fail_reply = "452 4.2.2 <b@example.org> Mailbox full";
	h_expect(&h,
	         "HELO x\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.org>\r\n"
	         "RCPT TO:<b@example.org>\r\nDATA\r\n",
	         "250 mx.example.org\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	         "354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect(&h, "x\r\n.\r\n",
	         "451 4.3.0 Error: delivery failed for some recipients, try again later\r\n");
	/* All permanent: the permanent reply. */
	h.end_fail_reply = "552 5.2.2 <b@example.org> Over quota";
	h_expect(&h, "MAIL FROM:<s@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nx\r\n.\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	         "552 5.2.2 <b@example.org> Over quota\r\n");
	/* deliverd fails mid-message: 451, never 250. */
	h_expect(&h, "MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	h.tx_failed_mid = true;
	h_expect(&h, "x\r\n.\r\n", "451 4.3.0 Error: delivery service failed, try again later\r\n");
	assert_int_equal(h.ended, 2);
	h_done(&h);
}

static void test_bdat(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect(&h, "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\n",
	         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n250-STARTTLS\r\n"
	         "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	         "250 CHUNKING\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	/* A chunk may hold "\r\n.\r\n": with BDAT it is just data. */
	h_expect(&h, "BDAT 17\r\nSubject: x\r\n\r\n.\r\n", "250 2.0.0 Ok: 17 octets received\r\n");
	h_expect(&h, "BDAT 0\r\n", "250 2.0.0 Ok: 17 octets received\r\n");
	h_expect_prefix(&h, "BDAT 3 LAST\r\nend", "250 2.0.0 Ok: queued as ");
	const char *m = strstr(buf_cstr(&h.msg), "Subject: x");
	assert_non_null(m);
	assert_string_equal(m, "Subject: x\r\n\r\n.\r\nend\r\n");
	/* A BDAT that fails still has its chunk read, not run as commands. */
	h_expect(&h, "BDAT 10 LAST\r\nRSET\r\nRSET", "503 5.5.1 Error: need MAIL command\r\n");
	h_expect(&h, "MAIL FROM:<a@example.com>\r\nBDAT 6\r\nNOOP\r\n",
	         "250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n");
	h_expect(&h, "BDAT x\r\n", "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
	assert_true(h.closed);
	h_done(&h);
}

static void test_dsn_and_utf8(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect_prefix(&h, "EHLO x\r\n", "250-");
	h_expect(&h,
	         "MAIL FROM:<a@example.com> RET=HDRS ENVID=abc+2B1\r\n"
	         "RCPT TO:<t@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;t@example.org\r\n"
	         "RSET\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n");
	assert_non_null(strstr(buf_cstr(&h.log),
	                       "MAIL FROM:<a@example.com> RET=HDRS ENVID=abc+2B1\n"
	                       "RCPT TO:<t@example.org> NOTIFY=SUCCESS,FAILURE "
	                       "ORCPT=rfc822;t@example.org\n"));
	h_expect(&h, "MAIL FROM:<a@example.com> RET=NONE\r\n", "501 5.5.4 Bad RET parameter\r\n");
	h_expect(&h, "MAIL FROM:<a@example.com> FOO=1\r\n", "555 5.5.4 Unsupported option\r\n");
	h_expect(&h, "MAIL FROM:<a@example.com> SIZE=99999999\r\n",
	         "552 5.3.4 Message size exceeds fixed limit\r\n");
	h_expect(&h, "MAIL FROM:<j\xc3\xb6rg@example.com>\r\n",
	         "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
	h_expect(&h,
	         "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8\r\n"
	         "RCPT TO:<m\xc3\xbc@example.org>\r\nDATA\r\n",
	         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	h_expect_prefix(&h, "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n8bit \xff body\r\n.\r\n",
	                "250 2.0.0");
	assert_non_null(strstr(buf_cstr(&h.msg), " with UTF8SMTP id "));
	assert_non_null(strstr(buf_cstr(&h.msg), "8bit \xff body\r\n"));
	h_done(&h);
}

static void test_misc_commands(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "203.0.113.9");
	greeted(&h);
	h_expect(&h, "MAIL FROM:<a@b.c>\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n");
	h_expect(&h, "EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n");
	h_expect(&h, "HELO x\r\n", "250 mx.example.org\r\n");
	h_expect(&h, "RCPT TO:<a@example.org>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
	h_expect(&h, "DATA\r\n", "503 5.5.1 Error: need RCPT command\r\n");
	h_expect(&h, "MAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n",
	         "250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n");
	h_expect(&h, "DATA\r\n", "554 5.5.1 Error: no valid recipients\r\n");
	h_expect(
	    &h, "NOOP\r\nVRFY bob\r\nEXPN list\r\nFOO\r\n",
	    "250 2.0.0 Ok\r\n252 2.0.0 Cannot VRFY user, but will accept message\r\n"
	    "502 5.5.1 EXPN command is disabled\r\n502 5.5.2 Error: command not recognized\r\n");
	h_expect_prefix(&h, "HELP\r\n", "214-2.0.0 ");
	h_expect(&h, "RSET\r\n", "250 2.0.0 Ok\r\n");
	assert_int_equal(h.freed, 1);
	h_done(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_telnet_tutorial),
	    cmocka_unit_test(test_strict_mode),
	    cmocka_unit_test(test_ehlo_and_pipelining),
	    cmocka_unit_test(test_relay_matrix),
	    cmocka_unit_test(test_submission_auth),
	    cmocka_unit_test(test_submission_keeps_headers),
	    cmocka_unit_test(test_auth_down_and_loopback),
	    cmocka_unit_test(test_deliverd_down),
	    cmocka_unit_test(test_partial_failure_is_4xx),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_dsn_and_utf8),
	    cmocka_unit_test(test_misc_commands),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
