/*
 * Framing of IMAP commands (RFC 3501 2.2 and 7.5, RFC 7888 LITERAL+/LITERAL-, RFC 3516
 * literal8). The reader collects one whole command — its lines and the literals between
 * them — into a capped buffer, and tells the session:
 *   - when a synchronising literal was accepted and "+ " must be sent to the client;
 *   - when a literal is too big to hold in memory (APPEND of a large message): the
 *     session then either accepts it, and its bytes go to a sink (a temp file) as they
 *     arrive, or refuses it;
 *   - when the command is complete: the normalised text (every line ends in CRLF,
 *     inline literal bytes follow their "{N}\r\n" marker, streamed literals have only the
 *     marker) goes to imap_args_parse().
 * Every limit is checked before bytes are buffered. Errors carry the reply to send and
 * whether the connection must be closed (a refused non-synchronising literal cannot be
 * skipped safely: its bytes are already on the way).
 */
#ifndef TERN_IMAPD_IMAP_READER_H
#define TERN_IMAPD_IMAP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct imap_reader;

struct imap_reader_limits {
	size_t max_line;           /* bytes of one line, literal data excluded */
	size_t max_command;        /* bytes held for one command (lines + inline literals) */
	size_t max_inline_literal; /* larger literals are offered for streaming */
	uint64_t max_literal;      /* no literal may be larger, streamed or not */
	unsigned max_literals;     /* literals in one command */
	/* Addition (LITERAL-, RFC 7888 4): a larger non-synchronising literal is refused
	 * with a tagged "BAD [TOOBIG]" and the connection closes; 0 = no such limit. */
	uint64_t max_nonsync_literal;
};

enum imap_read_result {
	IMAP_READ_NEED_MORE, /* all input consumed; feed again when more arrives */
	IMAP_READ_COMMAND,   /* a command is complete: imap_reader_command() */
	IMAP_READ_CONTINUE,  /* send "+ OK\r\n" (synchronising literal), then feed again */
	IMAP_READ_STREAM,    /* a big literal: imap_reader_stream_accept() or _refuse() */
	IMAP_READ_ERROR,     /* imap_reader_error(); close if imap_reader_error_fatal() */
};

/* Receives the bytes of an accepted streamed literal; returns 0, or -1 to fail the
 * command (the rest of the literal is then discarded). */
typedef int imap_literal_sink_t(const void *data, size_t len, void *context);

struct imap_streamed_literal {
	size_t offset; /* in the command text: just after the literal's "{N}\r\n" marker */
	uint64_t size;
};

struct imap_reader *imap_reader_new(const struct imap_reader_limits *limits);
void imap_reader_free(struct imap_reader **r);

/* Consumes bytes from in (buf_consume) until an event or until in is empty. After
 * COMMAND, the command stays available until the next feed. */
enum imap_read_result imap_reader_feed(struct imap_reader *r, struct buf *in);

/* The complete command's normalised text and length (valid until the next feed). */
const char *imap_reader_command(const struct imap_reader *r, size_t *len_r);
/* Literals of the complete command that were streamed, in order. */
const struct imap_streamed_literal *imap_reader_streamed(const struct imap_reader *r, size_t *n_r);

/* The tag of the command being read ("*" when none can be seen yet); safe to echo. */
const char *imap_reader_tag(const struct imap_reader *r);
/* After STREAM: the announced size and whether it was non-synchronising. */
uint64_t imap_reader_literal_size(const struct imap_reader *r);
bool imap_reader_literal_nonsync(const struct imap_reader *r);
/* After STREAM: accept (bytes go to sink; for a synchronising literal the next feed
 * returns CONTINUE first) or refuse (the next feed returns ERROR with "<tag> <reason>",
 * and the command is dropped; for a non-synchronising literal the error is fatal). */
void imap_reader_stream_accept(struct imap_reader *r, imap_literal_sink_t *sink, void *context);
void imap_reader_stream_refuse(struct imap_reader *r, const char *reason);

/* After ERROR: the full reply line without CRLF ("<tag> BAD ..." or "* BYE ...") and
 * whether the connection must close (a fatal error may also be a tagged line: the
 * session then says BYE itself). */
const char *imap_reader_error(const struct imap_reader *r);
bool imap_reader_error_fatal(const struct imap_reader *r);

/* Drops any partial command (e.g. after STARTTLS or on logout). */
void imap_reader_reset(struct imap_reader *r);

#endif
