/*
 * Unit tests for the expunge tombstones behind RFC 7162 QRESYNC
 * (store_mailbox_vanished_since): exact answers, the view rule, survival across log
 * compaction and reopen, an index written before tombstones existed (the floor rule),
 * and the cap (oldest ranges dropped, superset below the floor).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/mailbox.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("vanished");
	char *cur = xasprintf("%s/cur", root);
	assert_int_equal(mkdir(cur, 0700), 0);
	free(cur);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

/* n small messages written straight into cur/ (the first open gives them UIDs 1..n). */
static void make_messages(int n)
{
	for (int i = 1; i <= n; i++) {
		char *path = xasprintf("%s/cur/%d.M%dP1Q%d.test,S=22:2,", root, 1000000 + i, i, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "Subject: v\n\nbody text\n", 22), 22);
		close(fd);
		free(path);
	}
}

static struct store_mailbox *open_box(void)
{
	struct store_mailbox *box = NULL;
	const char *error = NULL;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	return box;
}

/* The answer as an IMAP uid-set string, e.g. "2:3,5" ("" when empty). */
static char *vanished(struct store_mailbox *box, uint64_t modseq, bool *exact_r)
{
	struct store_uid_range *r;
	size_t n = store_mailbox_vanished_since(box, modseq, &r, exact_r);
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(r[i].first <= r[i].last);
		if (i > 0)
			assert_true(r[i].first > r[i - 1].last + 1); /* sorted, merged */
		if (r[i].first == r[i].last)
			buf_printf(&b, "%s%u", i ? "," : "", r[i].first);
		else
			buf_printf(&b, "%s%u:%u", i ? "," : "", r[i].first, r[i].last);
	}
	free(r);
	char *s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void assert_vanished(struct store_mailbox *box, uint64_t modseq, const char *want,
                            bool want_exact)
{
	bool exact;
	char *got = vanished(box, modseq, &exact);
	if (strcmp(got, want) != 0)
		fail_msg("vanished since %llu: got \"%s\", want \"%s\"", (unsigned long long)modseq,
		         got, want);
	assert_int_equal(exact, want_exact);
	free(got);
}

static void expunge(struct store_mailbox *box, const uint32_t *uids, size_t n)
{
	assert_int_equal(store_mailbox_expunge(box, uids, n), STORE_OK);
}

static void test_vanished_exact_and_view(void **state)
{
	(void)state;
	make_messages(10);
	struct store_mailbox *box = open_box(), *other = open_box();
	uint64_t m0 = store_mailbox_highestmodseq(box);
	assert_vanished(box, m0, "", true);
	expunge(box, (const uint32_t[]){2, 3}, 2);
	expunge(box, (const uint32_t[]){5}, 1);
	/* RFC 7162 3.2.10: each expunge gets its own new MODSEQ. */
	assert_int_equal(store_mailbox_highestmodseq(box), m0 + 3);
	/* Still in this view until a sync reports them: not vanished yet for it. */
	assert_vanished(box, m0, "", true);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 3);
	/* The UIDs go with the sequence numbers in the order EXPUNGEs are sent. */
	assert_int_equal(res.expunged_seqs[0], 2);
	assert_int_equal(res.expunged_uids[0], 2);
	assert_int_equal(res.expunged_seqs[1], 2);
	assert_int_equal(res.expunged_uids[1], 3);
	assert_int_equal(res.expunged_seqs[2], 3);
	assert_int_equal(res.expunged_uids[2], 5);
	assert_vanished(box, m0, "2:3,5", true);
	/* 2 and 3 share a range with the later MODSEQ: reported together (a superset). */
	assert_vanished(box, m0 + 1, "2:3,5", true);
	assert_vanished(box, m0 + 2, "5", true);
	assert_vanished(box, m0 + 3, "", true);
	/* Above HIGHESTMODSEQ the client is from elsewhere: every UID not in the folder. */
	assert_vanished(box, m0 + 100, "2:3,5", false);
	/* Another handle learns them from the log. */
	assert_int_equal(store_mailbox_sync(other, &res), STORE_OK);
	assert_vanished(other, m0, "2:3,5", true);
	assert_vanished(other, m0 + 2, "5", true);
	/* 4 joins 2:3 and 5 into one range (no message left between them). */
	expunge(other, (const uint32_t[]){4}, 1);
	assert_int_equal(store_mailbox_sync(other, &res), STORE_OK);
	assert_vanished(other, m0 + 3, "2:5", true);
	assert_vanished(other, m0 + 4, "", true);
	store_mailbox_close(&box);
	store_mailbox_close(&other);
}

