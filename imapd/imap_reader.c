/*
 * Collects IMAP commands with their literals from the connection's input (see
 * imap_reader.h). A small state machine: reading a line, inside an inline literal,
 * inside a streamed literal, waiting for the session's decision on a big literal, or
 * discarding the rest of an over-long line.
 */
#include "imap_reader.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

enum reader_state {
	READER_LINE,
	READER_LITERAL_INLINE,
	READER_LITERAL_STREAM,
	READER_STREAM_DECISION,
	READER_SKIP_LINE,
};

struct imap_reader {
	struct imap_reader_limits limits;
	enum reader_state state;
	struct buf cmd;
	size_t line_start;
	bool complete;
	bool continue_pending;
	bool error_pending;

	unsigned n_literals;
	uint64_t literal_left;
	uint64_t pending_size;
	bool pending_nonsync;

	struct imap_streamed_literal *streamed;
	size_t n_streamed;
	imap_literal_sink_t *sink;
	void *sink_context;
	bool sink_failed;

	struct buf tag;
	struct buf error;
	bool error_fatal;
};

/* RFC 3501 tag: 1*<ASTRING-CHAR except "+">; we also cap its length for echoing. */
#define IMAP_TAG_MAX 64

struct imap_reader *imap_reader_new(const struct imap_reader_limits *limits)
{
	struct imap_reader *r = xcalloc(1, sizeof(*r));
	r->limits = *limits;
	buf_init(&r->cmd, limits->max_command);
	buf_init(&r->tag, IMAP_TAG_MAX);
	buf_init(&r->error, 512);
	return r;
}

void imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (r == NULL)
		return;
	buf_free(&r->cmd);
	buf_free(&r->tag);
	buf_free(&r->error);
	free(r->streamed);
	free(r);
	*rp = NULL;
}

void imap_reader_reset(struct imap_reader *r)
{
	buf_reset(&r->cmd);
	r->state = READER_LINE;
	r->line_start = 0;
	r->complete = false;
	r->continue_pending = false;
	r->n_literals = 0;
	r->literal_left = 0;
	r->n_streamed = 0;
	r->sink = NULL;
	r->sink_context = NULL;
	r->sink_failed = false;
}

static bool tag_char(unsigned char c)
{
	/* ATOM-CHAR plus resp-specials "]", minus "+"; no CTL, no 8-bit. */
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

/* Remembers the tag from the start of a command, or "*" when it is not a valid tag. */
static void reader_capture_tag(struct imap_reader *r, const char *data, size_t len)
{
	size_t n = 0;
	while (n < len && n < IMAP_TAG_MAX && tag_char((unsigned char)data[n]))
		n++;
	buf_reset(&r->tag);
	if (n > 0 && (n == len || data[n] == ' ' || data[n] == '\r' || data[n] == '\n'))
		(void)buf_append(&r->tag, data, n);
	else
		(void)buf_append_str(&r->tag, "*");
}

const char *imap_reader_tag(const struct imap_reader *r)
{
	return r->tag.len > 0 ? buf_cstr(&r->tag) : "*";
}

static enum imap_read_result reader_fail(struct imap_reader *r, bool fatal, const char *text)
{
	buf_reset(&r->error);
	if (fatal)
		(void)buf_printf(&r->error, "* BYE %s", text);
	else
		(void)buf_printf(&r->error, "%s %s", imap_reader_tag(r), text);
	r->error_fatal = fatal;
	return IMAP_READ_ERROR;
}

/*
 * Finds a literal announcement at the end of line[0..len): "{N}", "{N+}", "~{N}" (the
 * '~' of literal8 stays part of the text for the argument parser). Returns true with the
 * size and the non-synchronising flag, false when the line has no literal. *bad_r is set
 * when it looks like a literal but the number is invalid.
 */
static bool literal_marker(const char *line, size_t len, uint64_t *size_r, bool *nonsync_r,
                           bool *bad_r)
{
	*bad_r = false;
	if (len < 3 || line[len - 1] != '}')
		return false;
	size_t end = len - 1;
	*nonsync_r = false;
	if (line[end - 1] == '+') {
		*nonsync_r = true;
		end--;
	}
	size_t start = end;
	while (start > 0 && isdigit((unsigned char)line[start - 1]))
		start--;
	if (start == 0 || line[start - 1] != '{')
		return false;
	size_t open = start - 1;
	if (open > 0 && line[open - 1] == '~')
		open--;
	if (open > 0 && line[open - 1] != ' ' && line[open - 1] != '(')
		return false;
	if (start == end || end - start > 20) {
		*bad_r = true;
		return true;
	}
	uint64_t v = 0;
	for (size_t i = start; i < end; i++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(line[i] - '0'), &v)) {
			*bad_r = true;
			return true;
		}
	}
	*size_r = v;
	return true;
}

