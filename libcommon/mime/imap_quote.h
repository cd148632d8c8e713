/* IMAP string output (RFC 3501 4.3, 4.5): NIL, quoted strings, literals when needed. */
#ifndef TERN_MIME_IMAP_QUOTE_H
#define TERN_MIME_IMAP_QUOTE_H

#include <stddef.h>

struct buf;

/* Appends NIL for NULL, else the string quoted, or as a literal ({n}CRLF...) when it has
 * CR, LF, NUL or 8-bit bytes that a quoted string cannot carry, or '"' or '\\'
 * (as Dovecot does). */
void imap_append_nstring(struct buf *out, const char *s);
/* As above for len bytes (may contain NUL). */
void imap_append_nstring_len(struct buf *out, const char *s, size_t len);

#endif
