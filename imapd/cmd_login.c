/*
 * LOGIN and AUTHENTICATE (RFC 3501 6.2.2-6.2.3, RFC 4959 SASL-IR): every exchange goes to
 * authd; plaintext passwords only on TLS or loopback. After authd says OK, the userdb
 * lookup finds the user's Maildir; only then is the session authenticated.
 * Log lines follow Dovecot's login format so fail2ban's dovecot filter works.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth_client.h"
#include "auth/base64.h"
#include "auth/userdb_client.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_server.h"
#include "net/conn.h"
#include "store/folder.h"

static void imap_auth_client_response(struct imap_session *s, const char *line, size_t len);

static const char *session_security(const struct imap_session *s)
{
	if (conn_is_tls(s->conn))
		return ", TLS";
	return conn_is_loopback(s->conn) ? ", secured" : "";
}

static void login_log_failure(struct imap_session *s, const char *user, const char *why)
{
	uint64_t secs = (uv_now(conn_loop(s->conn)) - s->connect_ms) / 1000;
	struct buf u;
	buf_init(&u, 0);
	log_sanitize(&u, user != NULL ? user : "", user != NULL ? strlen(user) : 0, 100);
	log_info("imap-login: Aborted login (%s, %u attempts in %llu secs): user=<%s>, "
	         "method=%s, rip=%s, lip=%s%s",
	         why, s->auth_failures, (unsigned long long)secs, buf_cstr(&u),
	         s->auth_mech != NULL ? s->auth_mech : "PLAIN", conn_peer_ip(s->conn),
	         conn_local_ip(s->conn), session_security(s));
	buf_free(&u);
}

static void on_userdb(enum userdb_result result, const struct userdb_reply *reply, void *context)
{
	struct imap_session *s = context;
	s->userdb_req = NULL;
	if (result != USERDB_FOUND) {
		log_warn("imap(%s): userdb lookup failed after login (%s)", s->user,
		         result == USERDB_NOTFOUND ? "user not found" : "temporary failure");
		free(s->user);
		s->user = NULL;
		imap_session_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure.");
		imap_session_command_done(s);
		return;
	}
	s->home = xstrdup(reply->home);
	s->quota_bytes = reply->quota_bytes;
	s->quota_messages = reply->quota_messages;
	s->state = IMAP_STATE_AUTH;
	conn_set_idle_timeout(s->conn, imap_server.idle_timeout_ms);
	if (folder_ensure_special_use(s->home) != STORE_OK)
		log_warn("imap(%s): could not create the special-use folders", s->user);
	log_info("imap-login: Login: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%ld%s", s->user,
	         s->auth_mech, conn_peer_ip(s->conn), conn_local_ip(s->conn), (long)getpid(),
	         session_security(s));
	struct buf caps;
	buf_init(&caps, 0);
	imap_session_capabilities(s, &caps);
	imap_session_tagged(s, "OK", "[CAPABILITY %s] Logged in", buf_cstr(&caps));
	buf_free(&caps);
	imap_session_command_done(s);
}

static void on_auth(enum auth_result result, const char *data, void *context)
{
	struct imap_session *s = context;
	switch (result) {
	case AUTH_RESULT_CONTINUE:
		imap_session_send(s, "+ %s", data);
		s->line_handler = imap_auth_client_response;
		conn_resume_read(s->conn);
		return;
	case AUTH_RESULT_OK:
		s->auth_req = NULL;
		s->user = xstrdup(data);
		s->userdb_req =
		    userdb_client_lookup(imap_server.userdb, s->user, "imap", on_userdb, s);
		if (s->userdb_req == NULL)
			on_userdb(USERDB_TEMPFAIL, NULL, s);
		return;
	case AUTH_RESULT_FAIL:
		s->auth_req = NULL;
		s->auth_failures++;
		login_log_failure(s, s->login_user, "auth failed");
		imap_session_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
		break;
	case AUTH_RESULT_TEMPFAIL:
		s->auth_req = NULL;
		imap_session_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure.");
		break;
	}
	s->line_handler = NULL;
	imap_session_command_done(s);
}

static enum imap_cmd_result auth_begin(struct imap_session *s, const char *mech,
                                       const char *initial_b64)
{
	struct auth_request_info info = {
	    .mech = mech,
	    .service = "imap",
	    .local_ip = conn_local_ip(s->conn),
	    .remote_ip = conn_peer_ip(s->conn),
	    .local_port = conn_local_port(s->conn),
	    .remote_port = conn_peer_port(s->conn),
	    .secured = imap_session_secured(s),
	    .initial_response_b64 = initial_b64,
	};
	free(s->auth_mech);
	s->auth_mech = xstrdup(mech);
	s->auth_req = auth_client_begin(imap_server.auth, &info, on_auth, s);
	if (s->auth_req == NULL) {
		imap_session_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure.");
		return IMAP_CMD_DONE;
	}
	return IMAP_CMD_ASYNC;
}

static bool plaintext_refused(struct imap_session *s, const char *user)
{
	if (imap_session_secured(s))
		return false;
	login_log_failure(s, user, "tried to use disallowed plaintext auth");
	imap_session_tagged(s, "NO",
	                    "[PRIVACYREQUIRED] Plaintext authentication disallowed on "
	                    "non-secure (SSL/TLS) connections.");
	return true;
}

enum imap_cmd_result cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *user = cmd->count == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
	const char *pass = cmd->count == 2 ? imap_arg_astring(&cmd->args[1]) : NULL;
	if (user == NULL || pass == NULL) {
		imap_session_tagged(s, "BAD", "LOGIN needs a user name and a password.");
		return IMAP_CMD_DONE;
	}
	if (plaintext_refused(s, user))
		return IMAP_CMD_DONE;
	free(s->login_user);
	s->login_user = xstrdup(user); /* for the failure log line (never the password) */
	/* PLAIN's message: authzid NUL authcid NUL passwd (RFC 4616). */
	size_t ulen = strlen(user), plen = strlen(pass);
	struct buf raw, b64;
	buf_init(&raw, 0);
	buf_init(&b64, 0);
	(void)buf_append_char(&raw, '\0');
	(void)buf_append(&raw, user, ulen);
	(void)buf_append_char(&raw, '\0');
	(void)buf_append(&raw, pass, plen);
	(void)base64_encode(&b64, raw.data, raw.len);
	enum imap_cmd_result res = auth_begin(s, "PLAIN", buf_cstr(&b64));
	secure_zero(raw.data, raw.len);
	secure_zero(b64.data, b64.len);
	buf_free(&raw);
	buf_free(&b64);
	return res;
}