/* A line ended: handles a literal announcement or completes the command. */
static enum imap_read_result reader_end_line(struct imap_reader *r, bool *stop_r)
{
	const char *line = r->cmd.data + r->line_start;
	size_t len = r->cmd.len - r->line_start;
	uint64_t size = 0;
	bool nonsync = false, bad;

	*stop_r = true;
	reader_capture_tag(r, r->cmd.data, r->cmd.len);
	if (!literal_marker(line, len, &size, &nonsync, &bad)) {
		if (buf_append(&r->cmd, "\r\n", 2) < 0)
			return reader_fail(r, true, "Command too long");
		r->complete = true;
		return IMAP_READ_COMMAND;
	}
	if (bad)
		return reader_fail(r, nonsync,
		                   nonsync ? "Invalid literal size" : "BAD Invalid literal size");
	if (++r->n_literals > r->limits.max_literals)
		return reader_fail(r, nonsync,
		                   nonsync ? "Too many literals" : "BAD Too many literals");
	if (nonsync && r->limits.max_nonsync_literal > 0 && size > r->limits.max_nonsync_literal) {
		/* RFC 7888 4 (LITERAL-): a tagged BAD with TOOBIG. Its bytes are already on
		 * the way and could hold anything, so the connection closes after it. */
		(void)reader_fail(r, false,
		                  "BAD [TOOBIG] Non-synchronizing literal over 4096 bytes");
		r->error_fatal = true;
		return IMAP_READ_ERROR;
	}
	if (size > r->limits.max_literal)
		return reader_fail(r, nonsync,
		                   nonsync ? "Literal too big" : "NO [TOOBIG] Literal too big");
	if (buf_append(&r->cmd, "\r\n", 2) < 0)
		return reader_fail(r, true, "Command too long");
	r->line_start = r->cmd.len;
	if (size <= r->limits.max_inline_literal && size <= buf_room(&r->cmd)) {
		r->literal_left = size;
		r->state = size > 0 ? READER_LITERAL_INLINE : READER_LINE;
		if (!nonsync)
			return IMAP_READ_CONTINUE;
		*stop_r = false;
		return IMAP_READ_NEED_MORE;
	}
	r->pending_size = size;
	r->pending_nonsync = nonsync;
	r->state = READER_STREAM_DECISION;
	return IMAP_READ_STREAM;
}

/* Reading a line: copies bytes up to LF, enforcing the caps before buffering. */
static enum imap_read_result reader_line(struct imap_reader *r, struct buf *in, bool *stop_r)
{
	*stop_r = false;
	const char *lf = memchr(in->data, '\n', in->len);
	size_t seg = lf != NULL ? (size_t)(lf - in->data) : in->len;
	size_t line_len = r->cmd.len - r->line_start;
	size_t content = seg;
	if (lf != NULL && seg > 0 && in->data[seg - 1] == '\r')
		content--;

	if (line_len + content > r->limits.max_line || content > buf_room(&r->cmd)) {
		*stop_r = true;
		/* Only the first line can be skipped safely: after a literal, the rest of the
		 * line could announce a non-synchronising literal we would then misread. */
		if (r->line_start > 0)
			return reader_fail(r, true, "Command too long");
		if (r->cmd.len > 0)
			reader_capture_tag(r, r->cmd.data, r->cmd.len);
		else
			reader_capture_tag(r, in->data, in->len);
		buf_reset(&r->cmd);
		r->state = READER_SKIP_LINE;
		return reader_fail(r, false, "BAD Command line too long");
	}
	/* Without LF, a trailing CR may be the first half of CRLF: keep it out for now. */
	size_t take = seg;
	if (lf == NULL && seg > 0 && in->data[seg - 1] == '\r')
		take = seg - 1;
	(void)buf_append(&r->cmd, in->data, lf != NULL ? content : take);
	buf_consume(in, lf != NULL ? seg + 1 : take);
	if (lf == NULL) {
		*stop_r = true;
		return IMAP_READ_NEED_MORE;
	}
	if (r->cmd.len == 0) /* an empty line between commands is ignored */
		return IMAP_READ_NEED_MORE;
	return reader_end_line(r, stop_r);
}

