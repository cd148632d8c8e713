/*
 * IMAP modified UTF-7 (RFC 3501 5.1.3), the encoding of folder names on the wire and, as
 * Dovecot does, on disk. Only the canonical form is valid: printable ASCII is never
 * base64-encoded, '&' is written "&-", shifts are not empty or adjacent, pad bits are zero.
 */
#ifndef TERN_STORE_MUTF7_H
#define TERN_STORE_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Appends the modified UTF-7 form of UTF-8 text; -1 (out unchanged) on invalid UTF-8. */
int mutf7_encode(const char *utf8, size_t len, struct buf *out);
/* Appends the UTF-8 form; -1 (out unchanged) when the input is not canonical mUTF-7. */
int mutf7_decode(const char *mutf7, size_t len, struct buf *out);
/* True when s is canonical modified UTF-7. */
bool mutf7_is_valid(const char *s, size_t len);
/* Decodes one UTF-8 sequence at s (len bytes available): the code point, or -1 when
 * invalid (overlong, surrogate, > U+10FFFF, truncated); *n_r gets its length. */
long utf8_decode_char(const unsigned char *s, size_t len, size_t *n_r);

#endif
