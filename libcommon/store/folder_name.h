/*
 * IMAP folder names <-> Maildir++ directory names.
 *
 * An IMAP name is modified UTF-7 (as on the wire) with '/' as the hierarchy separator;
 * "INBOX" (any case) is the user's root Maildir. On disk a folder is one directory in the
 * root named "." + the components joined by '.', so "Work/2026" is ".Work.2026" and
 * "INBOX/x" is ".INBOX.x" (as Dovecot lays out Maildir++ with a '/' separator).
 * A valid component is non-empty canonical mUTF-7 without '.', '/', '%', '*', control
 * characters or DEL (decoded), so no name can ever reach outside the root ("..", "/").
 */
#ifndef TERN_STORE_FOLDER_NAME_H
#define TERN_STORE_FOLDER_NAME_H

#include <stdbool.h>

struct buf;

#define FOLDER_SEPARATOR '/'
/* The directory name must fit one path component. */
#define FOLDER_DIR_MAX 255

bool folder_name_is_inbox(const char *name);
/*
 * Appends the directory name for an IMAP name ("" for INBOX). Returns 0, or -1 with a
 * client-presentable *error_r (static string) when the name is invalid.
 */
int folder_name_to_dir(const char *name, struct buf *dir, const char **error_r);
/* Appends the IMAP name for a directory entry; -1 when it is not a valid folder dir. */
int folder_dir_to_name(const char *dir, struct buf *name);
/* The UTF-8 form of an IMAP name (for UTF8=ACCEPT clients); -1 when invalid. */
int folder_name_to_utf8(const char *name, struct buf *utf8);

#endif
