/*
 * The session commands: EHLO, HELO, RSET, NOOP, QUIT, HELP, VRFY and EXPN.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "smtp_internal.h"

static bool greet(struct smtp_session *s, char *args, const char *verb)
{
	if (args[0] == '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: %s hostname", verb);
		return false;
	}
	/* RFC 5321 4.1.4: EHLO/HELO in a session means RSET. */
	smtp_tx_reset(s);
	args[strcspn(args, " ")] = '\0';
	free(s->helo);
	s->helo = smtp_sanitize(args);
	s->state = SMTP_STATE_READY;
	return true;
}

void cmd_helo(struct smtp_session *s, char *args)
{
	if (!greet(s, args, "HELO"))
		return;
	s->esmtp = false;
	smtp_reply(s, "250 %s", s->set->hostname);
	smtp_cmd_ok(s);
}

void cmd_ehlo(struct smtp_session *s, char *args)
{
	if (!greet(s, args, "EHLO"))
		return;
	s->esmtp = true;
	smtp_reply(s, "250-%s", s->set->hostname);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu", (unsigned long long)s->set->max_message_size);
	if (!s->tls && s->io->tls_available(s->io_ctx))
		smtp_reply(s, "250-STARTTLS");
	char *mechs = smtp_auth_offer(s);
	if (mechs[0] != '\0')
		smtp_reply(s, "250-AUTH %s", mechs);
	free(mechs);
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-DSN");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250 CHUNKING");
	smtp_cmd_ok(s);
}

void cmd_rset(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_tx_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
	smtp_cmd_ok(s);
}

void cmd_noop(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "250 2.0.0 Ok");
	smtp_cmd_ok(s);
}

void cmd_quit(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_cmd_ok(s);
	smtp_close(s);
}

void cmd_help(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP");
	smtp_reply(s, "214 2.0.0 VRFY STARTTLS AUTH; see RFC 5321");
	smtp_cmd_ok(s);
}

void cmd_vrfy(struct smtp_session *s, char *args)
{
	if (!s->set->vrfy_enabled) {
		smtp_reply_error(s, "502 5.5.1 VRFY command is disabled");
		return;
	}
	if (args[0] == '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3: 252 says "cannot verify, but will try"; it reveals nothing. */
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message");
	smtp_cmd_ok(s);
}

void cmd_expn(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply_error(s, "502 5.5.1 EXPN command is disabled");
}
