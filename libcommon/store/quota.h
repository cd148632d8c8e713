/*
 * Maildir++ quota through the user's maildirsize file (the format Courier and Dovecot
 * use): a first line with the limits ("<bytes>S,<count>C"), then "<bytes> <count>" lines,
 * one per change, appended with O_APPEND so concurrent writers need no lock. The usage is
 * the sum of the lines; the file is recalculated from the folders when it is missing or
 * has grown past 5120 bytes (the Maildir++ rule).
 */
#ifndef TERN_STORE_QUOTA_H
#define TERN_STORE_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store_error.h"

struct store_quota {
	uint64_t bytes, messages;
	uint64_t limit_bytes, limit_messages; /* 0 = no limit */
};

/*
 * Reads the usage of the Maildir++ root (recalculating when needed). limit_bytes and
 * limit_messages (0 = none) are the configured limits; they go into the file's first line.
 */
enum store_error store_quota_get(const char *root, uint64_t limit_bytes, uint64_t limit_messages,
                                 struct store_quota *q);
/* True when `bytes` more bytes and one more message still fit. */
bool store_quota_allows(const struct store_quota *q, uint64_t bytes);
/* Records a change (negative after an expunge). */
enum store_error store_quota_add(const char *root, int64_t bytes, int64_t messages);

#endif
