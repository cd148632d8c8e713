/*
 * Commands of both states: CAPA (RFC 2449), QUIT (RFC 1939 6), NOOP, and STLS (RFC 2595).
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session_private.h"

#ifndef TERN_VERSION
#define TERN_VERSION "0"
#endif

void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct buf out;

	(void)cmd;
	buf_init(&out, 0);
	(void)buf_append_str(&out, "+OK Capability list follows\r\n"
	                           "TOP\r\n"
	                           "UIDL\r\n"
	                           "RESP-CODES\r\n"
	                           "PIPELINING\r\n"
	                           "AUTH-RESP-CODE\r\n"
	                           "EXPIRE NEVER\r\n"
	                           "LOGIN-DELAY 0\r\n");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		const struct auth_mech *mechs;
		size_t n = s->auth->mechs(s->auth_ctx, &mechs);
		bool plain_ok = session_plaintext_allowed(s);
		size_t shown = 0;

		/* RFC 2449 6.8: USER only where the server would accept it. */
		if (plain_ok)
			(void)buf_append_str(&out, "USER\r\n");
		for (size_t i = 0; i < n; i++) {
			if (mechs[i].plaintext && !plain_ok)
				continue;
			(void)buf_append_str(&out, shown++ == 0 ? "SASL " : " ");
			(void)buf_append_str(&out, mechs[i].name);
		}
		if (shown > 0)
			(void)buf_append_str(&out, "\r\n");
		if (s->set.tls_available && !s->tls)
			(void)buf_append_str(&out, "STLS\r\n");
	}
	(void)buf_append_str(&out, "IMPLEMENTATION tern-" TERN_VERSION "\r\n.\r\n");
	session_write(s, out.data, out.len);
	buf_free(&out);
}

void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	session_reply(s, "+OK");
}

void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	char *error = NULL;

	(void)cmd;
	if (s->state == POP3_STATE_AUTHORIZATION) {
		session_reply(s, "+OK Logging out.");
		session_close(s);
		return;
	}
	/* RFC 1939 6: the UPDATE state applies the deletions, only now. */
	s->state = POP3_STATE_UPDATE;
	if (maildrop_commit(s->md, &s->expunged, &error) < 0) {
		log_warn("pop3(%s): QUIT could not apply every change: %s", s->user, error);
		free(error);
		session_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not removed.");
	} else {
		s->committed = true;
		session_reply(s, "+OK Logging out.");
	}
	/* The mailbox is free for the next session as soon as the changes are applied. */
	maildrop_free(&s->md);
	session_close(s);
}

void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (s->tls) {
		session_reply(s, "-ERR TLS is already active.");
		return;
	}
	if (!s->set.tls_available) {
		session_reply(s, "-ERR TLS support isn't enabled.");
		return;
	}
	session_reply(s, "+OK Begin TLS negotiation now.");
	if (s->io->starttls(s->io_ctx) < 0) {
		log_warn("pop3-login: STLS failed to start TLS");
		session_close(s);
		return;
	}
	s->tls = true;
	/* RFC 2595 4: forget everything learned before TLS, and never run commands that
	 * were sent in plaintext after STLS (CVE-2011-0411 class). */
	buf_consume(s->in, s->in->len);
	free(s->user);
	s->user = NULL;
	s->plaintext_refused = false;
}
