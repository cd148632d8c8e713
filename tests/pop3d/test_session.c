/*
 * POP3 transcripts: client bytes in, server bytes out, for every command and response
 * code, in each state, pipelined, split, and against the real Maildir on disk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.c"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"

#define M1 "1700000001.M1P1.test"
#define M2 "1700000002.M2P1.test"
#define M3 "1700000003.M3P1.test"

static void add_three(struct harness *h)
{
	free(h_add_message(h, "alice", "cur", M1 ":2,", "Subject: one\n\nHello\n"));
	free(h_add_message(h, "alice", "cur", M2 ":2,F",
	                   "Subject: two\r\n\r\n.dot line\r\n..two dots\r\nno newline"));
	free(h_add_message(h, "alice", "new", M3, "Subject: three\n\nl1\nl2\nl3\n"));
}

static void login(struct harness *h)
{
	assert_string_equal(h_send(h, "USER alice\r\nPASS secret\r\n"),
	                    "+OK\r\n+OK Logged in.\r\n");
	assert_int_equal(pop3_session_state(h->s), POP3_STATE_TRANSACTION);
}

static void test_greeting_and_capa_loopback(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, true);
	assert_string_equal(h.out.data, "+OK tern POP3 ready.\r\n");
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "CAPA\r\n"),
	                    "+OK Capability list follows\r\n"
	                    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
	                    "AUTH-RESP-CODE\r\nEXPIRE NEVER\r\n"
	                    "LOGIN-DELAY 0\r\nUSER\r\n"
	                    "SASL PLAIN LOGIN XTEST\r\nSTLS\r\n"
	                    "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n");
	h_free(&h);
}

static void test_capa_insecure_remote(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, false, true);
	h.out_read = h.out.len;
	/* No USER and no plaintext mechanisms before TLS on a remote connection. */
	assert_string_equal(h_send(&h, "capa\r\n"),
	                    "+OK Capability list follows\r\n"
	                    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
	                    "AUTH-RESP-CODE\r\nEXPIRE NEVER\r\n"
	                    "LOGIN-DELAY 0\r\nSASL XTEST\r\nSTLS\r\n"
	                    "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n");
	assert_string_equal(h_send(&h, "USER alice\r\n"),
	                    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	                    "(SSL/TLS) connections.\r\n");
	assert_string_equal(h_send(&h, "PASS secret\r\n"),
	                    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	                    "(SSL/TLS) connections.\r\n");
	assert_string_equal(h_send(&h, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
	                    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	                    "(SSL/TLS) connections.\r\n");
	assert_string_equal(h_send(&h, "AUTH\r\n"), "+OK\r\nXTEST\r\n.\r\n");
	assert_int_equal(pop3_session_state(h.s), POP3_STATE_AUTHORIZATION);
	h_free(&h);
}

static void test_capa_tls_and_transaction(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, true, false, true);
	h.out_read = h.out.len;
	/* On TLS: USER and every mechanism, and no STLS. */
	assert_string_equal(h_send(&h, "CAPA\r\n"),
	                    "+OK Capability list follows\r\n"
	                    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
	                    "AUTH-RESP-CODE\r\nEXPIRE NEVER\r\n"
	                    "LOGIN-DELAY 0\r\nUSER\r\n"
	                    "SASL PLAIN LOGIN XTEST\r\n"
	                    "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n");
	assert_string_equal(h_send(&h, "STLS\r\n"), "-ERR TLS is already active.\r\n");
	login(&h);
	assert_string_equal(h_send(&h, "CAPA\r\n"),
	                    "+OK Capability list follows\r\n"
	                    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
	                    "AUTH-RESP-CODE\r\nEXPIRE NEVER\r\n"
	                    "LOGIN-DELAY 0\r\n"
	                    "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n");
	h_free(&h);
}

