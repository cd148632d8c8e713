/*
 * sendmail -bs: an SMTP dialogue on stdin/stdout (what some MUAs and scripts speak to a
 * local sendmail). Each transaction is relayed to deliverd as it happens: MAIL and RCPT
 * replies are deliverd's own (so the submitting user's sender rule applies), the data is
 * passed through already dot-stuffed, and the DATA reply sums up the per-recipient ones:
 * 250 when every accepted recipient has its copy, 451 when any failed temporarily (the
 * client retries; nothing is lost), 554 when all failed permanently.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "sendmail.h"
#include "submit.h"

#define SMTP_MAX_LINE 4096
#define SMTP_MAX_RCPTS 1000

struct smtp_state {
	const struct config *cfg;
	struct sendmail_identity id;
	FILE *in, *out;
	struct submit_tx tx;
	bool in_tx;
	char **rcpts;
	size_t n_rcpts;
	char *sender;
};

static void reply(struct smtp_state *st, const char *text)
{
	fprintf(st->out, "%s\r\n", text);
	fflush(st->out);
}

/* Reads a line (CRLF or LF) of at most SMTP_MAX_LINE bytes; NULL at EOF. A longer line
 * comes back as "" with *too_long set, its rest discarded. */
static char *read_line(FILE *in, bool *too_long)
{
	struct buf b;
	buf_init(&b, SMTP_MAX_LINE);
	int c;
	bool any = false;
	*too_long = false;
	while ((c = getc(in)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (buf_append_char(&b, (char)c) < 0)
			*too_long = true;
	}
	if (!any) {
		buf_free(&b);
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		buf_truncate(&b, b.len - 1);
	if (*too_long)
		buf_reset(&b);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void tx_reset(struct smtp_state *st)
{
	if (st->in_tx)
		submit_close(&st->tx);
	st->in_tx = false;
	for (size_t i = 0; i < st->n_rcpts; i++)
		free(st->rcpts[i]);
	free(st->rcpts);
	st->rcpts = NULL;
	st->n_rcpts = 0;
	free(st->sender);
	st->sender = NULL;
}

/* "<addr> params" -> addr (without brackets); NULL when malformed. */
static char *path_arg(const char *arg)
{
	while (*arg == ' ')
		arg++;
	if (*arg != '<')
		return NULL;
	const char *end = strchr(arg, '>');
	if (end == NULL)
		return NULL;
	return xstrndup(arg + 1, (size_t)(end - arg - 1));
}

static void cmd_mail(struct smtp_state *st, const char *arg)
{
	if (st->sender != NULL) {
		reply(st, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	char *addr = path_arg(arg);
	if (addr == NULL) {
		reply(st, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	/* Connect now so the sender is judged by deliverd. */
	memset(&st->tx, 0, sizeof(st->tx));
	if (submit_connect(st->cfg, &st->tx, st->id.hostname) < 0) {
		submit_close(&st->tx);
		free(addr);
		reply(st, "451 4.3.0 Mail delivery service unavailable");
		return;
	}
	st->in_tx = true;
	struct buf r;
	buf_init(&r, 0);
	char *cmd = xasprintf("MAIL FROM:<%s> BODY=8BITMIME", addr);
	int code = lmtp_client_command(&st->tx.client, cmd, &r, &st->tx.error);
	free(cmd);
	if (code == 250) {
		st->sender = addr;
		reply(st, "250 2.1.0 Ok");
	} else {
		free(addr);
		reply(st, code > 0 ? buf_cstr(&r) : "451 4.3.0 Mail delivery service unavailable");
		tx_reset(st);
	}
	buf_free(&r);
}

static void cmd_rcpt(struct smtp_state *st, const char *arg)
{
	if (st->sender == NULL) {
		reply(st, "503 5.5.1 Error: need MAIL command");
		return;
	}
	char *addr = path_arg(arg);
	if (addr == NULL) {
		reply(st, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (st->n_rcpts >= SMTP_MAX_RCPTS) {
		free(addr);
		reply(st, "452 4.5.3 Error: too many recipients");
		return;
	}
	struct buf r;
	buf_init(&r, 0);
	char *cmd = xasprintf("RCPT TO:<%s>", addr);
	int code = lmtp_client_command(&st->tx.client, cmd, &r, &st->tx.error);
	free(cmd);
	if (code == 250) {
		st->rcpts = xreallocarray(st->rcpts, st->n_rcpts + 1, sizeof(char *));
		st->rcpts[st->n_rcpts++] = addr;
		reply(st, "250 2.1.5 Ok");
	} else {
		free(addr);
		reply(st, code > 0 ? buf_cstr(&r) : "451 4.3.0 Mail delivery service unavailable");
	}
	buf_free(&r);
}

static void cmd_data(struct smtp_state *st)
{
	if (st->n_rcpts == 0) {
		reply(st, "503 5.5.1 Error: need RCPT command");
		return;
	}
	/* The recipients deliverd accepted, in order: the per-recipient replies follow. */
	st->tx.rcpts = st->rcpts;
	st->tx.n_rcpts = st->n_rcpts;
	st->tx.n_accepted = st->n_rcpts;
	free(st->tx.rcpt_code);
	st->tx.rcpt_code = xcalloc(st->n_rcpts, sizeof(int));
	for (size_t i = 0; i < st->n_rcpts; i++)
		st->tx.rcpt_code[i] = 250;
	int ok = submit_data(&st->tx);
	if (ok < 0) {
		reply(st, "451 4.3.0 Mail delivery service unavailable");
		tx_reset(st);
		return;
	}
	reply(st, "354 End data with <CR><LF>.<CR><LF>");
	bool failed = false;
	for (;;) {
		bool too_long;
		char *line = read_line(st->in, &too_long);
		if (line == NULL) {
			/* EOF inside DATA: nothing is delivered (the LMTP data never ends). */
			tx_reset(st);
			return;
		}
		bool end = strcmp(line, ".") == 0;
		if (!end && !failed)
			failed = submit_write(&st->tx, line, strlen(line)) < 0 ||
			         submit_write(&st->tx, "\r\n", 2) < 0;
		free(line);
		if (end)
			break;
	}
	FILE *errs = stderr;
	if (failed || submit_finish(&st->tx, errs) < 0)
		reply(st, "451 4.3.0 Error: delivery interrupted");
	else if (st->tx.n_temp > 0)
		reply(st, "451 4.3.0 Error: temporary failure for some recipients");
	else if (st->tx.n_ok == 0)
		reply(st, "554 5.0.0 Error: delivery failed for all recipients");
	else
		reply(st, "250 2.0.0 Ok: delivered");
	tx_reset(st);
}

/* Runs one command line; returns true on QUIT. */
static bool smtp_command(struct smtp_state *st, char *line, unsigned *errors)
{
	char *arg = line;
	while (*arg != '\0' && *arg != ' ')
		arg++;
	size_t n = (size_t)(arg - line);
	if (*arg == ' ')
		arg++;
	if (n != 4) {
		reply(st, "502 5.5.2 Error: command not recognized");
		(*errors)++;
	} else if (strncasecmp(line, "EHLO", 4) == 0) {
		char *r =
		    xasprintf("250-%s\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES", st->id.hostname);
		reply(st, r);
		free(r);
	} else if (strncasecmp(line, "HELO", 4) == 0) {
		char *r = xasprintf("250 %s", st->id.hostname);
		reply(st, r);
		free(r);
	} else if (strncasecmp(line, "MAIL", 4) == 0 && strncasecmp(arg, "FROM:", 5) == 0) {
		cmd_mail(st, arg + 5);
	} else if (strncasecmp(line, "RCPT", 4) == 0 && strncasecmp(arg, "TO:", 3) == 0) {
		cmd_rcpt(st, arg + 3);
	} else if (strncasecmp(line, "DATA", 4) == 0) {
		cmd_data(st);
	} else if (strncasecmp(line, "RSET", 4) == 0) {
		tx_reset(st);
		reply(st, "250 2.0.0 Ok");
	} else if (strncasecmp(line, "NOOP", 4) == 0) {
		reply(st, "250 2.0.0 Ok");
	} else if (strncasecmp(line, "QUIT", 4) == 0) {
		reply(st, "221 2.0.0 Bye");
		return true;
	} else {
		reply(st, "502 5.5.2 Error: command not recognized");
		(*errors)++;
	}
	return false;
}

int sendmail_smtp(const struct config *cfg, const struct sendmail_opts *o, FILE *in, FILE *out)
{
	(void)o;
	struct smtp_state st = {.cfg = cfg, .in = in, .out = out};
	sendmail_identity(cfg, &st.id);
	char *greet = xasprintf("220 %s ESMTP tern sendmail", st.id.hostname);
	reply(&st, greet);
	free(greet);
	unsigned errors = 0;
	bool quit = false;
	while (!quit && errors < 20) {
		bool too_long;
		char *line = read_line(in, &too_long);
		if (line == NULL)
			break;
		if (too_long) {
			reply(&st, "500 5.5.2 Error: line too long");
			errors++;
		} else {
			quit = smtp_command(&st, line, &errors);
		}
		free(line);
	}
	if (errors >= 20)
		reply(&st, "421 4.7.0 Error: too many errors");
	tx_reset(&st);
	sendmail_identity_free(&st.id);
	return EX_OK;
}
