/* Unit tests for folder operations, subscriptions, special-use folders and keywords. */
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
#include "store/atomic_file.h"
#include "store/folder.h"
#include "store/keywords.h"
#include "store/subscriptions.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("folder");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

static char *list_joined(void)
{
	char **names;
	size_t n;
	assert_int_equal(folder_list(root, &names, &n), STORE_OK);
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(names[i]) + 1;
	char *s = xcalloc(1, total);
	for (size_t i = 0; i < n; i++) {
		strcat(s, names[i]);
		if (i + 1 < n)
			strcat(s, ",");
	}
	folder_list_free(names, n);
	return s;
}

static void assert_list(const char *expected)
{
	char *s = list_joined();
	assert_string_equal(s, expected);
	free(s);
}

static void test_create_list_rename_delete(void **state)
{
	(void)state;
	assert_list("INBOX");
	assert_int_equal(folder_create(root, "Work"), STORE_OK);
	assert_int_equal(folder_create(root, "Work"), STORE_EEXIST);
	assert_int_equal(folder_create(root, "Work/2026"), STORE_OK);
	assert_int_equal(folder_create(root, "Work/2026/Q1"), STORE_OK);
	assert_int_equal(folder_create(root, "Workshop"), STORE_OK);
	assert_int_equal(folder_create(root, "../escape"), STORE_EINVAL);
	assert_int_equal(folder_create(root, "a.b"), STORE_EINVAL);
	assert_list("INBOX,Work,Work/2026,Work/2026/Q1,Workshop");
	char *p = xasprintf("%s/.Work.2026/cur", root);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	free(p);

	/* Rename moves the children, not the sibling that shares a prefix. */
	assert_int_equal(folder_rename(root, "Work", "Job"), STORE_OK);
	assert_list("INBOX,Job,Job/2026,Job/2026/Q1,Workshop");
	assert_int_equal(folder_rename(root, "Job", "Workshop"), STORE_EEXIST);
	assert_int_equal(folder_rename(root, "Job", "Job/Sub"), STORE_EINVAL);
	assert_int_equal(folder_rename(root, "Nope", "X"), STORE_ENOENT);
	assert_int_equal(folder_rename(root, "INBOX", "X"), STORE_EINVAL);
	/* A child's target already exists: nothing is renamed. */
	assert_int_equal(folder_create(root, "New/2026"), STORE_OK);
	assert_int_equal(folder_rename(root, "Job", "New"), STORE_EEXIST);
	assert_list("INBOX,Job,Job/2026,Job/2026/Q1,New/2026,Workshop");

	assert_int_equal(folder_delete(root, "Job/2026", false), STORE_OK);
	assert_list("INBOX,Job,Job/2026/Q1,New/2026,Workshop");
	assert_int_equal(folder_delete(root, "Job", true), STORE_OK);
	assert_list("INBOX,New/2026,Workshop");
	assert_int_equal(folder_delete(root, "Job", true), STORE_ENOENT);
	assert_int_equal(folder_delete(root, "INBOX", true), STORE_EINVAL);
}

static void test_delete_finishes_after_crash(void **state)
{
	(void)state;
	/* A delete interrupted after its rename leaves a hidden dir; listing sweeps it. */
	char *p = xasprintf("%s/..tern-deleted.123", root);
	char *cur = xasprintf("%s/cur", p);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(mkdir(cur, 0700), 0);
	free(cur);
	assert_list("INBOX");
	struct stat st;
	assert_int_equal(stat(p, &st), -1);
	free(p);
}

