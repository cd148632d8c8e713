/*
 * Several processes on one folder at once: two deliverers (each syncing after every
 * delivery, so UIDs are handed out concurrently), two flaggers adding different flags to
 * the same messages, and an expunger. The final state must be exactly what the operations
 * imply: no lost flag, no duplicate or reused UID, no message lost or damaged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/maildir_name.h"
#include "store/mailbox.h"

#define PER_DELIVERER 40
#define DELIVERERS 2
#define TOTAL (PER_DELIVERER * DELIVERERS)
#define MAX_ROUNDS 20000
#define MAX_SECONDS 90

static char root[256];
static char done_file[300];

static void deliver(int who, int i)
{
	struct maildir_delivery *d;
	char *error = NULL;
	char *msg = xasprintf("Subject: d%d-%d\r\n\r\nbody of d%d-%d\r\n", who, i, who, i);
	if (maildir_delivery_begin(root, &d, &error) != MAILDIR_OK ||
	    maildir_delivery_write(d, msg, strlen(msg), &error) != MAILDIR_OK ||
	    maildir_delivery_commit(d, &error) != MAILDIR_OK)
		_exit(10);
	maildir_delivery_free(&d);
	free(msg);
}

/* The i of "d<who>-<i>" for message seq, or -1. */
static int msg_index(struct store_mailbox *box, size_t seq, int *who_r)
{
	struct store_cache c;
	if (store_mailbox_cache(box, seq, &c) != STORE_OK)
		return -1;
	int who = -1, i = -1;
	if (c.fields[MIME_FIELD_SUBJECT] == NULL ||
	    sscanf(c.fields[MIME_FIELD_SUBJECT], "d%d-%d", &who, &i) != 2)
		i = -1;
	store_cache_free(&c);
	if (who_r != NULL)
		*who_r = who;
	return i;
}

static void run_deliverer(int who)
{
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(root, &box, &error) != STORE_OK)
		_exit(11);
	for (int i = 0; i < PER_DELIVERER; i++) {
		deliver(who, i);
		struct store_sync_result res;
		if (store_mailbox_sync(box, &res) != STORE_OK)
			_exit(12);
	}
	store_mailbox_close(&box);
	_exit(0);
}

/* kind 0: \Flagged on even i; kind 1: keyword $K on i % 3 == 0; kind 2: expunge i % 5 == 0 */
static bool wanted(int kind, int i)
{
	return kind == 0 ? i % 2 == 0 : kind == 1 ? i % 3 == 0 : i % 5 == 0;
}

static void run_worker(int kind)
{
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(root, &box, &error) != STORE_OK)
		_exit(21);
	int kw = kind == 1 ? store_mailbox_keyword(box, "$K", true) : 0;
	if (kw < 0)
		_exit(22);
	bool done[DELIVERERS][PER_DELIVERER] = {{false}};
	int target = 0, count = 0;
	for (int i = 0; i < PER_DELIVERER; i++)
		target += wanted(kind, i) ? DELIVERERS : 0;
	time_t start = time(NULL);
	bool last = false;
	for (int round = 0; round < MAX_ROUNDS && !last; round++) {
		if (time(NULL) - start > MAX_SECONDS)
			_exit(23);
		/* After the deliverers finished, one more full pass is the last. */
		last = access(done_file, F_OK) == 0;
		struct store_sync_result res;
		if (store_mailbox_sync(box, &res) != STORE_OK)
			_exit(24);
		for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
			int who, i = msg_index(box, seq, &who);
			if (i < 0 || who < 0 || who >= DELIVERERS || done[who][i] ||
			    !wanted(kind, i))
				continue;
			uint32_t uid = store_mailbox_msg(box, seq)->uid;
			enum store_error e =
			    kind == 0 ? store_mailbox_set_flags(box, uid, STORE_FLAGS_ADD,
			                                        STORE_FLAG_FLAGGED, 0, 0)
			    : kind == 1
			        ? store_mailbox_set_flags(box, uid, STORE_FLAGS_ADD, 0, 1u << kw, 0)
			        : store_mailbox_expunge(box, &uid, 1);
			/* The expunger may have removed it first (i % 10 == 0): that is done too.
			 */
			if (e != STORE_OK && !(e == STORE_ENOENT && kind != 2 && wanted(2, i)))
				_exit(25);
			done[who][i] = true;
			count++;
		}
		usleep(2000);
	}
	store_mailbox_close(&box);
	/* Only the expunger knows its exact count: nobody else removes messages. */
	_exit(!last ? 27 : kind != 2 || count == target ? 0 : 26);
}

static void test_concurrent_processes(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-conc-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(done_file, sizeof(done_file), "%s.done", root);
	pid_t pids[DELIVERERS + 3];
	int n = 0;
	for (int who = 0; who < DELIVERERS; who++) {
		if ((pids[n++] = fork()) == 0)
			run_deliverer(who);
	}
	for (int kind = 0; kind < 3; kind++) {
		if ((pids[n++] = fork()) == 0)
			run_worker(kind);
	}
	for (int i = 0; i < DELIVERERS; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("deliverer %d ended with status %d", i, status);
	}
	FILE *f = fopen(done_file, "w");
	assert_non_null(f);
	fclose(f);
	for (int i = DELIVERERS; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("child %d ended with status %d", i, status);
	}

	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	int kw = store_mailbox_keyword(box, "$K", false);
	assert_true(kw >= 0);
	int expunged = 0;
	for (int i = 0; i < PER_DELIVERER; i++)
		expunged += wanted(2, i) ? DELIVERERS : 0;
	assert_int_equal(store_mailbox_count(box), TOTAL - expunged);
	bool seen[DELIVERERS][PER_DELIVERER] = {{false}};
	uint32_t last_uid = 0;
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		const struct store_msg *m = store_mailbox_msg(box, seq);
		assert_true(m->uid > last_uid);
		last_uid = m->uid;
		int who, i = msg_index(box, seq, &who);
		assert_true(i >= 0 && who >= 0 && who < DELIVERERS);
		assert_false(seen[who][i]);
		seen[who][i] = true;
		assert_false(wanted(2, i));
		assert_int_equal((m->flags & STORE_FLAG_FLAGGED) != 0, wanted(0, i));
		assert_int_equal((m->keywords & (1u << kw)) != 0, wanted(1, i));
	}
	/* Every UID was handed out once: none reused after the expunges. */
	assert_int_equal(store_mailbox_uidnext(box), TOTAL + 1);
	store_mailbox_close(&box);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	unlink(done_file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
