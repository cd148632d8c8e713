/*
 * Unit tests for the folder index: UID assignment, the view and sync reports, flags with
 * MODSEQ, expunge, append, copy/move, changes by other Maildir clients, damage and
 * rebuild, and dovecot-uidlist import.
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
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/maildir_name.h"
#include "store/mailbox.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("mailbox");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

static void assert_subject(struct store_mailbox *box, size_t seq, const char *subject)
{
	struct store_cache c;
	assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
	assert_string_equal(c.fields[MIME_FIELD_SUBJECT], subject);
	assert_non_null(strstr(c.envelope, subject));
	store_cache_free(&c);
}

static int count_files(const char *sub)
{
	char *p = xasprintf("%s/%s", root, sub);
	DIR *d = opendir(p);
	free(p);
	int n = 0;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return n;
}

static void test_new_messages_get_uids(void **state)
{
	(void)state;
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	assert_true(uidvalidity != 0);
	assert_int_equal(store_mailbox_count(box), 0);
	store_test_deliver(root, "one");
	store_test_deliver(root, "two");
	store_test_deliver(root, "three");
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 3);
	assert_int_equal(res.expunged_count, 0);
	assert_int_equal(store_mailbox_msg(box, 1)->uid, 1);
	assert_int_equal(store_mailbox_msg(box, 3)->uid, 3);
	assert_int_equal(store_mailbox_uidnext(box), 4);
	assert_subject(box, 1, "one");
	assert_subject(box, 3, "three");
	/* The size as IMAP counts it: the bare LF of "body\n" becomes CRLF. */
	const struct store_msg_info *m = store_mailbox_msg_info(box, 1);
	assert_int_equal(m->psize + 1, m->vsize);
	/* Moved from new/ to cur/. */
	assert_int_equal(count_files("new"), 0);
	assert_int_equal(count_files("cur"), 3);
	store_mailbox_close(&box);

	/* Reopened: same UIDs, same UIDVALIDITY. */
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	assert_int_equal(store_mailbox_count(box), 3);
	assert_int_equal(store_mailbox_msg(box, 2)->uid, 2);
	assert_subject(box, 2, "two");
	store_mailbox_close(&box);
	/* Only a folder migrated from Dovecot has a dovecot-uidlist (kept current). */
	char *uidlist = xasprintf("%s/dovecot-uidlist", root);
	assert_int_equal(access(uidlist, F_OK), -1);
	free(uidlist);
}

