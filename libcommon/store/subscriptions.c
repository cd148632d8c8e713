/* Reading and rewriting the subscriptions file (Dovecot format, version 2 written). */
#include "store/subscriptions.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"
#include "store/folder_name.h"
#include "store/lockfile.h"

#define SUBS_FILE "subscriptions"
#define SUBS_LOCK "subscriptions.lock"
#define SUBS_FILE_MAX (1024 * 1024)
static const char subs_v2_header[] = "V\t2\n\n";

void subscriptions_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* One line to an IMAP name: v2 levels are TAB-separated with \001 escapes. */
static char *subs_line_to_name(const char *line, bool v2)
{
	struct buf b;
	buf_init(&b, FOLDER_DIR_MAX * 2);
	for (const char *p = line; *p != '\0'; p++) {
		char c = *p;
		if (v2 && c == '\t') {
			c = FOLDER_SEPARATOR;
		} else if (v2 && c == '\001' && p[1] != '\0') {
			p++;
			c = *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == 'n' ? '\n' : '\001';
		} else if (!v2 && c == '.' && strchr(line, FOLDER_SEPARATOR) == NULL) {
			c = FOLDER_SEPARATOR;
		}
		if (buf_append_char(&b, c) < 0)
			break;
	}
	struct buf dir;
	buf_init(&dir, 0);
	const char *err;
	bool ok = folder_name_to_dir(buf_cstr(&b), &dir, &err) == 0;
	buf_free(&dir);
	if (!ok) {
		buf_free(&b);
		return NULL;
	}
	if (folder_name_is_inbox(buf_cstr(&b))) {
		buf_reset(&b);
		buf_append_str(&b, "INBOX");
	}
	return buf_steal(&b);
}

static enum store_error subs_read_fd(int root_fd, char ***names_r, size_t *count_r)
{
	struct buf b;
	buf_init(&b, SUBS_FILE_MAX);
	*names_r = NULL;
	*count_r = 0;
	if (atomic_file_read(root_fd, SUBS_FILE, &b) < 0) {
		buf_free(&b);
		return STORE_ETEMP;
	}
	char *text = b.data != NULL ? b.data : (char[]){'\0'};
	bool v2 = strncmp(text, subs_v2_header, strlen(subs_v2_header)) == 0;
	if (v2)
		text += strlen(subs_v2_header);
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *name = subs_line_to_name(line, v2);
		if (name == NULL)
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp((*names_r)[i], name) == 0;
		if (dup) {
			free(name);
			continue;
		}
		*names_r = xreallocarray(*names_r, n + 1, sizeof(char *));
		(*names_r)[n++] = name;
	}
	*count_r = n;
	buf_free(&b);
	return STORE_OK;
}

enum store_error subscriptions_read(const char *root, char ***names_r, size_t *count_r)
{
	*names_r = NULL;
	*count_r = 0;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return STORE_ETEMP;
	enum store_error e = subs_read_fd(fd, names_r, count_r);
	close(fd);
	return e;
}

static void subs_append_line(struct buf *b, const char *name)
{
	for (const char *p = name; *p != '\0'; p++)
		buf_append_char(b, *p == FOLDER_SEPARATOR ? '\t' : *p);
	buf_append_char(b, '\n');
}

enum store_error subscriptions_set(const char *root, const char *name, bool subscribed)
{
	struct buf dir;
	buf_init(&dir, 0);
	const char *err;
	int valid = folder_name_to_dir(name, &dir, &err);
	buf_free(&dir);
	if (valid < 0)
		return STORE_EINVAL;
	if (folder_name_is_inbox(name))
		name = "INBOX";
	int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0)
		return STORE_ETEMP;
	int lock = lockfile_lock(root_fd, SUBS_LOCK, true);
	char **names = NULL;
	size_t count = 0;
	enum store_error e = lock < 0 ? STORE_ETEMP : subs_read_fd(root_fd, &names, &count);
	if (e == STORE_OK) {
		struct buf out;
		buf_init(&out, 0);
		buf_append_str(&out, subs_v2_header);
		bool found = false;
		for (size_t i = 0; i < count; i++) {
			if (strcmp(names[i], name) == 0) {
				found = true;
				if (!subscribed)
					continue;
			}
			subs_append_line(&out, names[i]);
		}
		if (subscribed && !found)
			subs_append_line(&out, name);
		if ((subscribed != found) &&
		    atomic_file_write(root_fd, SUBS_FILE, out.data, out.len) < 0)
			e = STORE_ETEMP;
		buf_free(&out);
	}
	subscriptions_free(names, count);
	if (lock >= 0)
		close(lock);
	close(root_fd);
	return e;
}
