/*
 * Small control files (dovecot-keywords, subscriptions, the index) replaced whole:
 * write a unique temporary name in the same directory, fsync, rename over the old one,
 * fsync the directory. A reader sees the old file or the new one, never a mixture.
 */
#ifndef TERN_STORE_ATOMIC_FILE_H
#define TERN_STORE_ATOMIC_FILE_H

#include <stddef.h>

struct buf;

/* Reads dir_fd/name whole into out (bounded by out's max). A missing file gives 0 and
 * leaves out empty; -1 with errno on error or when the file passes out's max (EFBIG). */
int atomic_file_read(int dir_fd, const char *name, struct buf *out);
/* Replaces dir_fd/name with data. Returns 0, or -1 with errno (temp file removed). */
int atomic_file_write(int dir_fd, const char *name, const void *data, size_t len);

#endif
