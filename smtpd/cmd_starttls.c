/*
 * STARTTLS (RFC 3207). Plaintext the client sent after the command, in the same packet or
 * later, is thrown away before TLS starts (CVE-2011-0411 class), and everything learnt
 * before TLS is forgotten.
 */
#include "base/log.h"
#include "smtp_internal.h"

void cmd_starttls(struct smtp_session *s, char *args)
{
	if (args[0] != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls) {
		smtp_reply_error(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (!s->io->tls_available(s->io_ctx)) {
		smtp_reply_error(s, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	smtp_cmd_ok(s);
	smtp_flush(s);
	if (s->in->len > 0) {
		log_info("warning: %s: discarding %zu bytes of plaintext pipelined after "
		         "STARTTLS",
		         s->client_name, s->in->len);
		buf_reset(s->in);
	}
	if (s->io->starttls(s->io_ctx) < 0) {
		log_warn("%s: cannot start TLS", s->client_name);
		smtp_close(s);
		return;
	}
	smtp_session_tls_started(s);
}
