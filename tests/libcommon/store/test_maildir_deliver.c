/*
 * Unit tests for crash-safe Maildir delivery. Failures are injected by interposing
 * write/fsync/linkat in this executable (the static libcommon calls resolve to them); the
 * real calls are reached through dlsym(RTLD_NEXT).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/maildir_fs.h"
#include "store/maildir_name.h"

/* Failure injection: the Nth call (1-based) of the armed kind fails with the errno. */
static int inject_write_at, inject_write_errno;
static int inject_fsync_file_errno, inject_fsync_dir_errno;
static int inject_link_eexist, inject_link_precreate;
static int calls_write;

static ssize_t real_write_for_test(int fd, const void *p, size_t n);

ssize_t write(int fd, const void *p, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "write");
	if (inject_write_at > 0 && ++calls_write == inject_write_at) {
		errno = inject_write_errno;
		return -1;
	}
	return real(fd, p, n);
}

static ssize_t real_write_for_test(int fd, const void *p, size_t n)
{
	ssize_t (*real)(int, const void *, size_t);
	*(void **)&real = dlsym(RTLD_NEXT, "write");
	return real(fd, p, n);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	struct stat st;
	if (fstat(fd, &st) == 0) {
		int err = S_ISDIR(st.st_mode) ? inject_fsync_dir_errno : inject_fsync_file_errno;
		if (err != 0) {
			errno = err;
			return -1;
		}
	}
	return real(fd);
}

int linkat(int ofd, const char *old, int nfd, const char *new, int flags)
{
	static int (*real)(int, const char *, int, const char *, int);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "linkat");
	if (inject_link_precreate) {
		/* Another writer got the same name first: its file must survive. */
		inject_link_precreate = 0;
		int fd = openat(nfd, new, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd >= 0) {
			(void)!real_write_for_test(fd, "old", 3);
			close(fd);
		}
	}
	if (inject_link_eexist > 0) {
		inject_link_eexist--;
		errno = EEXIST;
		return -1;
	}
	return real(ofd, old, nfd, new, flags);
}

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-deliver-XXXXXX");
	assert_non_null(mkdtemp(root));
	inject_write_at = inject_write_errno = 0;
	inject_fsync_file_errno = inject_fsync_dir_errno = inject_link_eexist = 0;
	calls_write = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd[] = {"rm", "-rf", root, NULL};
	pid_t pid = fork();
	if (pid == 0) {
		execvp("rm", cmd);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	return 0;
}

/* Number of entries in dir (not . or ..); the name of the last one into name_r. */
static int count_dir(const char *dir, char *name_r, size_t name_size)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (name_r != NULL)
			snprintf(name_r, name_size, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static char *sub(const char *folder, const char *s)
{
	return xasprintf("%s/%s", folder, s);
}

static void assert_empty(const char *folder)
{
	char *tmp = sub(folder, "tmp"), *new = sub(folder, "new"), *cur = sub(folder, "cur");
	assert_int_equal(count_dir(tmp, NULL, 0), 0);
	assert_int_equal(count_dir(new, NULL, 0), 0);
	assert_int_equal(count_dir(cur, NULL, 0), 0);
	free(tmp);
	free(new);
	free(cur);
}

static void test_deliver_whole_message(void **state)
{
	(void)state;
	char *folder = xasprintf("%s/example.org/alice", root);
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(folder, &d, &error), MAILDIR_OK);
	const char *msg = "Subject: hi\r\n\r\nbody\r\n";
	for (const char *p = msg; *p != '\0'; p += 3) {
		size_t n = strlen(p) < 3 ? strlen(p) : 3;
		assert_int_equal(maildir_delivery_write(d, p, n, &error), MAILDIR_OK);
	}
	assert_null(maildir_delivery_name(d));
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_size(d), strlen(msg));
	const char *name = maildir_delivery_name(d);
	assert_non_null(name);
	uint64_t size;
	assert_true(maildir_name_get_size(name, 'S', &size));
	assert_int_equal(size, strlen(msg));

	char *newdir = sub(folder, "new"), *tmpdir = sub(folder, "tmp");
	char found[512];
	assert_int_equal(count_dir(newdir, found, sizeof(found)), 1);
	assert_string_equal(found, name);
	assert_int_equal(count_dir(tmpdir, NULL, 0), 0);
	char *path = xasprintf("%s/%s", newdir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_nlink, 1);
	char content[64] = {0};
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, content, sizeof(content) - 1), (ssize_t)strlen(msg));
	close(fd);
	assert_string_equal(content, msg);
	maildir_delivery_free(&d);
	assert_null(d);
	/* Freeing a committed delivery keeps the message. */
	assert_int_equal(count_dir(newdir, NULL, 0), 1);
	free(path);
	free(newdir);
	free(tmpdir);
	free(folder);
}

static void test_abort_leaves_nothing(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "x", 1, &error), MAILDIR_OK);
	maildir_delivery_free(&d);
	assert_empty(root);
}

static void test_enospc_on_write_is_temporary(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	inject_write_at = 2;
	inject_write_errno = ENOSPC;
	assert_int_equal(maildir_delivery_write(d, "a", 1, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "b", 1, &error), MAILDIR_ETEMP);
	assert_non_null(strstr(error, "No space"));
	free(error);
	error = NULL;
	inject_write_at = 0;
	/* The tmp file is already gone, before the caller frees anything. */
	assert_empty(root);
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_ETEMP);
	free(error);
	maildir_delivery_free(&d);
	assert_empty(root);
}