static void test_flags_and_modseq_across_handles(void **state)
{
	(void)state;
	store_test_deliver(root, "a");
	store_test_deliver(root, "b");
	struct store_mailbox *a = store_test_open(root), *b = store_test_open(root);
	uint64_t before = store_mailbox_msg(a, 1)->modseq;
	assert_int_equal(store_mailbox_set_flags(a, 1, STORE_FLAGS_ADD,
	                                         STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, 0, 0),
	                 STORE_OK);
	const struct store_msg *m = store_mailbox_msg(a, 1);
	assert_int_equal(m->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_true(m->modseq > before);
	uint64_t modseq = m->modseq;
	/* CONDSTORE: UNCHANGEDSINCE older than the message's modseq fails. */
	assert_int_equal(
	    store_mailbox_set_flags(a, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED, 0, modseq - 1),
	    STORE_EEXIST);
	assert_int_equal(
	    store_mailbox_set_flags(a, 1, STORE_FLAGS_REMOVE, STORE_FLAG_FLAGGED, 0, modseq),
	    STORE_OK);
	/* The file name carries the flags. */
	char *path = store_mailbox_msg_path(a, 1);
	assert_non_null(strstr(path, ":2,S"));
	assert_null(strchr(strstr(path, ":2,"), 'F'));
	free(path);
	/* The other handle sees the change at its next sync. */
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.changed_count, 1);
	assert_int_equal(res.changed_uids[0], 1);
	assert_int_equal(store_mailbox_msg(b, 1)->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_highestmodseq(b), store_mailbox_highestmodseq(a));
	/* Keywords. */
	int kw = store_mailbox_keyword(b, "$Forwarded", true);
	assert_true(kw >= 0);
	assert_int_equal(store_mailbox_set_flags(b, 2, STORE_FLAGS_REPLACE, 0, 1u << kw, 0),
	                 STORE_OK);
	assert_int_equal(store_mailbox_set_flags(b, 99, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_ENOENT);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	a = store_test_open(root);
	assert_int_equal(store_mailbox_msg(a, 2)->keywords, 1u << kw);
	assert_string_equal(store_mailbox_keyword_name(a, (unsigned int)kw), "$Forwarded");
	store_mailbox_close(&a);
}

static void test_expunge_reported_at_sync(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++)
		store_test_deliver(root, "m");
	struct store_mailbox *a = store_test_open(root), *b = store_test_open(root);
	uint32_t uids[] = {2, 4};
	assert_int_equal(store_mailbox_expunge(a, uids, 2), STORE_OK);
	/* Still in a's view until its sync. */
	assert_int_equal(store_mailbox_count(a), 5);
	assert_true(store_mailbox_msg(a, 2)->expunged);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 2);
	/* Sent in order: "* 2 EXPUNGE" then "* 3 EXPUNGE" (old 4 became 3). */
	assert_int_equal(res.expunged_seqs[0], 2);
	assert_int_equal(res.expunged_seqs[1], 3);
	assert_int_equal(res.exists, 3);
	assert_int_equal(store_mailbox_msg(b, 2)->uid, 3);
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 2);
	assert_int_equal(count_files("cur"), 3);
	/* Expunged UIDs are never handed out again. */
	store_test_deliver(root, "new");
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(store_mailbox_msg(a, 4)->uid, 6);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
}

static char *first_cur_name(void)
{
	char *p = xasprintf("%s/cur", root);
	DIR *d = opendir(p);
	free(p);
	struct dirent *de;
	char *name = NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			name = xstrdup(de->d_name);
	}
	closedir(d);
	return name;
}

static void test_other_maildir_clients(void **state)
{
	(void)state;
	store_test_deliver(root, "x");
	struct store_mailbox *box = store_test_open(root);
	/* mutt marks it read and replied by renaming; the UID stays. */
	char *name = first_cur_name();
	char *from = xasprintf("%s/cur/%s", root, name);
	char *base = xstrndup(name, maildir_name_base_len(name));
	char *to = xasprintf("%s/cur/%s:2,RS", root, base);
	assert_int_equal(rename(from, to), 0);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 1);
	assert_int_equal(res.changed_count, 1);
	assert_int_equal(store_mailbox_msg(box, 1)->uid, 1);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED);
	/* A rename we did not see yet, then our own flag change still works. */
	char *to2 = xasprintf("%s/cur/%s:2,S", root, base);
	assert_int_equal(rename(to, to2), 0);
	assert_int_equal(store_mailbox_set_flags(box, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0),
	                 STORE_OK);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	/* A script deletes the file: expunged at the next sync. */
	char *path = store_mailbox_msg_path(box, 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.exists, 0);
	free(path);
	free(name);
	free(from);
	free(base);
	free(to);
	free(to2);
	store_mailbox_close(&box);
}

