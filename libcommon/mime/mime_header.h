/*
 * Header-field helpers for the MIME parser: unfolding, the RFC 5322 lexical tokens
 * (CFWS, atom, token, quoted-string) and the structured MIME fields (Content-Type and
 * Content-Disposition with parameters). All functions take [p, end) ranges and never read
 * past end; malformed input gives partial results, never an error.
 */
#ifndef TERN_MIME_MIME_HEADER_H
#define TERN_MIME_MIME_HEADER_H

#include <stddef.h>

struct buf;
struct mime_param;
struct mime_part;

/* Appends value without CR/LF of folding, without leading and trailing white space. */
void mime_header_unfold(const char *p, const char *end, struct buf *out);
/* Skips white space, folding and (nested) comments. */
const char *rfc822_skip_cfws(const char *p, const char *end);
/* Reads a quoted-string at p (which is '"') into out, unescaped; returns the end. */
const char *rfc822_read_quoted(const char *p, const char *end, struct buf *out);
/* Reads an RFC 2045 token; lenient (parameter values) stops only at ';', '"', '(', space
 * and controls. */
const char *rfc822_read_token(const char *p, const char *end, struct buf *out, int lenient);

/* Sets part->type/subtype/params from a Content-Type value (unchanged when unusable). */
void mime_parse_content_type(struct mime_part *part, const char *value);
/* Sets part->disposition/disposition_params from a Content-Disposition value. */
void mime_parse_disposition(struct mime_part *part, const char *value);
void mime_params_free(struct mime_param **params);

#endif
