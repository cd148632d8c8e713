/*
 * The first open of a folder without parsing (sizes from ",S=" and ",W=" or a count of bare
 * LFs, the cache built on first use), ",W=" in the names tern writes, a replaced index that
 * got the old inode number, and a message whose file was renamed by a writer that died
 * before logging it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_parser.h"
#include "store/mailbox.h"
#include "store/mailbox_private.h"
#include "store/maildir_deliver.h"
#include "store/maildir_name.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("firstopen");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

static void deliver(const char *subject)
{
	store_test_deliver(root, subject);
}

static void assert_subject(struct store_mailbox *box, size_t seq, const char *subject)
{
	struct store_cache c;
	assert_int_equal(store_mailbox_cache(box, seq, &c), STORE_OK);
	assert_non_null(c.fields[MIME_FIELD_SUBJECT]);
	assert_string_equal(c.fields[MIME_FIELD_SUBJECT], subject);
	store_cache_free(&c);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* The only file in dir (a cur/), its name into name_r (caller frees). */
static char *only_file(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *found = NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_null(found);
		found = xstrdup(de->d_name);
	}
	closedir(d);
	assert_non_null(found);
	return found;
}

/* What the MIME parser says RFC822.SIZE is. */
static uint64_t parsed_vsize(const char *data, size_t len)
{
	struct mime_part *p = mime_parse_buffer(data, len, NULL);
	uint64_t v = p->header.virtual_size + p->body.virtual_size;
	mime_part_free(&p);
	return v;
}

static void test_count_bare_lf(void **state)
{
	(void)state;
	bool cr = false;
	assert_int_equal(maildir_count_bare_lf("a\nb\r\nc\n", 7, &cr), 2);
	assert_false(cr);
	/* A CRLF cut between two pieces is not a bare LF. */
	assert_int_equal(maildir_count_bare_lf("x\r", 2, &cr), 0);
	assert_true(cr);
	assert_int_equal(maildir_count_bare_lf("\n\n", 2, &cr), 1);
	cr = false;
	assert_int_equal(maildir_count_bare_lf("\n", 1, &cr), 1);
	assert_int_equal(maildir_count_bare_lf("", 0, &cr), 0);
}

static void test_first_open_reads_sizes_not_mime(void **state)
{
	(void)state;
	/* Delivered by tern: the name carries both sizes. */
	static const char mixed[] = "Subject: mixed\n\nline1\nline2\r\n";
	store_test_deliver_bytes(root, mixed, sizeof(mixed) - 1);
	/* Dropped in by another program: no sizes in the name, more than one read() long,
	 * with a CRLF cut exactly where the reads are cut. */
	struct buf big;
	buf_init(&big, 0);
	buf_append_str(&big, "Subject: big\n\n");
	while (big.len < 65535)
		buf_append_str(&big, big.len % 50 == 0 ? "\r\n" : "y");
	buf_truncate(&big, 65535);
	buf_append_str(&big, "\r\nend\nmore\n");
	char *p = xasprintf("%s/new/1900000000.M1P1.other", root);
	write_file(p, big.data, big.len);
	free(p);
	/* A name whose ",S=" is not the file's size is not believed. */
	static const char liar[] = "Subject: liar\n\nsome text\nmore\n";
	p = xasprintf("%s/new/1900000001.M1P1.liar,S=3,W=3", root);
	write_file(p, liar, sizeof(liar) - 1);
	free(p);

	struct store_mailbox *box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 3);
	/* Nothing was parsed: there is no cache yet. */
	char *cache = xasprintf("%s/tern-cache", root);
	struct stat sb;
	assert_true(stat(cache, &sb) < 0 && errno == ENOENT);
	const struct store_msg_info *m = store_mailbox_msg_info(box, 1);
	assert_int_equal(m->psize, sizeof(mixed) - 1);
	assert_int_equal(m->vsize, sizeof(mixed) - 1 + 3);
	assert_int_equal(m->vsize, parsed_vsize(mixed, sizeof(mixed) - 1));
	m = store_mailbox_msg_info(box, 2);
	assert_int_equal(m->psize, big.len);
	assert_int_equal(m->vsize, parsed_vsize(big.data, big.len));
	m = store_mailbox_msg_info(box, 3);
	assert_int_equal(m->psize, sizeof(liar) - 1);
	assert_int_equal(m->vsize, parsed_vsize(liar, sizeof(liar) - 1));
	assert_true(m->idate > 0);

	/* The first read builds the blobs of this message and the following ones at once. */
	assert_subject(box, 1, "mixed");
	assert_int_equal(stat(cache, &sb), 0);
	off_t built = sb.st_size;
	assert_true(built > 0);
	assert_subject(box, 2, "big");
	assert_subject(box, 3, "liar");
	assert_int_equal(stat(cache, &sb), 0);
	assert_int_equal(sb.st_size, built);
	store_mailbox_close(&box);

	/* Reopened: the same sizes from the index, the cache still good. */
	box = store_test_open(root);
	assert_int_equal(store_mailbox_msg_info(box, 2)->vsize, parsed_vsize(big.data, big.len));
	assert_subject(box, 3, "liar");
	store_mailbox_close(&box);
	free(cache);
	buf_free(&big);
}

