/*
 * The queue file format and its durability rules: round trip of envelope, body and state;
 * a message stored once for many recipients; leftovers in tmp/ (a crash mid-write) removed
 * and never listed; a torn or tampered file in msg/ refused and quarantined; hold, flush,
 * delete; hostile ids refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
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
#include "queue.h"

static char root[256];

static void run_rm(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", path, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-queue-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	run_rm(root);
	return 0;
}

static char *path_in(const char *sub, const char *name)
{
	return xasprintf("%s/%s/%s", root, sub, name);
}

static struct queue *open_queue(void)
{
	struct queue *q = NULL;
	char *err = NULL;
	assert_int_equal(queue_open(root, &q, &err), 0);
	return q;
}

static void make_env(struct queue_envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->sender = xstrdup("alice@alice.test");
	env->envid = xstrdup("abc+2Bdef");
	env->ret = QUEUE_RET_HDRS;
	env->smtputf8 = true;
	env->body_8bit = true;
	env->arrival_ms = 1700000000123ULL;
	queue_envelope_add_rcpt(env, "bob@bob.test", "rfc822;bob@bob.test",
	                        QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
	/* Spaces, '+', '=' and 8-bit bytes survive the xtext encoding. */
	queue_envelope_add_rcpt(env,
	                        "\"odd name\"+x=y@b\xc3\xb6"
	                        "b.test",
	                        NULL, 0);
	queue_envelope_add_rcpt(env, "carol@bob.test", NULL, QUEUE_NOTIFY_NEVER);
}

static const char body[] = "Received: from x\r\nSubject: hi\r\n\r\nline\r\n.dot\r\n";

static void add_message(struct queue *q, char *qid)
{
	struct queue_envelope env;
	make_env(&env);
	struct queue_writer *w;
	char *err = NULL;
	assert_int_equal(queue_writer_begin(q, &env, &w, &err), 0);
	/* In pieces, as the body arrives. */
	assert_int_equal(queue_writer_write(w, body, 10, &err), 0);
	assert_int_equal(queue_writer_write(w, body + 10, sizeof(body) - 1 - 10, &err), 0);
	assert_int_equal(queue_writer_commit(w, qid, &err), 0);
	queue_envelope_free(&env);
}

static char *read_body(struct queue *q, const struct queue_msg *m)
{
	char *err = NULL;
	int fd = queue_open_body(q, m, &err);
	assert_true(fd >= 0);
	char *b = xcalloc(1, m->body_size + 1);
	assert_int_equal(pread(fd, b, m->body_size, (off_t)m->body_offset), (ssize_t)m->body_size);
	/* Nothing after the body. */
	char extra;
	assert_int_equal(pread(fd, &extra, 1, (off_t)(m->body_offset + m->body_size)), 0);
	close(fd);
	return b;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct queue *q = open_queue();
	char qid[QUEUE_ID_LEN + 1];
	add_message(q, qid);
	assert_true(queue_id_valid(qid));

	struct queue_msg *m = NULL;
	char *err = NULL;
	assert_int_equal(queue_load(q, qid, &m, &err), 0);
	assert_string_equal(m->env.sender, "alice@alice.test");
	assert_string_equal(m->env.envid, "abc+2Bdef");
	assert_int_equal(m->env.ret, QUEUE_RET_HDRS);
	assert_true(m->env.smtputf8);
	assert_true(m->env.body_8bit);
	assert_false(m->env.is_dsn);
	assert_int_equal(m->env.arrival_ms, 1700000000123ULL);
	assert_int_equal(m->env.n_rcpts, 3);
	assert_string_equal(m->env.rcpts[0].address, "bob@bob.test");
	assert_string_equal(m->env.rcpts[0].orcpt, "rfc822;bob@bob.test");
	assert_int_equal(m->env.rcpts[0].notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
	assert_string_equal(m->env.rcpts[1].address, "\"odd name\"+x=y@b\xc3\xb6"
	                                             "b.test");
	assert_null(m->env.rcpts[1].orcpt);
	assert_int_equal(m->env.rcpts[2].state, QUEUE_RCPT_PENDING);
	assert_int_equal(m->body_size, sizeof(body) - 1);
	char *b = read_body(q, m);
	assert_memory_equal(b, body, sizeof(body) - 1);
	free(b);

	/* State: one sent, one deferred with a diagnostic, one bounced. */
	m->env.rcpts[0].state = QUEUE_RCPT_SENT;
	m->env.rcpts[1].tries = 3;
	m->env.rcpts[1].next_try_ms = 1700000900000ULL;
	m->env.rcpts[1].dsn = xstrdup("4.4.1");
	m->env.rcpts[1].diag = xstrdup("connect to mx.bob.test[10.0.0.2]:25: Connection refused");
	m->env.rcpts[2].state = QUEUE_RCPT_BOUNCED;
	m->warned = true;
	assert_int_equal(queue_save_state(q, m, &err), 0);
	assert_false(queue_msg_done(m));
	queue_msg_free(&m);

	/* A restart: a fresh handle sees the same. */
	queue_close(&q);
	q = open_queue();
	assert_int_equal(queue_load(q, qid, &m, &err), 0);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_SENT);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_PENDING);
	assert_int_equal(m->env.rcpts[1].tries, 3);
	assert_int_equal(m->env.rcpts[1].next_try_ms, 1700000900000ULL);
	assert_string_equal(m->env.rcpts[1].dsn, "4.4.1");
	assert_string_equal(m->env.rcpts[1].diag,
	                    "connect to mx.bob.test[10.0.0.2]:25: Connection refused");
	assert_int_equal(m->env.rcpts[2].state, QUEUE_RCPT_BOUNCED);
	assert_true(m->warned);
	m->env.rcpts[1].state = QUEUE_RCPT_SENT;
	assert_true(queue_msg_done(m));
	queue_msg_free(&m);

	assert_int_equal(queue_remove(q, qid, &err), 0);
	assert_int_equal(queue_load(q, qid, &m, &err), -1);
	free(err);
	queue_close(&q);
}