static void test_append_copy_move(void **state)
{
	(void)state;
	char *sent = xasprintf("%s/.Sent", root);
	struct store_mailbox *inbox = store_test_open(root), *box = store_test_open(sent);
	struct store_append *app;
	const char *msg = "Subject: appended\r\n\r\nhello\r\n";
	assert_int_equal(store_mailbox_append_begin(inbox, STORE_FLAG_SEEN | STORE_FLAG_DRAFT, 0,
	                                            1700000000, &app),
	                 STORE_OK);
	assert_int_equal(store_mailbox_append_write(app, msg, strlen(msg)), STORE_OK);
	uint32_t uid = 0;
	assert_int_equal(store_mailbox_append_commit(&app, &uid), STORE_OK);
	assert_null(app);
	assert_int_equal(uid, 1);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(inbox, &res), STORE_OK);
	assert_int_equal(res.exists, 1);
	const struct store_msg *m = store_mailbox_msg(inbox, 1);
	assert_int_equal(store_mailbox_msg_info(inbox, 1)->idate, 1700000000);
	assert_int_equal(m->flags, STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	assert_int_equal(store_mailbox_msg_info(inbox, 1)->vsize, strlen(msg));
	assert_subject(inbox, 1, "appended");
	assert_int_equal(count_files("tmp"), 0);

	uint32_t new_uid = 0;
	assert_int_equal(store_mailbox_copy(inbox, 1, box, &new_uid), STORE_OK);
	assert_int_equal(new_uid, 1);
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 1);
	assert_int_equal(store_mailbox_msg_info(box, 1)->idate, 1700000000);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	/* A hard link: one inode, two names. */
	char *p = store_mailbox_msg_path(box, 1);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	free(p);
	assert_int_equal(store_mailbox_move(inbox, 1, box, &new_uid), STORE_OK);
	assert_int_equal(new_uid, 2);
	assert_int_equal(store_mailbox_sync(inbox, &res), STORE_OK);
	assert_int_equal(res.exists, 0);
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 2);
	assert_subject(box, 2, "appended");
	assert_int_equal(store_mailbox_copy(inbox, 1, box, &new_uid), STORE_ENOENT);
	store_mailbox_close(&inbox);
	store_mailbox_close(&box);
	free(sent);
}

static void corrupt(const char *file, off_t off, const char *bytes, size_t len)
{
	char *p = xasprintf("%s/%s", root, file);
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
	free(p);
}

static void test_damage_is_detected_and_rebuilt(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		store_test_deliver(root, "d");
	struct store_mailbox *box = store_test_open(root);
	uint32_t v = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	/* Force the log into the snapshot so the records live there. */
	box = store_test_open(root);
	store_mailbox_close(&box);

	/* A torn log tail (half a record) is ignored; UIDs stay. */
	char *log = xasprintf("%s/tern-index.log", root);
	int fd = open(log, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "\x40\x00\x00\x00\x01\x02", 6), 6);
	close(fd);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), v);
	assert_int_equal(store_mailbox_count(box), 4);
	assert_int_equal(store_mailbox_msg(box, 4)->uid, 4);
	store_mailbox_close(&box);

	/* The cache file vanishes: rebuilt from the messages on use. (The first open does
	 * not parse: reading a message builds the cache.) */
	box = store_test_open(root);
	assert_subject(box, 3, "d");
	store_mailbox_close(&box);
	char *cache = xasprintf("%s/tern-cache", root);
	assert_int_equal(unlink(cache), 0);
	box = store_test_open(root);
	assert_subject(box, 3, "d");
	store_mailbox_close(&box);

	/* A damaged snapshot header: rebuilt from the files with a new UIDVALIDITY. */
	corrupt("tern-index", 12, "\xff\xff", 2);
	box = store_test_open(root);
	assert_true(store_mailbox_uidvalidity(box) != v);
	assert_int_equal(store_mailbox_count(box), 4);
	assert_subject(box, 1, "d");
	store_mailbox_close(&box);
	free(log);
	free(cache);
}

static void test_dovecot_uidlist_import(void **state)
{
	(void)state;
	store_test_deliver(root, "first");
	store_test_deliver(root, "second");
	store_test_deliver(root, "third");
	/* Dovecot knew the first two (as UIDs 5 and 7), and the next UID was 10. */
	char *newdir = xasprintf("%s/new", root);
	DIR *d = opendir(newdir);
	char *names[3];
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	assert_int_equal(n, 3);
	qsort(names, 3, sizeof(char *), (int (*)(const void *, const void *))strcmp);
	char *ul = xasprintf("3 V1234567 N10 Gabc\n5 W99 :%s\n7 :%s:2,S\n", names[0], names[1]);
	char *path = xasprintf("%s/dovecot-uidlist", root);
	FILE *f = fopen(path, "w");
	fputs(ul, f);
	fclose(f);
	struct store_mailbox *box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), 1234567);
	assert_int_equal(store_mailbox_count(box), 3);
	assert_int_equal(store_mailbox_msg(box, 1)->uid, 5);
	assert_int_equal(store_mailbox_msg(box, 2)->uid, 7);
	assert_int_equal(store_mailbox_msg(box, 3)->uid, 10);
	assert_int_equal(store_mailbox_uidnext(box), 11);
	store_mailbox_close(&box);
	for (int i = 0; i < 3; i++)
		free(names[i]);
	free(newdir);
	free(ul);
	free(path);
}

