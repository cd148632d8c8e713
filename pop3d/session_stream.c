/*
 * RETR and TOP: a message file streamed through the dot-stuffing encoder in 32 KiB steps,
 * as fast as the connection's output queue takes it (back-pressure stops the stream and
 * pipelined commands behind it until pop3_session_drain).
 */
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session_private.h"

#define STREAM_CHUNK 32768

void session_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	free(st);
	s->stream = NULL;
}

/* Writes as much of the message as the output queue takes. Returns true when done. */
static bool stream_continue(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	struct buf *out = &s->stream_out;

	while (!s->blocked && !s->closing) {
		ssize_t r = 0;
		buf_reset(out);
		if (!pop3_encoder_done(&st->enc))
			r = read(st->fd, s->stream_chunk, STREAM_CHUNK);
		if (r < 0) {
			/* Mid-response there is no way to say -ERR: drop the connection. */
			log_warn("pop3: read of a message failed: %m");
			session_close(s);
			break;
		}
		if (r == 0) {
			(void)pop3_encoder_finish(&st->enc, out);
			session_write(s, out->data, out->len);
			session_stream_free(s);
			return true;
		}
		(void)pop3_encoder_feed(&st->enc, s->stream_chunk, (size_t)r, out);
		session_write(s, out->data, out->len);
	}
	if (s->closing)
		session_stream_free(s);
	return false;
}

void session_send_message(struct pop3_session *s, unsigned n, int64_t body_lines)
{
	char *error = NULL;
	int fd = maildrop_open_message(s->md, n, &error);

	if (fd < 0) {
		log_warn("pop3(%s): %s", s->user, error);
		free(error);
		session_reply(s, "-ERR Message %u is no longer available.", n);
		return;
	}
	if (body_lines < 0)
		session_reply(s, "+OK %llu octets", (unsigned long long)maildrop_size(s->md, n));
	else
		session_reply(s, "+OK");
	if (s->stream_chunk == NULL) {
		s->stream_chunk = xmalloc(STREAM_CHUNK);
		/* Each input byte becomes at most two output bytes; the end adds CRLF.CRLF. */
		buf_init(&s->stream_out, 2 * STREAM_CHUNK + 8);
	}
	s->stream = xcalloc(1, sizeof(*s->stream));
	s->stream->fd = fd;
	pop3_encoder_init(&s->stream->enc, body_lines);
	(void)stream_continue(s);
}

void pop3_session_drain(struct pop3_session *s)
{
	s->blocked = false;
	if (s->stream != NULL && !stream_continue(s))
		return;
	session_resume(s);
}

bool session_msgnum(struct pop3_session *s, const char *arg, unsigned *n_r)
{
	if (pop3_parse_msgnum(arg, n_r) < 0) {
		session_reply(s, "-ERR Invalid message number: %s", arg);
		return false;
	}
	if (*n_r > maildrop_count(s->md)) {
		session_reply(s, "-ERR There's no message %u.", *n_r);
		return false;
	}
	if (maildrop_is_deleted(s->md, *n_r)) {
		session_reply(s, "-ERR Message is deleted.");
		return false;
	}
	return true;
}
