/*
 * Crash safety: a child delivers, appends, syncs and changes flags in a loop and is
 * killed with SIGKILL at a random moment, 200 times. After every kill: the index opens
 * with the same UIDVALIDITY, every message whose delivery was acknowledged is there and
 * whole, and no message ever changes its UID. Killed during expunge + compaction: no
 * expunge is forgotten by the tombstones (QRESYNC VANISHED) either.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"
#include "store/mailbox_private.h"

#define ITERATIONS 200
#define PER_CHILD 40
#define MAX_SECONDS 40

static char root[256];
static uint32_t uids[ITERATIONS][PER_CHILD];
static bool acked[ITERATIONS][PER_CHILD];

static char *message(int it, int k)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "Subject: c%d-%d\r\n\r\n", it, k);
	/* A body long enough to be written in several pieces, checkable when read back. */
	for (int i = 0; i < 200; i++)
		buf_printf(&b, "line %d of c%d-%d\r\n", i, it, k);
	return buf_steal(&b);
}

static void child(int it, int ack_fd)
{
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(root, &box, &error) != STORE_OK)
		_exit(1);
	for (int k = 0; k < PER_CHILD; k++) {
		char *msg = message(it, k);
		enum store_error ok = STORE_ETEMP;
		if (k % 3 == 2) {
			struct store_append *app;
			uint32_t uid;
			if (store_mailbox_append_begin(box, 0, 0, 0, &app) == STORE_OK &&
			    store_mailbox_append_write(app, msg, strlen(msg) / 2) == STORE_OK &&
			    store_mailbox_append_write(app, msg + strlen(msg) / 2,
			                               strlen(msg) - strlen(msg) / 2) == STORE_OK)
				ok = store_mailbox_append_commit(&app, &uid);
		} else {
			struct maildir_delivery *d;
			char *e = NULL;
			if (maildir_delivery_begin(root, &d, &e) == MAILDIR_OK &&
			    maildir_delivery_write(d, msg, strlen(msg), &e) == MAILDIR_OK &&
			    maildir_delivery_commit(d, &e) == MAILDIR_OK)
				ok = STORE_OK;
			maildir_delivery_free(&d);
		}
		free(msg);
		if (ok != STORE_OK)
			_exit(2);
		int ack[2] = {it, k};
		if (write(ack_fd, ack, sizeof(ack)) != sizeof(ack))
			_exit(3);
		struct store_sync_result res;
		if (store_mailbox_sync(box, &res) != STORE_OK)
			_exit(4);
		/* Index writes: flag changes on old and new messages. */
		size_t n = store_mailbox_count(box);
		for (size_t seq = n > 3 ? n - 3 : 1; seq <= n; seq++)
			(void)store_mailbox_set_flags(
			    box, store_mailbox_msg(box, seq)->uid, STORE_FLAGS_REPLACE,
			    (uint32_t)(k % 2 ? STORE_FLAG_SEEN : 0), 0, 0);
	}
	_exit(0);
}

static bool check_content(struct store_mailbox *box, size_t seq, int it, int k)
{
	char *path = store_mailbox_msg_path(box, seq);
	int fd = open(path, O_RDONLY);
	free(path);
	if (fd < 0)
		return false;
	char *want = message(it, k);
	size_t len = strlen(want);
	char *got = xmalloc(len + 1);
	ssize_t n = read(fd, got, len + 1);
	close(fd);
	bool ok = n == (ssize_t)len && memcmp(got, want, len) == 0;
	free(got);
	free(want);
	return ok;
}

/* Opens the folder and checks every acknowledged message and every known UID. */
static void verify(uint32_t uidvalidity, int upto)
{
	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	static bool present[ITERATIONS][PER_CHILD];
	memset(present, 0, sizeof(present));
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		struct store_cache c;
		assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
		int it = -1, k = -1;
		if (c.fields[MIME_FIELD_SUBJECT] == NULL ||
		    sscanf(c.fields[MIME_FIELD_SUBJECT], "c%d-%d", &it, &k) != 2)
			fail_msg("message %zu has no intact header", seq);
		store_cache_free(&c);
		assert_true(it >= 0 && it < ITERATIONS && k >= 0 && k < PER_CHILD);
		uint32_t uid = store_mailbox_msg(box, seq)->uid;
		/* A message keeps its UID for life. */
		if (uids[it][k] != 0 && uids[it][k] != uid)
			fail_msg("c%d-%d changed UID %u -> %u", it, k, uids[it][k], uid);
		uids[it][k] = uid;
		present[it][k] = true;
		if (!check_content(box, seq, it, k))
			fail_msg("c%d-%d is not whole", it, k);
	}
	for (int it = 0; it <= upto; it++) {
		for (int k = 0; k < PER_CHILD; k++) {
			if (acked[it][k] && !present[it][k])
				fail_msg("acknowledged c%d-%d is missing", it, k);
		}
	}
	store_mailbox_close(&box);
}

static void read_acks(int fd)
{
	int ack[2];
	while (read(fd, ack, sizeof(ack)) == sizeof(ack)) {
		if (ack[0] >= 0 && ack[0] < ITERATIONS && ack[1] >= 0 && ack[1] < PER_CHILD)
			acked[ack[0]][ack[1]] = true;
	}
}

