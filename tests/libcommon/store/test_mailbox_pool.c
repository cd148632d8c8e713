/*
 * Unit tests for the store pool: handles of one process sharing one loaded folder
 * (store_mailbox_open_pooled) must each see the folder exactly as separate handles (or
 * processes) do: changes by others only at their own sync, their own sequence numbers,
 * any close order, a handle outliving the others. Plus the shared descriptors, the kept
 * idle folder, and a differential test: the same random operations on pooled handles and
 * on plain handles of a second folder give the same sync reports and views.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"
#include "store/mailbox_private.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("pool");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

static struct store_mailbox *open_pooled(struct store_pool *pool, const char *path)
{
	struct store_mailbox *box = NULL;
	const char *error = NULL;
	assert_int_equal(store_mailbox_open_pooled(pool, path, &box, &error), STORE_OK);
	assert_non_null(box);
	return box;
}

static struct store_mailbox *open_plain(const char *path)
{
	struct store_mailbox *box = NULL;
	const char *error = NULL;
	assert_int_equal(store_mailbox_open(path, &box, &error), STORE_OK);
	return box;
}

static void assert_subject(struct store_mailbox *box, size_t seq, const char *subject)
{
	struct store_cache c;
	assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
	assert_string_equal(c.fields[MIME_FIELD_SUBJECT], subject);
	store_cache_free(&c);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_pool_shares_descriptors(void **state)
{
	(void)state;
	store_test_deliver(root, "one");
	struct store_pool *pool = store_pool_new(0);
	int before = open_fds();
	struct store_mailbox *boxes[50];
	boxes[0] = open_pooled(pool, root);
	int one = open_fds();
	assert_true(one > before);
	for (int i = 1; i < 50; i++)
		boxes[i] = open_pooled(pool, root);
	/* 50 handles hold what one does. */
	assert_int_equal(open_fds(), one);
	assert_int_equal(store_pool_folders(pool), 1);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(store_mailbox_count(boxes[i]), 1);
		assert_subject(boxes[i], 1, "one");
	}
	for (int i = 0; i < 50; i++)
		store_mailbox_close(&boxes[i]);
	/* keep_idle 0: the folder goes with its last handle. */
	assert_int_equal(store_pool_folders(pool), 0);
	assert_int_equal(open_fds(), before);
	store_pool_free(&pool);
}

static void test_pool_expunge_seen_at_each_sync(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++)
		store_test_deliver(root, "m");
	struct store_pool *pool = store_pool_new(4);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root);
	uint32_t uids[] = {2, 4};
	assert_int_equal(store_mailbox_expunge(a, uids, 2), STORE_OK);
	/* Still in both views until each one's sync; reads still work. */
	assert_int_equal(store_mailbox_count(a), 5);
	assert_int_equal(store_mailbox_count(b), 5);
	assert_true(store_mailbox_msg(a, 2)->expunged);
	assert_int_equal(store_mailbox_msg(b, 4)->uid, 4);
	/* A handle opened now sees the folder as it is. */
	struct store_mailbox *c = open_pooled(pool, root);
	assert_int_equal(store_mailbox_count(c), 3);
	assert_int_equal(store_mailbox_msg(c, 2)->uid, 3);
	/* ... which does not change what a and b show. */
	assert_int_equal(store_mailbox_count(b), 5);
	assert_int_equal(store_mailbox_seq(b, 4), 4);
	assert_subject(b, 5, "m");
	assert_int_equal(store_mailbox_set_flags(b, 4, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_ENOENT);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 2);
	assert_int_equal(res.expunged_seqs[0], 2);
	assert_int_equal(res.expunged_seqs[1], 3);
	assert_int_equal(res.exists, 3);
	assert_int_equal(store_mailbox_msg(b, 2)->uid, 3);
	assert_int_equal(store_mailbox_count(a), 5);
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 2);
	assert_int_equal(store_mailbox_sync(c, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 0);
	assert_int_equal(res.exists, 3);
	/* A second sync reports nothing again. */
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 0);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_mailbox_close(&c);
	store_pool_free(&pool);
}

