/*
 * An IMAP connection's life: greeting, reading commands through imap_reader, dispatching
 * them through the command table one at a time, the SASL line mode of AUTHENTICATE, and
 * the caps on bad commands and idle time.
 */
#include "imap_session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth_client.h"
#include "auth/userdb_client.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "imap_watch.h"
#include "imap_reader.h"
#include "imap_server.h"
#include "imap_utf8.h"
#include "net/conn.h"
#include "proto/line.h"

#define IMAP_SASL_LINE_MAX 16384

void imap_session_write(struct imap_session *s, const void *data, size_t len)
{
	(void)conn_write(s->conn, data, len);
}

static void session_vsend(struct imap_session *s, const char *prefix, const char *fmt, va_list ap)
{
	struct buf line;
	buf_init(&line, 0);
	if (prefix != NULL)
		(void)buf_append_str(&line, prefix);
	(void)buf_vprintf(&line, fmt, ap);
	(void)buf_append(&line, "\r\n", 2);
	(void)conn_write(s->conn, line.data, line.len);
	buf_free(&line);
}

void imap_session_send(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	session_vsend(s, NULL, fmt, ap);
	va_end(ap);
}

void imap_session_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	struct buf prefix;
	buf_init(&prefix, 0);
	(void)buf_printf(&prefix, "%s %s ", s->cmd.tag != NULL ? s->cmd.tag : "*", status);
	va_list ap;
	va_start(ap, fmt);
	session_vsend(s, buf_cstr(&prefix), fmt, ap);
	va_end(ap);
	buf_free(&prefix);
}

void imap_session_close(struct imap_session *s)
{
	s->state = IMAP_STATE_LOGOUT;
	conn_close(s->conn);
}

bool imap_session_secured(const struct imap_session *s)
{
	return conn_is_tls(s->conn) || conn_is_loopback(s->conn);
}

void imap_session_capabilities(const struct imap_session *s, struct buf *out)
{
	/* RFC 7888 4: LITERAL+ and LITERAL- are never advertised together. */
	(void)buf_append_str(out, imap_server.literal_plus
	                              ? "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE"
	                              : "IMAP4rev1 SASL-IR LITERAL- ID ENABLE");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (!conn_is_tls(s->conn) && imap_server.tls != NULL)
			(void)buf_append_str(out, " STARTTLS");
		const struct auth_mech *mechs;
		size_t n = auth_client_mechs(imap_server.auth, &mechs);
		bool secured = imap_session_secured(s);
		for (size_t i = 0; i < n; i++) {
			if (!mechs[i].plaintext || secured)
				(void)buf_printf(out, " AUTH=%s", mechs[i].name);
		}
		if (!secured)
			(void)buf_append_str(out, " LOGINDISABLED");
		return;
	}
	(void)buf_append_str(out,
	                     " NAMESPACE UNSELECT CHILDREN LIST-EXTENDED SPECIAL-USE UIDPLUS"
	                     " MOVE STATUS=SIZE ESEARCH SEARCHRES IDLE SORT SORT=DISPLAY"
	                     " THREAD=ORDEREDSUBJECT THREAD=REFERENCES LIST-STATUS"
	                     " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE ACL RIGHTS=texk CONDSTORE"
	                     " QRESYNC CREATE-SPECIAL-USE BINARY UTF8=ACCEPT COMPRESS=DEFLATE");
}

int imap_session_stream_fd(const struct imap_session *s, size_t i)
{
	return i < s->n_stream_fds ? s->stream_fds[i] : -1;
}

static void session_close_streams(struct imap_session *s)
{
	for (size_t i = 0; i < s->n_stream_fds; i++)
		close(s->stream_fds[i]);
	free(s->stream_fds);
	s->stream_fds = NULL;
	s->n_stream_fds = 0;
}