static void test_stored_once(void **state)
{
	(void)state;
	struct queue *q = open_queue();
	char qid[QUEUE_ID_LEN + 1];
	add_message(q, qid);
	char **ids;
	size_t n;
	char *err = NULL;
	assert_int_equal(queue_list_ids(q, &ids, &n, &err), 0);
	/* Three recipients, one file. */
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], qid);
	queue_ids_free(ids, n);
	assert_int_equal(queue_remove(q, qid, &err), 0);
	queue_close(&q);
}

/* A crash mid-write (the writer never committed, the process died): the file in tmp/ is
 * never listed nor loaded, and the next open removes it. */
static void test_crash_mid_write(void **state)
{
	(void)state;
	pid_t pid = fork();
	if (pid == 0) {
		struct queue *q = NULL;
		char *err = NULL;
		struct queue_envelope env;
		make_env(&env);
		struct queue_writer *w;
		if (queue_open(root, &q, &err) < 0 || queue_writer_begin(q, &env, &w, &err) < 0 ||
		    queue_writer_write(w, body, 5, &err) < 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));

	struct queue *q = NULL;
	char *err = NULL;
	/* Before a reopen the half file sits in tmp/ but is not in the queue. */
	char *tmpdir = xasprintf("%s/tmp", root);
	char *cmd = NULL;
	(void)cmd;
	struct stat sb;
	assert_int_equal(stat(tmpdir, &sb), 0);
	char **ids;
	size_t n;
	assert_int_equal(queue_open(root, &q, &err), 0);
	assert_int_equal(queue_list_ids(q, &ids, &n, &err), 0);
	assert_int_equal(n, 0);
	queue_ids_free(ids, n);
	/* And tmp/ is empty now. */
	assert_int_equal(rmdir(tmpdir), 0);
	assert_int_equal(mkdir(tmpdir, 0700), 0);
	free(tmpdir);
	queue_close(&q);
}

/* A file in msg/ whose body is shorter than its header says (torn: say a copy interrupted
 * by a power cut on a file system without ordered data) is refused and quarantined. */
static void test_torn_file(void **state)
{
	(void)state;
	struct queue *q = open_queue();
	char qid[QUEUE_ID_LEN + 1];
	add_message(q, qid);
	char *p = path_in("msg", qid);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size - 3), 0);
	struct queue_msg *m = NULL;
	char *err = NULL;
	assert_int_equal(queue_load(q, qid, &m, &err), -2);
	assert_non_null(strstr(err, "torn"));
	free(err);
	assert_null(m);
	assert_int_equal(stat(p, &st), -1);
	char *c = path_in("corrupt", qid);
	assert_int_equal(stat(c, &st), 0);
	unlink(c);
	free(c);
	free(p);

	/* One byte too many is refused as well. */
	add_message(q, qid);
	p = path_in("msg", qid);
	int fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(queue_load(q, qid, &m, &err), -2);
	free(err);
	free(p);
	c = path_in("corrupt", qid);
	unlink(c);
	free(c);
	queue_close(&q);
}

