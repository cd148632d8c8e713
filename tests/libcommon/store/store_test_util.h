/*
 * Helpers for the store's mailbox tests: a temporary Maildir root per test, deliveries
 * through the real delivery path, and opening a folder that must open. Static functions,
 * included by one test file each (after cmocka.h).
 */
#ifndef TERN_TESTS_STORE_TEST_UTIL_H
#define TERN_TESTS_STORE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/mailbox.h"
#include "store/maildir_deliver.h"

static char root[256];

/* Makes root a fresh directory /tmp/tern-<tag>-XXXXXX. */
static inline void store_test_mkroot(const char *tag)
{
	snprintf(root, sizeof(root), "/tmp/tern-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(root));
}

/* Removes root and everything in it (rm -rf, no shell). */
static inline void store_test_rmroot(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
}

/* Delivers msg[0..len) into folder; the delivery must succeed. */
static inline void store_test_deliver_bytes(const char *folder, const char *msg, size_t len)
{
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(folder, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, msg, len, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	maildir_delivery_free(&d);
}

/* Delivers a small message with this Subject into folder. */
static inline void store_test_deliver(const char *folder, const char *subject)
{
	char *msg = xasprintf("From: a@example.org\r\nSubject: %s\r\n\r\nbody\n", subject);
	store_test_deliver_bytes(folder, msg, strlen(msg));
	free(msg);
}

/* Opens the folder at path; the open must succeed. */
static inline struct store_mailbox *store_test_open(const char *path)
{
	struct store_mailbox *box = NULL;
	const char *error = NULL;
	assert_int_equal(store_mailbox_open(path, &box, &error), STORE_OK);
	return box;
}

/* Toggles \Seen on UIDs 1..n of box, rounds times in all (a round of n adds, then a round of
 * n removes, ...): enough rounds make the log fold into a new snapshot. */
static inline void store_test_churn(struct store_mailbox *box, uint32_t n, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		uint32_t uid = (uint32_t)i % n + 1;
		assert_int_equal(
		    store_mailbox_set_flags(box, uid,
		                            (i / (int)n) % 2 ? STORE_FLAGS_REMOVE : STORE_FLAGS_ADD,
		                            STORE_FLAG_SEEN, 0, 0),
		    STORE_OK);
	}
}

#endif
