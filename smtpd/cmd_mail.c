/*
 * MAIL and RCPT: envelope syntax and parameters (RFC 5321 4.1.1.2-3, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN), the relay policy, and the live
 * check of every recipient through deliverd (so an unknown user is refused now, never
 * bounced later).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "policy.h"
#include "smtp_internal.h"

static bool all_digits(const char *v)
{
	if (v == NULL || *v == '\0' || strlen(v) > 19)
		return false;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return false;
	}
	return true;
}

/* Returns NULL when the MAIL parameters are acceptable, else the reply. */
static const char *check_mail_params(struct smtp_session *s, const struct smtp_path *p,
                                     struct buf *lmtp)
{
	for (size_t i = 0; i < p->n_params; i++) {
		const char *k = p->params[i].keyword, *v = p->params[i].value;
		if (strcmp(k, "SIZE") == 0) {
			if (!all_digits(v))
				return "501 5.5.4 Bad SIZE parameter";
			if (strtoull(v, NULL, 10) > s->set->max_message_size)
				return "552 5.3.4 Message size exceeds fixed limit";
		} else if (strcmp(k, "BODY") == 0) {
			if (v == NULL ||
			    (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0))
				return "501 5.5.4 Bad BODY parameter";
		} else if (strcmp(k, "SMTPUTF8") == 0) {
			if (v != NULL)
				return "501 5.5.4 Bad SMTPUTF8 parameter";
			s->tx.smtputf8 = true;
		} else if (strcmp(k, "RET") == 0) {
			if (v == NULL || (strcasecmp(v, "FULL") != 0 && strcasecmp(v, "HDRS") != 0))
				return "501 5.5.4 Bad RET parameter";
		} else if (strcmp(k, "ENVID") == 0) {
			if (v == NULL || strlen(v) > 100 || !smtp_xtext_valid(v))
				return "501 5.5.4 Bad ENVID parameter";
		} else if (strcmp(k, "AUTH") == 0) {
			/* RFC 4954 5: accepted; we do not relay the claim. */
			if (v == NULL || !smtp_xtext_valid(v))
				return "501 5.5.4 Bad AUTH parameter";
			continue;
		} else {
			return "555 5.5.4 Unsupported option";
		}
		buf_printf(lmtp, " %s%s%s", k, v != NULL ? "=" : "", v != NULL ? v : "");
	}
	return NULL;
}

static bool notify_valid(const char *v)
{
	if (v == NULL)
		return false;
	if (strcasecmp(v, "NEVER") == 0)
		return true;
	/* RFC 3461 4.1: SUCCESS, FAILURE and DELAY, comma-separated. */
	char *copy = xstrdup(v), *save = NULL;
	bool ok = true;
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(t, "SUCCESS") != 0 && strcasecmp(t, "FAILURE") != 0 &&
		    strcasecmp(t, "DELAY") != 0)
			ok = false;
	}
	free(copy);
	return ok && v[0] != ',' && v[strlen(v) - 1] != ',';
}

static const char *check_rcpt_params(const struct smtp_path *p, struct buf *lmtp)
{
	for (size_t i = 0; i < p->n_params; i++) {
		const char *k = p->params[i].keyword, *v = p->params[i].value;
		if (strcmp(k, "NOTIFY") == 0) {
			if (!notify_valid(v))
				return "501 5.5.4 Bad NOTIFY parameter";
		} else if (strcmp(k, "ORCPT") == 0) {
			/* RFC 3461 4.2: addr-type ";" xtext */
			const char *semi = v != NULL ? strchr(v, ';') : NULL;
			if (semi == NULL || semi == v || strlen(v) > 500 ||
			    !smtp_xtext_valid(semi + 1))
				return "501 5.5.4 Bad ORCPT parameter";
		} else {
			return "555 5.5.4 Unsupported option";
		}
		buf_printf(lmtp, " %s=%s", k, v);
	}
	return NULL;
}

