/*
 * The maildrop: the writer's files (only complete ones are visible), parsing, and the
 * pickup into the outbound queue with the sender decided by the file's owner; refusals of
 * broken, linked and non-regular files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/xalloc.h"
#include "queue.h"
#include "queue_maildrop.h"
#include "relay_maildrop.h"

static char root[256], drop[300], qdir[300];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-maildrop-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(drop, sizeof(drop), "%s/maildrop", root);
	snprintf(qdir, sizeof(qdir), "%s/queue", root);
	char *err = NULL;
	assert_int_equal(relay_maildrop_prepare(drop, getuid(), getgid(), &err), 0);
	struct stat st;
	assert_int_equal(stat(drop, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01733);
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

static size_t count_prefix(const char *prefix)
{
	DIR *d = opendir(drop);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static const char msg[] = "Subject: cron\n\nout of disk\n";

static void drop_one(const char *sender)
{
	const char *rcpts[] = {"root@alice.test", "ops@remote.test"};
	struct maildrop_writer *w;
	char *err = NULL;
	assert_int_equal(maildrop_begin(drop, sender, rcpts, 2, &w, &err), 0);
	/* Not visible while it is written. */
	assert_int_equal(count_prefix("m."), 0);
	assert_int_equal(count_prefix("t."), 1);
	assert_int_equal(maildrop_write(w, msg, 10, &err), 0);
	assert_int_equal(maildrop_write(w, msg + 10, sizeof(msg) - 11, &err), 0);
	assert_int_equal(maildrop_commit(w, &err), 0);
	assert_int_equal(count_prefix("t."), 0);
	assert_int_equal(count_prefix("m."), 1);
}

static void test_abort_leaves_nothing(void **state)
{
	(void)state;
	const char *rcpts[] = {"a@b"};
	struct maildrop_writer *w;
	char *err = NULL;
	assert_int_equal(maildrop_begin(drop, "x@y", rcpts, 1, &w, &err), 0);
	maildrop_abort(w);
	assert_int_equal(count_prefix("t."), 0);
	assert_int_equal(maildrop_begin(drop, "x@y", rcpts, 0, &w, &err), -1);
	free(err);
}

static void test_pickup_trusted_and_not(void **state)
{
	(void)state;
	struct queue *q;
	char *err = NULL;
	assert_int_equal(queue_open(qdir, &q, &err), 0);
	/* The file's owner is trusted (it is us): the written sender stays. */
	drop_one("cron@alice.test");
	struct maildrop_policy p = {.trusted = NULL,
	                            .n_trusted = 0,
	                            .self = getuid(),
	                            .domain = "alice.test",
	                            .max_size = 1 << 20};
	assert_int_equal(relay_maildrop_pickup(drop, q, &p), 1);
	assert_int_equal(count_prefix("m."), 0);
	char **ids;
	size_t n;
	assert_int_equal(queue_list_ids(q, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	struct queue_msg *m;
	assert_int_equal(queue_load(q, ids[0], &m, &err), 0);
	assert_string_equal(m->env.sender, "cron@alice.test");
	assert_int_equal(m->env.n_rcpts, 2);
	assert_string_equal(m->env.rcpts[1].address, "ops@remote.test");
	assert_int_equal(m->body_size, sizeof(msg) - 1);
	int fd = queue_open_body(q, m, &err);
	char body[sizeof(msg)] = {0};
	assert_int_equal(pread(fd, body, sizeof(msg) - 1, (off_t)m->body_offset),
	                 (ssize_t)sizeof(msg) - 1);
	close(fd);
	assert_string_equal(body, msg);
	queue_msg_free(&m);
	assert_int_equal(queue_remove(q, ids[0], &err), 0);
	queue_ids_free(ids, n);

	if (getuid() == 0) {
		/* Owned by someone untrusted: the sender becomes that user's address. */
		drop_one("forged@bank.test");
		DIR *d = opendir(drop);
		struct dirent *de;
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "m.", 2) == 0) {
				char *path = xasprintf("%s/%s", drop, de->d_name);
				assert_int_equal(chown(path, 65534, 65534), 0);
				free(path);
			}
		closedir(d);
		assert_int_equal(relay_maildrop_pickup(drop, q, &p), 1);
		assert_int_equal(queue_list_ids(q, &ids, &n, &err), 0);
		assert_int_equal(queue_load(q, ids[0], &m, &err), 0);
		assert_non_null(strstr(m->env.sender, "@alice.test"));
		assert_null(strstr(m->env.sender, "forged"));
		queue_msg_free(&m);
		assert_int_equal(queue_remove(q, ids[0], &err), 0);
		queue_ids_free(ids, n);
	}
	queue_close(&q);
}

static void test_refusals(void **state)
{
	(void)state;
	struct queue *q;
	char *err = NULL;
	assert_int_equal(queue_open(qdir, &q, &err), 0);
	struct maildrop_policy p = {.self = getuid(), .domain = "alice.test", .max_size = 1 << 20};
	static const char *const bad[] = {
	    "garbage",
	    "TERND 1\nsender -\nend\nno recipients",
	    "TERND 1\nsender a+zz\nrcpt x@y\nend\n",
	    "TERND 1\nsender -\nrcpt x@y\n",
	    "TERND 2\nsender -\nrcpt x@y\nend\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = xasprintf("%s/m.bad%zu", drop, i);
		FILE *f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		free(path);
	}
	/* A hard link and a symlink to a file elsewhere are never read. */
	char *outside = xasprintf("%s/secret", root);
	FILE *f = fopen(outside, "w");
	fputs("TERND 1\nsender -\nrcpt x@y\nend\nsecret\n", f);
	fclose(f);
	char *hl = xasprintf("%s/m.hardlink", drop);
	char *sl = xasprintf("%s/m.symlink", drop);
	assert_int_equal(link(outside, hl), 0);
	assert_int_equal(symlink(outside, sl), 0);
	assert_int_equal(relay_maildrop_pickup(drop, q, &p), 0);
	assert_int_equal(count_prefix("m."), 0);
	char **ids;
	size_t n;
	assert_int_equal(queue_list_ids(q, &ids, &n, &err), 0);
	assert_int_equal(n, 0);
	queue_ids_free(ids, n);
	struct stat st;
	assert_int_equal(stat(outside, &st), 0); /* the target itself is untouched */
	free(outside);
	free(hl);
	free(sl);
	queue_close(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_abort_leaves_nothing),
	    cmocka_unit_test(test_pickup_trusted_and_not),
	    cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
