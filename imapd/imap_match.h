/*
 * LIST/LSUB pattern matching (RFC 3501 6.3.8): '*' matches anything, '%' anything but
 * the hierarchy separator. Runs in O(pattern x name) time with no recursion, so a
 * pattern like "*a*a*a*a*" cannot blow up. "INBOX" matches case-insensitively.
 */
#ifndef TERN_IMAPD_IMAP_MATCH_H
#define TERN_IMAPD_IMAP_MATCH_H

#include <stdbool.h>

bool imap_match(const char *pattern, const char *name, char separator);

#endif
