/*
 * LMTP protocol transcripts: client bytes in, server bytes out, against a backend whose
 * mailboxes are a table and whose "Maildir" is memory. Each transcript also runs fed one
 * byte at a time, which must give the same replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aliases.h"
#include "base/buf.h"
#include "lmtp_session.h"
#include "recipient.h"

struct test_user {
	const char *key;
	const char *home;
	uint64_t quota;
};

static const struct test_user users[] = {
    {"alice@example.test", "/m/alice", 0},   {"bob@example.test", "/m/bob", 0},
    {"full@example.test", "/m/full", 0},     /* its disk is full */
    {"small@example.test", "/m/small", 50},  /* 50-byte quota */
    {"broken@example.test", "/m/broken", 0}, /* delivery fails temporarily */
};

struct test_backend {
	struct lmtp_session *s;
	struct buf out;
	struct buf spool;
	bool spool_open;
	bool closed;
	bool defer; /* keep deliveries for finish_deliveries() */
	struct lmtp_target *pending;
	size_t n_pending;
	struct buf delivered; /* "home[/.detail]:" prefix+body "\n--\n" per copy */
	unsigned deliveries;
};

static void be_write(void *ctx, const void *data, size_t len)
{
	struct test_backend *t = ctx;
	buf_append(&t->out, data, len);
}

static void be_close(void *ctx)
{
	((struct test_backend *)ctx)->closed = true;
}

static void be_resume(void *ctx)
{
	(void)ctx;
}

static void be_lookup(void *ctx, struct lmtp_session *s, const char *key)
{
	(void)ctx;
	if (strncmp(key, "tempfail@", 9) == 0) {
		lmtp_session_lookup_done(s, LMTP_LOOKUP_TEMPFAIL, NULL, 0, 0);
		return;
	}
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (strcmp(users[i].key, key) == 0) {
			lmtp_session_lookup_done(s, LMTP_LOOKUP_FOUND, users[i].home,
			                         users[i].quota, 0);
			return;
		}
	}
	lmtp_session_lookup_done(s, LMTP_LOOKUP_NOTFOUND, NULL, 0, 0);
}

static void be_lookup_abort(void *ctx, struct lmtp_session *s)
{
	(void)ctx;
	(void)s;
}

static int be_spool_begin(void *ctx, char **error_r)
{
	(void)error_r;
	struct test_backend *t = ctx;
	assert_false(t->spool_open);
	buf_reset(&t->spool);
	t->spool_open = true;
	return 0;
}

static int be_spool_write(void *ctx, const void *data, size_t len, char **error_r)
{
	(void)error_r;
	struct test_backend *t = ctx;
	assert_true(t->spool_open);
	return buf_append(&t->spool, data, len);
}

static void be_spool_discard(void *ctx)
{
	struct test_backend *t = ctx;
	t->spool_open = false;
	buf_reset(&t->spool);
}

static void deliver_one(struct test_backend *t, struct lmtp_session *s, struct lmtp_target *target,
                        size_t index)
{
	enum lmtp_delivery_status st = LMTP_DELIVERED;
	if (strcmp(target->home, "/m/full") == 0)
		st = LMTP_DELIVERY_NOSPACE;
	else if (strcmp(target->home, "/m/broken") == 0)
		st = LMTP_DELIVERY_TEMPFAIL;
	else if (target->quota_bytes != 0 &&
	         strlen(target->prefix) + t->spool.len > target->quota_bytes)
		st = LMTP_DELIVERY_OVERQUOTA;
	if (st == LMTP_DELIVERED) {
		buf_printf(&t->delivered, "%s%s%s:%s%s\n--\n", target->home,
		           target->detail ? "/." : "", target->detail ? target->detail : "",
		           target->prefix, buf_cstr(&t->spool));
		t->deliveries++;
	}
	lmtp_session_delivery_done(s, index, st, target->detail ? target->detail : "INBOX");
}

static void be_deliver(void *ctx, struct lmtp_session *s, struct lmtp_target *targets, size_t n)
{
	struct test_backend *t = ctx;
	assert_true(t->spool_open);
	if (t->defer) {
		t->pending = targets;
		t->n_pending = n;
		return;
	}
	/* The spool is closed by the session's reset after the last result. */
	for (size_t i = 0; i < n; i++)
		deliver_one(t, s, &targets[i], i);
	t->spool_open = false;
}

static struct lmtp_backend backend_ops = {
    .write = be_write,
    .close = be_close,
    .resume = be_resume,
    .lookup = be_lookup,
    .lookup_abort = be_lookup_abort,
    .spool_begin = be_spool_begin,
    .spool_write = be_spool_write,
    .spool_discard = be_spool_discard,
    .deliver = be_deliver,
};

