/*
 * IMAP keywords of one folder through Dovecot's dovecot-keywords file: lines
 * "<index> <name>", index 0..25 standing for the letters a..z in file names.
 */
#ifndef TERN_STORE_KEYWORDS_H
#define TERN_STORE_KEYWORDS_H

#include <stdbool.h>

#include "store/maildir_name.h"

#define KEYWORD_NAME_MAX 128

struct keywords {
	char *names[STORE_KEYWORDS_MAX]; /* NULL where unused; owned */
};

/* Reads folder_fd/dovecot-keywords (a missing file is empty). Unusable lines are skipped. */
int keywords_load(int folder_fd, struct keywords *kw, const char **error_r);
void keywords_free(struct keywords *kw);
/* Index of name (exact match first, then case-insensitive), or -1. */
int keywords_lookup(const struct keywords *kw, const char *name);
/* True for an IMAP flag-keyword atom (RFC 3501 atom, no '\\'), 1..KEYWORD_NAME_MAX bytes. */
bool keywords_name_is_valid(const char *name);
/*
 * Index of name, adding it (re-reading the file first, then replacing it atomically) when
 * new. -1 with *error_r when the name is invalid, all 26 letters are taken or I/O failed.
 * The caller holds the folder's index write lock, which serialises writers.
 */
int keywords_add(int folder_fd, struct keywords *kw, const char *name, const char **error_r);

#endif