static void test_log_compaction(void **state)
{
	(void)state;
	for (int i = 0; i < 20; i++)
		store_test_deliver(root, "c");
	struct store_mailbox *box = store_test_open(root), *other = store_test_open(root);
	/* Enough flag changes to pass the compaction threshold several times. */
	for (int i = 0; i < 3000; i++) {
		uint32_t uid = (uint32_t)(i % 20) + 1;
		assert_int_equal(store_mailbox_set_flags(
		                     box, uid, (i / 20) % 2 ? STORE_FLAGS_REMOVE : STORE_FLAGS_ADD,
		                     STORE_FLAG_SEEN, 0, 0),
		                 STORE_OK);
	}
	struct stat st;
	char *log = xasprintf("%s/tern-index.log", root);
	assert_int_equal(stat(log, &st), 0);
	assert_true(st.st_size < 200000);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(other, &res), STORE_OK);
	for (size_t seq = 1; seq <= 20; seq++) {
		/* 150 rounds over the 20 messages; the last round removes \Seen. */
		assert_int_equal(store_mailbox_msg(other, seq)->flags, 0);
	}
	assert_int_equal(store_mailbox_highestmodseq(other), store_mailbox_highestmodseq(box));
	store_mailbox_close(&box);
	store_mailbox_close(&other);
	free(log);
}

static void test_msg_pointer_stays_valid(void **state)
{
	(void)state;
	store_test_deliver(root, "first");
	struct store_mailbox *box = store_test_open(root), *other = store_test_open(root);
	const struct store_msg *m = store_mailbox_msg(box, 1);
	/* Many messages arrive and another process indexes them; our change catches up with
	 * all of it (growing the arrays), and the pointer we hold still shows message 1. */
	for (int i = 0; i < 300; i++)
		store_test_deliver(root, "more");
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(other, &res), STORE_OK);
	assert_int_equal(res.exists, 301);
	assert_int_equal(store_mailbox_set_flags(box, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	assert_int_equal(m->uid, 1);
	assert_int_equal(m->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_count(box), 1);
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 301);
	store_mailbox_close(&box);
	store_mailbox_close(&other);
}

static void test_msg_pointer_survives_snapshot_reload(void **state)
{
	(void)state;
	for (int i = 0; i < 20; i++)
		store_test_deliver(root, "s");
	struct store_mailbox *other = store_test_open(root);
	store_test_churn(other, 20, 2000); /* the messages now live in a snapshot */
	struct stat st1, st2;
	char *idx = xasprintf("%s/tern-index", root);
	assert_int_equal(stat(idx, &st1), 0);
	/* Held open so that its inode number is not reused by the next snapshot. */
	int hold = open(idx, O_RDONLY | O_CLOEXEC);
	assert_true(hold >= 0);
	struct store_mailbox *box = store_test_open(root); /* loads that snapshot */
	const struct store_msg *m = store_mailbox_msg(box, 1);
	char *path = store_mailbox_msg_path(box, 1);
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	/* Another handle replaces the snapshot; our next change reloads it and merges. */
	store_test_churn(other, 20, 2001); /* ends with \Seen added on uid 1 */
	assert_int_equal(stat(idx, &st2), 0);
	assert_true(st1.st_ino != st2.st_ino);
	assert_int_equal(store_mailbox_set_flags(box, 2, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0),
	                 STORE_OK);
	assert_int_equal(m->uid, 1);
	assert_int_equal(m->flags, STORE_FLAG_SEEN);
	path = store_mailbox_msg_path(box, 1);
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 20);
	assert_true((store_mailbox_msg(box, 2)->flags & STORE_FLAG_FLAGGED) != 0);
	/* Reopening (one block for all the messages) still sees everything. */
	store_mailbox_close(&box);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 20);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_msg(box, 20)->uid, 20);
	store_mailbox_close(&box);
	store_mailbox_close(&other);
	close(hold);
	free(idx);
}

