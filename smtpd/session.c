/*
 * The session frame: input framing for command lines (caps first, bare CR/LF refused),
 * dispatch through the command table, reply batching for pipelining (RFC 2920), error
 * counting, the delivery backend's replies, and the Postfix-shaped connect/disconnect
 * lines. The commands themselves are in cmd_*.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "smtp_internal.h"

/* Bytes of pipelined replies held before they are written anyway. */
#define SMTP_OUTPUT_BATCH 4096

char *smtp_sanitize(const char *text)
{
	struct buf b;

	buf_init(&b, 0);
	log_sanitize(&b, text, strlen(text), 256);
	return buf_steal(&b);
}

struct smtp_session *smtp_session_new(const struct smtpd_settings *set,
                                      const struct smtp_client *client, const struct smtp_io *io,
                                      void *io_ctx)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->set = set;
	s->client = *client;
	s->client.ip = xstrdup(client->ip != NULL ? client->ip : "unknown");
	s->client.local_ip = xstrdup(client->local_ip != NULL ? client->local_ip : "unknown");
	s->io = io;
	s->io_ctx = io_ctx;
	s->tls = client->tls;
	s->state = SMTP_STATE_INIT;
	s->mode = SMTP_MODE_COMMAND;
	s->client_name = xasprintf("unknown[%s]", s->client.ip);
	s->stats = xcalloc(smtp_n_commands, sizeof(*s->stats));
	s->last_verb = "CONNECT";
	buf_init(&s->out, 0);
	return s;
}

void smtp_session_set_delivery(struct smtp_session *s, const struct smtp_delivery_ops *ops,
                               void *ctx)
{
	s->dlv = ops;
	s->dlv_ctx = ctx;
}

void smtp_session_set_auth(struct smtp_session *s, const struct smtp_auth_ops *ops, void *ctx)
{
	s->auth = ops;
	s->auth_ctx = ctx;
}

void smtp_session_start(struct smtp_session *s)
{
	log_info("connect from %s", s->client_name);
	smtp_reply(s, "220 %s ESMTP tern", s->set->hostname);
	smtp_flush(s);
}

bool smtp_session_closing(const struct smtp_session *s)
{
	return s->mode == SMTP_MODE_CLOSED;
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->mode == SMTP_MODE_CLOSED)
		return;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append(&s->out, "\r\n", 2);
	if (s->out.len >= SMTP_OUTPUT_BATCH)
		smtp_flush(s);
}

void smtp_flush(struct smtp_session *s)
{
	if (s->out.len > 0) {
		s->io->write(s->io_ctx, s->out.data, s->out.len);
		buf_reset(&s->out);
	}
}

void smtp_close(struct smtp_session *s)
{
	if (s->mode == SMTP_MODE_CLOSED)
		return;
	smtp_flush(s);
	s->mode = SMTP_MODE_CLOSED;
	if (s->in != NULL)
		buf_reset(s->in);
	s->io->close(s->io_ctx);
}

void smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->mode == SMTP_MODE_CLOSED)
		return;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append(&s->out, "\r\n", 2);
	if (++s->errors >= s->set->max_errors) {
		log_info("too many errors after %s from %s", s->last_verb, s->client_name);
		smtp_reply(s, "421 4.7.0 %s Error: too many errors", s->set->hostname);
		smtp_close(s);
	}
}

void smtp_cmd_ok(struct smtp_session *s)
{
	for (size_t i = 0; i < smtp_n_commands; i++) {
		if (strcmp(smtp_commands[i].name, s->last_verb) == 0) {
			s->stats[i].ok++;
			s->n_commands_ok++;
			return;
		}
	}
}

const char *smtp_protocol_name(const struct smtp_session *s)
{
	/* RFC 3848 and RFC 6531 4.3 "with" protocol types. */
	static const char *const names[2][2][2] = {
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};
	if (!s->esmtp)
		return "SMTP";
	return names[s->in_tx && s->tx.smtputf8][s->tls][s->auth_user != NULL];
}

