/*
 * Decoders for searching: RFC 2047 encoded words in header values, the base64 and
 * quoted-printable transfer encodings, and charsets to UTF-8 through iconv. Invalid input
 * is decoded as far as it goes; nothing here fails, so a search never errors on a
 * malformed message. Output is bounded by the caller's buf maximum.
 */
#ifndef TERN_MIME_MIME_DECODE_H
#define TERN_MIME_MIME_DECODE_H

#include <stddef.h>

struct buf;

/* Appends text in charset as UTF-8 (unknown charsets and invalid bytes become '?',
 * except that bytes of an unknown charset that are valid UTF-8 are kept). */
void mime_charset_to_utf8(const char *charset, const char *in, size_t len, struct buf *out);
/* Appends a header value with its encoded words (=?cs?B?..?= / =?cs?Q?..?=) decoded. */
void mime_header_decode(const char *value, size_t len, struct buf *utf8);
void mime_base64_decode(const char *in, size_t len, struct buf *out);
void mime_qp_decode(const char *in, size_t len, struct buf *out);
/* Appends UTF-8 text lower-cased (simple Unicode case folding), for substring search. */
void mime_utf8_fold(const char *in, size_t len, struct buf *out);

#endif