static void test_pool_flags_reported_to_each_handle(void **state)
{
	(void)state;
	store_test_deliver(root, "a");
	store_test_deliver(root, "b");
	struct store_pool *pool = store_pool_new(4);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root);
	struct store_mailbox *other = open_plain(root); /* another process */
	assert_int_equal(store_mailbox_set_flags(a, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	assert_int_equal(
	    store_mailbox_set_flags(other, 2, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0), STORE_OK);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.changed_count, 2);
	assert_int_equal(res.changed_uids[0], 1);
	assert_int_equal(res.changed_uids[1], 2);
	assert_int_equal(store_mailbox_msg(b, 1)->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_msg(b, 2)->flags, STORE_FLAG_FLAGGED);
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.changed_count, 0);
	/* a learns of both too, at its own sync (as a handle of its own would). */
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.changed_count, 2);
	assert_int_equal(store_mailbox_highestmodseq(a), store_mailbox_highestmodseq(other));
	/* Keywords created through one handle are known to the others. */
	int kw = store_mailbox_keyword(a, "$Junk", true);
	assert_true(kw >= 0);
	assert_int_equal(store_mailbox_keyword(b, "$Junk", false), kw);
	assert_string_equal(store_mailbox_keyword_name(b, (unsigned int)kw), "$Junk");
	store_mailbox_close(&other);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_pool_free(&pool);
}

static void test_pool_new_messages_join_at_sync(void **state)
{
	(void)state;
	store_test_deliver(root, "first");
	struct store_pool *pool = store_pool_new(4);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root);
	const struct store_msg *m = store_mailbox_msg(b, 1);
	struct store_append *app;
	const char *msg = "Subject: appended\r\n\r\nhello\r\n";
	assert_int_equal(store_mailbox_append_begin(a, 0, 0, 0, &app), STORE_OK);
	assert_int_equal(store_mailbox_append_write(app, msg, strlen(msg)), STORE_OK);
	uint32_t uid = 0;
	assert_int_equal(store_mailbox_append_commit(&app, &uid), STORE_OK);
	assert_int_equal(uid, 2);
	store_test_deliver(root, "delivered");
	assert_int_equal(store_mailbox_count(a), 1);
	assert_int_equal(store_mailbox_count(b), 1);
	assert_int_equal(store_mailbox_seq(b, 2), 0);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.exists, 3);
	assert_int_equal(store_mailbox_count(a), 1);
	assert_subject(b, 2, "appended");
	assert_subject(b, 3, "delivered");
	assert_int_equal(m->uid, 1); /* b's pointer from before the sync */
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.exists, 3);
	assert_int_equal(store_mailbox_seq(a, 3), 3);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_pool_free(&pool);
}

static void test_pool_close_order_and_survivor(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		store_test_deliver(root, "s");
	struct store_pool *pool = store_pool_new(0);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root),
	                     *c = open_pooled(pool, root);
	const struct store_msg *m = store_mailbox_msg(c, 2);
	/* The cache is built on first use (the first open parses nothing): read message 2
	 * once while its file exists, so the read after the expunge comes from the cache. */
	assert_subject(c, 2, "s");
	uint32_t uid = 2;
	/* The first opener expunges and goes; the second syncs past it and goes. */
	assert_int_equal(store_mailbox_expunge(a, &uid, 1), STORE_OK);
	store_mailbox_close(&a);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	store_mailbox_close(&b);
	/* c still shows message 2 (expunged, readable) until its sync. */
	assert_int_equal(store_mailbox_count(c), 4);
	assert_int_equal(m->uid, 2);
	assert_true(m->expunged);
	assert_subject(c, 2, "s");
	store_test_deliver(root, "late");
	assert_int_equal(store_mailbox_sync(c, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.expunged_seqs[0], 2);
	assert_int_equal(res.exists, 4);
	assert_subject(c, 4, "late");
	/* A handle opened after all that shares c's folder. */
	a = open_pooled(pool, root);
	assert_int_equal(store_pool_folders(pool), 1);
	store_mailbox_close(&c);
	assert_int_equal(store_mailbox_count(a), 4);
	store_mailbox_close(&a);
	assert_int_equal(store_pool_folders(pool), 0);
	/* Freeing the pool while a handle is open: the handle keeps its folder. */
	a = open_pooled(pool, root);
	store_pool_free(&pool);
	store_test_deliver(root, "after");
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.exists, 5);
	store_mailbox_close(&a);
}