static void test_subscriptions(void **state)
{
	(void)state;
	assert_int_equal(subscriptions_set(root, "Work/2026", true), STORE_OK);
	assert_int_equal(subscriptions_set(root, "inbox", true), STORE_OK);
	assert_int_equal(subscriptions_set(root, "Work/2026", true), STORE_OK);
	assert_int_equal(subscriptions_set(root, "../x", true), STORE_EINVAL);
	char **names;
	size_t n;
	assert_int_equal(subscriptions_read(root, &names, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "Work/2026");
	assert_string_equal(names[1], "INBOX");
	subscriptions_free(names, n);
	/* On disk: Dovecot's version 2 format, levels separated by TAB. */
	int fd = open(root, O_RDONLY | O_DIRECTORY);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(atomic_file_read(fd, "subscriptions", &b), 0);
	assert_string_equal(buf_cstr(&b), "V\t2\n\nWork\t2026\nINBOX\n");
	buf_free(&b);
	assert_int_equal(subscriptions_set(root, "Work/2026", false), STORE_OK);
	assert_int_equal(subscriptions_read(root, &names, &n), STORE_OK);
	assert_int_equal(n, 1);
	subscriptions_free(names, n);
	/* A version 1 file written by Dovecot (Maildir++ '.' separator) reads too. */
	const char *v1 = "Sent\nLists.tern\n../../etc\n";
	assert_int_equal(atomic_file_write(fd, "subscriptions", v1, strlen(v1)), 0);
	assert_int_equal(subscriptions_read(root, &names, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "Sent");
	assert_string_equal(names[1], "Lists/tern");
	subscriptions_free(names, n);
	close(fd);
}

static void test_special_use(void **state)
{
	(void)state;
	char *user = xasprintf("%s/example.org/bob", root);
	assert_int_equal(folder_ensure_special_use(user), STORE_OK);
	assert_int_equal(folder_ensure_special_use(user), STORE_OK);
	char **names;
	size_t n;
	assert_int_equal(folder_list(user, &names, &n), STORE_OK);
	assert_int_equal(n, 6);
	assert_string_equal(names[1], "Archive");
	assert_string_equal(folder_special_use(names[1]), "\\Archive");
	folder_list_free(names, n);
	assert_int_equal(subscriptions_read(user, &names, &n), STORE_OK);
	assert_int_equal(n, 5);
	subscriptions_free(names, n);
	assert_string_equal(folder_special_use("Sent"), "\\Sent");
	assert_null(folder_special_use("Work"));
	free(user);
}

static void test_keywords(void **state)
{
	(void)state;
	int fd = open(root, O_RDONLY | O_DIRECTORY);
	struct keywords kw = {{NULL}};
	const char *err = NULL;
	assert_int_equal(keywords_load(fd, &kw, &err), 0);
	assert_int_equal(keywords_lookup(&kw, "$Forwarded"), -1);
	assert_int_equal(keywords_add(fd, &kw, "$Forwarded", &err), 0);
	assert_int_equal(keywords_add(fd, &kw, "Junk", &err), 1);
	assert_int_equal(keywords_add(fd, &kw, "$forwarded", &err), 0);
	assert_int_equal(keywords_add(fd, &kw, "bad word", &err), -1);
	assert_int_equal(keywords_add(fd, &kw, "\\Seen", &err), -1);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(atomic_file_read(fd, "dovecot-keywords", &b), 0);
	assert_string_equal(buf_cstr(&b), "0 $Forwarded\n1 Junk\n");
	buf_free(&b);
	/* A file written by Dovecot with gaps and junk lines. */
	const char *dv = "0 $Label1\n3 NonJunk\nx y\n99 Far\n3 Dup\n";
	assert_int_equal(atomic_file_write(fd, "dovecot-keywords", dv, strlen(dv)), 0);
	assert_int_equal(keywords_load(fd, &kw, &err), 0);
	assert_int_equal(keywords_lookup(&kw, "NonJunk"), 3);
	assert_int_equal(keywords_lookup(&kw, "Far"), -1);
	assert_int_equal(keywords_lookup(&kw, "Dup"), -1);
	assert_int_equal(keywords_add(fd, &kw, "New", &err), 1);
	/* All 26 letters taken: a limit error, not a silent drop. */
	int added = 0;
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "k%d", i);
		int r = keywords_add(fd, &kw, name, &err);
		if (r < 0) {
			assert_string_equal(err, "Too many keywords in this folder");
			break;
		}
		added++;
	}
	assert_int_equal(added, 26 - 3);
	keywords_free(&kw);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_list_rename_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_finishes_after_crash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_special_use, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keywords, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