static void reader_literal_bytes(struct imap_reader *r, struct buf *in)
{
	size_t n = in->len < r->literal_left ? in->len : (size_t)r->literal_left;
	if (r->state == READER_LITERAL_INLINE) {
		(void)buf_append(&r->cmd, in->data, n); /* room was checked when announced */
	} else if (!r->sink_failed && n > 0) {
		if (r->sink(in->data, n, r->sink_context) < 0)
			r->sink_failed = true;
	}
	buf_consume(in, n);
	r->literal_left -= n;
	if (r->literal_left == 0) {
		r->state = READER_LINE;
		r->line_start = r->cmd.len;
	}
}

enum imap_read_result imap_reader_feed(struct imap_reader *r, struct buf *in)
{
	if (r->complete)
		imap_reader_reset(r);
	if (r->error_pending) {
		r->error_pending = false;
		return IMAP_READ_ERROR;
	}
	if (r->continue_pending) {
		r->continue_pending = false;
		return IMAP_READ_CONTINUE;
	}
	while (in->len > 0) {
		bool stop = false;
		enum imap_read_result res = IMAP_READ_NEED_MORE;
		switch (r->state) {
		case READER_LINE:
			res = reader_line(r, in, &stop);
			if (res == IMAP_READ_COMMAND && r->sink_failed) {
				reader_capture_tag(r, r->cmd.data, r->cmd.len);
				imap_reader_reset(r);
				return reader_fail(r, false, "NO Failed to store the literal");
			}
			if (res == IMAP_READ_ERROR && r->state != READER_SKIP_LINE)
				imap_reader_reset(r);
			break;
		case READER_LITERAL_INLINE:
		case READER_LITERAL_STREAM:
			reader_literal_bytes(r, in);
			break;
		case READER_STREAM_DECISION:
			return IMAP_READ_STREAM;
		case READER_SKIP_LINE: {
			const char *lf = memchr(in->data, '\n', in->len);
			buf_consume(in, lf != NULL ? (size_t)(lf - in->data) + 1 : in->len);
			if (lf != NULL)
				imap_reader_reset(r);
			break;
		}
		}
		if (stop)
			return res;
	}
	return IMAP_READ_NEED_MORE;
}

const char *imap_reader_command(const struct imap_reader *r, size_t *len_r)
{
	*len_r = r->cmd.len;
	return buf_cstr(&r->cmd);
}

const struct imap_streamed_literal *imap_reader_streamed(const struct imap_reader *r, size_t *n_r)
{
	*n_r = r->n_streamed;
	return r->streamed;
}

uint64_t imap_reader_literal_size(const struct imap_reader *r)
{
	return r->pending_size;
}

bool imap_reader_literal_nonsync(const struct imap_reader *r)
{
	return r->pending_nonsync;
}

void imap_reader_stream_accept(struct imap_reader *r, imap_literal_sink_t *sink, void *context)
{
	r->streamed = xreallocarray(r->streamed, r->n_streamed + 1, sizeof(*r->streamed));
	r->streamed[r->n_streamed].offset = r->cmd.len;
	r->streamed[r->n_streamed].size = r->pending_size;
	r->n_streamed++;
	r->sink = sink;
	r->sink_context = context;
	r->literal_left = r->pending_size;
	r->state = r->pending_size > 0 ? READER_LITERAL_STREAM : READER_LINE;
	r->continue_pending = !r->pending_nonsync;
}

void imap_reader_stream_refuse(struct imap_reader *r, const char *reason)
{
	bool fatal = r->pending_nonsync;
	reader_capture_tag(r, r->cmd.data, r->cmd.len);
	imap_reader_reset(r);
	(void)reader_fail(r, fatal, reason);
	r->error_pending = true;
}

const char *imap_reader_error(const struct imap_reader *r)
{
	return buf_cstr(&r->error);
}

bool imap_reader_error_fatal(const struct imap_reader *r)
{
	return r->error_fatal;
}
