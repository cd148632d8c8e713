/*
 * Folders of one user: list, create, rename, delete (Maildir++ under the user's root), and
 * the special-use folders of RFC 6154. Names are IMAP names (see folder_name.h).
 */
#ifndef TERN_STORE_FOLDER_H
#define TERN_STORE_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_error.h"

/* The path of a folder's Maildir (caller frees), or NULL when the name is invalid. */
char *folder_path(const char *root, const char *name);
/* All folders, INBOX first, the rest sorted by name (caller frees with folder_list_free). */
enum store_error folder_list(const char *root, char ***names_r, size_t *count_r);
void folder_list_free(char **names, size_t count);
bool folder_exists(const char *root, const char *name);
/* Creates the folder's Maildir (and a maildirfolder marker). EEXIST when it exists. */
enum store_error folder_create(const char *root, const char *name);
/*
 * Renames a folder and every folder below it. EEXIST when the new name or a child's new
 * name exists, ENOENT when the old one does not, EINVAL for INBOX or a move into itself.
 */
enum store_error folder_rename(const char *root, const char *old_name, const char *new_name);
/* Deletes a folder (and, with children, every folder below it). INBOX cannot be deleted. */
enum store_error folder_delete(const char *root, const char *name, bool children);

/* "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive" for those names, else NULL. */
const char *folder_special_use(const char *name);
/* Creates and subscribes the special-use folders that are missing (first login). */
enum store_error folder_ensure_special_use(const char *root);

#endif