bool smtp_tls_required_first(const struct smtp_session *s)
{
	return s->client.role == SMTP_ROLE_SUBMISSION && s->set->submission_tls_required && !s->tls;
}

bool smtp_auth_required(const struct smtp_session *s)
{
	return s->client.role != SMTP_ROLE_SMTP && s->auth_user == NULL;
}

void smtp_log_reject(struct smtp_session *s, const char *verb, const char *reply, const char *rcpt)
{
	char *r = smtp_sanitize(reply);
	char *from = s->in_tx ? smtp_sanitize(s->tx.mail.address) : NULL;
	char *to = rcpt != NULL ? smtp_sanitize(rcpt) : NULL;
	char *helo = s->helo != NULL ? smtp_sanitize(s->helo) : NULL;
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "%s: reject: %s from %s: %s;", s->in_tx ? s->tx.queue_id : "NOQUEUE", verb,
	           s->client_name, r);
	if (from != NULL)
		buf_printf(&b, " from=<%s>", from);
	if (to != NULL)
		buf_printf(&b, " to=<%s>", to);
	buf_printf(&b, " proto=%s", s->esmtp ? "ESMTP" : "SMTP");
	if (helo != NULL)
		buf_printf(&b, " helo=<%s>", helo);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
	free(r);
	free(from);
	free(to);
	free(helo);
}

static void make_queue_id(char *out, size_t size)
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	/* Like Postfix's short ids: unique per host and process life, one token of [0-9A-F]. */
	snprintf(out, size, "%lX%05lX%03X", (unsigned long)tv.tv_sec, (unsigned long)tv.tv_usec,
	         counter++ & 0xfff);
}

void smtp_tx_begin(struct smtp_session *s)
{
	memset(&s->tx, 0, sizeof(s->tx));
	make_queue_id(s->tx.queue_id, sizeof(s->tx.queue_id));
	clock_gettime(CLOCK_MONOTONIC, &s->tx.start);
	s->in_tx = true;
}

void smtp_tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;

	if (!s->in_tx)
		return;
	if (tx->dlv != NULL)
		s->dlv->free(tx->dlv);
	smtp_path_clear(&tx->mail);
	smtp_path_clear(&tx->pending_rcpt);
	for (size_t i = 0; i < tx->n_rcpts; i++) {
		free(tx->rcpts[i]);
		if (tx->end_texts != NULL)
			free(tx->end_texts[i]);
	}
	free(tx->rcpts);
	free(tx->end_texts);
	free(tx->end_fail_reply);
	if (tx->msg_started)
		smtp_msg_free(&tx->msg);
	memset(tx, 0, sizeof(*tx));
	s->in_tx = false;
	if (s->state & (SMTP_STATE_MAIL | SMTP_STATE_RCPT))
		s->state = SMTP_STATE_READY;
}

