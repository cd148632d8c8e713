/*
 * Spool and Maildir delivery (see deliver.h). The blocking work runs on the libuv thread
 * pool; nothing here builds a path from client text except the +detail folder name, which
 * the session checked with address_detail_is_safe_folder() and which is only used when
 * that folder already exists as a real directory.
 */
#include "deliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "address.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/maildir_deliver.h"

#define COPY_CHUNK (256 * 1024)

struct spool {
	int fd;
	uint64_t len;
};

int spool_open(const char *dir, struct spool **spool_r, char **error_r)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char *tmpl = xasprintf("%s/spool.XXXXXX", dir);
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd >= 0 && unlink(tmpl) < 0) {
			*error_r = xasprintf("unlink(%s): %s", tmpl, strerror(errno));
			close(fd);
			free(tmpl);
			return -1;
		}
		free(tmpl);
	}
	if (fd < 0) {
		*error_r = xasprintf("spool in %s: %s", dir, strerror(errno));
		return -1;
	}
	struct spool *sp = xcalloc(1, sizeof(*sp));
	sp->fd = fd;
	*spool_r = sp;
	return 0;
}

int spool_write(struct spool *sp, const void *data, size_t len, char **error_r)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(sp->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = xasprintf("spool write: %s", n < 0 ? strerror(errno) : "short");
			return -1;
		}
		p += n;
		len -= (size_t)n;
		sp->len += (uint64_t)n;
	}
	return 0;
}

uint64_t spool_size(const struct spool *sp)
{
	return sp->len;
}

int spool_fd(const struct spool *sp)
{
	return sp->fd;
}

void spool_close(struct spool **sp)
{
	if (*sp == NULL)
		return;
	if (close((*sp)->fd) < 0)
		log_warn("spool close: %s", strerror(errno));
	free(*sp);
	*sp = NULL;
}

/* A temporary failure is "disk full" when the file system says so (or the store's
 * message names ENOSPC/EDQUOT): the sender then sees 452 4.3.1. */
static bool disk_is_full(const char *folder, uint64_t need, const char *error)
{
	if (error != NULL &&
	    (strstr(error, strerror(ENOSPC)) != NULL || strstr(error, strerror(EDQUOT)) != NULL))
		return true;
	struct statvfs vfs;
	if (statvfs(folder, &vfs) < 0)
		return false;
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return avail < need + 4096 || (vfs.f_files > 0 && vfs.f_favail == 0);
}

/* The folder to deliver into: home/.detail when that is an existing real directory. */
static char *choose_folder(const struct lmtp_target *t, const char **folder_used_r)
{
	*folder_used_r = "INBOX";
	if (t->detail != NULL && address_detail_is_safe_folder(t->detail)) {
		char *path = xasprintf("%s/.%s", t->home, t->detail);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			*folder_used_r = t->detail;
			return path;
		}
		free(path);
	}
	return xstrdup(t->home);
}

/* Adds the messages in dir (a cur/ or new/) to the usage: ",S=<size>" in the name
 * (Maildir++), else the file's size. */
static void usage_scan_dir(int parent_fd, const char *sub, uint64_t *bytes, uint64_t *count)
{
	int fd = openat(parent_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		const char *sz = strstr(e->d_name, ",S=");
		uint64_t size = 0;
		if (sz != NULL) {
			for (const char *p = sz + 3; *p >= '0' && *p <= '9'; p++)
				size = size * 10 + (uint64_t)(*p - '0');
		} else {
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				size = (uint64_t)st.st_size;
		}
		*bytes += size;
		(*count)++;
	}
	closedir(d);
}

void deliver_quota_usage(const char *home, uint64_t *bytes_r, uint64_t *count_r)
{
	*bytes_r = *count_r = 0;
	int fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	usage_scan_dir(fd, "cur", bytes_r, count_r);
	usage_scan_dir(fd, "new", bytes_r, count_r);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		/* Maildir++ folders: ".Name" directories (not "." and ".."). */
		if (e->d_name[0] != '.' || e->d_name[1] == '\0' ||
		    (e->d_name[1] == '.' && e->d_name[2] == '\0'))
			continue;
		int sub =
		    openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue;
		usage_scan_dir(sub, "cur", bytes_r, count_r);
		usage_scan_dir(sub, "new", bytes_r, count_r);
		close(sub);
	}
	closedir(d);
}