static void test_commands_before_auth(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	static const char *const cmds[] = {"STAT",    "LIST",   "UIDL", "RETR 1",
	                                   "TOP 1 0", "DELE 1", "RSET", "NOOP"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char line[32];
		snprintf(line, sizeof(line), "%s\r\n", cmds[i]);
		assert_string_equal(h_send(&h, line), "-ERR Not logged in.\r\n");
	}
	assert_string_equal(h_send(&h, "PASS secret\r\n"), "-ERR No username given.\r\n");
	assert_string_equal(h_send(&h, "APOP alice 0123456789abcdef0123456789abcdef\r\n"),
	                    "-ERR APOP is not supported.\r\n");
	assert_string_equal(h_send(&h, "STLS\r\n"), "-ERR TLS support isn't enabled.\r\n");
	assert_string_equal(h_send(&h, "XYZZY\r\n"), "-ERR Unknown command.\r\n");
	assert_string_equal(h_send(&h, "\r\n"), "-ERR Empty command.\r\n");
	assert_int_equal(pop3_session_state(h.s), POP3_STATE_AUTHORIZATION);
	assert_string_equal(h_send(&h, "QUIT\r\n"), "+OK Logging out.\r\n");
	assert_true(h.closed);
	/* Nothing runs after QUIT. */
	assert_string_equal(h_send(&h, "CAPA\r\n"), "");
	h_free(&h);
}

static void test_transaction_commands(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	assert_string_equal(h_send(&h, "STAT\r\n"), "+OK 3 102\r\n");
	assert_string_equal(h_send(&h, "LIST\r\n"), "+OK\r\n1 23\r\n2 49\r\n3 30\r\n.\r\n");
	assert_string_equal(h_send(&h, "LIST 2\r\n"), "+OK 2 49\r\n");
	assert_string_equal(h_send(&h, "LIST 4\r\n"), "-ERR There's no message 4.\r\n");
	assert_string_equal(h_send(&h, "LIST 0\r\n"), "-ERR Invalid message number: 0\r\n");
	assert_string_equal(h_send(&h, "LIST x\r\n"), "-ERR Invalid message number: x\r\n");
	assert_string_equal(h_send(&h, "UIDL\r\n"),
	                    "+OK\r\n1 " M1 "\r\n2 " M2 "\r\n3 " M3 "\r\n.\r\n");
	assert_string_equal(h_send(&h, "UIDL 3\r\n"), "+OK 3 " M3 "\r\n");
	assert_string_equal(h_send(&h, "RETR 1\r\n"),
	                    "+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n");
	/* Dot-stuffing, and a message without a final newline. */
	assert_string_equal(h_send(&h, "RETR 2\r\n"), "+OK 49 octets\r\nSubject: two\r\n\r\n"
	                                              "..dot line\r\n...two dots\r\n"
	                                              "no newline\r\n.\r\n");
	assert_string_equal(h_send(&h, "TOP 3 1\r\n"), "+OK\r\nSubject: three\r\n\r\nl1\r\n.\r\n");
	assert_string_equal(h_send(&h, "TOP 3 0\r\n"), "+OK\r\nSubject: three\r\n\r\n.\r\n");
	assert_string_equal(h_send(&h, "TOP 3 99\r\n"),
	                    "+OK\r\nSubject: three\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n");
	assert_string_equal(h_send(&h, "TOP 3\r\n"),
	                    "-ERR TOP needs a message number and a line count.\r\n");
	assert_string_equal(h_send(&h, "TOP 3 -1\r\n"), "-ERR Invalid line count: -1\r\n");
	assert_string_equal(h_send(&h, "NOOP\r\n"), "+OK\r\n");
	assert_string_equal(h_send(&h, "DELE 1\r\n"), "+OK Marked to be deleted.\r\n");
	assert_string_equal(h_send(&h, "DELE 1\r\n"), "-ERR Message is deleted.\r\n");
	assert_string_equal(h_send(&h, "RETR 1\r\n"), "-ERR Message is deleted.\r\n");
	assert_string_equal(h_send(&h, "LIST 1\r\n"), "-ERR Message is deleted.\r\n");
	assert_string_equal(h_send(&h, "STAT\r\n"), "+OK 2 79\r\n");
	assert_string_equal(h_send(&h, "LIST\r\n"), "+OK\r\n2 49\r\n3 30\r\n.\r\n");
	assert_string_equal(h_send(&h, "UIDL\r\n"), "+OK\r\n2 " M2 "\r\n3 " M3 "\r\n.\r\n");
	assert_string_equal(h_send(&h, "USER bob\r\n"),
	                    "-ERR Command not valid in TRANSACTION state.\r\n");
	assert_string_equal(h_send(&h, "STLS\r\n"),
	                    "-ERR Command not valid in TRANSACTION state.\r\n");
	assert_string_equal(h_send(&h, "QUIT\r\n"), "+OK Logging out.\r\n");
	assert_true(h.closed);
	/* QUIT applied the deletion and the \Seen of RETR 2; TOP does not mark seen.
	 * (Opening the INBOX moved message 3 from new/ to cur/, as Dovecot does.) */
	assert_false(h_file_exists(&h, "alice", "cur", M1 ":2,"));
	assert_true(h_file_exists(&h, "alice", "cur", M2 ":2,FS"));
	assert_true(h_file_exists(&h, "alice", "cur", M3 ":2,"));
	assert_int_equal(h_count_files(&h, "alice", "new"), 0);
	h_free(&h);
}

