/* Whole-file replace by write + fsync + rename + directory fsync. */
#include "store/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/maildir_fs.h"
#include "store/maildir_name.h"

int atomic_file_read(int dir_fd, const char *name, struct buf *out)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = errno;
			close(fd);
			errno = err;
			return n < 0 ? -1 : 0;
		}
		if (buf_append(out, chunk, (size_t)n) < 0) {
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomic_file_write(int dir_fd, const char *name, const void *data, size_t len)
{
	char *unique = maildir_name_unique();
	char *tmp = xasprintf(".%s.tmp.%s", name, unique);
	free(unique);
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ret = -1, err = 0;
	if (fd < 0) {
		err = errno;
		free(tmp);
		errno = err;
		return -1;
	}
	if (write_all(fd, data, len) == 0 && fsync(fd) == 0) {
		ret = close(fd);
		fd = -1;
		if (ret == 0)
			ret = renameat(dir_fd, tmp, dir_fd, name);
		if (ret == 0)
			ret = maildir_dirsync(dir_fd);
	}
	err = errno;
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		(void)unlinkat(dir_fd, tmp, 0);
	free(tmp);
	errno = err;
	return ret;
}