static bool mech_offered(const struct imap_session *s, const char *mech, bool *plaintext_r)
{
	const struct auth_mech *mechs;
	size_t n = auth_client_mechs(imap_server.auth, &mechs);
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(mechs[i].name, mech) == 0) {
			*plaintext_r = mechs[i].plaintext;
			return true;
		}
	}
	(void)s;
	return false;
}

enum imap_cmd_result cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count < 1 || cmd->count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->count == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_session_tagged(s, "BAD", "AUTHENTICATE needs a mechanism.");
		return IMAP_CMD_DONE;
	}
	const char *mech = cmd->args[0].str;
	bool plaintext;
	if (!mech_offered(s, mech, &plaintext)) {
		imap_session_tagged(s, "NO", "Unsupported authentication mechanism.");
		return IMAP_CMD_DONE;
	}
	if (plaintext && plaintext_refused(s, NULL))
		return IMAP_CMD_DONE;
	const char *ir = NULL;
	if (cmd->count == 2) {
		/* RFC 4959: "=" is an empty initial response. */
		ir = strcmp(cmd->args[1].str, "=") == 0 ? "" : cmd->args[1].str;
		if (*ir != '\0' && !base64_is_valid(ir, strlen(ir))) {
			imap_session_tagged(s, "BAD", "Invalid base64 data.");
			return IMAP_CMD_DONE;
		}
	}
	return auth_begin(s, mech, ir);
}

static void imap_auth_client_response(struct imap_session *s, const char *line, size_t len)
{
	conn_pause_read(s->conn);
	if (len == 1 && line[0] == '*') {
		auth_request_abort(&s->auth_req);
		imap_session_tagged(s, "BAD", "Authentication aborted by client.");
		imap_session_command_done(s);
		return;
	}
	if (!base64_is_valid(line, len)) {
		auth_request_abort(&s->auth_req);
		imap_session_tagged(s, "BAD", "Invalid base64 data.");
		imap_session_command_done(s);
		return;
	}
	auth_request_continue(s->auth_req, line);
}