static void test_rset_after_dele(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	assert_string_equal(h_send(&h, "DELE 1\r\nDELE 3\r\nSTAT\r\nRSET\r\nSTAT\r\nQUIT\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n"
	                    "+OK 1 49\r\n+OK 3 messages, 102 octets\r\n+OK 3 102\r\n"
	                    "+OK Logging out.\r\n");
	assert_int_equal(h_count_files(&h, "alice", "cur"), 3);
	assert_int_equal(h_count_files(&h, "alice", "new"), 0);
	h_free(&h);
}

static void test_dropped_connection_applies_nothing(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	assert_string_equal(h_send(&h, "RETR 3\r\n"),
	                    "+OK 30 octets\r\nSubject: three\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n");
	assert_string_equal(h_send(&h, "DELE 1\r\nDELE 2\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n");
	h_drop(&h);
	assert_true(h_file_exists(&h, "alice", "cur", M1 ":2,"));
	assert_true(h_file_exists(&h, "alice", "cur", M2 ":2,F"));
	/* Moved to cur/ at login, but not \Seen: the RETR was never committed. */
	assert_true(h_file_exists(&h, "alice", "cur", M3 ":2,"));
	h_free(&h);
}

static void test_quit_deletes_and_new_mail_waits(void **state)
{
	(void)state;
	struct harness h, h2;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	/* Delivered during the session: not part of this session's view. */
	free(h_add_message(&h, "alice", "new", "1700000004.M4P1.test", "Subject: 4\n\nx\n"));
	assert_string_equal(h_send(&h, "STAT\r\n"), "+OK 3 102\r\n");
	assert_string_equal(h_send(&h, "RETR 3\r\n"),
	                    "+OK 30 octets\r\nSubject: three\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n");
	assert_string_equal(h_send(&h, "DELE 1\r\nDELE 2\r\nQUIT\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n"
	                    "+OK Logging out.\r\n");
	assert_int_equal(h_count_files(&h, "alice", "cur"), 1);
	/* RETR moved message 3 to cur/ with \Seen. */
	assert_true(h_file_exists(&h, "alice", "cur", M3 ":2,S"));
	assert_true(h_file_exists(&h, "alice", "new", "1700000004.M4P1.test"));
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	login(&h2);
	assert_string_equal(h_send(&h2, "UIDL\r\n"),
	                    "+OK\r\n1 " M3 "\r\n2 1700000004.M4P1.test\r\n.\r\n");
	h_free(&h2);
	h_free(&h);
}

static void test_in_use(void **state)
{
	(void)state;
	struct harness h, h2;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	assert_string_equal(h_send(&h2, "USER alice\r\nPASS secret\r\n"),
	                    "+OK\r\n-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n");
	assert_true(h2.closed);
	h_free(&h2);
	/* Another user is not affected; and the lock goes with the session. */
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	assert_string_equal(h_send(&h2, "USER bob\r\nPASS hunter2\r\n"),
	                    "+OK\r\n+OK Logged in.\r\n");
	h_free(&h2);
	h_drop(&h);
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	login(&h2);
	h_free(&h2);
	h_free(&h);
}

static void test_auth_failures_delayed(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	h.out_read = h.out.len;
	/* The answer waits for the delay timer; pipelined commands wait behind it. */
	assert_string_equal(h_send(&h, "USER alice\r\nPASS wrong\r\nNOOP\r\n"),
	                    "+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
	                    "-ERR Not logged in.\r\n");
	assert_int_equal(h.timer_ms, 2000);
	assert_string_equal(h_send(&h, "AUTH PLAIN AGFsaWNlAHdyb25n\r\n"),
	                    "-ERR [AUTH] Authentication failed.\r\n");
	assert_false(h.closed);
	/* The third failure ends the connection. */
	assert_string_equal(h_send(&h, "PASS wrong again\r\nCAPA\r\n"),
	                    "-ERR [AUTH] Authentication failed.\r\n");
	assert_true(h.closed);
	h_free(&h);
}

static void test_authd_down(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	h.authd_down = true;
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "USER alice\r\nPASS secret\r\n"),
	                    "+OK\r\n-ERR [SYS/TEMP] Temporary authentication failure.\r\n");
	assert_string_equal(h_send(&h, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
	                    "-ERR [SYS/TEMP] Temporary authentication failure.\r\n");
	assert_int_equal(h.timers, 0);
	/* authd back: the next login works. */
	h.authd_down = false;
	assert_string_equal(h_send(&h, "PASS secret\r\n"), "+OK Logged in.\r\n");
	h_free(&h);
}

static void test_sasl(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, true, false, false);
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "AUTH\r\n"), "+OK\r\nPLAIN\r\nLOGIN\r\nXTEST\r\n.\r\n");
	assert_string_equal(h_send(&h, "AUTH DIGEST-MD5\r\n"),
	                    "-ERR Unsupported authentication mechanism.\r\n");
	/* No initial response: empty challenge, then the response. Cancel with "*". */
	assert_string_equal(h_send(&h, "AUTH PLAIN\r\n"), "+ \r\n");
	assert_string_equal(h_send(&h, "*\r\n"), "-ERR Authentication aborted by client.\r\n");
	assert_string_equal(h_send(&h, "AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6\r\n");
	assert_string_equal(h_send(&h, "YWxpY2U=\r\n"), "+ UGFzc3dvcmQ6\r\n");
	assert_string_equal(h_send(&h, "c2VjcmV0\r\n"), "+OK Logged in.\r\n");
	assert_int_equal(pop3_session_state(h.s), POP3_STATE_TRANSACTION);
	h_free(&h);

	h_init(&h, true, false, false);
	h.out_read = h.out.len;
	/* SASL-IR, and "=" for an empty initial response (RFC 5034 4). */
	assert_string_equal(h_send(&h, "AUTH PLAIN =\r\n"), "+ \r\n");
	assert_string_equal(h_send(&h, "AGJvYgBodW50ZXIy\r\n"), "+OK Logged in.\r\n");
	h_free(&h);

	h_init(&h, true, false, false);
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "AUTH plain AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n"),
	                    "+OK Logged in.\r\n+OK 0 0\r\n");
	h_free(&h);
}

