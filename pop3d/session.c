/*
 * The POP3 session: reads command lines (the parser enforces the line cap), dispatches
 * them from the command table by state, and runs the asynchronous parts of login
 * (authd, the userdb lookup, the failed-login delay) and of RETR (streaming a file
 * under output back-pressure). While one of those is under way no further input is
 * looked at, which is what makes pipelining (RFC 2449 6.6) safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session_private.h"

#define STREAM_CHUNK 32768

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
static void session_resume(struct pop3_session *s)
{
	session_process(s);
}

/* ---- RETR / TOP streaming ---- */

static void stream_free(struct pop3_session *s)
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
			stream_free(s);
			return true;
		}
		(void)pop3_encoder_feed(&st->enc, s->stream_chunk, (size_t)r, out);
		session_write(s, out->data, out->len);
	}
	if (s->closing)
		stream_free(s);
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

/* ---- login ---- */

/* Client-given text in log lines: printable, and none of the characters fail2ban's
 * dovecot filter uses as field delimiters, so a user name cannot forge "rip=". */
static const char *log_safe(struct buf *tmp, const char *s)
{
	buf_reset(tmp);
	for (size_t i = 0; s != NULL && s[i] != '\0' && i < 64; i++) {
		char c = s[i];
		if (c < 0x21 || c > 0x7e || c == '<' || c == '>' || c == ',' || c == '=')
			c = '?';
		(void)buf_append_char(tmp, c);
	}
	if (s != NULL && strlen(s) > 64)
		(void)buf_append_str(tmp, "...");
	return buf_cstr(tmp);
}

static const char *session_security(const struct pop3_session *s)
{
	return s->tls ? ", TLS" : s->loopback ? ", secured" : "";
}

static void session_log_login(struct pop3_session *s)
{
	struct buf tmp;
	buf_init(&tmp, 256);
	log_info("pop3-login: Login: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%d%s, "
	         "session=<%016llx>",
	         log_safe(&tmp, s->user), s->mech, s->remote_ip, s->local_ip, (int)getpid(),
	         session_security(s), (unsigned long long)s->id);
	buf_free(&tmp);
}

static void session_home_done(enum pop3_home_result result, const char *home, void *context)
{
	struct pop3_session *s = context;
	enum maildrop_open_result r;
	char *error = NULL;

	s->home_lookup = NULL;
	s->busy = false;
	if (result == POP3_HOME_TEMPFAIL) {
		session_reply(s, "-ERR [SYS/TEMP] Temporary user lookup failure.");
		session_close(s);
		return;
	}
	if (result == POP3_HOME_NOTFOUND) {
		log_warn("pop3(%s): authenticated but has no mailbox", s->user);
		session_reply(s, "-ERR [SYS/PERM] No mailbox for this user.");
		session_close(s);
		return;
	}
	r = maildrop_open(home, s->set.uidl_format, &s->md, &error);
	if (r == MAILDROP_OPEN_IN_USE) {
		session_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session.");
		session_close(s);
		return;
	}
	if (r == MAILDROP_OPEN_ERROR) {
		log_warn("pop3(%s): Couldn't open INBOX: %s", s->user, error);
		free(error);
		session_reply(s, "-ERR [SYS/TEMP] Couldn't open INBOX.");
		session_close(s);
		return;
	}
	s->state = POP3_STATE_TRANSACTION;
	s->msg_count = maildrop_count(s->md);
	for (unsigned n = 1; n <= s->msg_count; n++)
		s->mailbox_size += maildrop_size(s->md, n);
	session_log_login(s);
	session_reply(s, "+OK Logged in.");
	session_resume(s);
}

/* PR-6: the name authd returns is checked again before it names anything. */
static bool user_name_is_valid(const char *user)
{
	size_t len = user != NULL ? strlen(user) : 0;
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (user[i] < 0x21 || user[i] > 0x7e || user[i] == '/')
			return false;
	}
	return true;
}

