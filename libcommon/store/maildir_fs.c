/*
 * Group commit of directory fsyncs. Each directory (dev, inode) has a ticket counter: a
 * caller takes a ticket after its link() and returns once a fsync that started after the
 * ticket was taken has finished. Whoever finds no fsync running starts one that covers all
 * tickets taken so far; the others wait on the condition variable.
 */
#include "store/maildir_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"

/* mkdir -p for the folder itself and its parents (0700), then cur/ new/ tmp/. */
static int mkdir_parents(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	int ret = -1;
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (mkdir_parents(parent) == 0)
			ret = (mkdir(path, 0700) == 0 || errno == EEXIST) ? 0 : -1;
	}
	int saved = errno;
	free(parent);
	errno = saved;
	return ret;
}

int maildir_open_subdir(int folder_fd, const char *sub)
{
	int fd = openat(folder_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(folder_fd, sub, 0700) < 0 && errno != EEXIST)
			return -1;
		fd = openat(folder_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

int maildir_open_folder(const char *folder, bool create)
{
	int fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdir_parents(folder) < 0)
			return -1;
		fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0 || !create)
		return fd;
	static const char *const subs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		int sub = maildir_open_subdir(fd, subs[i]);
		if (sub < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		close(sub);
	}
	return fd;
}

struct dirsync_entry {
	struct dirsync_entry *next;
	dev_t dev;
	ino_t ino;
	uint64_t requested; /* last ticket handed out */
	uint64_t completed; /* every ticket <= this has been covered by a finished fsync */
	uint64_t failures;  /* fsync failures so far */
	int failure_errno;
	unsigned int users;
	bool busy;
};

static pthread_mutex_t dirsync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dirsync_cond = PTHREAD_COND_INITIALIZER;
static struct dirsync_entry *dirsync_entries;

static struct dirsync_entry *dirsync_get(dev_t dev, ino_t ino)
{
	struct dirsync_entry *e;
	for (e = dirsync_entries; e != NULL; e = e->next) {
		if (e->dev == dev && e->ino == ino)
			break;
	}
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->dev = dev;
		e->ino = ino;
		e->next = dirsync_entries;
		dirsync_entries = e;
	}
	e->users++;
	return e;
}

static void dirsync_put(struct dirsync_entry *e)
{
	if (--e->users > 0)
		return;
	for (struct dirsync_entry **p = &dirsync_entries; *p != NULL; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	free(e);
}

int maildir_dirsync(int dir_fd)
{
	struct stat st;
	if (fstat(dir_fd, &st) < 0)
		return -1;
	pthread_mutex_lock(&dirsync_lock);
	struct dirsync_entry *e = dirsync_get(st.st_dev, st.st_ino);
	uint64_t ticket = ++e->requested;
	uint64_t failures = e->failures;
	while (e->completed < ticket) {
		if (e->busy) {
			pthread_cond_wait(&dirsync_cond, &dirsync_lock);
			continue;
		}
		e->busy = true;
		uint64_t target = e->requested;
		pthread_mutex_unlock(&dirsync_lock);
		int ret = fsync(dir_fd);
		int err = errno;
		pthread_mutex_lock(&dirsync_lock);
		e->busy = false;
		e->completed = target;
		if (ret < 0) {
			e->failures++;
			e->failure_errno = err;
		}
		pthread_cond_broadcast(&dirsync_cond);
	}
	int ret = 0, err = 0;
	if (e->failures != failures) {
		ret = -1;
		err = e->failure_errno;
	}
	dirsync_put(e);
	pthread_mutex_unlock(&dirsync_lock);
	errno = err;
	return ret;
}
