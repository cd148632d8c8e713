/*
 * The LMTP input framing, as a pure incremental state machine (no I/O): command lines,
 * DATA bodies with dot-unstuffing, and BDAT chunks. The caller feeds whatever bytes have
 * arrived and gets one event at a time; it consumes *used_r bytes after each event.
 *
 * Modes are switched by the caller: after it accepted DATA (sent 354) it calls
 * lmtp_parser_begin_data(); after a BDAT command line, lmtp_parser_begin_bdat(). At the
 * end of a body the parser goes back to command mode by itself.
 *
 * Safety rules enforced here, before a byte is interpreted:
 *   - a command line longer than max_line is reported once (LMTP_EV_LINE_TOO_LONG) and its
 *     rest is skipped up to the next LF;
 *   - only CRLF ends a command line; a bare LF or bare CR is reported (LMTP_EV_BAD_LINE);
 *   - only CRLF.CRLF ends DATA (RFC 5321 4.1.1.4); a bare LF or CR inside DATA sets
 *     `body_bad_eol`, and never starts a new line, so "\n.\r\n" cannot end the data
 *     (SMTP smuggling).
 * Memory: the parser holds no buffer of its own; tokens point into the caller's input and
 * are valid until the caller consumes it.
 */
#ifndef TERN_DELIVERD_LMTP_PARSE_H
#define TERN_DELIVERD_LMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lmtp_parse_mode {
	LMTP_MODE_COMMAND,
	LMTP_MODE_SKIP_LINE, /* discarding the rest of an over-long command line */
	LMTP_MODE_DATA,
	LMTP_MODE_BDAT,
};

enum lmtp_event {
	LMTP_EV_NEED_MORE,     /* nothing complete: keep the input and feed more */
	LMTP_EV_COMMAND,       /* tok = the line without CRLF */
	LMTP_EV_LINE_TOO_LONG, /* reply 500 now; the rest of the line is skipped */
	LMTP_EV_BAD_LINE,      /* command line ended by bare LF / contained bare CR */
	LMTP_EV_BODY,          /* tok = body bytes (unstuffed) to append */
	LMTP_EV_BODY_END,      /* DATA's final "." or a BDAT chunk's last byte was read */
};

enum lmtp_data_state {
	LMTP_DS_SOL,    /* at the start of a line */
	LMTP_DS_DOT,    /* a dot at the start of a line was read and held back */
	LMTP_DS_DOT_CR, /* ".\r" at the start of a line, held back */
	LMTP_DS_MID,    /* inside a line */
	LMTP_DS_CR,     /* CR inside a line (already emitted) */
};

struct lmtp_parser {
	enum lmtp_parse_mode mode;
	enum lmtp_data_state ds;
	size_t max_line;
	uint64_t bdat_left;
	bool bdat_last;
	/* Set when the current body had a bare LF or bare CR; reset by begin_*. */
	bool body_bad_eol;
};

struct lmtp_token {
	const char *data;
	size_t len;
};

void lmtp_parser_init(struct lmtp_parser *p, size_t max_line);
void lmtp_parser_begin_data(struct lmtp_parser *p);
/* size bytes of chunk follow; last is the LAST keyword. A 0-byte chunk ends at once. */
void lmtp_parser_begin_bdat(struct lmtp_parser *p, uint64_t size, bool last);

/*
 * Looks at in[0 .. len) and returns the next event; *used_r is the number of input bytes
 * the event covers, and the caller must consume exactly that many before the next call.
 * NEED_MORE may still consume bytes (skipped or held-back input); the caller stops
 * feeding on NEED_MORE. A BDAT BODY_END covers 0 bytes.
 */
enum lmtp_event lmtp_parser_next(struct lmtp_parser *p, const char *in, size_t len,
                                 struct lmtp_token *tok_r, size_t *used_r);

#endif
