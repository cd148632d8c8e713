/*
 * Crash-safe delivery into one Maildir folder: tmp/ -> write -> fsync -> close -> link into
 * new/ (never overwriting) -> unlink tmp -> fsync new/. The order is the durability
 * argument of docs/store.md; the directory fsync is shared between concurrent commits into
 * the same new/ (maildir_dirsync.c), which is the group commit.
 */
#include "store/maildir_deliver.h"
#include "store/maildir_fs.h"
#include "store/maildir_name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"

/* Attempts at a fresh unique name when one already exists (EEXIST); never overwrite. */
#define DELIVERY_NAME_TRIES 16

struct maildir_delivery {
	int folder_fd;
	int tmp_fd;
	int new_fd;
	int fd; /* the message file in tmp/, -1 once closed */
	char *tmp_name;
	char *final_name;
	uint64_t size;
	uint64_t vsize; /* size with bare LFs counted as CRLF (",W=") */
	bool last_cr;
	bool committed;
	bool failed;
};

/* A disk that is full or failing is a temporary condition; a wrong path is not. */
static enum maildir_error errno_class(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EROFS:
		return MAILDIR_EPERM;
	default:
		return MAILDIR_ETEMP;
	}
}

static enum maildir_error fail(int err, char **error_r, const char *what, const char *name)
{
	if (error_r != NULL)
		*error_r = xasprintf("%s(%s) failed: %s", what, name, strerror(err));
	return errno_class(err);
}

static void delivery_close_fds(struct maildir_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->tmp_fd >= 0)
		close(d->tmp_fd);
	if (d->new_fd >= 0)
		close(d->new_fd);
	if (d->folder_fd >= 0)
		close(d->folder_fd);
	d->fd = d->tmp_fd = d->new_fd = d->folder_fd = -1;
}

/* Removes the tmp file; after this nothing of the delivery is left on disk. */
static void delivery_discard(struct maildir_delivery *d)
{
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	if (d->tmp_name != NULL && d->tmp_fd >= 0)
		(void)unlinkat(d->tmp_fd, d->tmp_name, 0);
	d->failed = true;
}

static int delivery_create_tmp(struct maildir_delivery *d)
{
	for (int i = 0; i < DELIVERY_NAME_TRIES; i++) {
		free(d->tmp_name);
		d->tmp_name = maildir_name_unique();
		d->fd = openat(d->tmp_fd, d->tmp_name,
		               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (d->fd >= 0 || errno != EEXIST)
			return d->fd < 0 ? -1 : 0;
	}
	errno = EEXIST;
	return -1;
}

enum maildir_error maildir_delivery_begin(const char *folder, struct maildir_delivery **d_r,
                                          char **error_r)
{
	struct maildir_delivery *d = xcalloc(1, sizeof(*d));
	d->fd = d->tmp_fd = d->new_fd = -1;
	*d_r = NULL;
	d->folder_fd = maildir_open_folder(folder, true);
	if (d->folder_fd < 0) {
		enum maildir_error e = fail(errno, error_r, "open", folder);
		maildir_delivery_free(&d);
		return e;
	}
	d->tmp_fd = maildir_open_subdir(d->folder_fd, "tmp");
	if (d->tmp_fd >= 0)
		d->new_fd = maildir_open_subdir(d->folder_fd, "new");
	if (d->tmp_fd < 0 || d->new_fd < 0) {
		enum maildir_error e = fail(errno, error_r, "open", "tmp/new");
		maildir_delivery_free(&d);
		return e;
	}
	if (delivery_create_tmp(d) < 0) {
		enum maildir_error e = fail(errno, error_r, "open", d->tmp_name);
		maildir_delivery_free(&d);
		return e;
	}
	*d_r = d;
	return MAILDIR_OK;
}

enum maildir_error maildir_delivery_write(struct maildir_delivery *d, const void *data, size_t len,
                                          char **error_r)
{
	if (d->failed || d->committed || d->fd < 0) {
		if (error_r != NULL)
			*error_r = xstrdup("delivery already failed or finished");
		return MAILDIR_ETEMP;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(d->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			delivery_discard(d);
			/* Any write error is temporary: the folder itself was fine at begin. */
			fail(err, error_r, "write", d->tmp_name);
			return MAILDIR_ETEMP;
		}
		d->vsize += (uint64_t)n + maildir_count_bare_lf(p, (size_t)n, &d->last_cr);
		p += n;
		len -= (size_t)n;
		d->size += (uint64_t)n;
	}
	return MAILDIR_OK;
}

const char *maildir_delivery_name(const struct maildir_delivery *d)
{
	return d->committed ? d->final_name : NULL;
}

uint64_t maildir_delivery_size(const struct maildir_delivery *d)
{
	return d->size;
}

/* Links tmp/<name> to new/<name>,S=<size>,W=<vsize>; a fresh name on EEXIST, never overwriting. */
static int delivery_link(struct maildir_delivery *d)
{
	for (int i = 0; i < DELIVERY_NAME_TRIES; i++) {
		char *base = i == 0 ? xstrdup(d->tmp_name) : maildir_name_unique();
		free(d->final_name);
		d->final_name = xasprintf("%s,S=%llu,W=%llu", base, (unsigned long long)d->size,
		                          (unsigned long long)d->vsize);
		free(base);
		if (linkat(d->tmp_fd, d->tmp_name, d->new_fd, d->final_name, 0) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

enum maildir_error maildir_delivery_commit(struct maildir_delivery *d, char **error_r)
{
	if (d->failed || d->committed || d->fd < 0) {
		if (error_r != NULL)
			*error_r = xstrdup("delivery already failed or finished");
		return MAILDIR_ETEMP;
	}
	/* After a failed fsync the kernel may have dropped the pages: never retry it. */
	if (fsync(d->fd) < 0) {
		int err = errno;
		delivery_discard(d);
		fail(err, error_r, "fsync", d->tmp_name);
		return MAILDIR_ETEMP;
	}
	int rc = close(d->fd);
	d->fd = -1;
	if (rc < 0) {
		int err = errno;
		delivery_discard(d);
		fail(err, error_r, "close", d->tmp_name);
		return MAILDIR_ETEMP;
	}
	if (delivery_link(d) < 0) {
		int err = errno;
		delivery_discard(d);
		fail(err, error_r, "link", d->final_name);
		return MAILDIR_ETEMP;
	}
	/* The copy in new/ exists; a leftover tmp name is only litter for the sweeper. */
	(void)unlinkat(d->tmp_fd, d->tmp_name, 0);
	if (maildir_dirsync(d->new_fd) < 0) {
		int err = errno;
		/* Not durable, so not delivered: take it back so a retry is not a duplicate. */
		(void)unlinkat(d->new_fd, d->final_name, 0);
		d->failed = true;
		fail(err, error_r, "fsync", "new/");
		return MAILDIR_ETEMP;
	}
	d->committed = true;
	return MAILDIR_OK;
}

void maildir_delivery_free(struct maildir_delivery **dp)
{
	struct maildir_delivery *d = *dp;
	if (d == NULL)
		return;
	if (!d->committed)
		delivery_discard(d);
	delivery_close_fds(d);
	free(d->tmp_name);
	free(d->final_name);
	free(d);
	*dp = NULL;
}