static struct recipient_maps maps;
static const char *const local_domains[] = {"example.test"};

static int setup_maps(void **state)
{
	(void)state;
	char *err = NULL;
	memset(&maps, 0, sizeof(maps));
	assert_int_equal(alias_map_load_string("virtual",
	                                       "team@example.test: alice, bob@example.test\n"
	                                       "twice@example.test: alice, alice@example.test\n"
	                                       "halfbad@example.test: alice, ghost@example.test\n"
	                                       "@catch.test: bob@example.test\n",
	                                       ALIAS_VIRTUAL, &maps.virtual_map, &err),
	                 0);
	assert_int_equal(alias_map_load_string("aliases", "postmaster: alice\n", ALIAS_LOCAL,
	                                       &maps.local_map, &err),
	                 0);
	maps.domains = local_domains;
	maps.n_domains = 1;
	maps.delimiter = '+';
	return 0;
}

static int teardown_maps(void **state)
{
	(void)state;
	alias_map_free(&maps.virtual_map);
	alias_map_free(&maps.local_map);
	return 0;
}

static const struct lmtp_limits limits = {
    .max_line = 200,
    .max_message = 64,
    .max_recipients = 3,
    .max_errors = 20,
};

static void backend_init(struct test_backend *t)
{
	memset(t, 0, sizeof(*t));
	buf_init(&t->out, 0);
	buf_init(&t->spool, 0);
	buf_init(&t->delivered, 0);
	backend_ops.ctx = t;
	t->s = lmtp_session_new(&backend_ops, &limits, "mx.example.test", "unix");
	lmtp_session_set_maps(t->s, &maps);
}

static void backend_free(struct test_backend *t)
{
	if (t->s != NULL)
		lmtp_session_close(t->s);
	assert_false(t->spool_open);
	buf_free(&t->out);
	buf_free(&t->spool);
	buf_free(&t->delivered);
}

/* Feeds in to a fresh session in `step`-byte pieces; returns the server's output. */
static void feed(struct test_backend *t, const char *in, size_t step)
{
	struct buf pending;
	buf_init(&pending, 0);
	size_t len = strlen(in), fed = 0;
	while (fed < len) {
		size_t n = step == 0 || step > len - fed ? len - fed : step;
		buf_append(&pending, in + fed, n);
		fed += n;
		lmtp_session_input(t->s, &pending);
	}
	buf_free(&pending);
}

static const char *const lhlo_reply = "220 mx.example.test LMTP tern ready\r\n"
                                      "250-mx.example.test\r\n"
                                      "250-PIPELINING\r\n"
                                      "250-ENHANCEDSTATUSCODES\r\n"
                                      "250-SIZE 64\r\n"
                                      "250-8BITMIME\r\n"
                                      "250-SMTPUTF8\r\n"
                                      "250-CHUNKING\r\n"
                                      "250 DSN\r\n";

/* Replaces the queue id (it changes) by "QID" so transcripts compare. */
static char *mask_qid(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	for (const char *p = s; *p != '\0';) {
		const char *gt = strstr(p, "> ");
		const char *nl = strchr(p, '\n');
		if (gt != NULL && nl != NULL && gt < nl && strncmp(p, "250 2.0.0 <", 11) != 0 &&
		    strncmp(p, "45", 2) != 0 && strncmp(p, "55", 2) != 0) {
			gt = NULL;
		}
		if (gt != NULL && nl != NULL && gt < nl && p[3] == ' ' && p[4] >= '2' &&
		    p[5] == '.' && strchr(gt + 2, ' ') != NULL && strchr(gt + 2, ' ') < nl &&
		    strncmp(p + 4, "5.1.1", 5) != 0) {
			const char *sp = strchr(gt + 2, ' ');
			buf_append(&b, p, (size_t)(gt + 2 - p));
			buf_append_str(&b, "QID");
			buf_append(&b, sp, (size_t)(nl + 1 - sp));
		} else {
			size_t n = nl != NULL ? (size_t)(nl + 1 - p) : strlen(p);
			buf_append(&b, p, n);
		}
		p += nl != NULL ? (size_t)(nl + 1 - p) : strlen(p);
	}
	return buf_steal(&b);
}

struct transcript {
	const char *name;
	const char *in;
	const char *out; /* after the LHLO reply */
	const char *delivered;
};

