/*
 * Folder operations on a Maildir++ root. Directory names come only from
 * folder_name_to_dir(), so no client name reaches the file system unchecked.
 */
#include "store/folder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/folder_name.h"
#include "store/maildir_fs.h"
#include "store/maildir_name.h"
#include "store/subscriptions.h"

#define DELETED_PREFIX "..tern-deleted."

static const struct {
	const char *name;
	const char *use;
} special_use[] = {
    {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},   {"Trash", "\\Trash"},
    {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

static char *name_to_dir(const char *name)
{
	struct buf dir;
	buf_init(&dir, 0);
	const char *err;
	if (folder_name_to_dir(name, &dir, &err) < 0) {
		buf_free(&dir);
		return NULL;
	}
	return buf_steal(&dir);
}

char *folder_path(const char *root, const char *name)
{
	char *dir = name_to_dir(name);
	if (dir == NULL)
		return NULL;
	char *path = dir[0] == '\0' ? xstrdup(root) : xasprintf("%s/%s", root, dir);
	free(dir);
	return path;
}

void folder_list_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Removes a tree without following symlinks (FTW_PHYS). */
static int remove_tree(const char *path)
{
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Calls fn for each directory entry of root that names a folder. */
static enum store_error folder_scan(const char *root,
                                    void (*fn)(const char *, const char *, void *), void *ctx)
{
	DIR *d = opendir(root);
	if (d == NULL)
		return errno == ENOENT ? STORE_OK : STORE_ETEMP;
	struct dirent *de;
	struct buf name;
	buf_init(&name, 0);
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (strncmp(de->d_name, DELETED_PREFIX, strlen(DELETED_PREFIX)) == 0) {
			/* A delete that crashed half way: finish it. */
			char *p = xasprintf("%s/%s", root, de->d_name);
			(void)remove_tree(p);
			free(p);
			continue;
		}
		buf_reset(&name);
		if (folder_dir_to_name(de->d_name, &name) == 0)
			fn(de->d_name, buf_cstr(&name), ctx);
	}
	buf_free(&name);
	closedir(d);
	return STORE_OK;
}

struct list_ctx {
	char **names;
	size_t count;
};

static void list_add(const char *dir, const char *name, void *ctx)
{
	(void)dir;
	struct list_ctx *l = ctx;
	l->names = xreallocarray(l->names, l->count + 1, sizeof(char *));
	l->names[l->count++] = xstrdup(name);
}

enum store_error folder_list(const char *root, char ***names_r, size_t *count_r)
{
	struct list_ctx l = {NULL, 0};
	list_add("", "INBOX", &l);
	enum store_error e = folder_scan(root, list_add, &l);
	qsort(l.names + 1, l.count - 1, sizeof(char *), cmp_names);
	*names_r = l.names;
	*count_r = l.count;
	return e;
}

bool folder_exists(const char *root, const char *name)
{
	char *path = folder_path(root, name);
	struct stat st;
	bool ok = path != NULL && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	free(path);
	return ok;
}

enum store_error folder_create(const char *root, const char *name)
{
	char *path = folder_path(root, name);
	if (path == NULL)
		return STORE_EINVAL;
	if (folder_exists(root, name)) {
		free(path);
		return STORE_EEXIST;
	}
	int fd = maildir_open_folder(path, true);
	free(path);
	if (fd < 0)
		return STORE_ETEMP;
	if (!folder_name_is_inbox(name)) {
		/* Maildir++ marks a folder (not a root) with this empty file, as Dovecot does. */
		int m =
		    openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (m >= 0)
			close(m);
	}
	close(fd);
	return STORE_OK;
}

struct rename_ctx {
	const char *old_dir;
	const char *new_dir;
	size_t old_len;
	char **from, **to;
	size_t count;
};

static void rename_collect(const char *dir, const char *name, void *ctx)
{
	(void)name;
	struct rename_ctx *r = ctx;
	if (strncmp(dir, r->old_dir, r->old_len) != 0 ||
	    (dir[r->old_len] != '\0' && dir[r->old_len] != '.'))
		return;
	r->from = xreallocarray(r->from, r->count + 1, sizeof(char *));
	r->to = xreallocarray(r->to, r->count + 1, sizeof(char *));
	r->from[r->count] = xstrdup(dir);
	r->to[r->count] = xasprintf("%s%s", r->new_dir, dir + r->old_len);
	r->count++;
}

static enum store_error rename_apply(const char *root, struct rename_ctx *r)
{
	int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0)
		return STORE_ETEMP;
	enum store_error e = STORE_OK;
	for (size_t i = 0; i < r->count && e == STORE_OK; i++) {
		if (strlen(r->to[i]) > FOLDER_DIR_MAX)
			e = STORE_EINVAL;
		else if (faccessat(root_fd, r->to[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			e = STORE_EEXIST;
	}
	for (size_t i = 0; i < r->count && e == STORE_OK; i++) {
		/* RENAME_NOREPLACE: a folder created meanwhile is never replaced. */
		if (renameat2(root_fd, r->from[i], root_fd, r->to[i], RENAME_NOREPLACE) < 0)
			e = errno == EEXIST ? STORE_EEXIST : STORE_ETEMP;
	}
	if (e == STORE_OK && maildir_dirsync(root_fd) < 0)
		e = STORE_ETEMP;
	close(root_fd);
	return e;
}

enum store_error folder_rename(const char *root, const char *old_name, const char *new_name)
{
	if (folder_name_is_inbox(old_name) || folder_name_is_inbox(new_name))
		return STORE_EINVAL;
	char *old_dir = name_to_dir(old_name), *new_dir = name_to_dir(new_name);
	enum store_error e = STORE_OK;
	struct rename_ctx r = {old_dir, new_dir, 0, NULL, NULL, 0};
	if (old_dir == NULL || new_dir == NULL) {
		e = STORE_EINVAL;
	} else if (strncmp(new_dir, old_dir, strlen(old_dir)) == 0 &&
	           (new_dir[strlen(old_dir)] == '.' || new_dir[strlen(old_dir)] == '\0')) {
		e = STORE_EINVAL; /* into itself, or onto itself */
	} else if (!folder_exists(root, old_name)) {
		e = STORE_ENOENT;
	} else {
		r.old_len = strlen(old_dir);
		e = folder_scan(root, rename_collect, &r);
		if (e == STORE_OK)
			e = rename_apply(root, &r);
	}
	for (size_t i = 0; i < r.count; i++) {
		free(r.from[i]);
		free(r.to[i]);
	}
	free(r.from);
	free(r.to);
	free(old_dir);
	free(new_dir);
	return e;
}

static enum store_error delete_one(const char *root, const char *dir)
{
	char *unique = maildir_name_unique();
	char *from = xasprintf("%s/%s", root, dir);
	char *to = xasprintf("%s/" DELETED_PREFIX "%s", root, unique);
	enum store_error e = STORE_OK;
	/* Rename first so the folder vanishes at once; removing its files may take long. */
	if (rename(from, to) < 0)
		e = errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	else if (remove_tree(to) < 0)
		e = STORE_ETEMP;
	free(unique);
	free(from);
	free(to);
	return e;
}

enum store_error folder_delete(const char *root, const char *name, bool children)
{
	if (folder_name_is_inbox(name))
		return STORE_EINVAL;
	char *dir = name_to_dir(name);
	if (dir == NULL)
		return STORE_EINVAL;
	struct rename_ctx r = {dir, dir, strlen(dir), NULL, NULL, 0};
	enum store_error e = folder_exists(root, name) ? STORE_OK : STORE_ENOENT;
	if (e == STORE_OK && children)
		e = folder_scan(root, rename_collect, &r);
	if (e == STORE_OK && !children)
		e = delete_one(root, dir);
	for (size_t i = 0; i < r.count; i++) {
		if (e == STORE_OK)
			e = delete_one(root, r.from[i]);
		free(r.from[i]);
		free(r.to[i]);
	}
	free(r.from);
	free(r.to);
	free(dir);
	return e;
}

const char *folder_special_use(const char *name)
{
	for (size_t i = 0; i < sizeof(special_use) / sizeof(special_use[0]); i++) {
		if (strcmp(name, special_use[i].name) == 0)
			return special_use[i].use;
	}
	return NULL;
}

enum store_error folder_ensure_special_use(const char *root)
{
	int fd = maildir_open_folder(root, true);
	if (fd < 0)
		return STORE_ETEMP;
	close(fd);
	for (size_t i = 0; i < sizeof(special_use) / sizeof(special_use[0]); i++) {
		enum store_error e = folder_create(root, special_use[i].name);
		if (e == STORE_EEXIST)
			continue;
		if (e != STORE_OK)
			return e;
		e = subscriptions_set(root, special_use[i].name, true);
		if (e != STORE_OK)
			return e;
	}
	return STORE_OK;
}
