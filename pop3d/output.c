/*
 * CRLF normalisation and dot-stuffing of message content for RETR and TOP. The encoder
 * looks at one byte at a time and keeps only two bits of history (line start, previous
 * CR), so chunk boundaries cannot change the output.
 */
#include "output.h"

#include "base/buf.h"

void pop3_encoder_init(struct pop3_encoder *e, int64_t body_lines)
{
	e->line_start = true;
	e->prev_cr = false;
	e->in_header = true;
	e->line_empty = true;
	e->limited = body_lines >= 0;
	e->done = false;
	e->body_lines_left = body_lines >= 0 ? (uint64_t)body_lines : 0;
}

/* A line just ended (its LF was written): update the TOP bookkeeping. */
static void encoder_line_ended(struct pop3_encoder *e)
{
	if (e->in_header) {
		if (e->line_empty) {
			e->in_header = false;
			if (e->limited && e->body_lines_left == 0)
				e->done = true;
		}
	} else if (e->limited) {
		e->body_lines_left--;
		if (e->body_lines_left == 0)
			e->done = true;
	}
	e->line_empty = true;
}

int pop3_encoder_feed(struct pop3_encoder *e, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;

	for (size_t i = 0; i < len && !e->done; i++) {
		unsigned char c = p[i];
		char tmp[3];
		size_t n = 0;

		if (e->line_start && c == '.')
			tmp[n++] = '.'; /* RFC 1939 3: byte-stuff a leading termination octet */
		if (c == '\n') {
			if (!e->prev_cr)
				tmp[n++] = '\r';
			tmp[n++] = '\n';
		} else {
			tmp[n++] = (char)c;
		}
		if (buf_append(out, tmp, n) < 0)
			return -1;
		if (c == '\n') {
			e->line_start = true;
			e->prev_cr = false;
			encoder_line_ended(e);
		} else {
			e->line_start = false;
			e->prev_cr = c == '\r';
			if (c != '\r')
				e->line_empty = false;
		}
	}
	return 0;
}

int pop3_encoder_finish(struct pop3_encoder *e, struct buf *out)
{
	if (!e->line_start && !e->done) {
		/* No final line end: close the line; a trailing lone CR only needs its LF. */
		if (buf_append_str(out, e->prev_cr ? "\n" : "\r\n") < 0)
			return -1;
	}
	e->line_start = true;
	e->prev_cr = false;
	return buf_append_str(out, ".\r\n");
}

void pop3_size_feed(struct pop3_size_counter *c, const void *in, size_t len)
{
	const unsigned char *p = in;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && !c->prev_cr)
			c->size++;
		c->prev_cr = p[i] == '\r';
	}
	c->size += len;
}