static int session_stream_sink(const void *data, size_t len, void *context)
{
	struct imap_session *s = context;
	int fd = s->stream_fds[s->n_stream_fds - 1];
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A literal too big for memory: only APPEND takes one (a message), and only once
 * logged in; its bytes go to an unlinked file in the user's Maildir tmp/ as they arrive.
 */
static void session_stream_literal(struct imap_session *s)
{
	size_t len;
	const char *text = imap_reader_command(s->reader, &len);
	const char *sp = memchr(text, ' ', len);
	bool append =
	    sp != NULL && (size_t)(text + len - sp) > 8 && strncasecmp(sp + 1, "APPEND ", 7) == 0;
	if (!append || s->home == NULL) {
		imap_reader_stream_refuse(s->reader, "NO [TOOBIG] Literal too big.");
		return;
	}
	char *dir = xasprintf("%s/tmp", s->home);
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(dir);
	if (fd < 0) {
		imap_reader_stream_refuse(s->reader, "NO [SERVERBUG] Cannot store the message.");
		return;
	}
	s->stream_fds = xreallocarray(s->stream_fds, s->n_stream_fds + 1, sizeof(int));
	s->stream_fds[s->n_stream_fds++] = fd;
	imap_reader_stream_accept(s->reader, session_stream_sink, s);
}

static void session_bad_command(struct imap_session *s)
{
	session_close_streams(s); /* the command's literals, if any, are dropped with it */
	if (++s->bad_commands >= imap_server.max_bad_commands) {
		imap_session_send(s, "* BYE Too many invalid commands.");
		imap_session_close(s);
	}
}

static void session_run_command(struct imap_session *s)
{
	size_t len, n_streamed;
	const char *text = imap_reader_command(s->reader, &len);
	const struct imap_streamed_literal *streamed = imap_reader_streamed(s->reader, &n_streamed);
	const char *error, *utf8_status;
	char *tag;

	if (imap_args_parse(text, len, streamed, n_streamed, &imap_server.args_limits, &s->cmd,
	                    &error, &tag) < 0) {
		imap_session_send(s, "%s BAD %s", tag != NULL ? tag : "*", error);
		free(tag);
		session_bad_command(s);
		return;
	}
	const struct imap_command_def *def = imap_command_find(s->cmd.name);
	if (def == NULL) {
		imap_session_tagged(s, "BAD", "Unknown command.");
		session_bad_command(s);
	} else if ((def->states & s->state) == 0) {
		imap_session_tagged(s, "BAD", "%s",
		                    s->state == IMAP_STATE_NOT_AUTH
		                        ? "Log in first."
		                        : "Command not valid in this state.");
		session_bad_command(s);
	} else if (s->utf8_enabled && imap_utf8_command_in(&s->cmd, &utf8_status, &error) < 0) {
		/* Like a handler's argument errors: not counted as a bad command. */
		imap_session_tagged(s, utf8_status, "%s", error);
	} else {
		s->cmd_running = true;
		s->in_handler = true;
		s->done_early = false;
		enum imap_cmd_result res = def->handler(s, &s->cmd);
		s->in_handler = false;
		/* Pause only when the command is really still running: a backend may have
		 * answered synchronously (authd down), and a resume that came before this
		 * pause would be lost. */
		if (res == IMAP_CMD_ASYNC && !s->done_early) {
			/* A command waiting for a line of input (IDLE's DONE) keeps reading. */
			if (s->line_handler == NULL)
				conn_pause_read(s->conn);
			return;
		}
		s->cmd_running = false;
	}
	imap_command_free(&s->cmd);
	session_close_streams(s);
}

void imap_session_command_done(struct imap_session *s)
{
	if (s->in_handler) {
		s->done_early = true;
		return;
	}
	s->cmd_running = false;
	imap_command_free(&s->cmd);
	session_close_streams(s);
	if (s->state != IMAP_STATE_LOGOUT)
		conn_resume_read(s->conn);
}

/* AUTHENTICATE's client responses: one base64 line each, or "*" to cancel (RFC 3501
 * 6.2.2). Returns false when more input is needed. */
static bool session_handler_line(struct imap_session *s, struct buf *in);

static void session_process(struct imap_session *s, struct buf *in)
{
	while ((!s->cmd_running || s->line_handler != NULL) && s->state != IMAP_STATE_LOGOUT &&
	       !conn_is_closing(s->conn)) {
		if (s->line_handler != NULL) {
			if (!session_handler_line(s, in))
				return;
			continue;
		}
		enum imap_read_result res = imap_reader_feed(s->reader, in);
		switch (res) {
		case IMAP_READ_NEED_MORE:
			return;
		case IMAP_READ_CONTINUE:
			imap_session_send(s, "+ OK");
			break;
		case IMAP_READ_STREAM:
			session_stream_literal(s);
			break;
		case IMAP_READ_ERROR:
			imap_session_send(s, "%s", imap_reader_error(s->reader));
			if (imap_reader_error_fatal(s->reader)) {
				if (strncmp(imap_reader_error(s->reader), "* BYE", 5) != 0)
					imap_session_send(s, "* BYE Closing the connection.");
				imap_session_close(s);
				return;
			}
			session_bad_command(s);
			break;
		case IMAP_READ_COMMAND:
			session_run_command(s);
			break;
		}
	}
}

static bool session_handler_line(struct imap_session *s, struct buf *in)
{
	size_t len, used;
	switch (line_next(in->data, in->len, IMAP_SASL_LINE_MAX, LINE_MODE_LENIENT, &len, &used)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_OK: {
		char *line = xstrndup(in->data, len);
		buf_consume(in, used);
		void (*handler)(struct imap_session *, const char *, size_t) = s->line_handler;
		s->line_handler = NULL;
		handler(s, line, len);
		secure_zero(line, len);
		free(line);
		return true;
	}
	default:
		imap_session_send(s, "* BYE Line too long.");
		imap_session_close(s);
		return false;
	}
}

static void session_on_open(struct conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->conn = c;
	s->state = IMAP_STATE_NOT_AUTH;
	s->reader = imap_reader_new(&imap_server.reader_limits);
	s->tls_done = conn_is_tls(c);
	s->connect_ms = uv_now(conn_loop(c));
	conn_set_data(c, s);
	conn_set_idle_timeout(c, imap_server.login_timeout_ms);

	struct buf caps;
	buf_init(&caps, 0);
	imap_session_capabilities(s, &caps);
	imap_session_send(s, "* OK [CAPABILITY %s] tern ready.", buf_cstr(&caps));
	buf_free(&caps);
}

static void session_on_data(struct conn *c, struct buf *in)
{
	struct imap_session *s = conn_data(c);
	session_process(s, in);
}

static void session_on_drain(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	if (s != NULL && s->drain_cb != NULL)
		s->drain_cb(s, s->drain_ctx);
}

static void session_on_timeout(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	imap_session_send(s, "* BYE Disconnected for inactivity.");
}

static void session_on_close(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	if (s == NULL)
		return;
	if (s->auth_req != NULL)
		auth_request_abort(&s->auth_req);
	if (s->userdb_req != NULL)
		userdb_lookup_abort(&s->userdb_req);
	if (s->user != NULL && conn_is_compressed(c)) {
		uint64_t raw_in, wire_in, raw_out, wire_out;
		conn_compress_stats(c, &raw_in, &wire_in, &raw_out, &wire_out);
		log_info("imap(%s): COMPRESS=DEFLATE totals: in=%llu/%llu out=%llu/%llu "
		         "(uncompressed/compressed bytes)",
		         s->user, (unsigned long long)raw_in, (unsigned long long)wire_in,
		         (unsigned long long)raw_out, (unsigned long long)wire_out);
	}
	if (s->user != NULL)
		log_info("imap(%s): Disconnected: Logged out", s->user);
	if (s->drain_cb != NULL)
		s->drain_cb(s, NULL); /* lets a streaming job free itself */
	imap_watch_unsubscribe(s);
	imap_mailbox_unselect(s);
	imap_command_free(&s->cmd);
	session_close_streams(s);
	imap_reader_free(&s->reader);
	free(s->auth_mech);
	free(s->login_user);
	free(s->user);
	free(s->home);
	free(s);
}

static void session_on_overflow(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	imap_session_send(s, "* BYE Input buffer full.");
	imap_session_close(s);
}

const struct conn_ops imap_session_conn_ops = {
    .on_open = session_on_open,
    .on_data = session_on_data,
    .on_drain = session_on_drain,
    .on_timeout = session_on_timeout,
    .on_close = session_on_close,
    .on_overflow = session_on_overflow,
};