static void test_cache_compaction(void **state)
{
	(void)state;
	char subject[700];
	for (int i = 0; i < 300; i++) {
		snprintf(subject, sizeof(subject), "%d %0600d", i, 0);
		store_test_deliver(root, subject);
	}
	struct store_mailbox *a = store_test_open(root), *b = store_test_open(root);
	/* b builds every blob (the first open parses nothing) and opens the cache file. */
	for (size_t seq = 1; seq <= 300; seq++) {
		struct store_cache c0;
		assert_int_equal(store_mailbox_cache(b, seq, &c0), STORE_OK);
		store_cache_free(&c0);
	}
	uint32_t uids[295];
	for (uint32_t i = 0; i < 295; i++)
		uids[i] = i + 1;
	char *cache = xasprintf("%s/tern-cache", root);
	struct stat before, after;
	assert_int_equal(stat(cache, &before), 0);
	assert_int_equal(store_mailbox_expunge(a, uids, 295), STORE_OK);
	assert_int_equal(stat(cache, &after), 0);
	/* Rewritten with only the five live blobs. */
	assert_true(after.st_size * 20 < before.st_size);
	assert_true(after.st_ino != before.st_ino);
	/* b still has the old file open: it notices and reads the new one. */
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(res.exists, 5);
	for (size_t seq = 1; seq <= 5; seq++) {
		struct store_cache c;
		assert_int_equal(store_mailbox_cache(b, seq, &c), STORE_OK);
		snprintf(subject, sizeof(subject), "%zu %0600d", 294 + seq, 0);
		assert_string_equal(c.fields[MIME_FIELD_SUBJECT], subject);
		store_cache_free(&c);
	}
	/* Nobody had to rebuild a blob: the file did not grow. */
	struct stat last;
	assert_int_equal(stat(cache, &last), 0);
	assert_int_equal(last.st_size, after.st_size);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	free(cache);
}

static void test_arrival_order(void **state)
{
	(void)state;
	/* Names whose numbers are not zero-padded: "M99" arrived before "M123", Q2 before Q10. */
	static const char *const names[] = {"1700000000.M123P7Q2.h", "1700000000.M99P7Q1.h",
	                                    "1699999999.M5P7Q9.h", "1700000000.M123P7Q10.h"};
	static const char *const subjects[] = {"third", "second", "first", "fourth"};
	char *dir = xasprintf("%s/new", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int i = 0; i < 4; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		FILE *f = fopen(p, "w");
		assert_non_null(f);
		fprintf(f, "Subject: %s\n\nx\n", subjects[i]);
		fclose(f);
		free(p);
	}
	free(dir);
	struct store_mailbox *box = store_test_open(root);
	assert_subject(box, 1, "first");
	assert_subject(box, 2, "second");
	assert_subject(box, 3, "third");
	assert_subject(box, 4, "fourth");
	store_mailbox_close(&box);
}