static void test_names_carry_w(void **state)
{
	(void)state;
	static const char msg[] = "Subject: w\n\nbare\nlines\r\nhere\n";
	const uint64_t psize = sizeof(msg) - 1, vsize = psize + 4;
	char *want =
	    xasprintf(",S=%llu,W=%llu", (unsigned long long)psize, (unsigned long long)vsize);
	/* Delivery. */
	char *inbox_new = xasprintf("%s/new", root);
	store_test_deliver_bytes(root, msg, psize);
	char *name = only_file(inbox_new);
	assert_non_null(strstr(name, want));
	free(name);
	/* Append, in two pieces cut inside a CRLF. */
	char *a_path = xasprintf("%s/.A", root), *b_path = xasprintf("%s/.B", root);
	struct store_mailbox *a = store_test_open(a_path), *b = store_test_open(b_path);
	struct store_append *app;
	uint32_t uid, copied;
	size_t cut = (size_t)(strstr(msg, "\r\n") - msg) + 1;
	assert_int_equal(store_mailbox_append_begin(a, STORE_FLAG_SEEN, 0, 1700000000, &app),
	                 STORE_OK);
	assert_int_equal(store_mailbox_append_write(app, msg, cut), STORE_OK);
	assert_int_equal(store_mailbox_append_write(app, msg + cut, psize - cut), STORE_OK);
	assert_int_equal(store_mailbox_append_commit(&app, &uid), STORE_OK);
	char *a_cur = xasprintf("%s/cur", a_path), *b_cur = xasprintf("%s/cur", b_path);
	name = only_file(a_cur);
	assert_non_null(strstr(name, want));
	free(name);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(store_mailbox_msg_info(a, 1)->vsize, vsize);
	assert_int_equal(store_mailbox_msg_info(a, 1)->psize, psize);
	assert_int_equal(store_mailbox_msg_info(a, 1)->idate, 1700000000);
	/* Copy. */
	assert_int_equal(store_mailbox_copy(a, uid, b, &copied), STORE_OK);
	name = only_file(b_cur);
	assert_non_null(strstr(name, want));
	free(name);
	assert_int_equal(store_mailbox_sync(b, &res), STORE_OK);
	assert_int_equal(store_mailbox_msg_info(b, 1)->vsize, vsize);
	assert_int_equal(store_mailbox_msg_info(b, 1)->idate, 1700000000);
	assert_subject(b, 1, "w");
	assert_subject(a, 1, "w");
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	/* The inbox reads its delivered message's sizes from the name. */
	struct store_mailbox *inbox = store_test_open(root);
	assert_int_equal(store_mailbox_msg_info(inbox, 1)->vsize, vsize);
	store_mailbox_close(&inbox);
	free(a_cur);
	free(b_cur);
	free(a_path);
	free(b_path);
	free(inbox_new);
	free(want);
}