static void test_stls_discards_plaintext(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, false, true);
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "USER alice\r\n"),
	                    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	                    "(SSL/TLS) connections.\r\n");
	/* Injected after STLS in the same packet: must never run. */
	assert_string_equal(h_send(&h, "STLS\r\nUSER alice\r\nPASS secret\r\n"),
	                    "+OK Begin TLS negotiation now.\r\n");
	assert_true(h.starttls_called);
	assert_int_equal(h.in.len, 0);
	assert_string_equal(h_send(&h, "STLS\r\n"), "-ERR TLS is already active.\r\n");
	/* After TLS the user must start over (nothing from before is kept). */
	assert_string_equal(h_send(&h, "PASS secret\r\n"), "-ERR No username given.\r\n");
	login(&h);
	h_free(&h);
}

static void test_pipelined_session_one_packet(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST 1\r\n"
	                               "TOP 1 0\r\nDELE 1\r\nUIDL 2\r\nQUIT\r\nSTAT\r\n"),
	                    "+OK Capability list follows\r\n"
	                    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
	                    "EXPIRE NEVER\r\nLOGIN-DELAY 0\r\nUSER\r\nSASL PLAIN LOGIN XTEST\r\n"
	                    "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n"
	                    "+OK\r\n+OK Logged in.\r\n+OK 3 102\r\n+OK 1 23\r\n"
	                    "+OK\r\nSubject: one\r\n\r\n.\r\n+OK Marked to be deleted.\r\n"
	                    "+OK 2 " M2 "\r\n+OK Logging out.\r\n");
	assert_false(h_file_exists(&h, "alice", "cur", M1 ":2,"));
	h_free(&h);
}

