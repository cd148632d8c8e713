/*
 * CRLF normalisation and dot-stuffing of message content for RETR and TOP. The encoder
 * looks at one byte at a time and keeps only two bits of history (line start, previous
 * CR), so chunk boundaries cannot change the output.
 */
#include "output.h"

#include <string.h>

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
	size_t i = 0;

	/* Whole spans between line ends are copied at once: only line starts and line
	 * ends need a decision. */
	while (i < len && !e->done) {
		if (e->line_start) {
			e->line_start = false;
			/* RFC 1939 3: byte-stuff a leading termination octet. */
			if (p[i] == '.' && buf_append_char(out, '.') < 0)
				return -1;
		}
		const unsigned char *lf = memchr(p + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - p) : len;
		if (end > i) {
			if (buf_append(out, p + i, end - i) < 0)
				return -1;
			for (size_t k = i; e->line_empty && k < end; k++) {
				if (p[k] != '\r')
					e->line_empty = false;
			}
			e->prev_cr = p[end - 1] == '\r';
		}
		if (lf == NULL)
			break;
		if ((e->prev_cr ? buf_append_char(out, '\n') : buf_append(out, "\r\n", 2)) < 0)
			return -1;
		e->prev_cr = false;
		e->line_start = true;
		encoder_line_ended(e);
		i = end + 1;
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
	const unsigned char *end = p + len;

	c->size += len;
	while (p < end) {
		const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			c->prev_cr = end[-1] == '\r';
			return;
		}
		/* A bare LF grows by one byte on the wire (CRLF). */
		if (lf > p ? lf[-1] != '\r' : !c->prev_cr)
			c->size++;
		c->prev_cr = false;
		p = lf + 1;
	}
}
