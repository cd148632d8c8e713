/*
 * Message content on the wire (RFC 1939 section 3): every line ends in CRLF, a line that
 * starts with "." gets another "." in front, and ".CRLF" ends the multi-line response.
 *
 * Stored messages may use bare LF (Maildir files written by other tools do); each bare LF
 * becomes CRLF, an existing CRLF is kept, a lone CR is passed through. A message without
 * a final line end gets CRLF before the terminating dot. The encoder is a state machine
 * fed chunks of any size (a file read in pieces), so the result never depends on where a
 * chunk boundary falls.
 *
 * TOP (RFC 1939 section 7): with a body line limit, the header block and the blank line
 * after it are sent in full, then at most `body_lines` lines of the body.
 */
#ifndef TERN_POP3D_OUTPUT_H
#define TERN_POP3D_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

struct pop3_encoder {
	bool line_start; /* the next byte begins a line */
	bool prev_cr;    /* the last byte seen was CR */
	bool in_header;  /* still in the header block (TOP) */
	bool line_empty; /* nothing but (CR) seen on the current line (header end) */
	bool limited;    /* TOP: body_lines applies */
	bool done;       /* TOP limit reached: the rest is ignored */
	uint64_t body_lines_left;
};

/* body_lines < 0: the whole message (RETR); else TOP's line count. */
void pop3_encoder_init(struct pop3_encoder *e, int64_t body_lines);
/*
 * Encodes in[0 .. len) onto out. Returns 0, or -1 when out would pass its maximum (out
 * is then unchanged past the last complete byte written; size out for 2 * len + 2).
 */
int pop3_encoder_feed(struct pop3_encoder *e, const void *in, size_t len, struct buf *out);
/* Ends the message: CRLF if a line is open, then ".CRLF". */
int pop3_encoder_finish(struct pop3_encoder *e, struct buf *out);
/* True once TOP's line limit is reached (the caller may stop reading). */
static inline bool pop3_encoder_done(const struct pop3_encoder *e)
{
	return e->done;
}

/*
 * The size of the message as RETR sends it, without the dot-stuffing and the final
 * ".CRLF" (RFC 1939 LIST/STAT "exact size"): bytes plus one per bare LF. Feed chunks to
 * a struct pop3_size_counter.
 */
struct pop3_size_counter {
	uint64_t size;
	bool prev_cr;
};
void pop3_size_feed(struct pop3_size_counter *c, const void *in, size_t len);

#endif