static void test_kill_during_delivery_and_index_writes(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-crash-XXXXXX");
	assert_non_null(mkdtemp(root));
	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	srand((unsigned int)getpid());
	time_t start = time(NULL);
	int it, killed = 0;
	for (it = 0; it < ITERATIONS && time(NULL) - start < MAX_SECONDS; it++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			child(it, p[1]);
		}
		close(p[1]);
		/* Somewhere between "just started" and "well into the loop". */
		usleep((useconds_t)(rand() % 30000));
		killed += kill(pid, SIGKILL) == 0;
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			fail_msg("child failed with %d", WEXITSTATUS(status));
		read_acks(p[0]);
		close(p[0]);
		verify(uidvalidity, it);
	}
	print_message("%d iterations, %d kills\n", it, killed);
	assert_true(it > 0);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

/* Junk messages written straight into new/ (test setup; durability is not the point). */
static void add_junk(int round, int n)
{
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/new/%d.M%dP1Q1.junk", root, 1800000000 + round, i);
		FILE *f = fopen(p, "w");
		assert_non_null(f);
		fprintf(f, "Subject: junk %d %d %01500d\n\nx\n", round, i, 0);
		fclose(f);
		free(p);
	}
}

static void expunge_junk_child(void)
{
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(root, &box, &error) != STORE_OK)
		_exit(1);
	uint32_t *junk_uids = xcalloc(store_mailbox_count(box) + 1, sizeof(uint32_t));
	size_t n = 0;
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		struct store_cache c;
		if (store_mailbox_cache(box, seq, &c) != STORE_OK)
			_exit(2);
		if (c.fields[MIME_FIELD_SUBJECT] != NULL &&
		    strncmp(c.fields[MIME_FIELD_SUBJECT], "junk", 4) == 0)
			junk_uids[n++] = store_mailbox_msg(box, seq)->uid;
		store_cache_free(&c);
	}
	/* The expunge ends with the cache compaction (most of the cache is junk). */
	if (store_mailbox_expunge(box, junk_uids, n) != STORE_OK)
		_exit(3);
	_exit(0);
}

/* Junk UIDs the index handed out (by UID), for the tombstone check. */
#define JUNK_UID_MAX 65536
static bool junk_seen[JUNK_UID_MAX];

static void note_junk(struct store_mailbox *box)
{
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		struct store_cache c;
		assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
		uint32_t uid = store_mailbox_msg(box, seq)->uid;
		if (c.fields[MIME_FIELD_SUBJECT] != NULL &&
		    strncmp(c.fields[MIME_FIELD_SUBJECT], "junk", 4) == 0 && uid < JUNK_UID_MAX)
			junk_seen[uid] = true;
		store_cache_free(&c);
	}
}

/* Every junk UID no longer in the folder is in the answer for "vanished since m0". */
static void check_tombstones(struct store_mailbox *box, uint64_t m0)
{
	struct store_uid_range *r;
	size_t n = store_mailbox_vanished_since(box, m0, &r, NULL);
	for (uint32_t uid = 1; uid < JUNK_UID_MAX; uid++) {
		if (!junk_seen[uid] || store_mailbox_seq(box, uid) != 0)
			continue;
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = uid >= r[i].first && uid <= r[i].last;
		if (!found)
			fail_msg("expunged UID %u missing from VANISHED since %llu", uid,
			         (unsigned long long)m0);
	}
	free(r);
}

static void test_kill_during_cache_compaction(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-crash-XXXXXX");
	assert_non_null(mkdtemp(root));
	memset(acked, 0, sizeof(acked));
	memset(uids, 0, sizeof(uids));
	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	/* Messages that must survive every crash: acknowledged deliveries of round 0. */
	for (int k = 0; k < 10; k++) {
		struct maildir_delivery *d;
		char *e = NULL, *msg = message(0, k);
		assert_int_equal(maildir_delivery_begin(root, &d, &e), MAILDIR_OK);
		assert_int_equal(maildir_delivery_write(d, msg, strlen(msg), &e), MAILDIR_OK);
		assert_int_equal(maildir_delivery_commit(d, &e), MAILDIR_OK);
		maildir_delivery_free(&d);
		free(msg);
		acked[0][k] = true;
	}
	memset(junk_seen, 0, sizeof(junk_seen));
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	uint64_t m0 = store_mailbox_highestmodseq(box);
	store_mailbox_close(&box);
	time_t start = time(NULL);
	int round;
	for (round = 1; round <= 60 && time(NULL) - start < MAX_SECONDS; round++) {
		add_junk(round, 150);
		/* Index the junk first, so the child's work is the expunge and the compaction. */
		assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
		note_junk(box);
		store_mailbox_close(&box);
		pid_t pid = fork();
		if (pid == 0)
			expunge_junk_child();
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			fail_msg("child failed with %d", WEXITSTATUS(status));
		/* Every kept message is there, whole, with its cached subject readable. */
		assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
		assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
		int kept = 0;
		for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
			struct store_cache c;
			assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
			int it, k;
			if (c.fields[MIME_FIELD_SUBJECT] != NULL &&
			    sscanf(c.fields[MIME_FIELD_SUBJECT], "c%d-%d", &it, &k) == 2) {
				assert_true(check_content(box, seq, it, k));
				kept++;
			} else if (c.fields[MIME_FIELD_SUBJECT] == NULL ||
			           strncmp(c.fields[MIME_FIELD_SUBJECT], "junk", 4) != 0) {
				fail_msg("message %zu has a damaged cache entry", seq);
			}
			store_cache_free(&c);
		}
		assert_int_equal(kept, 10);
		check_tombstones(box, m0);
		store_mailbox_close(&box);
	}
	print_message("%d compaction rounds\n", round - 1);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

int main(void)
{
	/* Map every snapshot: the small ones read into the heap are what the other tests use. */
	mbox_map_min = 0;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_during_delivery_and_index_writes),
	    cmocka_unit_test(test_kill_during_cache_compaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
