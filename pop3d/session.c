/*
 * The POP3 session: reads command lines (the parser enforces the line cap) and dispatches
 * them from the command table by state. The asynchronous parts live beside it: login
 * (session_login.c: authd, the userdb lookup, the failed-login delay) and RETR/TOP
 * (session_stream.c: a file under output back-pressure). While one of those is under way
 * no further input is looked at, which is what makes pipelining (RFC 2449 6.6) safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session_private.h"

void pop3_settings_defaults(struct pop3_settings *set)
{
	memset(set, 0, sizeof(*set));
	set->max_line = 1024;
	set->max_auth_line = 8192;
	set->auth_fail_delay_ms = 2000;
	set->max_auth_attempts = 3;
	set->max_bad_commands = 20;
	set->plaintext_on_loopback = true;
	set->tls_available = false;
	set->uidl_format = MAILDROP_UIDL_UID_VALIDITY;
}

struct pop3_session *pop3_session_new(const struct pop3_settings *set,
                                      const struct pop3_conn_info *info,
                                      const struct pop3_io_ops *io, void *io_ctx,
                                      const struct pop3_auth_ops *auth, void *auth_ctx)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->set = *set;
	s->remote_ip = xstrdup(info->remote_ip != NULL ? info->remote_ip : "");
	s->local_ip = xstrdup(info->local_ip != NULL ? info->local_ip : "");
	s->remote_port = info->remote_port;
	s->local_port = info->local_port;
	s->tls = info->tls;
	s->loopback = info->loopback;
	s->id = info->id;
	s->connected_at = time(NULL);
	s->io = io;
	s->io_ctx = io_ctx;
	s->auth = auth;
	s->auth_ctx = auth_ctx;
	s->state = POP3_STATE_AUTHORIZATION;
	return s;
}

enum pop3_state pop3_session_state(const struct pop3_session *s)
{
	return s->state;
}

void session_write(struct pop3_session *s, const void *data, size_t len)
{
	int r = s->io->write(s->io_ctx, data, len);
	if (r > 0)
		s->blocked = true;
	else if (r < 0)
		s->closing = true;
}

void session_reply(struct pop3_session *s, const char *fmt, ...)
{
	struct buf line;
	va_list ap;

	buf_init(&line, 0);
	va_start(ap, fmt);
	(void)buf_vprintf(&line, fmt, ap);
	va_end(ap);
	(void)buf_append_str(&line, "\r\n");
	session_write(s, line.data, line.len);
	buf_free(&line);
}

void session_close(struct pop3_session *s)
{
	if (!s->closing) {
		s->closing = true;
		s->io->close(s->io_ctx);
	}
}

void session_bad_command(struct pop3_session *s, const char *text)
{
	s->bad_commands++;
	if (s->set.max_bad_commands > 0 && s->bad_commands >= s->set.max_bad_commands) {
		session_reply(s, "-ERR Too many bad commands.");
		session_close(s);
		return;
	}
	session_reply(s, "-ERR %s", text);
}

bool session_plaintext_allowed(const struct pop3_session *s)
{
	return s->tls || (s->loopback && s->set.plaintext_on_loopback);
}

void pop3_session_start(struct pop3_session *s)
{
	/* No <timestamp> in the greeting: we do not offer APOP (RFC 1939 7). */
	session_reply(s, "+OK tern POP3 ready.");
}

/* A line while a SASL exchange waits for the client's response (RFC 5034 4). */
static void session_sasl_response(struct pop3_session *s, const char *line)
{
	s->sasl_continue = false;
	if (strcmp(line, "*") == 0) {
		s->auth->abort(&s->auth_req);
		session_reply(s, "-ERR Authentication aborted by client.");
		return;
	}
	s->busy = true;
	s->auth->cont(s->auth_req, line);
}

static void session_command(struct pop3_session *s, char *line, size_t len)
{
	struct pop3_command cmd;
	const struct pop3_cmd_def *def;
	const char *error;

	if (pop3_command_parse(line, len, &cmd, &error) < 0) {
		session_bad_command(s, error);
		return;
	}
	def = pop3_cmd_find(cmd.name);
	if (def == NULL) {
		session_bad_command(s, "Unknown command.");
		return;
	}
	if ((def->states & (1u << s->state)) == 0) {
		session_bad_command(s, s->state == POP3_STATE_AUTHORIZATION
		                           ? "Not logged in."
		                           : "Command not valid in TRANSACTION state.");
		return;
	}
	def->handler(s, &cmd);
}

static bool session_can_read(const struct pop3_session *s)
{
	return !s->busy && !s->blocked && !s->closing && s->stream == NULL && s->in != NULL &&
	       s->in->len > 0;
}

static void session_process(struct pop3_session *s)
{
	if (s->processing)
		return;
	s->processing = true;
	while (session_can_read(s)) {
		size_t max =
		    s->state == POP3_STATE_AUTHORIZATION ? s->set.max_auth_line : s->set.max_line;
		size_t len, used;
		enum pop3_line_result r =
		    pop3_line_next(&s->parser, s->in->data, s->in->len, max, &len, &used);

		if (r == POP3_LINE_NEED_MORE) {
			buf_consume(s->in, used);
			if (used == 0)
				break;
			continue;
		}
		if (r == POP3_LINE_TOO_LONG) {
			buf_consume(s->in, used);
			if (s->sasl_continue) {
				s->sasl_continue = false;
				s->auth->abort(&s->auth_req);
			}
			session_bad_command(s, "Line too long.");
			continue;
		}
		/* A private copy: the handler may NUL-terminate arguments in place. */
		char *line = xmalloc(len + 1);
		memcpy(line, s->in->data, len);
		line[len] = '\0';
		buf_consume(s->in, used);
		if (s->sasl_continue)
			session_sasl_response(s, line);
		else
			session_command(s, line, len);
		/* Lines may carry a password: do not leave it in freed memory. */
		secure_zero(line, len);
		free(line);
	}
	s->processing = false;
}

void pop3_session_input(struct pop3_session *s, struct buf *in)
{
	s->in = in;
	session_process(s);
}

/* Called when a wait (authd, delay, drain) is over: carry on with buffered commands. */
void session_resume(struct pop3_session *s)
{
	session_process(s);
}

/* ---- time-outs and the end ---- */

void pop3_session_timeout(struct pop3_session *s)
{
	session_reply(s, "-ERR Disconnected for inactivity.");
	session_close(s);
}

void pop3_session_free(struct pop3_session **sp)
{
	struct pop3_session *s = *sp;

	if (s == NULL)
		return;
	session_log_disconnect(s);
	if (s->auth_req != NULL)
		s->auth->abort(&s->auth_req);
	if (s->home_lookup != NULL)
		s->auth->lookup_abort(&s->home_lookup);
	session_open_job_orphan(s);
	if (s->busy)
		s->io->timer_stop(s->io_ctx);
	session_stream_free(s);
	free(s->stream_chunk);
	buf_free(&s->stream_out);
	/* Without a QUIT nothing is applied (RFC 1939 6: UPDATE only on QUIT). */
	maildrop_free(&s->md);
	free(s->user);
	free(s->mech);
	free(s->remote_ip);
	free(s->local_ip);
	free(s);
	*sp = NULL;
}
