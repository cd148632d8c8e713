/*
 * LMTP input framing: command lines, DATA with dot-unstuffing, BDAT chunks. A byte-level
 * state machine so that input split anywhere (down to one byte per read) gives the same
 * result, and so that the end of DATA is only ever CRLF "." CRLF.
 */
#include "lmtp_parse.h"

#include <string.h>

void lmtp_parser_init(struct lmtp_parser *p, size_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->mode = LMTP_MODE_COMMAND;
	p->max_line = max_line;
}

void lmtp_parser_begin_data(struct lmtp_parser *p)
{
	p->mode = LMTP_MODE_DATA;
	/* RFC 5321 4.1.1.4: the data starts at the beginning of a line, so "." CRLF right
	 * after the 354 is an empty message. */
	p->ds = LMTP_DS_SOL;
	p->body_bad_eol = false;
}

void lmtp_parser_begin_bdat(struct lmtp_parser *p, uint64_t size, bool last)
{
	p->mode = LMTP_MODE_BDAT;
	p->bdat_left = size;
	p->bdat_last = last;
}

static enum lmtp_event parse_command(struct lmtp_parser *p, const char *in, size_t len,
                                     struct lmtp_token *tok_r, size_t *used_r)
{
	/* Look no further than a full line plus its CRLF: the cap comes before any meaning. */
	size_t window = p->max_line + 2;
	size_t scan = len < window ? len : window;
	const char *lf = memchr(in, '\n', scan);
	if (lf == NULL) {
		if (len < window) {
			*used_r = 0;
			return LMTP_EV_NEED_MORE;
		}
		*used_r = scan;
		p->mode = LMTP_MODE_SKIP_LINE;
		return LMTP_EV_LINE_TOO_LONG;
	}
	size_t i = (size_t)(lf - in);
	*used_r = i + 1;
	if (i == 0 || in[i - 1] != '\r')
		return LMTP_EV_BAD_LINE;
	size_t line_len = i - 1;
	if (line_len > p->max_line)
		return LMTP_EV_LINE_TOO_LONG;
	if (memchr(in, '\r', line_len) != NULL)
		return LMTP_EV_BAD_LINE;
	tok_r->data = in;
	tok_r->len = line_len;
	return LMTP_EV_COMMAND;
}

/* Returns the event for body bytes in[start .. i) when there are any, else 0. */
static int emit_span(const char *in, size_t start, size_t i, struct lmtp_token *tok_r)
{
	if (i <= start)
		return 0;
	tok_r->data = in + start;
	tok_r->len = i - start;
	return 1;
}

static enum lmtp_event parse_data(struct lmtp_parser *p, const char *in, size_t len,
                                  struct lmtp_token *tok_r, size_t *used_r)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		switch (p->ds) {
		case LMTP_DS_SOL:
			if (c == '.') {
				/* RFC 5321 4.5.2: a leading dot was doubled or ends the data;
				 * either way this one is not content. */
				p->ds = LMTP_DS_DOT;
				*used_r = i + 1;
				if (emit_span(in, start, i, tok_r))
					return LMTP_EV_BODY;
				start = i + 1;
			} else if (c == '\r') {
				p->ds = LMTP_DS_CR;
			} else if (c == '\n') {
				p->body_bad_eol = true;
				p->ds = LMTP_DS_MID;
			} else {
				p->ds = LMTP_DS_MID;
			}
			break;
		case LMTP_DS_DOT:
			if (c == '\r') {
				p->ds = LMTP_DS_DOT_CR;
				start = i + 1; /* held back until we know what follows */
			} else {
				if (c == '\n')
					p->body_bad_eol = true;
				p->ds = LMTP_DS_MID;
			}
			break;
		case LMTP_DS_DOT_CR:
			if (c == '\n') {
				*used_r = i + 1;
				p->mode = LMTP_MODE_COMMAND;
				return LMTP_EV_BODY_END;
			}
			/* ".\r" then something else: a bare CR. The message is refused, so
			 * the held bytes need not be reproduced. */
			p->body_bad_eol = true;
			p->ds = c == '\r' ? LMTP_DS_CR : LMTP_DS_MID;
			break;
		case LMTP_DS_MID: {
			/* Fast path through ordinary text. */
			const char *q = in + i;
			const char *end = in + len;
			while (q < end && *q != '\r' && *q != '\n')
				q++;
			i = (size_t)(q - in);
			if (i == len)
				break;
			if (*q == '\r')
				p->ds = LMTP_DS_CR;
			else
				p->body_bad_eol = true; /* bare LF: not a line start */
			break;
		}
		case LMTP_DS_CR:
			if (c == '\n') {
				p->ds = LMTP_DS_SOL;
			} else if (c == '\r') {
				p->body_bad_eol = true;
			} else {
				p->body_bad_eol = true;
				p->ds = LMTP_DS_MID;
			}
			break;
		}
	}
	*used_r = len;
	if (emit_span(in, start, len, tok_r))
		return LMTP_EV_BODY;
	return LMTP_EV_NEED_MORE;
}

static enum lmtp_event parse_bdat(struct lmtp_parser *p, const char *in, size_t len,
                                  struct lmtp_token *tok_r, size_t *used_r)
{
	*used_r = 0;
	if (p->bdat_left == 0) {
		p->mode = LMTP_MODE_COMMAND;
		return LMTP_EV_BODY_END;
	}
	if (len == 0)
		return LMTP_EV_NEED_MORE;
	size_t n = p->bdat_left < len ? (size_t)p->bdat_left : len;
	p->bdat_left -= n;
	tok_r->data = in;
	tok_r->len = n;
	*used_r = n;
	return LMTP_EV_BODY;
}

enum lmtp_event lmtp_parser_next(struct lmtp_parser *p, const char *in, size_t len,
                                 struct lmtp_token *tok_r, size_t *used_r)
{
	tok_r->data = NULL;
	tok_r->len = 0;
	switch (p->mode) {
	case LMTP_MODE_SKIP_LINE: {
		const char *lf = memchr(in, '\n', len);
		if (lf == NULL) {
			*used_r = len;
			return LMTP_EV_NEED_MORE;
		}
		size_t skipped = (size_t)(lf - in) + 1;
		p->mode = LMTP_MODE_COMMAND;
		enum lmtp_event ev = parse_command(p, in + skipped, len - skipped, tok_r, used_r);
		*used_r += skipped;
		return ev;
	}
	case LMTP_MODE_COMMAND:
		return parse_command(p, in, len, tok_r, used_r);
	case LMTP_MODE_DATA:
		return parse_data(p, in, len, tok_r, used_r);
	case LMTP_MODE_BDAT:
		return parse_bdat(p, in, len, tok_r, used_r);
	}
	*used_r = 0;
	return LMTP_EV_NEED_MORE;
}
