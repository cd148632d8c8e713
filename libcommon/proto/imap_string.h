/*
 * Writing strings in IMAP responses (RFC 3501 section 4.3): as an atom when the caller
 * allows it and the text is a safe atom, as a quoted string when it has no CR, LF, NUL
 * or 8-bit bytes (8-bit is allowed in quoted strings only once UTF8=ACCEPT is enabled),
 * else as a literal "{N}\r\n<bytes>". Shared by imapd and the store's ENVELOPE and
 * BODYSTRUCTURE cache (which sends '"' and '\\' as literals, as Dovecot does, so cached
 * ENVELOPE/BODYSTRUCTURE match Dovecot's byte for byte).
 */
#ifndef TERN_PROTO_IMAP_STRING_H
#define TERN_PROTO_IMAP_STRING_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum imap_string_flags {
	IMAP_STRING_ALLOW_ATOM = 1 << 0,       /* astring position: a plain atom may be written */
	IMAP_STRING_UTF8 = 1 << 1,             /* UTF8=ACCEPT enabled: 8-bit may be quoted */
	IMAP_STRING_LITERAL_SPECIALS = 1 << 2, /* '"' and '\\' force a literal (Dovecot's way) */
};

/* Appends s[0..len) as an astring/string; returns buf_append's result. */
int imap_string_append(struct buf *out, const char *s, size_t len, unsigned flags);
/* Appends NIL for NULL, else the string (nstring). */
int imap_nstring_append(struct buf *out, const char *s, size_t len, unsigned flags);

/* The cache's form: imap_nstring_append with IMAP_STRING_LITERAL_SPECIALS, 7-bit quoting
 * (8-bit goes as a literal). NUL-terminated s, or len bytes (may contain NUL). */
void imap_append_nstring(struct buf *out, const char *s);
void imap_append_nstring_len(struct buf *out, const char *s, size_t len);

#endif