static const struct transcript transcripts[] = {
    {"multi-recipient with mixed results",
     "MAIL FROM:<s@x.test> SIZE=10 BODY=8BITMIME\r\n"
     "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test\r\n"
     "RCPT TO:<nobody@example.test>\r\n"
     "RCPT TO:<tempfail@example.test>\r\n"
     "RCPT TO:<full@example.test>\r\n"
     "RCPT TO:<Bob@Example.TEST>\r\n"
     "DATA\r\nHi\r\n..dot\r\n.\r\nQUIT\r\n",
     "250 2.1.0 Ok\r\n"
     "250 2.1.5 Ok\r\n"
     "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
     "451 4.3.0 <tempfail@example.test>: Temporary lookup failure\r\n"
     "250 2.1.5 Ok\r\n"
     "250 2.1.5 Ok\r\n"
     "354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n"
     "452 4.3.1 <full@example.test> QID Insufficient system storage\r\n"
     "250 2.0.0 <Bob@example.test> QID Saved\r\n"
     "221 2.0.0 Bye\r\n",
     "/m/alice:Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\nHi\r\n.dot\r\n"
     "\n--\n"
     "/m/bob:Return-Path: <s@x.test>\r\nDelivered-To: Bob@example.test\r\nHi\r\n.dot\r\n"
     "\n--\n"},
    {"aliases, duplicates and +detail",
     "MAIL FROM:<>\r\n"
     "RCPT TO:<team@example.test>\r\n"
     "RCPT TO:<alice@example.test>\r\n"
     "RCPT TO:<alice@example.test>\r\n"
     "DATA\r\nx\r\n.\r\n"
     "MAIL FROM:<>\r\nRCPT TO:<alice+Lists@example.test>\r\nRCPT TO:<postmaster@example.test>\r\n"
     "RCPT TO:<bob+.x@example.test>\r\nRCPT TO:<who@catch.test>\r\nDATA\r\ny\r\n.\r\n"
     "MAIL FROM:<>\r\nRCPT TO:<who@catch.test>\r\nRCPT TO:<bob@example.test>\r\n"
     "DATA\r\nw\r\n.\r\n",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
     "354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <team@example.test> QID Saved\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n"
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
     "452 4.5.3 Error: too many recipients\r\n"
     "354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <alice+Lists@example.test> QID Saved\r\n"
     "250 2.0.0 <postmaster@example.test> QID Saved\r\n"
     "250 2.0.0 <bob+.x@example.test> QID Saved\r\n"
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
     "354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <who@catch.test> QID Saved\r\n"
     "250 2.0.0 <bob@example.test> QID Saved\r\n",
     "/m/alice:Return-Path: <>\r\nDelivered-To: alice@example.test\r\nx\r\n\n--\n"
     "/m/bob:Return-Path: <>\r\nDelivered-To: bob@example.test\r\nx\r\n\n--\n"
     "/m/alice/.Lists:Return-Path: <>\r\nDelivered-To: alice+Lists@example.test\r\ny\r\n\n--\n"
     "/m/alice:Return-Path: <>\r\nDelivered-To: alice@example.test\r\ny\r\n\n--\n"
     "/m/bob:Return-Path: <>\r\nDelivered-To: bob+.x@example.test\r\ny\r\n\n--\n"
     "/m/bob:Return-Path: <>\r\nDelivered-To: bob@example.test\r\nw\r\n\n--\n"},
    {"alias with one missing target, alias to the same mailbox twice",
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<halfbad@example.test>\r\nRCPT TO:<twice@example.test>\r\n"
     "DATA\r\nz\r\n.\r\n",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
     "354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <halfbad@example.test> QID Saved\r\n"
     "250 2.0.0 <twice@example.test> QID Saved\r\n",
     "/m/alice:Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\nz\r\n\n--\n"},
    {"size cap: exactly at the cap, then one byte over",
     /* 62 + CRLF = 64 bytes */
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
     "12345678901234567890123456789012345678901234567890123456789012\r\n.\r\n"
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
     "DATA\r\n"
     "123456789012345678901234567890123456789012345678901234567890123\r\n.\r\n"
     "MAIL FROM:<s@x.test> SIZE=65\r\nNOOP\r\n",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n"
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
     "552 5.3.4 Message too big\r\n552 5.3.4 Message too big\r\n"
     "552 5.3.4 Message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n",
     "/m/alice:Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\n"
     "12345678901234567890123456789012345678901234567890123456789012\r\n\n--\n"},
    {"bare LF in data is refused and cannot end it",
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
     "a\n.\nRCPT TO:<bob@example.test>\r\n.\r\nNOOP\r\n",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
     "550 5.6.0 Bare LF or CR in message data refused\r\n250 2.0.0 Ok\r\n",
     ""},
    {"BDAT in several chunks, then DATA refused inside BDAT",
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
     "BDAT 4\r\nab\r\nBDAT 5\r\n.\r\n\r\nBDAT 0 LAST\r\n"
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 1\r\nxDATA\r\n"
     "BDAT 1 LAST\r\ny",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
     "250 2.0.0 4 octets received\r\n250 2.0.0 5 octets received\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n250 2.0.0 <bob@example.test> QID Saved\r\n"
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 1 octets received\r\n"
     "503 5.5.1 Error: BDAT sequence in progress\r\n"
     "250 2.0.0 <alice@example.test> QID Saved\r\n",
     "/m/alice:Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\nab\r\n.\r\n\r\n"
     "\n--\n"
     "/m/bob:Return-Path: <s@x.test>\r\nDelivered-To: bob@example.test\r\nab\r\n.\r\n\r\n"
     "\n--\n"
     "/m/alice:Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\nxy\n--\n"},
    {"BDAT too big, BDAT without transaction, BDAT framing lost",
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\n"
     "BDAT 65\r\n12345678901234567890123456789012345678901234567890123456789012345"
     "BDAT 2 LAST\r\nabRSET\r\nBDAT x\r\nNOOP\r\n",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n552 5.3.4 Message too big\r\n"
     "503 5.5.1 Error: no valid transaction for BDAT\r\n250 2.0.0 Ok\r\n"
     "501 5.5.4 Syntax: BDAT size [LAST]\r\n421 4.7.0 mx.example.test Closing: BDAT framing "
     "lost\r\n",
     ""},
    {"over quota at RCPT (SIZE) and at delivery",
     "MAIL FROM:<s@x.test> SIZE=60\r\nRCPT TO:<small@example.test>\r\nRSET\r\n"
     "MAIL FROM:<s@x.test>\r\nRCPT TO:<small@example.test>\r\nDATA\r\n"
     "12345678901234567890123456789012345678901234567890123456\r\n.\r\n",
     "250 2.1.0 Ok\r\n552 5.2.2 <small@example.test>: Mailbox full\r\n250 2.0.0 Ok\r\n"
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
     "552 5.2.2 <small@example.test> QID Mailbox full\r\n",
     ""},
    {"sequence and syntax errors",
     "RCPT TO:<alice@example.test>\r\nDATA\r\nMAIL FROM:<s@x.test>\r\nMAIL FROM:<s@x.test>\r\n"
     "DATA\r\nRCPT TO:<alice>\r\nRCPT TO:alice@example.test\r\n"
     "RCPT TO:<alice@example.test> FOO=bar\r\nRCPT TO:<alice@example.test> NOTIFY=NEVER,DELAY\r\n"
     "EHLO x\r\nHELP\r\nMAIL FROM:<s@x.test> BODY=BINARYMIME\r\nRSET\r\n"
     "MAIL FROM:<s@x.test> ENVID=a=b\r\nMAIL FROM:<s@x.test> RET=FULL ENVID=ab+2B SMTPUTF8\r\n"
     "RCPT TO:<j\xc3\xb6rg@example.test>\r\nVRFY x\r\nNO\nOP\r\n",
     "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n"
     "250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n"
     "503 5.5.1 Error: need RCPT command\r\n501 5.1.3 Domain name required\r\n"
     "501 5.5.4 Syntax: angle brackets required\r\n555 5.5.4 Unsupported parameter\r\n"
     "501 5.5.4 Bad NOTIFY parameter\r\n500 5.5.1 Error: this is LMTP, use LHLO\r\n"
     "500 5.5.2 Error: command not recognized\r\n503 5.5.1 Error: nested MAIL command\r\n"
     "250 2.0.0 Ok\r\n501 5.5.4 Bad ENVID parameter\r\n250 2.1.0 Ok\r\n"
     "550 5.1.1 <j\xc3\xb6rg@example.test>: Recipient address rejected: User unknown\r\n"
     "252 2.5.2 Send some mail, I'll try my best\r\n"
     "500 5.5.2 Error: bare LF or CR in command line\r\n"
     "500 5.5.2 Error: command not recognized\r\n",
     ""},
};

