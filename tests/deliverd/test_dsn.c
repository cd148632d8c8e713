/*
 * DSN generation: who gets one (null sender, NOTIFY, DSN of a DSN), and the generated
 * multipart/report parsed back by Python's email package, an independent MIME parser:
 * three parts, the delivery-status fields per recipient, the original headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "dsn.h"
#include "queue.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-dsn-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return 0;
}

static void test_wanted(void **state)
{
	(void)state;
	struct queue_msg m = {0};
	struct queue_rcpt r = {0};
	m.env.sender = "alice@alice.test";
	assert_true(dsn_wanted(&m, &r, DSN_FAILED));
	assert_true(dsn_wanted(&m, &r, DSN_DELAYED));
	r.notify = QUEUE_NOTIFY_NEVER;
	assert_false(dsn_wanted(&m, &r, DSN_FAILED));
	r.notify = QUEUE_NOTIFY_SUCCESS;
	assert_false(dsn_wanted(&m, &r, DSN_FAILED));
	r.notify = QUEUE_NOTIFY_FAILURE;
	assert_true(dsn_wanted(&m, &r, DSN_FAILED));
	assert_false(dsn_wanted(&m, &r, DSN_DELAYED));
	r.notify = 0;
	/* No bounce for the null sender, and none for a DSN (no loops). */
	m.env.sender = "";
	assert_false(dsn_wanted(&m, &r, DSN_FAILED));
	m.env.sender = "alice@alice.test";
	m.env.is_dsn = true;
	assert_false(dsn_wanted(&m, &r, DSN_FAILED));
}

static const char original[] = "Received: from a by b\nFrom: Alice <alice@alice.test>\n"
                               "To: bob@bob.test\nSubject: Hello \xc3\xa9t\xc3\xa9\n\n"
                               "The body must not be returned.\n";