static void test_vanished_survives_compaction_and_reopen(void **state)
{
	(void)state;
	make_messages(20);
	struct store_mailbox *box = open_box();
	uint64_t m0 = store_mailbox_highestmodseq(box);
	expunge(box, (const uint32_t[]){3, 7, 8, 15}, 4);
	uint64_t m1 = store_mailbox_highestmodseq(box);
	/* Enough flag changes to fold the log into new snapshots several times. */
	for (int i = 0; i < 3000; i++) {
		uint32_t uid = (uint32_t)(i % 10) + 9;
		if (uid == 15)
			continue;
		assert_int_equal(store_mailbox_set_flags(
		                     box, uid, (i / 10) % 2 ? STORE_FLAGS_REMOVE : STORE_FLAGS_ADD,
		                     STORE_FLAG_SEEN, 0, 0),
		                 STORE_OK);
	}
	struct stat st;
	char *log = xasprintf("%s/tern-index.log", root);
	assert_int_equal(stat(log, &st), 0);
	assert_true(st.st_size < 200000); /* compacted */
	free(log);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_vanished(box, m0, "3,7:8,15", true);
	store_mailbox_close(&box);
	/* A new process: the tombstones come from the snapshot. */
	box = open_box();
	assert_vanished(box, m0, "3,7:8,15", true);
	assert_vanished(box, m1 - 1, "15", true);
	assert_vanished(box, m1, "", true);
	store_mailbox_close(&box);
}

/* The last frame of tern-index is the VANISHED record; cut it off to get an index as
 * written before tombstones existed. */
static void strip_vanished_record(void)
{
	char *path = xasprintf("%s/tern-index", root);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* No tombstones: an empty record is 8 (frame) + 13 bytes, its type byte first. */
	unsigned char type;
	assert_int_equal(pread(fd, &type, 1, st.st_size - 13), 1);
	assert_int_equal(type, 6);
	assert_int_equal(ftruncate(fd, st.st_size - 21), 0);
	close(fd);
	free(path);
}

static void test_vanished_old_index_floor(void **state)
{
	(void)state;
	make_messages(6);
	struct store_mailbox *box = open_box();
	for (int i = 0; i < 3000; i++)
		assert_int_equal(
		    store_mailbox_set_flags(box, (uint32_t)(i % 6) + 1,
		                            (i / 6) % 2 ? STORE_FLAGS_REMOVE : STORE_FLAGS_ADD,
		                            STORE_FLAG_FLAGGED, 0, 0),
		    STORE_OK);
	store_mailbox_close(&box);
	/* The log was folded into snapshots along the way; cut the last one's record. */
	strip_vanished_record();
	box = open_box();
	uint64_t high = store_mailbox_highestmodseq(box);
	/* The floor is the snapshot's HIGHESTMODSEQ: below it, the superset (nothing is
	 * missing, so empty), flagged as not exact. */
	assert_vanished(box, 1, "", false);
	expunge(box, (const uint32_t[]){2}, 1);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_vanished(box, high + 1, "", true);
	assert_vanished(box, store_mailbox_highestmodseq(box) - 1, "2", true);
	assert_vanished(box, 1, "2", false);
	store_mailbox_close(&box);
}

static void test_vanished_cap(void **state)
{
	(void)state;
	/* 2 x 1100 messages; expunging every odd UID makes 1100 separate ranges. */
	make_messages(2200);
	struct store_mailbox *box = open_box();
	uint64_t m0 = store_mailbox_highestmodseq(box);
	uint32_t *odd = xreallocarray(NULL, 1100, sizeof(*odd));
	for (uint32_t i = 0; i < 1100; i++)
		odd[i] = 2 * i + 1;
	expunge(box, odd, 1100);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1100);
	uint64_t high = store_mailbox_highestmodseq(box);
	assert_int_equal(high, m0 + 1100);
	/* The newest expunges are still known exactly. */
	assert_vanished(box, high - 3, "2195,2197,2199", true);
	/* The oldest 76 were dropped: below the floor the answer is every odd UID (the UIDs
	 * not in the folder), never an even one. */
	bool exact;
	char *all = vanished(box, m0, &exact);
	assert_false(exact);
	assert_int_equal(strncmp(all, "1,3,5,", 6), 0);
	assert_non_null(strstr(all, ",2199"));
	assert_null(strstr(all, ":"));
	free(all);
	char *exact_part = vanished(box, m0 + 76, &exact);
	assert_true(exact);
	assert_int_equal(strncmp(exact_part, "153,155,", 8), 0);
	free(exact_part);
	store_mailbox_close(&box);
	box = open_box();
	char *again = vanished(box, m0 + 76, &exact);
	assert_true(exact);
	assert_int_equal(strncmp(again, "153,155,", 8), 0);
	free(again);
	store_mailbox_close(&box);
	free(odd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_vanished_exact_and_view, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vanished_survives_compaction_and_reopen, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_vanished_old_index_floor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vanished_cap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