static void set_dir_mtime(const char *sub, time_t t)
{
	char *p = xasprintf("%s/%s", root, sub);
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static void copy_contents(const char *from, const char *to)
{
	int in = open(from, O_RDONLY);
	assert_true(in >= 0);
	char data[65536];
	ssize_t n = read(in, data, sizeof(data));
	assert_true(n > 0 && n < (ssize_t)sizeof(data));
	close(in);
	write_file(to, data, (size_t)n); /* O_TRUNC: the same inode, new contents */
}

/*
 * Another process replaces the snapshot and log, and the new files get the inode numbers of
 * the old ones (ext4 and tmpfs reuse a freed number at once). Made deterministic here by
 * keeping the old inodes alive under other names, writing the new contents into them and
 * renaming them back.
 */
static void test_replaced_index_with_the_same_inode(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		deliver("r");
	/* Old directories whose mtimes the index knows: nobody rescans, the index is all a
	 * reader has (else a rescan would recover the flag from the file name). */
	struct store_mailbox *a = store_test_open(root), *b;
	store_mailbox_close(&a);
	time_t past = time(NULL) - 100;
	set_dir_mtime("cur", past);
	set_dir_mtime("new", past);
	a = store_test_open(root);
	b = store_test_open(root);
	char *idx = xasprintf("%s/tern-index", root), *log = xasprintf("%s/tern-index.log", root);
	char *keep_idx = xasprintf("%s/keep-index", root),
	     *keep_log = xasprintf("%s/keep-log", root);
	struct stat old_idx, now_idx, old_log, now_log;
	assert_int_equal(stat(idx, &old_idx), 0);
	assert_int_equal(stat(log, &old_log), 0);
	assert_int_equal(link(idx, keep_idx), 0);
	assert_int_equal(link(log, keep_log), 0);

	/* b changes a flag, then folds the log into a new snapshot (new files). */
	assert_int_equal(store_mailbox_set_flags(b, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0),
	                 STORE_OK);
	assert_int_equal(mbox_lock(b), STORE_OK);
	assert_int_equal(mbox_write_snapshot(b), STORE_OK);
	mbox_unlock(b);
	set_dir_mtime("cur", past);
	/* The new contents, in the old inodes, under the index's names. */
	copy_contents(idx, keep_idx);
	copy_contents(log, keep_log);
	assert_int_equal(rename(keep_idx, idx), 0);
	assert_int_equal(rename(keep_log, log), 0);
	assert_int_equal(stat(idx, &now_idx), 0);
	assert_int_equal(stat(log, &now_log), 0);
	assert_int_equal(now_idx.st_ino, old_idx.st_ino);
	assert_int_equal(now_log.st_ino, old_log.st_ino);

	/* a must see b's change (it used to trust the inode number and miss it). */
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(a, &res), STORE_OK);
	assert_int_equal(res.changed_count, 1);
	assert_int_equal(res.changed_uids[0], 1);
	assert_int_equal(store_mailbox_msg(a, 1)->flags, STORE_FLAG_FLAGGED);
	/* And a's own changes go on from there without losing b's. */
	assert_int_equal(store_mailbox_set_flags(a, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	a = store_test_open(root);
	assert_int_equal(store_mailbox_msg(a, 1)->flags, STORE_FLAG_FLAGGED);
	assert_int_equal(store_mailbox_msg(a, 2)->flags, STORE_FLAG_SEEN);
	store_mailbox_close(&a);
	free(idx);
	free(log);
	free(keep_idx);
	free(keep_log);
}

/*
 * The crash-test failure (store_mailbox_cache: ENOENT for a message in the view): a writer
 * renames a message file for a flag change and is killed before it logs the new name; the
 * rename happened within the same clock tick as that writer's last scan, so cur/ keeps the
 * mtime the index recorded, and once that mtime is 2 s old the next process does not
 * rescan. Its cache blob is missing (never built, or damaged): rebuilding it opened the old
 * name and failed. Now a missing file makes the cache build rescan and find the message.
 */
static void test_cache_after_rename_nobody_logged(void **state)
{
	(void)state;
	deliver("stale");
	struct store_mailbox *box = store_test_open(root);
	store_mailbox_close(&box);
	/* The directories have not changed for a while, and the index knows those mtimes. */
	time_t past = time(NULL) - 100;
	set_dir_mtime("cur", past);
	set_dir_mtime("new", past);
	box = store_test_open(root);
	store_mailbox_close(&box);

	/* The dead writer's rename ("\Seen"), its mtime change not visible. */
	char *cur = xasprintf("%s/cur", root);
	char *name = only_file(cur);
	char *from = xasprintf("%s/%s", cur, name);
	char *renamed = maildir_name_set_flags(name, STORE_FLAG_SEEN, 0);
	char *to = xasprintf("%s/%s", cur, renamed);
	assert_int_equal(rename(from, to), 0);
	set_dir_mtime("cur", past);
	/* No usable blob either (with an older cache, one that was damaged). */
	char *cache = xasprintf("%s/tern-cache", root);
	(void)unlink(cache);

	box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 1);
	assert_subject(box, 1, "stale");
	/* The rescan also learned the new name and flags, reported at the next sync. */
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.changed_count, 1);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_SEEN);
	char *path = store_mailbox_msg_path(box, 1);
	assert_string_equal(path, to);
	free(path);
	/* A message that is really gone is ENOENT, and the next sync reports the expunge. */
	assert_int_equal(unlink(to), 0);
	set_dir_mtime("cur", past);
	store_mailbox_close(&box);
	(void)unlink(cache);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 1);
	struct store_cache c;
	assert_int_equal(store_mailbox_cache(box, 1, &c), STORE_ENOENT);
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.exists, 0);
	store_mailbox_close(&box);
	free(cache);
	free(cur);
	free(name);
	free(from);
	free(renamed);
	free(to);
}

