/* maildirsize: read, append, recalculate (see quota.h). */
#include "store/quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"
#include "store/folder_name.h"
#include "store/maildir_name.h"

#define QUOTA_FILE "maildirsize"
#define QUOTA_RECALC_SIZE 5120

/* Adds the sizes and count of the messages in dir_fd/sub. */
static void count_dir(int dir_fd, const char *sub, uint64_t *bytes, uint64_t *count)
{
	int fd = openat(dir_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!maildir_name_is_valid(de->d_name))
			continue;
		uint64_t size;
		struct stat st;
		if (!maildir_name_get_size(de->d_name, 'S', &size)) {
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			size = (uint64_t)st.st_size;
		}
		*bytes += size;
		(*count)++;
	}
	closedir(d);
}

static enum store_error quota_recalc(int root_fd, struct store_quota *q)
{
	q->bytes = q->messages = 0;
	count_dir(root_fd, "cur", &q->bytes, &q->messages);
	count_dir(root_fd, "new", &q->bytes, &q->messages);
	int fd = dup(root_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return STORE_ETEMP;
	}
	struct dirent *de;
	struct buf name;
	buf_init(&name, 0);
	while ((de = readdir(d)) != NULL) {
		buf_reset(&name);
		if (folder_dir_to_name(de->d_name, &name) < 0)
			continue;
		int sub = openat(root_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (sub < 0)
			continue;
		count_dir(sub, "cur", &q->bytes, &q->messages);
		count_dir(sub, "new", &q->bytes, &q->messages);
		close(sub);
	}
	buf_free(&name);
	closedir(d);
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "%" PRIu64 "S,%" PRIu64 "C\n%" PRIu64 " %" PRIu64 "\n", q->limit_bytes,
	           q->limit_messages, q->bytes, q->messages);
	int ret = atomic_file_write(root_fd, QUOTA_FILE, b.data, b.len);
	buf_free(&b);
	return ret < 0 ? STORE_ETEMP : STORE_OK;
}

/* Sums the lines after the first; false when the file is unusable. */
static bool quota_parse(const char *text, struct store_quota *q)
{
	const char *nl = strchr(text, '\n');
	if (nl == NULL)
		return false;
	int64_t bytes = 0, count = 0;
	for (const char *p = nl + 1; *p != '\0';) {
		char *end;
		long long b = strtoll(p, &end, 10);
		if (end == p || *end != ' ')
			return false;
		long long c = strtoll(end + 1, &end, 10);
		if (*end != '\n')
			return false; /* a torn last line: recalculate */
		bytes += b;
		count += c;
		p = end + 1;
	}
	q->bytes = bytes > 0 ? (uint64_t)bytes : 0;
	q->messages = count > 0 ? (uint64_t)count : 0;
	return true;
}

enum store_error store_quota_get(const char *root, uint64_t limit_bytes, uint64_t limit_messages,
                                 struct store_quota *q)
{
	q->limit_bytes = limit_bytes;
	q->limit_messages = limit_messages;
	int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0)
		return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	struct buf b;
	buf_init(&b, QUOTA_RECALC_SIZE);
	enum store_error e = STORE_OK;
	int r = atomic_file_read(root_fd, QUOTA_FILE, &b);
	char first[64];
	snprintf(first, sizeof(first), "%" PRIu64 "S,%" PRIu64 "C\n", limit_bytes, limit_messages);
	/* Too big (EFBIG), missing, torn, or with other limits: count again. */
	if (r < 0 || b.len == 0 || strncmp(buf_cstr(&b), first, strlen(first)) != 0 ||
	    !quota_parse(buf_cstr(&b), q))
		e = quota_recalc(root_fd, q);
	buf_free(&b);
	close(root_fd);
	return e;
}

bool store_quota_allows(const struct store_quota *q, uint64_t bytes)
{
	if (q->limit_bytes != 0 && q->bytes + bytes > q->limit_bytes)
		return false;
	return q->limit_messages == 0 || q->messages + 1 <= q->limit_messages;
}

enum store_error store_quota_add(const char *root, int64_t bytes, int64_t messages)
{
	char *path = xasprintf("%s/" QUOTA_FILE, root);
	int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? STORE_OK : STORE_ETEMP; /* recalculated on next get */
	char line[64];
	int n = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes, messages);
	/* One short O_APPEND write: lines from concurrent writers never interleave. */
	enum store_error e = write(fd, line, (size_t)n) == n ? STORE_OK : STORE_ETEMP;
	close(fd);
	return e;
}
