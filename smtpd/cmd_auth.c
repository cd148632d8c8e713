/*
 * AUTH (RFC 4954) through authd. Plaintext mechanisms are offered only over TLS (or on
 * loopback when allowed); authd being down is a 454, never a success; a failure is
 * answered after a delay that doubles with each failure in the session, and logged in
 * the shape fail2ban's postfix filter matches.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "smtp_internal.h"

static const struct auth_mech default_mechs[] = {
    {"PLAIN", true},
    {"LOGIN", true},
};

static bool plaintext_ok(const struct smtp_session *s)
{
	return s->tls || (s->client.loopback && s->set->loopback_plaintext_auth);
}

static size_t current_mechs(struct smtp_session *s, const struct auth_mech **mechs_r)
{
	size_t n = s->auth->mechs(s->auth_ctx, mechs_r);

	if (n == 0) {
		/* authd is not (yet) reachable: offer the usual ones; trying them gives the
		 * client a clear 454 instead of a missing AUTH. */
		*mechs_r = default_mechs;
		n = sizeof(default_mechs) / sizeof(default_mechs[0]);
	}
	return n;
}

char *smtp_auth_offer(struct smtp_session *s)
{
	const struct auth_mech *mechs;
	struct buf b;

	buf_init(&b, 0);
	if (s->auth != NULL && !smtp_tls_required_first(s)) {
		size_t n = current_mechs(s, &mechs);
		for (size_t i = 0; i < n; i++) {
			if (mechs[i].plaintext && !plaintext_ok(s))
				continue;
			buf_printf(&b, "%s%s", b.len > 0 ? " " : "", mechs[i].name);
		}
	}
	return buf_steal(&b);
}

static void on_auth(enum auth_result result, const char *data, void *context)
{
	struct smtp_session *s = context;

	if (result != AUTH_RESULT_CONTINUE)
		s->auth_req = NULL;
	s->wait = SMTP_WAIT_NONE;
	s->mode = SMTP_MODE_COMMAND;
	switch (result) {
	case AUTH_RESULT_OK:
		s->auth_user = smtp_sanitize(data != NULL ? data : "");
		smtp_reply(s, "235 2.7.0 Authentication successful");
		smtp_cmd_ok(s);
		break;
	case AUTH_RESULT_CONTINUE:
		s->mode = SMTP_MODE_AUTH;
		smtp_reply(s, "334 %s", data != NULL ? data : "");
		break;
	case AUTH_RESULT_FAIL: {
		char *reason = smtp_sanitize(data != NULL ? data : "authentication failure");
		uint64_t delay = s->set->auth_failure_delay_ms;
		for (unsigned i = 0;
		     i < s->auth_failures && delay < s->set->auth_failure_delay_max_ms; i++)
			delay *= 2;
		if (delay > s->set->auth_failure_delay_max_ms)
			delay = s->set->auth_failure_delay_max_ms;
		s->auth_failures++;
		log_info("warning: %s: SASL %s authentication failed: %s", s->client_name,
		         s->auth_mech, reason);
		free(s->auth_fail_reply);
		s->auth_fail_reply =
		    xasprintf("535 5.7.8 Error: authentication failed: %s", reason);
		free(reason);
		if (delay > 0) {
			s->wait = SMTP_WAIT_DELAY;
			s->io->set_timer(s->io_ctx, delay);
		} else {
			smtp_auth_timer(s);
		}
		break;
	}
	case AUTH_RESULT_TEMPFAIL:
		log_info("warning: %s: SASL %s authentication failed: Connection lost to "
		         "authentication server",
		         s->client_name, s->auth_mech);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	if (!s->processing) {
		smtp_flush(s);
		smtp_process(s);
	}
}

void smtp_auth_timer(struct smtp_session *s)
{
	s->wait = SMTP_WAIT_NONE;
	smtp_reply_error(s, "%s",
	                 s->auth_fail_reply != NULL ? s->auth_fail_reply
	                                            : "535 5.7.8 Error: authentication "
	                                              "failed");
	if (!s->processing) {
		smtp_flush(s);
		smtp_process(s);
	}
}

void smtp_auth_cancel(struct smtp_session *s)
{
	if (s->auth_req != NULL)
		s->auth->abort(&s->auth_req);
	s->auth_req = NULL;
}

static const struct auth_mech *find_mech(struct smtp_session *s, const char *name)
{
	const struct auth_mech *mechs;
	size_t n = current_mechs(s, &mechs);

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(mechs[i].name, name) == 0)
			return &mechs[i];
	}
	return NULL;
}

void cmd_auth(struct smtp_session *s, char *args)
{
	char *mech = args, *initial;
	struct auth_request_info info;

	if (s->auth_user != NULL) {
		smtp_reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (smtp_tls_required_first(s)) {
		smtp_reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->auth == NULL) {
		smtp_reply_error(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	initial = mech + strcspn(mech, " ");
	if (*initial == ' ') {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
	}
	if (mech[0] == '\0' || strchr(initial, ' ') != NULL) {
		smtp_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	const struct auth_mech *m = find_mech(s, mech);
	if (m == NULL) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	if (m->plaintext && !plaintext_ok(s)) {
		smtp_reply_error(s, "538 5.7.11 Encryption required for requested authentication "
		                    "mechanism");
		return;
	}
	free(s->auth_mech);
	s->auth_mech = xstrdup(m->name);
	memset(&info, 0, sizeof(info));
	info.mech = s->auth_mech;
	info.service = "smtp";
	info.local_ip = s->client.local_ip;
	info.remote_ip = s->client.ip;
	info.local_port = s->client.local_port;
	info.remote_port = s->client.port;
	info.secured = s->tls || s->client.loopback;
	info.nologin = true;
	/* RFC 4954 4: "=" is an empty initial response. */
	info.initial_response_b64 = initial[0] == '\0'          ? NULL
	                            : strcmp(initial, "=") == 0 ? ""
	                                                        : initial;
	s->wait = SMTP_WAIT_AUTH;
	struct auth_request *req = s->auth->begin(s->auth_ctx, &info, on_auth, s);
	/* The callback may already have run (authd known to be down). */
	s->auth_req = s->wait == SMTP_WAIT_AUTH || s->mode == SMTP_MODE_AUTH ? req : NULL;
}

void smtp_auth_input(struct smtp_session *s, char *line)
{
	if (strcmp(line, "*") == 0) {
		/* RFC 4954 4: the client cancels. */
		smtp_auth_cancel(s);
		s->mode = SMTP_MODE_COMMAND;
		smtp_reply_error(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if (s->auth_req == NULL) {
		s->mode = SMTP_MODE_COMMAND;
		smtp_reply_error(s, "503 5.5.1 Error: no authentication in progress");
		return;
	}
	s->wait = SMTP_WAIT_AUTH;
	s->mode = SMTP_MODE_COMMAND;
	s->auth->cont(s->auth_req, line);
}