static void test_trickle_one_byte(void **state)
{
	(void)state;
	struct harness h;
	const char *script = "USER alice\r\nPASS secret\nRETR 2\r\nQUIT\r\n";
	struct buf all;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	buf_init(&all, 0);
	for (size_t i = 0; script[i] != '\0'; i++)
		buf_append_str(&all, h_send_len(&h, script + i, 1));
	assert_string_equal(buf_cstr(&all), "+OK\r\n+OK Logged in.\r\n+OK 49 octets\r\n"
	                                    "Subject: two\r\n\r\n..dot line\r\n...two dots\r\n"
	                                    "no newline\r\n.\r\n+OK Logging out.\r\n");
	buf_free(&all);
	h_free(&h);
}

static void test_long_lines(void **state)
{
	(void)state;
	struct harness h;
	char *line;
	h_init(&h, false, true, false);
	h.out_read = h.out.len;
	login(&h);
	/* TRANSACTION: max_line (1024). One byte more is refused, the session goes on. */
	line = malloc(2000);
	memset(line, 'A', 1025);
	memcpy(line, "LIST ", 5);
	assert_string_equal(h_send_len(&h, line, 1025), "-ERR Line too long.\r\n");
	/* The rest of the same line arrives later: skipped silently. */
	assert_string_equal(h_send_len(&h, line + 5, 500), "");
	assert_string_equal(h_send(&h, "QUIT-NOT\r\nSTAT\r\n"), "+OK 0 0\r\n");
	/* A huge line in one piece (1 MiB cap of this harness) also costs one error. */
	free(line);
	line = malloc(600000);
	memset(line, 'B', 600000);
	memcpy(line + 599998, "\r\n", 2);
	assert_string_equal(h_send_len(&h, line, 600000), "-ERR Line too long.\r\n");
	assert_string_equal(h_send(&h, "NOOP\r\n"), "+OK\r\n");
	free(line);
	h_free(&h);
}

static void test_bad_commands_disconnect(void **state)
{
	(void)state;
	struct harness h;
	struct buf cmds;
	h_init(&h, false, true, false);
	h.out_read = h.out.len;
	buf_init(&cmds, 0);
	for (int i = 0; i < 30; i++)
		buf_append_str(&cmds, "BOGUS\r\n");
	const char *out = h_send(&h, buf_cstr(&cmds));
	/* 19 errors, then the 20th closes the connection; the rest never runs. */
	struct buf want;
	buf_init(&want, 0);
	for (int i = 0; i < 19; i++)
		buf_append_str(&want, "-ERR Unknown command.\r\n");
	buf_append_str(&want, "-ERR Too many bad commands.\r\n");
	assert_string_equal(out, buf_cstr(&want));
	assert_true(h.closed);
	buf_free(&want);
	buf_free(&cmds);
	h_free(&h);
}

static void test_100000_dele_bounded(void **state)
{
	(void)state;
	struct harness h;
	struct buf cmds;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	h.pressure_at = 64 * 1024;
	buf_init(&cmds, 0);
	for (int i = 0; i < 100000; i++)
		buf_append_str(&cmds, i == 0 ? "DELE 1\r\n" : "DELE 2\r\n");
	/* The client writes everything and does not read: the session stops producing
	 * once its output passes the low-water mark. */
	(void)h_send_len(&h, cmds.data, cmds.len);
	assert_true(h.max_pending < 64 * 1024 + 128);
	assert_true(h.in.len > 0);
	/* The client reads; the session goes on, each time bounded, until all ran. */
	size_t total = h.out.len;
	for (int round = 0; round < 10000 && h.in.len > 0; round++) {
		h_read_all(&h);
		assert_true(h.max_pending < 64 * 1024 + 128);
	}
	assert_int_equal(h.in.len, 0);
	(void)total;
	h.out_read = h.out.len;
	assert_string_equal(h_send(&h, "STAT\r\n"), "+OK 1 30\r\n");
	assert_string_equal(h_send(&h, "QUIT\r\n"), "+OK Logging out.\r\n");
	assert_int_equal(h_count_files(&h, "alice", "cur"), 1);
	assert_true(h_file_exists(&h, "alice", "cur", M3 ":2,"));
	buf_free(&cmds);
	h_free(&h);
}