/* Hand-made headers: every one is refused, none crashes. */
static void test_bad_headers(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "TERNQ 2\nend\n",
	    "TERNQ 1\nqid 0000000000000000\nsender -\nsize 00000000000000000000\nend\n",
	    "TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 4 a@b\nsize 0\nend\n",
	    "TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 99 a@b -\nsize 0\nend\n",
	    "TERNQ 1\nqid 0000000000000000\nsender a+zz\nrcpt 0 a@b -\nsize 0\nend\n",
	    "TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 0 a@b -\nsize 0\nbogus 1\nend\n",
	    /* the size overflows */
	    ("TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 0 a@b -\nsize 18446744073709551616\n"
	     "end\n"),
	    "TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 0 a@b -\nsize 0\n",
	    "TERNQ 1\nqid 1111111111111111\nsender -\nrcpt 0 a@b -\nsize 0\nend\n",
	};
	struct queue *q = open_queue();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = path_in("msg", "0000000000000000");
		FILE *f = fopen(p, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		struct queue_msg *m = NULL;
		char *err = NULL;
		assert_int_equal(queue_load(q, "0000000000000000", &m, &err), -2);
		free(err);
		unlink(p);
		free(p);
		p = path_in("corrupt", "0000000000000000");
		unlink(p);
		free(p);
	}
	/* The same file with a valid header loads. */
	char *p = path_in("msg", "0000000000000000");
	FILE *f = fopen(p, "w");
	fputs("TERNQ 1\nqid 0000000000000000\nsender -\nrcpt 0 a@b -\nsize 2\nend\nhi", f);
	fclose(f);
	struct queue_msg *m = NULL;
	char *err = NULL;
	assert_int_equal(queue_load(q, "0000000000000000", &m, &err), 0);
	assert_string_equal(m->env.sender, "");
	queue_msg_free(&m);
	/* A corrupt state file is refused too. */
	char *s = path_in("state", "0000000000000000");
	f = fopen(s, "w");
	fputs("TERNS 1\nr 7 P 0 0 - -\n", f);
	fclose(f);
	assert_int_equal(queue_load(q, "0000000000000000", &m, &err), -2);
	free(err);
	free(s);
	free(p);
	p = path_in("corrupt", "0000000000000000");
	unlink(p);
	free(p);
	queue_close(&q);
}

static void test_hold_flush_ids(void **state)
{
	(void)state;
	struct queue *q = open_queue();
	char qid[QUEUE_ID_LEN + 1];
	add_message(q, qid);
	char *err = NULL;
	assert_false(queue_is_held(q, qid));
	assert_int_equal(queue_set_hold(q, qid, true, &err), 0);
	assert_true(queue_is_held(q, qid));
	struct queue_msg *m;
	assert_int_equal(queue_load(q, qid, &m, &err), 0);
	assert_true(m->hold);
	queue_msg_free(&m);
	assert_int_equal(queue_set_hold(q, qid, false, &err), 0);
	assert_false(queue_is_held(q, qid));

	assert_false(queue_take_flush(q));
	assert_int_equal(queue_request_flush(q, &err), 0);
	assert_true(queue_take_flush(q));
	assert_false(queue_take_flush(q));

	/* Ids that could name another path are refused before any file call. */
	static const char *const hostile[] = {
	    "../msg/x",          "",           "0000000000000000/..", "abcdef0123456789",
	    "00000000000000000", "/etc/passwd"};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		assert_false(queue_id_valid(hostile[i]));
		assert_int_equal(queue_set_hold(q, hostile[i], true, &err), -1);
		free(err);
		assert_int_equal(queue_remove(q, hostile[i], &err), -1);
		free(err);
		assert_int_equal(queue_load(q, hostile[i], &m, &err), -1);
		free(err);
	}
	assert_int_equal(queue_set_hold(q, "0123456789ABCDEF", true, &err), -1);
	free(err);
	assert_int_equal(queue_remove(q, qid, &err), 0);
	queue_close(&q);
}

static void test_xtext(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	queue_xtext_encode(&b, "a b+c=d\x7f");
	assert_string_equal(buf_cstr(&b), "a+20b+2Bc+3Dd+7F");
	char *d = queue_xtext_decode(b.data, b.len);
	assert_string_equal(d, "a b+c=d\x7f");
	free(d);
	buf_free(&b);
	static const char *const bad[] = {"+", "+2", "+2g", "a b", "+00", "a=b", "+2b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(queue_xtext_decode(bad[i], strlen(bad[i])));
}

static void test_many_messages_unique_ids(void **state)
{
	(void)state;
	struct queue *q = open_queue();
	char ids[200][QUEUE_ID_LEN + 1];
	for (int i = 0; i < 200; i++)
		add_message(q, ids[i]);
	char **list;
	size_t n;
	char *err = NULL;
	assert_int_equal(queue_list_ids(q, &list, &n, &err), 0);
	assert_int_equal(n, 200);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(list[i - 1], list[i]) < 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(queue_remove(q, list[i], &err), 0);
	queue_ids_free(list, n);
	queue_close(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_stored_once),
	    cmocka_unit_test(test_crash_mid_write), cmocka_unit_test(test_torn_file),
	    cmocka_unit_test(test_bad_headers),     cmocka_unit_test(test_hold_flush_ids),
	    cmocka_unit_test(test_xtext),           cmocka_unit_test(test_many_messages_unique_ids),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
