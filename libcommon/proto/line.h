/*
 * Finding lines in a byte stream for CRLF protocols (SMTP, LMTP, IMAP, POP3) and the
 * LF-only auth protocol. The cap is enforced before anything is buffered further: a caller
 * gets LINE_TOO_LONG as soon as `max` bytes are present without a terminator, and then
 * skips the rest of that line with line_skip_state (below) while reporting the error.
 *
 * Precisely (net branch): a line of exactly `max` bytes plus its terminator is accepted;
 * LINE_TOO_LONG comes once max + 1 bytes are present without a terminator, so the answer
 * never depends on how the input was split. An input buffer must hold max + 2 bytes.
 * On LINE_TOO_LONG nothing is consumed (*used_r = 0): skip with line_skip(). NUL bytes are
 * passed through as ordinary bytes; the protocol decides about them.
 */
#ifndef TERN_PROTO_LINE_H
#define TERN_PROTO_LINE_H

#include <stdbool.h>
#include <stddef.h>

enum line_mode {
	LINE_MODE_CRLF,    /* only CRLF ends a line; bare LF and bare CR are errors */
	LINE_MODE_LENIENT, /* CRLF or bare LF end a line (returned without the CR) */
	LINE_MODE_LF,      /* LF ends a line; CR is an ordinary byte (auth protocol) */
};

enum line_result {
	LINE_OK,        /* a line: in[0 .. *len_r), terminator excluded; consume *used_r */
	LINE_NEED_MORE, /* no terminator yet and fewer than max bytes: wait for more */
	LINE_TOO_LONG,  /* max bytes without a terminator */
	LINE_BARE_LF,   /* CRLF mode: LF not preceded by CR; *used_r covers it */
	LINE_BARE_CR,   /* CRLF mode: CR followed by something other than LF; *used_r covers
	                 * the line up to and including the CR */
};

/*
 * Scans in[0 .. len) for the first line. max counts the line's bytes without its
 * terminator. A CR as the very last byte in CRLF mode means "need more".
 */
enum line_result line_next(const char *in, size_t len, size_t max, enum line_mode mode,
                           size_t *len_r, size_t *used_r);

/*
 * Discarding the rest of an over-long line as it arrives: call with the input; returns
 * the number of bytes to consume and sets *done_r when the line's terminator (LF) was
 * found and consumed.
 */
size_t line_skip(const char *in, size_t len, bool *done_r);

#endif
