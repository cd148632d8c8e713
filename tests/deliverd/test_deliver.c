/* Spool + Maildir copy: the file in new/ is exactly prefix + body, in the right folder. */
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

#include "base/buf.h"
#include "base/xalloc.h"
#include "deliver.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-deliver-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd[] = {"rm", "-rf", root, NULL};
	pid_t pid = fork();
	if (pid == 0) {
		execvp(cmd[0], cmd);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return 0;
}

/* Reads the only file in dir/new into out; returns the number of files found. */
static int read_new(const char *dir, struct buf *out)
{
	char *path = xasprintf("%s/new", dir);
	DIR *d = opendir(path);
	int n = 0;
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			n++;
			char *f = xasprintf("%s/%s", path, e->d_name);
			FILE *fp = fopen(f, "rb");
			assert_non_null(fp);
			char chunk[4096];
			size_t k;
			while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0)
				buf_append(out, chunk, k);
			fclose(fp);
			free(f);
		}
		closedir(d);
	}
	free(path);
	return n;
}

static void test_copy_and_folders(void **state)
{
	(void)state;
	char *spool_dir = xasprintf("%s/spool", root);
	assert_int_equal(mkdir(spool_dir, 0700), 0);
	struct spool *sp = NULL;
	char *err = NULL;
	assert_int_equal(spool_open(spool_dir, &sp, &err), 0);
	/* The spool leaves no name behind. */
	DIR *d = opendir(spool_dir);
	int names = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		names += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(names, 0);
	/* A body larger than one copy chunk. */
	struct buf body;
	buf_init(&body, 0);
	for (int i = 0; i < 40000; i++)
		buf_printf(&body, "line %d\r\n", i);
	assert_int_equal(spool_write(sp, body.data, body.len, &err), 0);
	assert_int_equal(spool_size(sp), body.len);

	char *home = xasprintf("%s/example.test/bob", root);
	struct lmtp_target t = {
	    .home = home,
	    .prefix = "Return-Path: <s@x.test>\r\nDelivered-To: bob@example.test\r\n",
	    .address = "bob@example.test",
	};
	const char *folder = NULL;
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERED);
	assert_string_equal(folder, "INBOX");
	struct buf got, want;
	buf_init(&got, 0);
	buf_init(&want, 0);
	buf_append_str(&want, t.prefix);
	buf_append(&want, body.data, body.len);
	assert_int_equal(read_new(home, &got), 1);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);

	/* +detail: the folder is used only when it exists. */
	t.detail = "Work";
	buf_reset(&got);
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERED);
	assert_string_equal(folder, "INBOX");
	assert_int_equal(read_new(home, &got), 2);
	char *work = xasprintf("%s/.Work", home);
	assert_int_equal(mkdir(work, 0700), 0);
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERED);
	assert_string_equal(folder, "Work");
	buf_reset(&got);
	assert_int_equal(read_new(work, &got), 1);
	assert_int_equal(got.len, want.len);
	/* A symlinked folder is not followed. */
	t.detail = "Link";
	char *link = xasprintf("%s/.Link", home);
	assert_int_equal(symlink("/tmp", link), 0);
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERED);
	assert_string_equal(folder, "INBOX");

	/* Quota: the usage counts INBOX and the folders (4 copies so far, 1 in .Work). */
	uint64_t used = 0, count = 0;
	deliver_quota_usage(home, &used, &count);
	assert_int_equal(count, 4);
	assert_int_equal(used, 4 * want.len);
	t.detail = NULL;
	t.quota_bytes = 100;
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERY_OVERQUOTA);
	free(err);
	err = NULL;
	/* Room for exactly one more copy: accepted, then the next one is over. */
	t.quota_bytes = 5 * want.len;
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERED);
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERY_OVERQUOTA);
	free(err);
	err = NULL;
	t.quota_bytes = 0;
	t.quota_messages = 5;
	assert_int_equal(deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err),
	                 LMTP_DELIVERY_OVERQUOTA);
	free(err);
	err = NULL;
	t.quota_messages = 0;

	/* A home that cannot be created (a file is in the way) is not delivered. */
	char *blocker = xasprintf("%s/file", root);
	FILE *f = fopen(blocker, "w");
	fclose(f);
	char *bad_home = xasprintf("%s/file/user", root);
	t.home = bad_home;
	t.quota_bytes = 0;
	enum lmtp_delivery_status st = deliver_one(spool_fd(sp), spool_size(sp), &t, &folder, &err);
	assert_int_not_equal(st, LMTP_DELIVERED);
	free(err);

	spool_close(&sp);
	assert_null(sp);
	buf_free(&body);
	buf_free(&got);
	buf_free(&want);
	free(spool_dir);
	free(home);
	free(work);
	free(link);
	free(blocker);
	free(bad_home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_copy_and_folders),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