static enum maildir_error copy_body(struct maildir_delivery *d, int fd, uint64_t len,
                                    char **error_r)
{
	char *chunk = xmalloc(COPY_CHUNK);
	uint64_t off = 0;
	enum maildir_error e = MAILDIR_OK;
	while (off < len && e == MAILDIR_OK) {
		size_t want = len - off < COPY_CHUNK ? (size_t)(len - off) : COPY_CHUNK;
		ssize_t n = pread(fd, chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = xasprintf("spool read: %s", n < 0 ? strerror(errno) : "short");
			e = MAILDIR_ETEMP;
			break;
		}
		e = maildir_delivery_write(d, chunk, (size_t)n, error_r);
		off += (uint64_t)n;
	}
	free(chunk);
	return e;
}

enum lmtp_delivery_status deliver_one(int spool_fd, uint64_t spool_len, const struct lmtp_target *t,
                                      const char **folder_used_r, char **error_r)
{
	uint64_t total = strlen(t->prefix) + spool_len;
	if (t->quota_bytes != 0 || t->quota_messages != 0) {
		/* A soft quota: concurrent deliveries to one mailbox may each still fit. */
		uint64_t used = 0, count = 0;
		deliver_quota_usage(t->home, &used, &count);
		if ((t->quota_bytes != 0 && used + total > t->quota_bytes) ||
		    (t->quota_messages != 0 && count + 1 > t->quota_messages)) {
			*folder_used_r = "INBOX";
			*error_r = xasprintf("mailbox over quota (%llu bytes in %llu messages)",
			                     (unsigned long long)used, (unsigned long long)count);
			return LMTP_DELIVERY_OVERQUOTA;
		}
	}
	char *folder = choose_folder(t, folder_used_r);
	struct maildir_delivery *d = NULL;
	enum maildir_error e = maildir_delivery_begin(folder, &d, error_r);
	if (e == MAILDIR_OK)
		e = maildir_delivery_write(d, t->prefix, strlen(t->prefix), error_r);
	if (e == MAILDIR_OK)
		e = copy_body(d, spool_fd, spool_len, error_r);
	if (e == MAILDIR_OK)
		e = maildir_delivery_commit(d, error_r);
	maildir_delivery_free(&d);
	enum lmtp_delivery_status st = LMTP_DELIVERED;
	if (e == MAILDIR_EPERM)
		st = LMTP_DELIVERY_PERMFAIL;
	else if (e != MAILDIR_OK)
		st = disk_is_full(folder, total, *error_r) ? LMTP_DELIVERY_NOSPACE
		                                           : LMTP_DELIVERY_TEMPFAIL;
	free(folder);
	return st;
}

struct deliver_job {
	uv_work_t req;
	struct lmtp_session *s;
	const struct lmtp_target *t;
	size_t index;
	int fd;
	uint64_t len;
	enum lmtp_delivery_status status;
	const char *folder_used;
	char *error;
};

static void on_work(uv_work_t *req)
{
	struct deliver_job *j = req->data;
	j->status = deliver_one(j->fd, j->len, j->t, &j->folder_used, &j->error);
}

static void on_work_done(uv_work_t *req, int status)
{
	struct deliver_job *j = req->data;
	if (status != 0 && j->error == NULL) {
		/* Cancelled (shutdown): nothing was written. */
		j->status = LMTP_DELIVERY_TEMPFAIL;
		j->error = xstrdup(uv_strerror(status));
	}
	if (j->error != NULL && j->status != LMTP_DELIVERED)
		log_warn("delivery to %s failed: %s", j->t->address, j->error);
	char *folder = xstrdup(j->folder_used != NULL ? j->folder_used : "INBOX");
	struct lmtp_session *s = j->s;
	size_t index = j->index;
	enum lmtp_delivery_status st = j->status;
	free(j->error);
	free(j);
	lmtp_session_delivery_done(s, index, st, folder);
	free(folder);
}

void deliver_targets(uv_loop_t *loop, struct spool *sp, struct lmtp_session *s,
                     struct lmtp_target *targets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (targets[i].remote)
			continue; /* relay branch: queued by relay_intake.c */
		struct deliver_job *j = xcalloc(1, sizeof(*j));
		j->req.data = j;
		j->s = s;
		j->t = &targets[i];
		j->index = i;
		j->fd = sp->fd;
		j->len = sp->len;
		int r = uv_queue_work(loop, &j->req, on_work, on_work_done);
		if (r < 0)
			log_panic("uv_queue_work: %s", uv_strerror(r));
	}
}