static void test_big_retr_streams(void **state)
{
	(void)state;
	struct harness h;
	size_t body = 1 << 20;
	char *content = malloc(body + 1);
	/* 1 MiB of "..x\n" lines: every line stuffed, every LF expanded. */
	for (size_t i = 0; i < body; i += 4)
		memcpy(content + i, "..x\n", 4);
	content[body] = '\0';
	h_init(&h, false, true, false);
	free(h_add_message(&h, "alice", "new", "1700000009.M9P1.test", content));
	h.out_read = h.out.len;
	login(&h);
	h.pressure_at = 64 * 1024;
	(void)h_send(&h, "RETR 1\r\nNOOP\r\n");
	size_t prev = 0;
	for (int round = 0; round < 100000 && h.out.len != prev; round++) {
		prev = h.out.len;
		assert_true(h.max_pending < 64 * 1024 + 2 * 32768 + 16);
		h_read_all(&h);
	}
	/* Whole response: "+OK n octets", body*1.5 bytes, ".\r\n", then NOOP's +OK. */
	const char *tail = h.out.data + h.out.len - 8;
	assert_string_equal(tail, ".\r\n+OK\r\n");
	assert_int_equal(h.out.len, strlen("+OK tern POP3 ready.\r\n+OK\r\n+OK Logged in.\r\n") +
	                                strlen("+OK 1310720 octets\r\n") + body / 4 * 6 + 3 + 5);
	free(content);
	h_free(&h);
}

/* An IMAP client (the store API, as imapd uses it) and a delivery work on the mailbox
 * while the POP3 session is open: POP3 keeps its numbering and sizes, finds a message
 * whose flags IMAP changed, reports one IMAP expunged, does not see the new one; QUIT
 * merges its \Seen and deletion with IMAP's changes. */
static void test_imap_and_delivery_during_session(void **state)
{
	(void)state;
	struct harness h;
	struct store_mailbox *imap = NULL;
	struct maildir_delivery *d = NULL;
	struct store_sync_result res;
	const char *serr = NULL;
	char *err = NULL;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	login(&h);
	char *home = xasprintf("%s/alice", h.root);
	assert_int_equal(store_mailbox_open(home, &imap, &serr), STORE_OK);
	assert_int_equal(store_mailbox_count(imap), 3);
	/* IMAP: flag message 1 (its file is renamed), expunge message 3. */
	assert_int_equal(
	    store_mailbox_set_flags(imap, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0), STORE_OK);
	uint32_t uid3 = 3;
	assert_int_equal(store_mailbox_expunge(imap, &uid3, 1), STORE_OK);
	/* deliverd: a new message. */
	assert_int_equal(maildir_delivery_begin(home, &d, &err), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "Subject: new\r\n\r\nx\r\n", 19, &err),
	                 MAILDIR_OK);
	assert_int_equal(maildir_delivery_commit(d, &err), MAILDIR_OK);
	maildir_delivery_free(&d);

	assert_string_equal(h_send(&h, "STAT\r\n"), "+OK 3 102\r\n");
	assert_string_equal(h_send(&h, "RETR 1\r\n"),
	                    "+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n");
	assert_string_equal(h_send(&h, "RETR 3\r\n"), "-ERR Message 3 is no longer available.\r\n");
	assert_string_equal(h_send(&h, "LIST\r\n"), "+OK\r\n1 23\r\n2 49\r\n3 30\r\n.\r\n");
	assert_string_equal(h_send(&h, "DELE 2\r\nDELE 3\r\nQUIT\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n"
	                    "+OK Logging out.\r\n");

	/* What IMAP sees now: 1 with \Flagged and \Seen, 2 and 3 gone, the new one as 4. */
	assert_int_equal(store_mailbox_sync(imap, &res), STORE_OK);
	assert_int_equal(store_mailbox_count(imap), 2);
	const struct store_msg *m = store_mailbox_msg(imap, 1);
	assert_int_equal(m->uid, 1);
	assert_int_equal(m->flags, STORE_FLAG_FLAGGED | STORE_FLAG_SEEN);
	m = store_mailbox_msg(imap, 2);
	assert_int_equal(m->uid, 4);
	assert_int_equal(m->flags & STORE_FLAG_SEEN, 0);
	store_mailbox_close(&imap);
	free(home);
	h_free(&h);
}