static void session_auth_done(enum auth_result result, const char *data, void *context)
{
	struct pop3_session *s = context;

	switch (result) {
	case AUTH_RESULT_CONTINUE:
		s->busy = false;
		s->sasl_continue = true;
		session_reply(s, "+ %s", data != NULL ? data : "");
		break;
	case AUTH_RESULT_OK:
		s->auth_req = NULL;
		if (!user_name_is_valid(data)) {
			log_warn("pop3-login: authd returned an invalid user name");
			s->busy = false;
			session_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
			break;
		}
		free(s->user);
		s->user = xstrdup(data);
		s->home_lookup = s->auth->lookup_home(s->auth_ctx, s->user, session_home_done, s);
		return; /* still busy */
	case AUTH_RESULT_FAIL:
		s->auth_req = NULL;
		s->auth_failures++;
		s->fail_close_after_delay =
		    s->set.max_auth_attempts > 0 && s->auth_failures >= s->set.max_auth_attempts;
		/* Stay busy: the answer and any pipelined command wait for the delay. */
		s->io->timer_start(s->io_ctx, s->set.auth_fail_delay_ms);
		return;
	case AUTH_RESULT_TEMPFAIL:
		s->auth_req = NULL;
		s->busy = false;
		session_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
		break;
	}
	session_resume(s);
}

void pop3_session_timer(struct pop3_session *s)
{
	/* The failed-login delay is over. */
	s->busy = false;
	session_reply(s, "-ERR [AUTH] Authentication failed.");
	if (s->fail_close_after_delay) {
		session_close(s);
		return;
	}
	session_resume(s);
}

void session_auth_begin(struct pop3_session *s, const char *mech, const char *ir_b64)
{
	struct auth_request_info info = {
	    .mech = mech,
	    .service = "pop3",
	    .local_ip = s->local_ip,
	    .remote_ip = s->remote_ip,
	    .local_port = s->local_port,
	    .remote_port = s->remote_port,
	    .secured = s->tls || s->loopback,
	    .initial_response_b64 = ir_b64,
	};

	free(s->mech);
	s->mech = xstrdup(mech);
	for (char *p = s->mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	s->auth_attempts++;
	s->busy = true;
	s->auth_req = s->auth->begin(s->auth_ctx, &info, session_auth_done, s);
	if (s->auth_req == NULL && s->busy)
		session_auth_done(AUTH_RESULT_TEMPFAIL, NULL, s);
}

/* ---- time-outs and the end ---- */

void pop3_session_timeout(struct pop3_session *s)
{
	session_reply(s, "-ERR Disconnected for inactivity.");
	session_close(s);
}

static void session_log_disconnect(struct pop3_session *s)
{
	long secs = (long)(time(NULL) - s->connected_at);
	struct buf tmp;

	buf_init(&tmp, 256);
	if (s->state != POP3_STATE_AUTHORIZATION) {
		log_info("pop3(%s)<%d><%016llx>: Disconnected: %s top=%u/%llu, retr=%u/%llu, "
		         "del=%u/%u, size=%llu",
		         log_safe(&tmp, s->user), (int)getpid(), (unsigned long long)s->id,
		         s->committed ? "Logged out" : "Connection closed", s->top_count,
		         (unsigned long long)s->top_bytes, s->retr_count,
		         (unsigned long long)s->retr_bytes, s->expunged, s->msg_count,
		         (unsigned long long)s->mailbox_size);
	} else if (s->auth_failures > 0) {
		log_info("pop3-login: Disconnected (auth failed, %u attempts in %ld secs): "
		         "user=<%s>, method=%s, rip=%s, lip=%s%s, session=<%016llx>",
		         s->auth_failures, secs, log_safe(&tmp, s->user), s->mech, s->remote_ip,
		         s->local_ip, session_security(s), (unsigned long long)s->id);
	} else if (s->plaintext_refused) {
		log_info("pop3-login: Disconnected (tried to use disallowed plaintext auth): "
		         "user=<%s>, rip=%s, lip=%s, session=<%016llx>",
		         log_safe(&tmp, s->user), s->remote_ip, s->local_ip,
		         (unsigned long long)s->id);
	} else {
		log_info("pop3-login: Disconnected (no auth attempts in %ld secs): user=<>, "
		         "rip=%s, lip=%s%s, session=<%016llx>",
		         secs, s->remote_ip, s->local_ip, session_security(s),
		         (unsigned long long)s->id);
	}
	buf_free(&tmp);
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
	if (s->busy)
		s->io->timer_stop(s->io_ctx);
	stream_free(s);
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