static void run_transcript(const struct transcript *tc, size_t step)
{
	struct test_backend t;
	backend_init(&t);
	lmtp_session_start(t.s);
	feed(&t, "LHLO client.example.test\r\n", 0);
	feed(&t, tc->in, step);
	char *got = mask_qid(buf_cstr(&t.out));
	size_t hl = strlen(lhlo_reply);
	if (strncmp(got, lhlo_reply, hl) != 0 || strcmp(got + hl, tc->out) != 0)
		fail_msg("%s (step %zu):\n--- got:\n%s\n--- want:\n%s", tc->name, step, got + hl,
		         tc->out);
	if (strcmp(buf_cstr(&t.delivered), tc->delivered) != 0)
		fail_msg("%s (step %zu): delivered:\n%s\n--- want:\n%s", tc->name, step,
		         buf_cstr(&t.delivered), tc->delivered);
	free(got);
	backend_free(&t);
}

static void test_transcripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(transcripts[0]); i++) {
		run_transcript(&transcripts[i], 0);
		run_transcript(&transcripts[i], 1);
		run_transcript(&transcripts[i], 7);
	}
}

static void test_greeting_and_limits(void **state)
{
	(void)state;
	struct test_backend t;
	backend_init(&t);
	lmtp_session_start(t.s);
	feed(&t, "MAIL FROM:<a@b.test>\r\n", 0);
	assert_non_null(strstr(buf_cstr(&t.out), "503 5.5.1 Error: send LHLO first"));
	/* A too-long command line is refused and its rest skipped. */
	char line[400];
	memset(line, 'x', sizeof(line));
	memcpy(line + sizeof(line) - 3, "\r\n", 3);
	feed(&t, line, 0);
	feed(&t, "LHLO x\r\nNOOP\r\n", 0);
	assert_non_null(strstr(buf_cstr(&t.out), "500 5.5.2 Error: line too long\r\n250-"));
	assert_non_null(strstr(buf_cstr(&t.out), "250 DSN\r\n250 2.0.0 Ok\r\n"));
	/* Too many errors close the session. */
	for (int i = 0; i < 20 && !t.closed; i++)
		feed(&t, "BOGUS\r\n", 0);
	assert_true(t.closed);
	assert_non_null(strstr(buf_cstr(&t.out), "421 4.7.0 mx.example.test Too many errors"));
	backend_free(&t);
}

