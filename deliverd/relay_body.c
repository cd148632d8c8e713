/*
 * The DATA encoding of the relay client: every line end becomes CRLF (a bare LF or a bare
 * CR in a stored message would be refused by strict servers, and is the stuff of SMTP
 * smuggling), a leading dot is doubled (RFC 5321 4.5.2), and the end is CRLF "." CRLF.
 */
#include "relay_private.h"

#include "base/buf.h"

void relay_body_encoder_init(struct relay_body_encoder *e)
{
	e->at_line_start = true;
	e->after_cr = false;
}

void relay_body_encode(struct relay_body_encoder *e, const char *data, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (e->after_cr) {
			e->after_cr = false;
			/* CR LF: one line end; a CR alone also ends the line. */
			buf_append_str(out, "\r\n");
			e->at_line_start = true;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			e->after_cr = true;
			continue;
		}
		if (c == '\n') {
			buf_append_str(out, "\r\n");
			e->at_line_start = true;
			continue;
		}
		if (e->at_line_start && c == '.')
			buf_append_char(out, '.');
		e->at_line_start = false;
		buf_append_char(out, c);
	}
}

void relay_body_finish(struct relay_body_encoder *e, struct buf *out)
{
	if (e->after_cr) {
		buf_append_str(out, "\r\n");
		e->after_cr = false;
		e->at_line_start = true;
	}
	if (!e->at_line_start)
		buf_append_str(out, "\r\n");
	buf_append_str(out, ".\r\n");
	e->at_line_start = true;
}