/*
 * The root of the case above: a scan records cur/'s mtime while it is still "dirty" (within
 * 2 s), a rename in the same clock tick leaves that mtime unchanged. Such an mtime is no
 * longer recorded, so the first sync after the window rescans and learns the new name.
 */
static void test_dirty_mtime_not_trusted_later(void **state)
{
	(void)state;
	deliver("dirty");
	struct store_mailbox *box = store_test_open(root);
	store_mailbox_close(&box);
	/* The index sees cur/ and new/ with mtimes one second old: still inside the window. */
	time_t recent = time(NULL) - 1;
	set_dir_mtime("cur", recent);
	set_dir_mtime("new", recent);
	box = store_test_open(root);
	store_mailbox_close(&box);
	/* A rename that leaves cur/'s mtime as the scan saw it. */
	char *cur = xasprintf("%s/cur", root);
	char *name = only_file(cur);
	char *from = xasprintf("%s/%s", cur, name);
	char *renamed = maildir_name_set_flags(name, STORE_FLAG_FLAGGED, 0);
	char *to = xasprintf("%s/%s", cur, renamed);
	assert_int_equal(rename(from, to), 0);
	set_dir_mtime("cur", recent);
	/* Past the window (a delay of at least 2 s; bounded). */
	for (int i = 0; i < 40 && time(NULL) - recent <= 3; i++)
		usleep(100000);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_msg(box, 1)->flags, STORE_FLAG_FLAGGED);
	char *path = store_mailbox_msg_path(box, 1);
	assert_string_equal(path, to);
	free(path);
	store_mailbox_close(&box);
	free(cur);
	free(name);
	free(from);
	free(renamed);
	free(to);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_bare_lf),
	    cmocka_unit_test_setup_teardown(test_first_open_reads_sizes_not_mime, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names_carry_w, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replaced_index_with_the_same_inode, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_cache_after_rename_nobody_logged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_mtime_not_trusted_later, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
