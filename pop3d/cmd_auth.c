/*
 * AUTHORIZATION commands: USER/PASS (RFC 1939 7) become a SASL PLAIN request to authd,
 * AUTH (RFC 5034) passes the client's mechanism and initial response through, and APOP
 * is refused (it needs the clear-text password on the server).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "session_private.h"

#define PLAINTEXT_REFUSED                                                                          \
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

static void base64_encode(struct buf *out, const unsigned char *in, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;
		if (n > 1)
			v |= (unsigned)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
		             n > 1 ? tab[(v >> 6) & 63] : '=', n > 2 ? tab[v & 63] : '='};
		(void)buf_append(out, q, 4);
	}
}

static bool plaintext_check(struct pop3_session *s)
{
	if (session_plaintext_allowed(s))
		return true;
	s->plaintext_refused = true;
	session_reply(s, PLAINTEXT_REFUSED);
	return false;
}

void cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->n_args != 1) {
		session_bad_command(s, "USER needs exactly one argument.");
		return;
	}
	if (!plaintext_check(s))
		return;
	if (strlen(cmd->args[0]) > 255) {
		session_reply(s, "-ERR User name too long.");
		return;
	}
	free(s->user);
	s->user = xstrdup(cmd->args[0]);
	session_reply(s, "+OK");
}

void cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct buf plain, b64;

	if (!plaintext_check(s))
		return;
	if (s->user == NULL) {
		session_bad_command(s, "No username given.");
		return;
	}
	if (cmd->n_args != 1) {
		session_bad_command(s, "PASS needs a password.");
		return;
	}
	/* SASL PLAIN (RFC 4616): authzid NUL authcid NUL password. */
	buf_init(&plain, 0);
	buf_init(&b64, 0);
	(void)buf_append_char(&plain, '\0');
	(void)buf_append_str(&plain, s->user);
	(void)buf_append_char(&plain, '\0');
	(void)buf_append_str(&plain, cmd->args[0]);
	base64_encode(&b64, (const unsigned char *)plain.data, plain.len);
	session_auth_begin(s, "PLAIN", b64.data);
	secure_zero(plain.data, plain.len);
	secure_zero(b64.data, b64.len);
	buf_free(&plain);
	buf_free(&b64);
}

void cmd_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	/* The greeting carries no timestamp, so a client should not try (RFC 1939 7). */
	session_reply(s, "-ERR APOP is not supported.");
}

static const struct auth_mech *find_mech(struct pop3_session *s, const char *name, size_t *n_r)
{
	const struct auth_mech *mechs;
	size_t n = s->auth->mechs(s->auth_ctx, &mechs);

	*n_r = n;
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(mechs[i].name, name) == 0)
			return &mechs[i];
	}
	return NULL;
}

static void auth_list_mechs(struct pop3_session *s)
{
	const struct auth_mech *mechs;
	size_t n = s->auth->mechs(s->auth_ctx, &mechs);
	struct buf out;

	/* The pre-RFC 5034 "AUTH" listing that Outlook and others still send. */
	buf_init(&out, 0);
	(void)buf_append_str(&out, "+OK\r\n");
	for (size_t i = 0; i < n; i++) {
		if (mechs[i].plaintext && !session_plaintext_allowed(s))
			continue;
		(void)buf_printf(&out, "%s\r\n", mechs[i].name);
	}
	(void)buf_append_str(&out, ".\r\n");
	session_write(s, out.data, out.len);
	buf_free(&out);
}

void cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct auth_mech *mech;
	size_t n_mechs;
	const char *ir = NULL;

	if (cmd->n_args == 0) {
		auth_list_mechs(s);
		return;
	}
	mech = find_mech(s, cmd->args[0], &n_mechs);
	/* With no mechanism list authd is down: let the request fail closed as TEMP. */
	if (mech == NULL && n_mechs > 0) {
		session_reply(s, "-ERR Unsupported authentication mechanism.");
		return;
	}
	if (mech != NULL && mech->plaintext && !plaintext_check(s))
		return;
	if (cmd->n_args == 2)
		ir = strcmp(cmd->args[1], "=") == 0 ? "" : cmd->args[1];
	session_auth_begin(s, cmd->args[0], ir);
}