static void test_edquot_on_write_is_temporary(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	inject_write_at = 1;
	inject_write_errno = EDQUOT;
	assert_int_equal(maildir_delivery_write(d, "abc", 3, &error), MAILDIR_ETEMP);
	free(error);
	maildir_delivery_free(&d);
	assert_empty(root);
}

static void test_fsync_eio_is_temporary(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "abc", 3, &error), MAILDIR_OK);
	inject_fsync_file_errno = EIO;
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_ETEMP);
	assert_non_null(strstr(error, "fsync"));
	free(error);
	assert_null(maildir_delivery_name(d));
	assert_empty(root);
	maildir_delivery_free(&d);
}

static void test_dir_fsync_failure_takes_message_back(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "abc", 3, &error), MAILDIR_OK);
	inject_fsync_dir_errno = EIO;
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_ETEMP);
	free(error);
	assert_empty(root);
	maildir_delivery_free(&d);
}

static void test_link_eexist_picks_new_name(void **state)
{
	(void)state;
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "abc", 3, &error), MAILDIR_OK);
	inject_link_eexist = 2;
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	assert_int_equal(inject_link_eexist, 0);
	char *newdir = sub(root, "new");
	assert_int_equal(count_dir(newdir, NULL, 0), 1);
	free(newdir);
	maildir_delivery_free(&d);
}

static void test_never_overwrites_existing(void **state)
{
	(void)state;
	/* The name in new/ appears between our name choice and the link: it is kept. */
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, "new", 3, &error), MAILDIR_OK);
	inject_link_precreate = 1;
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	char *newdir = sub(root, "new");
	assert_int_equal(count_dir(newdir, NULL, 0), 2);
	char *ours = xasprintf("%s/%s", newdir, maildir_delivery_name(d));
	char c[4] = {0};
	int fd = open(ours, O_RDONLY);
	assert_int_equal(read(fd, c, 3), 3);
	close(fd);
	assert_string_equal(c, "new");
	/* The other file still holds its own bytes. */
	DIR *dir = opendir(newdir);
	struct dirent *de;
	int olds = 0;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, maildir_delivery_name(d)) == 0)
			continue;
		char *p = xasprintf("%s/%s", newdir, de->d_name);
		fd = open(p, O_RDONLY);
		memset(c, 0, sizeof(c));
		assert_int_equal(read(fd, c, 3), 3);
		close(fd);
		assert_string_equal(c, "old");
		olds++;
		free(p);
	}
	closedir(dir);
	assert_int_equal(olds, 1);
	maildir_delivery_free(&d);
	free(ours);
	free(newdir);
}

static void test_symlinked_folder_refused(void **state)
{
	(void)state;
	char *real = xasprintf("%s/real", root), *link = xasprintf("%s/link", root);
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, link), 0);
	struct maildir_delivery *d = NULL;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(link, &d, &error), MAILDIR_EPERM);
	assert_null(d);
	free(error);
	/* A file where the folder should be is permanent too. */
	char *file = xasprintf("%s/file", root);
	int fd = open(file, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(maildir_delivery_begin(file, &d, &error), MAILDIR_EPERM);
	free(error);
	free(real);
	free(link);
	free(file);
}

static void test_unique_names_differ(void **state)
{
	(void)state;
	enum { N = 2000 };
	char **names = xcalloc(N, sizeof(char *));
	for (int i = 0; i < N; i++) {
		names[i] = maildir_name_unique();
		assert_null(strchr(names[i], '/'));
		assert_null(strchr(names[i], ':'));
		assert_true(maildir_name_is_valid(names[i]));
	}
	for (int i = 0; i < N; i++) {
		for (int j = i + 1; j < N; j++)
			assert_string_not_equal(names[i], names[j]);
	}
	for (int i = 0; i < N; i++)
		free(names[i]);
	free(names);
}

struct worker {
	int id;
	int ok;
};

static void *deliver_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 25; i++) {
		struct maildir_delivery *d;
		char *error = NULL;
		if (maildir_delivery_begin(root, &d, &error) != MAILDIR_OK)
			return NULL;
		char body[64];
		int n = snprintf(body, sizeof(body), "worker %d message %d\n", w->id, i);
		if (maildir_delivery_write(d, body, (size_t)n, &error) == MAILDIR_OK &&
		    maildir_delivery_commit(d, &error) == MAILDIR_OK)
			w->ok++;
		free(error);
		maildir_delivery_free(&d);
	}
	return NULL;
}

static void test_concurrent_commits_share_dir_fsync(void **state)
{
	(void)state;
	enum { T = 8 };
	pthread_t th[T];
	struct worker w[T];
	for (int i = 0; i < T; i++) {
		w[i] = (struct worker){.id = i};
		assert_int_equal(pthread_create(&th[i], NULL, deliver_worker, &w[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 25);
	}
	char *newdir = sub(root, "new");
	assert_int_equal(count_dir(newdir, NULL, 0), T * 25);
	free(newdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_deliver_whole_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enospc_on_write_is_temporary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edquot_on_write_is_temporary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsync_eio_is_temporary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dir_fsync_failure_takes_message_back, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_link_eexist_picks_new_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_never_overwrites_existing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlinked_folder_refused, setup, teardown),
	    cmocka_unit_test(test_unique_names_differ),
	    cmocka_unit_test_setup_teardown(test_concurrent_commits_share_dir_fsync, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
