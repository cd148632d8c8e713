/*
 * Framing helpers shared by both ends of the Dovecot auth protocol (auth-client and
 * auth-userdb sockets): LF-terminated lines of TAB-separated fields, where values are
 * tab-escaped with \001 (protocols.md 3.1): \001 0 = NUL, \001 1 = \001, \001 t = TAB,
 * \001 r = CR, \001 n = LF.
 */
#ifndef TERN_AUTH_AUTH_PROTO_H
#define TERN_AUTH_AUTH_PROTO_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* The protocol's line cap (Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH). */
#define AUTH_PROTO_MAX_LINE 16384
/* More fields than this on one line is a protocol error. */
#define AUTH_PROTO_MAX_FIELDS 64

/* Appends s to out, escaping \001, TAB, CR and LF. Returns 0, or -1 when out is full. */
int auth_tab_escape(struct buf *out, const char *s);
/* Unescapes s in place. A NUL (\001 0) ends the string early, which callers treat as
 * invalid for names. Returns 0, or -1 for a \001 followed by an unknown byte or nothing. */
int auth_tab_unescape(char *s);

/*
 * Splits line (NUL-terminated, no LF) in place on TAB into fields_r[0 .. n). Returns n,
 * or -1 when there are more than max fields. Fields are not unescaped.
 */
int auth_split_fields(char *line, char **fields_r, size_t max);

/*
 * Finds "key=value" or a bare "key" among fields[0 .. n). Returns the value ("" for a bare
 * flag), or NULL when absent. The first occurrence wins.
 */
const char *auth_field_find(char *const *fields, size_t n, const char *key);

/* Parses a decimal unsigned 32-bit id without sign, spaces or leading zeros other than
 * "0". Returns 0 and *id_r, or -1. */
int auth_parse_uint(const char *s, unsigned *id_r);

#endif