/* Replies after the data go out in RCPT order, each only once its mailboxes answered. */
static void test_reply_order_and_orphan(void **state)
{
	(void)state;
	struct test_backend t;
	backend_init(&t);
	t.defer = true;
	feed(&t,
	     "LHLO x\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\n"
	     "RCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\n",
	     0);
	assert_true(lmtp_session_busy(t.s));
	assert_int_equal(t.n_pending, 2);
	buf_reset(&t.out);
	/* bob finishes first: nothing may be sent until alice is done. */
	lmtp_session_delivery_done(t.s, 1, LMTP_DELIVERED, "INBOX");
	assert_int_equal(t.out.len, 0);
	lmtp_session_delivery_done(t.s, 0, LMTP_DELIVERY_TEMPFAIL, "INBOX");
	char *got = mask_qid(buf_cstr(&t.out));
	assert_string_equal(got, "451 4.3.0 <alice@example.test> QID Temporary local problem, "
	                         "try again later\r\n250 2.0.0 <bob@example.test> QID Saved\r\n");
	free(got);
	assert_false(lmtp_session_busy(t.s));
	t.spool_open = false;
	/* The pipelined NOOP waits in the caller's buffer; a new one is answered. */
	buf_reset(&t.out);
	feed(&t, "NOOP\r\n", 0);
	assert_string_equal(buf_cstr(&t.out), "250 2.0.0 Ok\r\n");

	/* The client goes away while a delivery runs: the session lives until it ends. */
	feed(&t, "MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\n", 0);
	assert_true(lmtp_session_busy(t.s));
	struct lmtp_session *s = t.s;
	lmtp_session_close(s);
	t.s = NULL;
	buf_reset(&t.out);
	lmtp_session_delivery_done(s, 0, LMTP_DELIVERED, "INBOX");
	assert_int_equal(t.out.len, 0);
	t.spool_open = false;
	backend_free(&t);
}

/* A client that disconnects mid-DATA: the spool is discarded, nothing delivered. */
static void test_disconnect_mid_data(void **state)
{
	(void)state;
	struct test_backend t;
	backend_init(&t);
	feed(&t, "LHLO x\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\npart",
	     0);
	assert_true(t.spool_open);
	lmtp_session_close(t.s);
	t.s = NULL;
	assert_false(t.spool_open);
	assert_int_equal(t.deliveries, 0);
	backend_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcripts),
	    cmocka_unit_test(test_greeting_and_limits),
	    cmocka_unit_test(test_reply_order_and_orphan),
	    cmocka_unit_test(test_disconnect_mid_data),
	};
	return cmocka_run_group_tests(tests, setup_maps, teardown_maps);
}
