/*
 * The POP3 command parser: finds command lines in the input as it arrives and splits a
 * line into its keyword and arguments (RFC 1939 section 3, RFC 2449 section 4).
 *
 * Framing is incremental and enforces the line cap before anything is buffered further:
 * as soon as `max` bytes are present without a line end, POP3_LINE_TOO_LONG is returned
 * once, and the rest of that line is skipped as it arrives (POP3_LINE_NEED_MORE with the
 * bytes to consume) without ever being looked at. CRLF ends a line; a bare LF is accepted
 * too (some old clients), and the CR is not part of the line.
 */
#ifndef TERN_POP3D_POP3_PARSE_H
#define TERN_POP3D_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>

enum pop3_line_result {
	POP3_LINE_NEED_MORE, /* consume *used_r (may be > 0 while skipping) and wait */
	POP3_LINE_OK,        /* line = in[0 .. *len_r); consume *used_r */
	POP3_LINE_TOO_LONG,  /* reported once per over-long line; consume *used_r */
};

struct pop3_line_parser {
	bool skipping; /* inside the rest of an over-long line */
};

enum pop3_line_result pop3_line_next(struct pop3_line_parser *p, const char *in, size_t len,
                                     size_t max, size_t *len_r, size_t *used_r);

/* The longest keyword we accept; RFC 2449 keywords are 3 or 4 characters. */
#define POP3_KEYWORD_MAX 4
#define POP3_MAX_ARGS 2

struct pop3_command {
	char name[POP3_KEYWORD_MAX + 1]; /* upper-cased keyword */
	unsigned n_args;
	const char *args[POP3_MAX_ARGS]; /* NUL-terminated, point into the line copy */
	const char *rest;                /* everything after "KEYWORD " (for PASS), or "" */
};

/*
 * Splits line (modified in place: separators become NUL; it must be NUL-terminated at
 * line[len]) into cmd_r. Arguments are separated by single spaces and must be printable
 * ASCII; `rest` keeps the raw remainder so a password may contain spaces.
 * Returns 0, or -1 with *error_r a static reply text (without "-ERR ").
 */
int pop3_command_parse(char *line, size_t len, struct pop3_command *cmd_r, const char **error_r);

/* Parses a message number argument: decimal, 1 .. UINT32_MAX, no sign or spaces. */
int pop3_parse_msgnum(const char *arg, unsigned *num_r);
/* Parses a non-negative line count for TOP (0 .. UINT32_MAX). */
int pop3_parse_count(const char *arg, unsigned *num_r);

#endif