static void test_pool_keeps_idle_folder_and_catches_up(void **state)
{
	(void)state;
	char *sent = xasprintf("%s/.Sent", root);
	store_test_deliver(root, "kept");
	struct store_pool *pool = store_pool_new(1);
	struct store_mailbox *a = open_pooled(pool, root);
	store_mailbox_close(&a);
	assert_int_equal(store_pool_folders(pool), 1); /* kept, with no handle */
	/* Meanwhile another process expunges and a delivery comes. */
	struct store_mailbox *other = open_plain(root);
	uint32_t uid = 1;
	assert_int_equal(store_mailbox_expunge(other, &uid, 1), STORE_OK);
	store_mailbox_close(&other);
	store_test_deliver(root, "new");
	a = open_pooled(pool, root);
	assert_int_equal(store_mailbox_count(a), 1);
	assert_int_equal(store_mailbox_msg(a, 1)->uid, 2);
	assert_subject(a, 1, "new");
	store_mailbox_close(&a);
	/* A second folder pushes the first out (keep_idle 1). */
	struct store_mailbox *s = open_pooled(pool, sent);
	assert_int_equal(store_pool_folders(pool), 2);
	store_mailbox_close(&s);
	assert_int_equal(store_pool_folders(pool), 1);
	store_pool_free(&pool);
	free(sent);
}

/* A handle opened on its own (imapd opens a folder it has not loaded on another thread)
 * joins the pool: its folder is then the pool's, catches up with what changed since, and
 * stays loaded after its last handle; a second one, made while the pool already had the
 * folder, is exchanged for a handle on the pool's folder. */
static void test_pool_adopts_plain_handle(void **state)
{
	(void)state;
	store_test_deliver(root, "one");
	struct store_pool *pool = store_pool_new(2);
	struct store_mailbox *a = open_plain(root);
	assert_false(store_pool_loaded(pool, root));
	store_test_deliver(root, "two"); /* after its load: seen by the adoption's catch-up */
	const char *error = NULL;
	assert_int_equal(store_pool_adopt(pool, root, &a, &error), STORE_OK);
	assert_true(store_pool_loaded(pool, root));
	assert_int_equal(store_pool_folders(pool), 1);
	assert_int_equal(store_mailbox_count(a), 2);
	assert_subject(a, 2, "two");
	struct store_mailbox *b = open_plain(root);
	struct store_mailbox *plain_b = b;
	assert_int_equal(store_pool_adopt(pool, root, &b, &error), STORE_OK);
	assert_true(b != plain_b && b->f == a->f); /* the pool's folder, shared */
	assert_int_equal(store_pool_folders(pool), 1);
	uint32_t uid = store_mailbox_msg(a, 1)->uid;
	assert_int_equal(store_mailbox_set_flags(a, uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	assert_true((store_mailbox_msg(b, 1)->flags & STORE_FLAG_SEEN) != 0);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	assert_int_equal(store_pool_folders(pool), 1); /* kept, with no handle */
	store_pool_free(&pool);
}

/* A kept idle folder whose directory was renamed away and replaced by another one of the
 * same name (another process's RENAME/DELETE + CREATE) must not be reused: the next open
 * shows the new directory, and the renamed one keeps its own messages. */
static void test_pool_forgets_replaced_folder(void **state)
{
	(void)state;
	char *work = xasprintf("%s/.Work", root), *moved = xasprintf("%s/.Moved", root);
	store_test_deliver(work, "old");
	struct store_pool *pool = store_pool_new(4);
	struct store_mailbox *a = open_pooled(pool, work);
	assert_int_equal(store_mailbox_count(a), 1);
	store_mailbox_close(&a);
	assert_int_equal(store_pool_folders(pool), 1); /* kept, with no handle */
	assert_int_equal(rename(work, moved), 0);
	store_test_deliver(work, "fresh one");
	store_test_deliver(work, "fresh two");
	a = open_pooled(pool, work);
	assert_int_equal(store_mailbox_count(a), 2);
	assert_subject(a, 1, "fresh one");
	assert_subject(a, 2, "fresh two");
	assert_int_equal(store_pool_folders(pool), 1); /* the stale one was dropped */
	struct store_mailbox *m = open_pooled(pool, moved);
	assert_int_equal(store_mailbox_count(m), 1);
	assert_subject(m, 1, "old");
	store_mailbox_close(&m);
	/* Replaced while a handle still has it open: that handle keeps the old directory. */
	assert_int_equal(rename(work, moved), -1); /* .Moved is not empty */
	char *gone = xasprintf("%s/.Gone", root);
	assert_int_equal(rename(work, gone), 0);
	store_test_deliver(work, "third");
	struct store_mailbox *b = open_pooled(pool, work);
	assert_int_equal(store_mailbox_count(b), 1);
	assert_subject(b, 1, "third");
	assert_int_equal(store_mailbox_count(a), 2);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_pool_free(&pool);
	free(work);
	free(moved);
	free(gone);
}

static void test_pool_snapshot_reload_by_other_process(void **state)
{
	(void)state;
	for (int i = 0; i < 20; i++)
		store_test_deliver(root, "r");
	struct store_mailbox *other = open_plain(root);
	store_test_churn(other, 20, 2000);
	struct stat st1;
	char *idx = xasprintf("%s/tern-index", root);
	assert_int_equal(stat(idx, &st1), 0);
	int hold = open(idx, O_RDONLY | O_CLOEXEC);
	assert_true(hold >= 0);
	struct store_pool *pool = store_pool_new(2);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root);
	const struct store_msg *m = store_mailbox_msg(b, 1);
	uint32_t uid = 5;
	assert_int_equal(store_mailbox_expunge(other, &uid, 1), STORE_OK);
	store_test_churn(other, 4, 2001); /* a new snapshot; ends with \Seen on uid 1 */
	struct stat st2;
	assert_int_equal(stat(idx, &st2), 0);
	assert_true(st1.st_ino != st2.st_ino);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.exists, 19);
	assert_int_equal(m->uid, 1);
	assert_int_equal(m->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_count(b), 20);
	assert_true(store_mailbox_msg(b, 5)->expunged);
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.expunged_seqs[0], 5);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_mailbox_close(&other);
	store_pool_free(&pool);
	close(hold);
	free(idx);
}

