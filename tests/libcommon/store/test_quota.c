/* Unit tests for the Maildir++ quota file (maildirsize). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"
#include "store/quota.h"

static char root[256];

static uint64_t deliver(const char *folder, size_t len)
{
	struct maildir_delivery *d;
	char *error = NULL;
	char *body = xmalloc(len);
	memset(body, 'x', len);
	assert_int_equal(maildir_delivery_begin(folder, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, body, len, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	maildir_delivery_free(&d);
	free(body);
	return len;
}

static void write_file(const char *text)
{
	char *p = xasprintf("%s/maildirsize", root);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	free(p);
}

static void test_quota(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-quota-XXXXXX");
	assert_non_null(mkdtemp(root));
	char *sent = xasprintf("%s/.Sent", root);
	uint64_t total = deliver(root, 100) + deliver(root, 250) + deliver(sent, 1000);
	struct store_quota q;
	assert_int_equal(store_quota_get(root, 2000, 10, &q), STORE_OK);
	assert_int_equal(q.bytes, total);
	assert_int_equal(q.messages, 3);
	assert_true(store_quota_allows(&q, 600));
	assert_false(store_quota_allows(&q, 700));
	/* Deltas are summed without a rescan. */
	assert_int_equal(store_quota_add(root, 500, 1), STORE_OK);
	assert_int_equal(store_quota_get(root, 2000, 10, &q), STORE_OK);
	assert_int_equal(q.bytes, total + 500);
	assert_int_equal(q.messages, 4);
	/* A torn line, or other limits, mean a recount (the 500 was never real). */
	write_file("2000S,10C\n1350 3\n12");
	assert_int_equal(store_quota_get(root, 2000, 10, &q), STORE_OK);
	assert_int_equal(q.bytes, total);
	assert_int_equal(store_quota_add(root, 7, 1), STORE_OK);
	assert_int_equal(store_quota_get(root, 5000, 10, &q), STORE_OK);
	assert_int_equal(q.bytes, total);
	/* Past 5120 bytes the file is recounted (Maildir++). */
	for (int i = 0; i < 1500; i++) /* 4 bytes a line */
		assert_int_equal(store_quota_add(root, 1, 0), STORE_OK);
	assert_int_equal(store_quota_get(root, 5000, 10, &q), STORE_OK);
	assert_int_equal(q.bytes, total);
	/* The message limit. */
	assert_int_equal(store_quota_get(root, 0, 3, &q), STORE_OK);
	assert_false(store_quota_allows(&q, 1));
	/* A mailbox with a quota root keeps the file right on expunge. */
	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	store_mailbox_set_quota_root(box, root);
	assert_int_equal(store_quota_get(root, 0, 0, &q), STORE_OK);
	uint32_t uid = store_mailbox_msg(box, 1)->uid;
	uint64_t size = store_mailbox_msg_info(box, 1)->psize;
	assert_int_equal(store_mailbox_expunge(box, &uid, 1), STORE_OK);
	struct store_quota after;
	assert_int_equal(store_quota_get(root, 0, 0, &after), STORE_OK);
	assert_int_equal(after.bytes, q.bytes - size);
	assert_int_equal(after.messages, q.messages - 1);
	store_mailbox_close(&box);
	free(sent);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quota),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
