/*
 * Per-message values that SORT and THREAD order by (RFC 5256, RFC 5957): the sent date,
 * the base subject, the first address's mailbox and display name, Message-ID and
 * References. All strings are UTF-8 (encoded words decoded); compare strings are
 * case-folded so memcmp orders them as the i;unicode-casemap comparator does.
 */
#ifndef TERN_IMAPD_IMAP_MSGKEYS_H
#define TERN_IMAPD_IMAP_MSGKEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap_date.h" /* imap_rfc822_date_parse */

struct buf;

/* RFC 5256 2.1: the subject without "Re:", "Fwd:", "[list]" leaders and "(fwd)"
 * trailers, white space collapsed; appended to out (UTF-8, not folded). */
void imap_base_subject(const char *decoded_subject, struct buf *out);
/* The mailbox (local part) of the first address in an address header; "" when none. */
void imap_first_mailbox(const char *value, struct buf *out);
/* The display name of the first address, or its addr-spec when it has none. */
void imap_first_display(const char *value, struct buf *out);
/* Splits Message-ID lists ("<a@b> <c@d>") into ids without brackets; returns count. */
size_t imap_msgid_list(const char *value, char ***ids_r);

#endif
