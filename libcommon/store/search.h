/*
 * Substring search in one message, as IMAP SEARCH needs it (RFC 3501 6.4.4): the match is
 * case-insensitive (simple Unicode lower-casing) and happens after decoding MIME encoded
 * words, base64 / quoted-printable bodies and charsets (iconv) to UTF-8. The needle is
 * UTF-8. Cached header fields are answered from the index cache without opening the file.
 */
#ifndef TERN_STORE_SEARCH_H
#define TERN_STORE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_error.h"

struct store_mailbox;

/* Bytes of a message file that a body search reads; the rest is not searched. */
#define SEARCH_MAX_MESSAGE (64u * 1024 * 1024)
/* Bytes of header block a header search reads from the file. */
#define SEARCH_MAX_HEADER (256u * 1024)

/* SEARCH HEADER <field> <needle> (and FROM, TO, CC, BCC, SUBJECT): *match_r is set when a
 * field of that name contains needle; an empty needle matches any such field. */
enum store_error store_search_header(struct store_mailbox *box, size_t seq, const char *field,
                                     const char *needle, bool *match_r);
/* SEARCH BODY (with_headers false) or TEXT (true). */
enum store_error store_search_body(struct store_mailbox *box, size_t seq, const char *needle,
                                   bool with_headers, bool *match_r);
/* True when haystack (any bytes, treated as UTF-8) contains needle, case-insensitively. */
bool search_text_contains(const char *haystack, size_t len, const char *needle);

#endif