void cmd_mail(struct smtp_session *s, char *args)
{
	struct smtp_path path;
	const char *error;
	struct buf lmtp;

	if (smtp_tls_required_first(s)) {
		smtp_reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (smtp_auth_required(s)) {
		smtp_reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (smtp_parse_path(args, "FROM:", true, s->set->strict, &path, &error) < 0) {
		smtp_reply_error(s, "%s", error);
		return;
	}
	smtp_tx_begin(s);
	s->tx.mail = path;
	buf_init(&lmtp, 0);
	buf_printf(&lmtp, "MAIL FROM:<%s>", path.address);
	error = check_mail_params(s, &path, &lmtp);
	if (error == NULL && path.utf8 && !s->tx.smtputf8)
		error = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
	if (error == NULL && s->auth_user != NULL && s->set->sender_login_check &&
	    !policy_sender_owned(s->set->policy, s->auth_user, path.address)) {
		char *reply = xasprintf("553 5.7.1 <%s>: Sender address rejected: not owned by "
		                        "user %s",
		                        path.address, s->auth_user);
		smtp_log_reject(s, "MAIL", reply, NULL);
		smtp_reply_error(s, "%s", reply);
		free(reply);
		buf_free(&lmtp);
		smtp_tx_reset(s);
		return;
	}
	if (error != NULL) {
		smtp_reply_error(s, "%s", error);
		buf_free(&lmtp);
		smtp_tx_reset(s);
		return;
	}
	s->wait = SMTP_WAIT_MAIL;
	s->tx.dlv = s->dlv->begin(s->dlv_ctx, s, buf_cstr(&lmtp));
	buf_free(&lmtp);
}

void smtp_mail_delivery_reply(struct smtp_session *s, int code, const char *reply)
{
	s->wait = SMTP_WAIT_NONE;
	if (code / 100 != 2) {
		log_info("warning: %s: MAIL refused by the delivery service: %s", s->client_name,
		         reply);
		smtp_reply_error(s, "%s",
		                 code / 100 == 5 ? reply
		                                 : "451 4.3.0 Error: delivery "
		                                   "service unavailable, try again later");
		smtp_tx_reset(s);
		return;
	}
	s->state = SMTP_STATE_MAIL;
	if (s->auth_user != NULL)
		log_info("%s: client=%s, sasl_method=%s, sasl_username=%s", s->tx.queue_id,
		         s->client_name, s->auth_mech, s->auth_user);
	else
		log_info("%s: client=%s", s->tx.queue_id, s->client_name);
	smtp_reply(s, "250 2.1.0 Ok");
	smtp_cmd_ok(s);
}

void cmd_rcpt(struct smtp_session *s, char *args)
{
	struct smtp_path path;
	const char *error;
	struct buf lmtp;

	if (smtp_parse_path(args, "TO:", false, s->set->strict, &path, &error) < 0) {
		smtp_reply_error(s, "%s", error);
		return;
	}
	buf_init(&lmtp, 0);
	buf_printf(&lmtp, "RCPT TO:<%s>", path.address);
	error = check_rcpt_params(&path, &lmtp);
	if (error == NULL && path.utf8 && !s->tx.smtputf8)
		error = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
	if (error != NULL) {
		smtp_reply_error(s, "%s", error);
		goto out;
	}
	if (s->tx.n_rcpt_cmds >= s->set->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, and the client sends the rest later. Not counted
		 * as an error so a big mailing is not cut off. */
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		goto out;
	}
	s->tx.n_rcpt_cmds++;
	enum policy_rcpt pol =
	    policy_check_rcpt(s->set->policy, path.address, s->auth_user != NULL, s->client.ip);
	if (pol == POLICY_RCPT_DENIED) {
		char *reply = xasprintf("554 5.7.1 <%s>: Relay access denied", path.address);
		smtp_log_reject(s, "RCPT", reply, path.address);
		smtp_reply_error(s, "%s", reply);
		free(reply);
		goto out;
	}
	s->tx.pending_rcpt = path;
	s->tx.pending_relay = pol == POLICY_RCPT_RELAY;
	memset(&path, 0, sizeof(path));
	s->wait = SMTP_WAIT_RCPT;
	s->dlv->rcpt(s->tx.dlv, buf_cstr(&lmtp));
out:
	smtp_path_clear(&path);
	buf_free(&lmtp);
}

void smtp_rcpt_delivery_reply(struct smtp_session *s, int code, const char *reply)
{
	struct smtp_tx *tx = &s->tx;
	char *addr = tx->pending_rcpt.address;

	s->wait = SMTP_WAIT_NONE;
	if (code / 100 == 2) {
		tx->rcpts = xreallocarray(tx->rcpts, tx->n_rcpts + 1, sizeof(char *));
		tx->rcpts[tx->n_rcpts++] = xstrdup(addr);
		s->state = SMTP_STATE_RCPT;
		smtp_reply(s, "250 2.1.5 Ok");
		smtp_cmd_ok(s);
	} else {
		char *out;
		if (code == 550 && strstr(reply, "5.1.1") != NULL)
			out = xasprintf("550 5.1.1 <%s>: Recipient address rejected: User unknown "
			                "in virtual mailbox table",
			                addr);
		else
			out = xstrdup(reply);
		smtp_log_reject(s, "RCPT", out, addr);
		smtp_reply_error(s, "%s", out);
		free(out);
	}
	smtp_path_clear(&tx->pending_rcpt);
}
