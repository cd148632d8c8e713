/*
 * Strict base64 (RFC 4648 section 4, with padding), as SASL exchanges use it
 * (RFC 4954 4, RFC 3501 6.2.2): no whitespace, no missing padding, no bits past the end.
 */
#ifndef TERN_AUTH_BASE64_H
#define TERN_AUTH_BASE64_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* The 6-bit value of a base64 alphabet character (RFC 4648 table 1), or -1. The lenient
 * MIME decoder (mime/mime_decode.c) shares this table. */
int base64_value(unsigned char c);

/* Appends the encoding of in[0 .. len) to out. Returns 0, or -1 when out is full. */
int base64_encode(struct buf *out, const void *in, size_t len);
/* Appends the decoded bytes to out (which stays NUL-terminated, so text can be read with
 * buf_cstr; binary may contain NULs). Returns 0, or -1 for invalid input or a full out. */
int base64_decode(struct buf *out, const char *in, size_t len);
/* True when s is valid strict base64 (the empty string is valid). */
bool base64_is_valid(const char *s, size_t len);

#endif