static void test_pool_sort_date_shared(void **state)
{
	(void)state;
	store_test_deliver(root, "x");
	store_test_deliver(root, "y");
	struct store_pool *pool = store_pool_new(2);
	struct store_mailbox *a = open_pooled(pool, root), *b = open_pooled(pool, root);
	int64_t d = 0;
	assert_false(store_mailbox_sort_date(a, 1, &d));
	store_mailbox_set_sort_date(a, 2, 1700000000);
	store_mailbox_set_sort_date(a, 3, 5); /* past the view: ignored */
	assert_true(store_mailbox_sort_date(b, 2, &d));
	assert_int_equal(d, 1700000000);
	assert_false(store_mailbox_sort_date(b, 1, &d));
	assert_false(store_mailbox_sort_date(b, 3, &d));
	/* A plain handle (its own folder) does not see the pool's keys. */
	struct store_mailbox *other = open_plain(root);
	assert_false(store_mailbox_sort_date(other, 2, &d));
	/* Kept across syncs and flag changes. */
	assert_int_equal(store_mailbox_set_flags(other, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_true(store_mailbox_sort_date(b, 2, &d));
	assert_int_equal(d, 1700000000);
	store_mailbox_close(&other);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_pool_free(&pool);
}

/* The same operations on pooled handles of folder P and plain handles of folder Q. */
#define DIFF_HANDLES 3

static void assert_same_result(const struct store_sync_result *p, const struct store_sync_result *q)
{
	assert_int_equal(p->exists, q->exists);
	assert_int_equal(p->uidvalidity_changed, q->uidvalidity_changed);
	assert_int_equal(p->expunged_count, q->expunged_count);
	for (size_t i = 0; i < p->expunged_count; i++)
		assert_int_equal(p->expunged_seqs[i], q->expunged_seqs[i]);
	assert_int_equal(p->changed_count, q->changed_count);
	for (size_t i = 0; i < p->changed_count; i++)
		assert_int_equal(p->changed_uids[i], q->changed_uids[i]);
}

static void assert_same_view(struct store_mailbox *p, struct store_mailbox *q)
{
	assert_int_equal(store_mailbox_count(p), store_mailbox_count(q));
	for (size_t seq = 1; seq <= store_mailbox_count(p); seq++) {
		const struct store_msg *a = store_mailbox_msg(p, seq),
		                       *b = store_mailbox_msg(q, seq);
		assert_int_equal(a->uid, b->uid);
		assert_int_equal(a->flags, b->flags);
		assert_int_equal(a->expunged, b->expunged);
		assert_int_equal(store_mailbox_seq(p, a->uid), seq);
	}
	assert_int_equal(store_mailbox_uidnext(p), store_mailbox_uidnext(q));
}

static void test_pool_matches_separate_handles(void **state)
{
	(void)state;
	char *pdir = xasprintf("%s/P", root), *qdir = xasprintf("%s/Q", root);
	struct store_pool *pool = store_pool_new(2);
	struct store_mailbox *p[DIFF_HANDLES], *q[DIFF_HANDLES];
	for (int i = 0; i < DIFF_HANDLES; i++) {
		p[i] = open_pooled(pool, pdir);
		q[i] = open_plain(qdir);
	}
	uint32_t seed = 12345;
	for (int step = 0; step < 600; step++) {
		seed = seed * 1103515245u + 12345u;
		uint32_t r = seed >> 8;
		int h = (int)(r % DIFF_HANDLES);
		uint32_t uid = (r >> 4) % (store_mailbox_uidnext(p[h]) + 1) + 1;
		struct store_sync_result pr, qr;
		switch ((r >> 12) % 8) {
		case 0:
			store_test_deliver(pdir, "d");
			store_test_deliver(qdir, "d");
			break;
		case 1:
		case 2: {
			uint32_t fl = (r >> 16) % 2 ? STORE_FLAG_SEEN : STORE_FLAG_FLAGGED;
			enum store_flags_mode mode =
			    (r >> 17) % 2 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
			assert_int_equal(store_mailbox_set_flags(p[h], uid, mode, fl, 0, 0),
			                 store_mailbox_set_flags(q[h], uid, mode, fl, 0, 0));
			break;
		}
		case 3:
			assert_int_equal(store_mailbox_expunge(p[h], &uid, 1),
			                 store_mailbox_expunge(q[h], &uid, 1));
			break;
		case 4:
		case 5:
			assert_int_equal(store_mailbox_sync(p[h], &pr), STORE_OK);
			assert_int_equal(store_mailbox_sync(q[h], &qr), STORE_OK);
			assert_same_result(&pr, &qr);
			assert_same_view(p[h], q[h]);
			break;
		case 6: {
			struct store_mailbox *boxes[2] = {p[h], q[h]};
			uint32_t uids[2];
			for (int i = 0; i < 2; i++) {
				struct store_append *app;
				assert_int_equal(
				    store_mailbox_append_begin(boxes[i], 0, 0, 1, &app), STORE_OK);
				assert_int_equal(
				    store_mailbox_append_write(app, "Subject: x\r\n\r\n", 14),
				    STORE_OK);
				assert_int_equal(store_mailbox_append_commit(&app, &uids[i]),
				                 STORE_OK);
			}
			assert_int_equal(uids[0], uids[1]);
			break;
		}
		default:
			store_mailbox_close(&p[h]);
			store_mailbox_close(&q[h]);
			p[h] = open_pooled(pool, pdir);
			q[h] = open_plain(qdir);
			assert_same_view(p[h], q[h]);
			break;
		}
		/* Any handle's view, between syncs, shows the same messages. */
		assert_int_equal(store_mailbox_count(p[(h + 1) % DIFF_HANDLES]),
		                 store_mailbox_count(q[(h + 1) % DIFF_HANDLES]));
	}
	for (int i = 0; i < DIFF_HANDLES; i++) {
		struct store_sync_result pr, qr;
		assert_int_equal(store_mailbox_sync(p[i], &pr), STORE_OK);
		assert_int_equal(store_mailbox_sync(q[i], &qr), STORE_OK);
		assert_same_result(&pr, &qr);
		assert_same_view(p[i], q[i]);
		store_mailbox_close(&p[i]);
		store_mailbox_close(&q[i]);
	}
	assert_int_equal(store_pool_folders(pool), 1);
	store_pool_free(&pool);
	free(pdir);
	free(qdir);
}

int main(void)
{
	/* Map every snapshot: the small ones read into the heap are what the other tests use. */
	mbox_map_min = 0;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pool_shares_descriptors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_expunge_seen_at_each_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_flags_reported_to_each_handle, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pool_new_messages_join_at_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_close_order_and_survivor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_keeps_idle_folder_and_catches_up, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pool_adopts_plain_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_forgets_replaced_folder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_snapshot_reload_by_other_process, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pool_sort_date_shared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_matches_separate_handles, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