static void test_set_flags_many(void **state)
{
	(void)state;
	for (int i = 0; i < 6; i++)
		store_test_deliver(root, "many");
	struct store_mailbox *box = store_test_open(root);
	uint32_t uids[] = {1, 2, 3, 4, 5, 6, 42};
	uint32_t modified[7];
	size_t n_modified = 9;
	assert_int_equal(store_mailbox_set_flags_many(box, uids, 7, STORE_FLAGS_ADD,
	                                              STORE_FLAG_SEEN, 0, 0, modified, &n_modified),
	                 STORE_OK);
	assert_int_equal(n_modified, 0);
	for (size_t seq = 1; seq <= 6; seq++)
		assert_int_equal(store_mailbox_msg(box, seq)->flags, STORE_FLAG_SEEN);
	/* Message 2 changes again; an UNCHANGEDSINCE from before that reports it. */
	uint64_t since = store_mailbox_highestmodseq(box);
	assert_int_equal(store_mailbox_set_flags(box, 2, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0),
	                 STORE_OK);
	assert_int_equal(store_mailbox_set_flags_many(box, uids, 6, STORE_FLAGS_ADD,
	                                              STORE_FLAG_ANSWERED, 0, since, modified,
	                                              &n_modified),
	                 STORE_OK);
	assert_int_equal(n_modified, 1);
	assert_int_equal(modified[0], 2);
	assert_int_equal(store_mailbox_msg(box, 2)->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_int_equal(store_mailbox_msg(box, 3)->flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED);
	store_mailbox_close(&box);
}

/* Sets dir's mtime to 100 s ago (outside the window in which every open rescans). */
static struct timespec age_dir(const char *sub)
{
	char *dir = xasprintf("%s/%s", root, sub);
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 100;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
	free(dir);
	return ts[0];
}

static void set_dir_time(const char *sub, struct timespec t)
{
	char *dir = xasprintf("%s/%s", root, sub);
	struct timespec ts[2] = {t, t};
	assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
	free(dir);
}

static void test_reindex_sees_what_dir_times_hide(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		store_test_deliver(root, "r");
	struct store_mailbox *box = store_test_open(root);
	uint32_t uids[3];
	for (size_t i = 0; i < 3; i++)
		uids[i] = store_mailbox_msg(box, i + 1)->uid;
	char *path = store_mailbox_msg_path(box, 2);
	store_mailbox_close(&box);
	/* A scan now records directory times outside the dirty window. */
	struct timespec cur_t = age_dir("cur"), new_t = age_dir("new");
	box = store_test_open(root);
	store_mailbox_close(&box);
	/* Behind the store's back, keeping the directory times: message 2 gets \Seen by a
	 * rename, a new file appears in cur/. */
	char *seen = xasprintf("%sS", path);
	assert_int_equal(rename(path, seen), 0);
	char *dropped = xasprintf("%s/cur/2000000000.M1P1Q1.restored:2,", root);
	FILE *f = fopen(dropped, "w");
	assert_non_null(f);
	fputs("Subject: restored\r\n\r\nbody\r\n", f);
	fclose(f);
	set_dir_time("cur", cur_t);
	set_dir_time("new", new_t);
	/* A plain open trusts the times: nothing changed for it. */
	box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 3);
	assert_int_equal(store_mailbox_msg(box, 2)->flags & STORE_FLAG_SEEN, 0);
	/* Reindex looks at the files: same UIDs, the new flag, the new file after them. */
	assert_int_equal(store_mailbox_reindex(box), STORE_OK);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 4);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_mailbox_msg(box, i + 1)->uid, uids[i]);
	assert_true((store_mailbox_msg(box, 2)->flags & STORE_FLAG_SEEN) != 0);
	assert_true(store_mailbox_msg(box, 4)->uid > uids[2]);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	/* Written into a fresh snapshot: the log holds only its header. */
	char *log = xasprintf("%s/tern-index.log", root);
	struct stat sb;
	assert_int_equal(stat(log, &sb), 0);
	assert_int_equal(sb.st_size, 20);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	assert_int_equal(store_mailbox_count(box), 4);
	assert_true((store_mailbox_msg(box, 2)->flags & STORE_FLAG_SEEN) != 0);
	store_mailbox_close(&box);
	free(log);
	free(dropped);
	free(seen);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_messages_get_uids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_and_modseq_across_handles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expunge_reported_at_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_maildir_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_copy_move, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damage_is_detected_and_rebuilt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dovecot_uidlist_import, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_compaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_flags_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_compaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_arrival_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_pointer_stays_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_pointer_survives_snapshot_reload, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reindex_sees_what_dir_times_hide, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
