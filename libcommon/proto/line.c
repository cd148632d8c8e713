/*
 * The line finder for CRLF protocols (see line.h). It never looks further than max + 1
 * bytes into its input (max + 2 when a CR may be the first half of a CRLF right at the
 * limit), so the cost of a call is bounded by the cap, not by what the peer sent.
 *
 * Boundary rule: a line of exactly max bytes followed by its terminator is accepted, and
 * LINE_TOO_LONG is returned once max + 1 bytes are present without one. That makes the
 * result independent of how the input was split into reads (the trickle tests check it).
 */
#include "proto/line.h"

#include <string.h>

static enum line_result line_ok(size_t len, size_t used, size_t *len_r, size_t *used_r)
{
	*len_r = len;
	*used_r = used;
	return LINE_OK;
}

static enum line_result line_next_crlf(const char *in, size_t len, size_t max, size_t *len_r,
                                       size_t *used_r)
{
	size_t lim = len < max + 1 ? len : max + 1;
	for (size_t i = 0; i < lim; i++) {
		if (in[i] == '\n') {
			*len_r = i;
			*used_r = i + 1;
			return LINE_BARE_LF;
		}
		if (in[i] != '\r')
			continue;
		if (i + 1 == len)
			return LINE_NEED_MORE;
		if (in[i + 1] == '\n')
			return line_ok(i, i + 2, len_r, used_r);
		*len_r = i;
		*used_r = i + 1;
		return LINE_BARE_CR;
	}
	return len > max ? LINE_TOO_LONG : LINE_NEED_MORE;
}

static enum line_result line_next_lenient(const char *in, size_t len, size_t max, size_t *len_r,
                                          size_t *used_r)
{
	size_t lim = len < max + 1 ? len : max + 1;
	for (size_t i = 0; i < lim; i++) {
		if (in[i] == '\n') {
			size_t n = i > 0 && in[i - 1] == '\r' ? i - 1 : i;
			return line_ok(n, i + 1, len_r, used_r);
		}
		if (in[i] == '\r' && i == max) {
			/* max content bytes, then a CR: only an LF right after keeps it legal. */
			if (i + 1 == len)
				return LINE_NEED_MORE;
			if (in[i + 1] == '\n')
				return line_ok(i, i + 2, len_r, used_r);
			return LINE_TOO_LONG;
		}
	}
	return len > max ? LINE_TOO_LONG : LINE_NEED_MORE;
}

static enum line_result line_next_lf(const char *in, size_t len, size_t max, size_t *len_r,
                                     size_t *used_r)
{
	size_t lim = len < max + 1 ? len : max + 1;
	const char *lf = lim > 0 ? memchr(in, '\n', lim) : NULL;
	if (lf != NULL)
		return line_ok((size_t)(lf - in), (size_t)(lf - in) + 1, len_r, used_r);
	return len > max ? LINE_TOO_LONG : LINE_NEED_MORE;
}

enum line_result line_next(const char *in, size_t len, size_t max, enum line_mode mode,
                           size_t *len_r, size_t *used_r)
{
	*len_r = 0;
	*used_r = 0;
	/* max + 2 must not wrap; a cap that large means "no cap" anyway. */
	if (max > (size_t)-1 - 2)
		max = (size_t)-1 - 2;
	switch (mode) {
	case LINE_MODE_CRLF:
		return line_next_crlf(in, len, max, len_r, used_r);
	case LINE_MODE_LENIENT:
		return line_next_lenient(in, len, max, len_r, used_r);
	case LINE_MODE_LF:
		return line_next_lf(in, len, max, len_r, used_r);
	}
	return LINE_TOO_LONG;
}

size_t line_skip(const char *in, size_t len, bool *done_r)
{
	const char *lf = len > 0 ? memchr(in, '\n', len) : NULL;
	if (lf == NULL) {
		*done_r = false;
		return len;
	}
	*done_r = true;
	return (size_t)(lf - in) + 1;
}
