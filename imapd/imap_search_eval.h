/*
 * Evaluating a parsed SEARCH program against the messages of the selected mailbox.
 * Flags, sets, sizes and dates come from the index; the header fields clients search by
 * come from the index's cache; other headers and BODY/TEXT read the message file.
 * Strings match as case-insensitive substrings (RFC 3501 6.4.4).
 */
#ifndef TERN_IMAPD_IMAP_SEARCH_EVAL_H
#define TERN_IMAPD_IMAP_SEARCH_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "imap_date.h" /* imap_rfc822_date_day */

struct imap_session;
struct search_program;

/* The sequence numbers that match, ascending (caller frees). */
size_t *imap_search_eval(struct imap_session *s, const struct search_program *prog,
                         size_t *count_r);

#endif