static void state_error(struct smtp_session *s, const struct smtp_command *cmd)
{
	const char *name = cmd->name;

	if (s->state == SMTP_STATE_INIT)
		smtp_reply_error(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (strcmp(name, "MAIL") == 0)
		smtp_reply_error(s, "503 5.5.1 Error: nested MAIL command");
	else if (strcmp(name, "RCPT") == 0)
		smtp_reply_error(s, "503 5.5.1 Error: need MAIL command");
	else if (strcmp(name, "DATA") == 0 || strcmp(name, "BDAT") == 0)
		smtp_reply_error(s, "503 5.5.1 Error: need RCPT command");
	else
		smtp_reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
}

static void dispatch(struct smtp_session *s, char *line)
{
	char *verb, *args;
	const struct smtp_command *cmd;

	smtp_split_command(line, &verb, &args);
	cmd = smtp_command_find(verb);
	s->n_commands++;
	if (cmd == NULL) {
		s->last_verb = "UNKNOWN";
		s->stat_unknown.total++;
		smtp_reply_error(s, "502 5.5.2 Error: command not recognized");
		return;
	}
	s->last_verb = cmd->name;
	s->stats[cmd - smtp_commands].total++;
	if (!(cmd->states & s->state)) {
		state_error(s, cmd);
		return;
	}
	cmd->handler(s, args);
	if (!cmd->pipelinable)
		smtp_flush(s);
}

/* Takes one CRLF line off the input. Returns false when more input is needed. */
static bool command_line_input(struct smtp_session *s)
{
	struct buf *in = s->in;
	size_t cap = s->set->max_line + 2;
	size_t scan = in->len < cap ? in->len : cap;
	/* Bytes already searched are not searched again: trickled input stays linear. */
	size_t from = s->scanned <= scan ? s->scanned : 0;
	const char *lf = memchr(in->data + from, '\n', scan - from);

	s->scanned = 0;
	if (lf == NULL) {
		if (in->len < cap) {
			s->scanned = scan;
			return false;
		}
		buf_consume(in, scan);
		s->mode = SMTP_MODE_SKIP_LINE;
		log_info("warning: %s: line too long after %s", s->client_name, s->last_verb);
		smtp_reply_error(s, "500 5.5.0 Error: line too long");
		return s->mode != SMTP_MODE_CLOSED;
	}
	size_t n = (size_t)(lf - in->data);
	/* The smuggling defence (CVE-2023-51764 class): only CRLF ends a line. */
	if (n == 0 || in->data[n - 1] != '\r' || memchr(in->data, '\r', n - 1) != NULL) {
		bool bare_lf = n == 0 || in->data[n - 1] != '\r';
		log_info("warning: %s: bare <%s> received after %s", s->client_name,
		         bare_lf ? "LF" : "CR", s->last_verb);
		smtp_reply(s, "521 5.5.2 %s Error: bare <%s> received", s->set->hostname,
		           bare_lf ? "LF" : "CR");
		smtp_close(s);
		return false;
	}
	char *line = xstrndup(in->data, n - 1);
	bool has_nul = memchr(in->data, '\0', n - 1) != NULL;
	buf_consume(in, n + 1);
	if (has_nul) {
		s->n_commands++;
		smtp_reply_error(s, "500 5.5.2 Error: NUL character in command");
	} else if (s->mode == SMTP_MODE_AUTH) {
		smtp_auth_input(s, line);
	} else {
		dispatch(s, line);
	}
	free(line);
	return true;
}

static bool skip_line_input(struct smtp_session *s)
{
	const char *lf = memchr(s->in->data, '\n', s->in->len);

	if (lf == NULL) {
		buf_consume(s->in, s->in->len);
		return false;
	}
	buf_consume(s->in, (size_t)(lf - s->in->data) + 1);
	s->mode = SMTP_MODE_COMMAND;
	return true;
}

void smtp_process(struct smtp_session *s)
{
	if (s->processing || s->in == NULL)
		return;
	s->processing = true;
	while (s->mode != SMTP_MODE_CLOSED && s->wait == SMTP_WAIT_NONE &&
	       (s->in->len > 0 || (s->mode == SMTP_MODE_BDAT && s->tx.bdat_remaining == 0))) {
		size_t before = s->in->len;
		enum smtp_mode mode = s->mode;
		bool more;

		switch (mode) {
		case SMTP_MODE_COMMAND:
		case SMTP_MODE_AUTH:
			more = command_line_input(s);
			break;
		case SMTP_MODE_SKIP_LINE:
			more = skip_line_input(s);
			break;
		case SMTP_MODE_DATA:
			smtp_data_input(s);
			more = s->in->len < before || s->mode != mode;
			break;
		case SMTP_MODE_BDAT:
			smtp_bdat_input(s);
			more = s->in->len < before || s->mode != mode || s->wait != SMTP_WAIT_NONE;
			break;
		default:
			more = false;
			break;
		}
		if (!more)
			break;
	}
	smtp_flush(s);
	s->processing = false;
	if (s->io->want_input != NULL && s->mode != SMTP_MODE_CLOSED)
		s->io->want_input(s->io_ctx, s->wait == SMTP_WAIT_NONE);
}

void smtp_session_input(struct smtp_session *s, struct buf *in)
{
	s->in = in;
	if (s->mode == SMTP_MODE_CLOSED) {
		buf_reset(in);
		return;
	}
	smtp_process(s);
}

void smtp_session_tls_started(struct smtp_session *s)
{
	/* RFC 3207 4.2: forget everything learnt from the client before TLS. */
	s->tls = true;
	smtp_tx_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	s->state = SMTP_STATE_INIT;
	s->mode = SMTP_MODE_COMMAND;
}

void smtp_session_timeout(struct smtp_session *s)
{
	if (s->mode == SMTP_MODE_CLOSED)
		return;
	log_info("timeout after %s from %s", s->last_verb, s->client_name);
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->set->hostname);
	smtp_close(s);
}