/* QUIT's expunge keeps the Maildir++ quota file right (deliverd checks quota from it). */
static void test_quit_updates_maildirsize(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	add_three(&h);
	free(h_add_message(&h, "alice", ".", "maildirsize", "1000000S,0C\n89 3\n"));
	h.out_read = h.out.len;
	login(&h);
	assert_string_equal(h_send(&h, "DELE 1\r\nDELE 3\r\nQUIT\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n"
	                    "+OK Logging out.\r\n");
	char *path = xasprintf("%s/alice/maildirsize", h.root);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char text[256] = {0};
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* Message 1 is 20 bytes on disk, message 3 is 25: one line for the expunge. */
	assert_string_equal(text, "1000000S,0C\n89 3\n-45 -2\n");
	free(path);
	h_free(&h);
}

/* Dovecot's %08Xu%08Xv from the index, seeded by a dovecot-uidlist left by Dovecot:
 * a client migrated from Dovecot sees the same UIDLs and downloads nothing again. */
static void test_uidl_dovecot_format(void **state)
{
	(void)state;
	struct harness h, h2;
	h_init(&h, false, true, false);
	add_three(&h);
	free(h_add_message(&h, "alice", ".", "dovecot-uidlist",
	                   "3 V1234567890 N10 G0123456789abcdef0123456789abcdef\n"
	                   "5 :" M1 "\n7 :" M2 ":2,F\n"));
	h.set.uidl_format = MAILDROP_UIDL_UID_VALIDITY;
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	login(&h2);
	/* 1234567890 = 0x499602D2; the message Dovecot did not know gets UID N = 10. */
	assert_string_equal(h_send(&h2, "UIDL\r\n"), "+OK\r\n1 00000005499602D2\r\n"
	                                             "2 00000007499602D2\r\n"
	                                             "3 0000000A499602D2\r\n.\r\n");
	assert_string_equal(h_send(&h2, "DELE 1\r\nQUIT\r\n"),
	                    "+OK Marked to be deleted.\r\n+OK Logging out.\r\n");
	h_free(&h2);
	/* Stable across sessions: the survivors keep their UIDLs. */
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	login(&h2);
	assert_string_equal(h_send(&h2, "UIDL\r\n"), "+OK\r\n1 00000007499602D2\r\n"
	                                             "2 0000000A499602D2\r\n.\r\n");
	h_free(&h2);
	h_free(&h);
}

/* The client leaves while its maildrop is being opened in the thread pool: the open
 * finishes, the lock is released, nothing is applied, and the next login works. */
static void test_drop_while_opening(void **state)
{
	(void)state;
	struct harness h, h2;
	h_init(&h, false, true, false);
	add_three(&h);
	h.out_read = h.out.len;
	h.hold_blocking = true;
	assert_string_equal(h_send(&h, "USER alice\r\nPASS secret\r\nSTAT\r\n"), "+OK\r\n");
	assert_true(h_job_pending());
	h_drop(&h);
	h_run_job();
	h_init_shared(&h2, &h);
	h2.out_read = h2.out.len;
	login(&h2);
	assert_string_equal(h_send(&h2, "STAT\r\n"), "+OK 3 102\r\n");
	h_free(&h2);
	h_free(&h);
}

static void test_timeout(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, false, true, false);
	h.out_read = h.out.len;
	pop3_session_timeout(h.s);
	assert_string_equal(h_send(&h, ""), "-ERR Disconnected for inactivity.\r\n");
	assert_true(h.closed);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting_and_capa_loopback),
	    cmocka_unit_test(test_capa_insecure_remote),
	    cmocka_unit_test(test_capa_tls_and_transaction),
	    cmocka_unit_test(test_commands_before_auth),
	    cmocka_unit_test(test_transaction_commands),
	    cmocka_unit_test(test_rset_after_dele),
	    cmocka_unit_test(test_dropped_connection_applies_nothing),
	    cmocka_unit_test(test_quit_deletes_and_new_mail_waits),
	    cmocka_unit_test(test_in_use),
	    cmocka_unit_test(test_auth_failures_delayed),
	    cmocka_unit_test(test_authd_down),
	    cmocka_unit_test(test_sasl),
	    cmocka_unit_test(test_stls_discards_plaintext),
	    cmocka_unit_test(test_pipelined_session_one_packet),
	    cmocka_unit_test(test_trickle_one_byte),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_bad_commands_disconnect),
	    cmocka_unit_test(test_100000_dele_bounded),
	    cmocka_unit_test(test_big_retr_streams),
	    cmocka_unit_test(test_uidl_dovecot_format),
	    cmocka_unit_test(test_quit_updates_maildirsize),
	    cmocka_unit_test(test_drop_while_opening),
	    cmocka_unit_test(test_imap_and_delivery_during_session),
	    cmocka_unit_test(test_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
