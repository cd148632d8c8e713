/*
 * The log lines pflogsumm and fail2ban read, from transcripts: connect, client=, the
 * tern/qmgr from= and tern/lmtp to= lines, NOQUEUE vs queue-id rejects, SASL failures,
 * too many errors, and the disconnect counters. stderr is captured into a temp file.
 */
#include <fcntl.h>
#include <unistd.h>

#include "smtpd_harness.h"

static int saved_stderr = -1;
static char log_path[64];

static void capture_start(void)
{
	strcpy(log_path, "/tmp/tern-smtpd-log-XXXXXX");
	int fd = mkstemp(log_path);
	assert_true(fd >= 0);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	dup2(saved_stderr, 2);
	close(saved_stderr);
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	struct buf b;
	buf_init(&b, 0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	unlink(log_path);
	return buf_steal(&b);
}

static void has(const char *log, const char *text)
{
	if (strstr(log, text) == NULL)
		fail_msg("log lacks [%s]:\n%s", text, log);
}

static void test_log_shapes(void **state)
{
	struct harness h;
	(void)state;
	capture_start();
	h_init(&h, "203.0.113.9");
	free(h_take(&h));
	h_feed(&h,
	       "EHLO spam.test\r\nMAIL FROM:<s@spam.test>\r\nRCPT TO:<victim@elsewhere.test>\r\n"
	       "RCPT TO:<t@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\nhi\r\n.\r\n"
	       "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=\r\nQUIT\r\n");
	h_done(&h);
	h_init(&h, "127.0.0.1");
	free(h_take(&h));
	h_feed(&h, "EHLO x\r\nAUTH PLAIN AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==\r\n");
	smtp_session_timer(h.s);
	for (int i = 0; i < 19; i++)
		h_feed(&h, "BOGUS\r\n");
	h_done(&h);
	char *log = capture_end();
	has(log, "tern/smtpd[");
	has(log, ": connect from unknown[203.0.113.9]\n");
	has(log, ": NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 "
	         "<victim@elsewhere.test>: Relay access denied; from=<s@spam.test> "
	         "to=<victim@elsewhere.test> proto=ESMTP helo=<spam.test>\n");
	/* After the first accepted recipient, rejects carry the queue id. */
	const char *client = strstr(log, ": client=unknown[203.0.113.9]\n");
	assert_non_null(client);
	const char *qid_end = client;
	const char *qid = qid_end;
	while (qid > log && qid[-1] != ' ')
		qid--;
	char id[32];
	snprintf(id, sizeof(id), "%.*s", (int)(qid_end - qid), qid);
	char want[512];
	snprintf(want, sizeof(want),
	         "%s: reject: RCPT from unknown[203.0.113.9]: 550 5.1.1 <nobody@example.org>: "
	         "Recipient address rejected: User unknown in virtual mailbox table; "
	         "from=<s@spam.test> to=<nobody@example.org> proto=ESMTP helo=<spam.test>\n",
	         id);
	has(log, want);
	snprintf(want, sizeof(want),
	         "tern/qmgr[%ld]: %s: from=<s@spam.test>, size=", (long)getpid(), id);
	has(log, want);
	snprintf(want, sizeof(want),
	         "tern/lmtp[%ld]: %s: to=<t@example.org>, relay=deliverd[lmtp], delay=",
	         (long)getpid(), id);
	has(log, want);
	has(log, ", dsn=2.0.0, status=sent (250 2.0.0 Saved)\n");
	snprintf(want, sizeof(want), "tern/qmgr[%ld]: %s: removed\n", (long)getpid(), id);
	has(log, want);
	has(log, ": disconnect from unknown[203.0.113.9] ehlo=1 mail=1 rcpt=1/3 data=1 quit=1 "
	         "auth=0/1 commands=5/8\n");
	has(log, ": warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: invalid "
	         "credentials\n");
	has(log, ": too many errors after UNKNOWN from unknown[127.0.0.1]\n");
	has(log,
	    ": disconnect from unknown[127.0.0.1] ehlo=1 auth=0/1 unknown=0/19 commands=1/21\n");
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