void smtp_session_timer(struct smtp_session *s)
{
	if (s->wait == SMTP_WAIT_DELAY)
		smtp_auth_timer(s);
}

static int reply_code(const char *reply)
{
	if (reply == NULL || reply[0] < '2' || reply[0] > '5' || reply[1] < '0' || reply[1] > '9' ||
	    reply[2] < '0' || reply[2] > '9')
		return 451;
	return (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
}

void smtp_session_delivery_reply(struct smtp_session *s, const char *reply)
{
	int code = reply_code(reply);

	switch (s->wait) {
	case SMTP_WAIT_MAIL:
		smtp_mail_delivery_reply(s, code, reply);
		break;
	case SMTP_WAIT_RCPT:
		smtp_rcpt_delivery_reply(s, code, reply);
		break;
	case SMTP_WAIT_DATA:
	case SMTP_WAIT_END:
	case SMTP_WAIT_DRAIN:
		smtp_data_delivery_reply(s, code, reply);
		break;
	default:
		/* A reply nobody waits for (e.g. the transaction failed mid-message and the
		 * backend reports it): remember it so the end of data fails. */
		if (s->in_tx)
			s->tx.failed = true;
		return;
	}
	if (s->wait == SMTP_WAIT_NONE && !s->processing)
		smtp_process(s);
}

void smtp_session_delivery_drained(struct smtp_session *s)
{
	if (s->wait != SMTP_WAIT_DRAIN)
		return;
	smtp_data_drained(s);
	if (s->wait == SMTP_WAIT_NONE && !s->processing)
		smtp_process(s);
}

static void log_disconnect(struct smtp_session *s)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "disconnect from %s", s->client_name);
	for (size_t i = 0; i < smtp_n_commands; i++) {
		const struct smtp_stat *st = &s->stats[i];
		if (st->total == 0)
			continue;
		if (st->ok == st->total)
			buf_printf(&b, " %s=%u", smtp_commands[i].stat_name, st->ok);
		else
			buf_printf(&b, " %s=%u/%u", smtp_commands[i].stat_name, st->ok, st->total);
	}
	if (s->stat_unknown.total > 0)
		buf_printf(&b, " unknown=0/%u", s->stat_unknown.total);
	if (s->n_commands_ok == s->n_commands)
		buf_printf(&b, " commands=%u", s->n_commands);
	else
		buf_printf(&b, " commands=%u/%u", s->n_commands_ok, s->n_commands);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}

void smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	s->freeing = true;
	if (s->mode != SMTP_MODE_CLOSED)
		log_info("lost connection after %s from %s", s->last_verb, s->client_name);
	log_disconnect(s);
	smtp_auth_cancel(s);
	smtp_tx_reset(s);
	free(s->helo);
	free(s->auth_user);
	free(s->auth_mech);
	free(s->auth_fail_reply);
	free(s->client_name);
	free((char *)s->client.ip);
	free((char *)s->client.local_ip);
	free(s->stats);
	buf_free(&s->out);
	free(s);
}