static int run_python(const char *path, const char *script, const char *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", "-c", script, path, arg, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char check_script[] =
    "import sys, email, email.policy\n"
    "m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.compat32)\n"
    "kind = sys.argv[2]\n"
    "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
    "assert m.get_param('report-type') == 'delivery-status'\n"
    "assert m['Auto-Submitted'] == 'auto-replied'\n"
    "assert m['To'] == '<alice@alice.test>'\n"
    "assert m['From'].startswith('MAILER-DAEMON@mx.alice.test')\n"
    "parts = m.get_payload()\n"
    "assert len(parts) == 3, len(parts)\n"
    "assert parts[0].get_content_type() == 'text/plain'\n"
    "human = parts[0].get_payload()\n"
    "assert '<bob@bob.test>: host mx.bob.test said: 550 5.1.1 no such user' in human, human\n"
    "assert parts[1].get_content_type() == 'message/delivery-status'\n"
    "groups = parts[1].get_payload()\n"
    "assert len(groups) == 3, len(groups)\n"
    "assert groups[0]['Reporting-MTA'] == 'dns; mx.alice.test'\n"
    "assert groups[0]['Original-Envelope-Id'] == 'ENV1'\n"
    "assert groups[0]['Arrival-Date']\n"
    "g = groups[1]\n"
    "assert g['Final-Recipient'] == 'rfc822; bob@bob.test', g['Final-Recipient']\n"
    "assert g['Original-Recipient'] == 'rfc822;bob@bob.test'\n"
    "if kind == 'failed':\n"
    "    assert g['Action'] == 'failed' and g['Status'] == '5.1.1', (g['Action'], g['Status'])\n"
    "    assert g['Diagnostic-Code'] == 'smtp; host mx.bob.test said: 550 5.1.1 no such user'\n"
    "    assert groups[2]['Status'] == '4.4.7' and groups[2]['Action'] == 'failed'\n"
    "    assert m['Subject'] == 'Undelivered Mail Returned to Sender'\n"
    "else:\n"
    "    assert g['Action'] == 'delayed' and g['Will-Retry-Until'], g['Action']\n"
    "    assert 'WARNING ONLY' in human\n"
    "assert parts[2].get_content_type() == 'text/rfc822-headers'\n"
    "hdrs = parts[2].get_payload()\n"
    "assert 'Subject: Hello' in hdrs and 'Received: from a by b' in hdrs, hdrs\n"
    "assert 'must not be returned' not in hdrs\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "assert b'\\r\\n' in raw and b'\\n' not in raw.replace(b'\\r\\n', b'')\n"
    "print('dsn ok')\n";

static void build_and_check(enum dsn_kind kind)
{
	struct queue *q;
	char *err = NULL;
	assert_int_equal(queue_open(root, &q, &err), 0);
	struct queue_envelope env = {0};
	env.sender = xstrdup("alice@alice.test");
	env.envid = xstrdup("ENV1");
	env.arrival_ms = 1700000000000ULL;
	queue_envelope_add_rcpt(&env, "bob@bob.test", "rfc822;bob@bob.test", 0);
	queue_envelope_add_rcpt(&env, "carol@bob.test", NULL, 0);
	char qid[QUEUE_ID_LEN + 1];
	struct queue_writer *w;
	assert_int_equal(queue_writer_begin(q, &env, &w, &err), 0);
	assert_int_equal(queue_writer_write(w, original, sizeof(original) - 1, &err), 0);
	assert_int_equal(queue_writer_commit(w, qid, &err), 0);
	queue_envelope_free(&env);

	struct queue_msg *m;
	assert_int_equal(queue_load(q, qid, &m, &err), 0);
	m->env.rcpts[0].dsn = xstrdup(kind == DSN_FAILED ? "5.1.1" : "4.4.1");
	m->env.rcpts[0].diag = xstrdup("host mx.bob.test said: 550 5.1.1 no such user");
	m->env.rcpts[1].dsn = xstrdup("4.4.7");
	m->env.rcpts[1].diag = xstrdup("delivery time expired\r\nInjected: header");
	const struct queue_rcpt *rs[] = {&m->env.rcpts[0], &m->env.rcpts[1]};
	struct dsn_params p = {.reporting_mta = "mx.alice.test",
	                       .kind = kind,
	                       .now_ms = 1700000100000ULL,
	                       .retry_until_ms = 1700400000000ULL,
	                       .boundary_seed = "0123456789ABCDEF"};
	char dqid[QUEUE_ID_LEN + 1];
	assert_int_equal(dsn_queue(q, &p, m, rs, 2, dqid, &err), 0);

	/* The DSN is queued from the null sender to the original sender. */
	struct queue_msg *d;
	assert_int_equal(queue_load(q, dqid, &d, &err), 0);
	assert_string_equal(d->env.sender, "");
	assert_true(d->env.is_dsn);
	assert_int_equal(d->env.n_rcpts, 1);
	assert_string_equal(d->env.rcpts[0].address, "alice@alice.test");
	assert_true(d->env.body_8bit); /* the copied Subject is 8-bit */
	/* A DSN never produces another one. */
	assert_false(dsn_wanted(d, &d->env.rcpts[0], DSN_FAILED));

	int fd = queue_open_body(q, d, &err);
	char *text = xcalloc(1, d->body_size + 1);
	assert_int_equal(pread(fd, text, d->body_size, (off_t)d->body_offset),
	                 (ssize_t)d->body_size);
	close(fd);
	/* The CRLF smuggled in the diagnostic did not become a header line. */
	assert_null(strstr(text, "\nInjected: header"));
	char *path = xasprintf("%s/dsn.eml", root);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, d->body_size, f), d->body_size);
	fclose(f);
	assert_int_equal(run_python(path, check_script, kind == DSN_FAILED ? "failed" : "delayed"),
	                 0);
	free(path);
	free(text);
	queue_msg_free(&d);
	queue_msg_free(&m);
	assert_int_equal(queue_remove(q, qid, &err), 0);
	assert_int_equal(queue_remove(q, dqid, &err), 0);
	queue_close(&q);
}

static void test_bounce(void **state)
{
	(void)state;
	build_and_check(DSN_FAILED);
}

static void test_delay_warning(void **state)
{
	(void)state;
	build_and_check(DSN_DELAYED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wanted),
	    cmocka_unit_test(test_bounce),
	    cmocka_unit_test(test_delay_warning),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
