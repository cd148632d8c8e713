/*
 * The LMTP commands (RFC 2033, RFC 5321 4.1.1, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531
 * SMTPUTF8, RFC 3461 DSN, RFC 3030 CHUNKING), dispatched from a table that says in which
 * states each is allowed.
 */
#include "lmtp_private.h"
#include "queue.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

#define SIZE_DIGITS_MAX 19

/* Parses a decimal number of at most 19 digits spanning all of s[0..n). */
static int parse_u64(const char *s, size_t n, uint64_t *v_r)
{
	if (n == 0 || n > SIZE_DIGITS_MAX)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

/* RFC 3461 4: xtext is printable ASCII except '+' and '=', with +XX hex escapes. */
static bool xtext_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '+') {
			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

/* Splits "KEY=value KEY2" parameters; calls fn for each. Returns -1 on the first error
 * (fn replied). */
static int for_each_param(struct lmtp_session *s, char *params,
                          int (*fn)(struct lmtp_session *s, const char *key, const char *value))
{
	char *save = NULL;
	for (char *p = strtok_r(params, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(p, '=');
		if (eq != NULL)
			*eq = '\0';
		if (fn(s, p, eq != NULL ? eq + 1 : NULL) < 0)
			return -1;
	}
	return 0;
}

static void cmd_lhlo(struct lmtp_session *s, char *args)
{
	if (args[0] == '\0') {
		lmtp_error(s, "501 5.5.4 Syntax: LHLO hostname");
		return;
	}
	lmtp_transaction_reset(s);
	s->state = LMTP_STATE_READY;
	lmtp_reply(s, "250-%s", s->hostname);
	lmtp_reply(s, "250-PIPELINING");
	lmtp_reply(s, "250-ENHANCEDSTATUSCODES");
	lmtp_reply(s, "250-SIZE %llu", (unsigned long long)s->limits.max_message);
	lmtp_reply(s, "250-8BITMIME");
	lmtp_reply(s, "250-SMTPUTF8");
	lmtp_reply(s, "250-CHUNKING");
	lmtp_reply(s, "250 DSN");
}

static int mail_param(struct lmtp_session *s, const char *key, const char *value)
{
	if (strcasecmp(key, "SIZE") == 0) {
		uint64_t v;
		if (value == NULL || parse_u64(value, strlen(value), &v) < 0) {
			lmtp_error(s, "501 5.5.4 Bad SIZE parameter");
			return -1;
		}
		if (v > s->limits.max_message) {
			lmtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
			return -1;
		}
		s->declared_size = v;
	} else if (strcasecmp(key, "BODY") == 0) {
		if (value == NULL ||
		    (strcasecmp(value, "7BIT") != 0 && strcasecmp(value, "8BITMIME") != 0)) {
			lmtp_error(s, "501 5.5.4 Unsupported BODY parameter");
			return -1;
		}
	} else if (strcasecmp(key, "SMTPUTF8") == 0 && value == NULL) {
		s->smtputf8 = true;
	} else if (strcasecmp(key, "RET") == 0) {
		if (value == NULL ||
		    (strcasecmp(value, "FULL") != 0 && strcasecmp(value, "HDRS") != 0)) {
			lmtp_error(s, "501 5.5.4 Bad RET parameter");
			return -1;
		}
		free(s->dsn_ret);
		s->dsn_ret = xstrdup(strcasecmp(value, "FULL") == 0 ? "FULL" : "HDRS");
	} else if (strcasecmp(key, "ENVID") == 0) {
		if (value == NULL || strlen(value) > 100 || !xtext_valid(value)) {
			lmtp_error(s, "501 5.5.4 Bad ENVID parameter");
			return -1;
		}
		free(s->dsn_envid);
		s->dsn_envid = xstrdup(value);
	} else {
		lmtp_error(s, "555 5.5.4 Unsupported parameter");
		return -1;
	}
	return 0;
}

static void cmd_mail(struct lmtp_session *s, char *args)
{
	if (strncasecmp(args, "FROM:", 5) != 0) {
		lmtp_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	args += 5;
	while (*args == ' ')
		args++; /* tolerated, as Postfix does */
	size_t rest = 0;
	const char *err = NULL;
	struct address a;
	/* Parameters first decide SMTPUTF8, so look for it before judging the address. */
	bool utf8 = strcasestr(args, " SMTPUTF8") != NULL;
	if (address_parse_path(args, strlen(args), true, utf8, true, '\0', &a, &rest, &err) < 0) {
		lmtp_error(s, "501 %s", err);
		return;
	}
	if (args[rest] != '\0' && args[rest] != ' ') {
		address_free(&a);
		lmtp_error(s, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
		return;
	}
	const char *refused =
	    s->be->check_sender != NULL ? s->be->check_sender(s->be->ctx, a.full) : NULL;
	if (refused != NULL) {
		struct buf from;
		buf_init(&from, 0);
		log_info("NOQUEUE: reject: MAIL from %s: %s; from=<%s>", s->peer, refused,
		         lmtp_log_text(&from, a.full));
		buf_free(&from);
		address_free(&a);
		lmtp_error(s, "%s", refused);
		return;
	}
	lmtp_transaction_reset(s);
	s->sender = a;
	if (for_each_param(s, args + rest, mail_param) < 0) {
		lmtp_transaction_reset(s);
		return;
	}
	s->state = LMTP_STATE_MAIL;
	lmtp_new_qid(s);
	lmtp_reply(s, "250 2.1.0 Ok");
}

/* relay branch: NOTIFY as queue.h bits, for remote recipients. */
static unsigned notify_bits(const char *value)
{
	unsigned bits = 0;
	char *copy = xstrdup(value), *save = NULL;
	for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save))
		bits |= strcasecmp(w, "NEVER") == 0     ? QUEUE_NOTIFY_NEVER
		        : strcasecmp(w, "SUCCESS") == 0 ? QUEUE_NOTIFY_SUCCESS
		        : strcasecmp(w, "FAILURE") == 0 ? QUEUE_NOTIFY_FAILURE
		                                        : QUEUE_NOTIFY_DELAY;
	free(copy);
	return bits;
}

static int rcpt_param(struct lmtp_session *s, const char *key, const char *value)
{
	if (strcasecmp(key, "NOTIFY") == 0) {
		if (value == NULL) {
			lmtp_error(s, "501 5.5.4 Bad NOTIFY parameter");
			return -1;
		}
		/* RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
		char *copy = xstrdup(value), *save = NULL;
		int n = 0, never = 0, bad = 0;
		for (char *w = strtok_r(copy, ",", &save); w != NULL;
		     w = strtok_r(NULL, ",", &save)) {
			n++;
			if (strcasecmp(w, "NEVER") == 0)
				never++;
			else if (strcasecmp(w, "SUCCESS") != 0 && strcasecmp(w, "FAILURE") != 0 &&
			         strcasecmp(w, "DELAY") != 0)
				bad++;
		}
		free(copy);
		if (n == 0 || bad || (never && n > 1)) {
			lmtp_error(s, "501 5.5.4 Bad NOTIFY parameter");
			return -1;
		}
		s->rcpt_notify = notify_bits(value);
	} else if (strcasecmp(key, "ORCPT") == 0) {
		const char *semi = value != NULL ? strchr(value, ';') : NULL;
		if (semi == NULL || semi == value || strlen(value) > 500 ||
		    !xtext_valid(semi + 1)) {
			lmtp_error(s, "501 5.5.4 Bad ORCPT parameter");
			return -1;
		}
		free(s->rcpt_orcpt);
		s->rcpt_orcpt = xstrdup(value);
	} else {
		lmtp_error(s, "555 5.5.4 Unsupported parameter");
		return -1;
	}
	return 0;
}

static void cmd_rcpt(struct lmtp_session *s, char *args)
{
	if (strncasecmp(args, "TO:", 3) != 0) {
		lmtp_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	args += 3;
	while (*args == ' ')
		args++;
	size_t rest = 0;
	const char *err = NULL;
	struct address a;
	s->rcpt_notify = 0;
	free(s->rcpt_orcpt);
	s->rcpt_orcpt = NULL;
	if (address_parse_path(args, strlen(args), false, s->smtputf8, true, s->maps->delimiter, &a,
	                       &rest, &err) < 0) {
		lmtp_error(s, "501 %s", err);
		return;
	}
	if ((args[rest] != '\0' && args[rest] != ' ') ||
	    for_each_param(s, args + rest, rcpt_param) < 0) {
		if (args[rest] != '\0' && args[rest] != ' ')
			lmtp_error(s, "501 5.5.4 Syntax: RCPT TO:<address> [parameters]");
		address_free(&a);
		return;
	}
	if (s->n_rcpts >= s->limits.max_recipients) {
		address_free(&a);
		lmtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	struct lmtp_pending_rcpt *p = &s->pending;
	memset(p, 0, sizeof(*p));
	p->addr = a;
	recipient_expand(s->maps, &p->addr, &p->t);
	s->wait = LMTP_WAIT_LOOKUP;
	lmtp_rcpt_lookup_next(s);
}

static void cmd_data(struct lmtp_session *s, char *args)
{
	if (args[0] != '\0') {
		lmtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->n_rcpts == 0) {
		lmtp_error(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	char *err = NULL;
	if (s->be->spool_begin(s->be->ctx, &err) < 0) {
		log_warn("%s: spool: %s", s->qid, err);
		free(err);
		lmtp_reply(s, "451 4.3.0 Temporary failure opening the spool");
		return;
	}
	s->spool_open = true;
	lmtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	lmtp_body_begin(s, false, 0, true, false);
}

static void cmd_bdat(struct lmtp_session *s, char *args)
{
	char *sp = strchr(args, ' ');
	size_t n = sp != NULL ? (size_t)(sp - args) : strlen(args);
	uint64_t size;
	bool last = false;
	if (parse_u64(args, n, &size) < 0 || (sp != NULL && strcasecmp(sp + 1, "LAST") != 0)) {
		/* Without a valid size the chunk cannot be skipped: the stream is lost. */
		lmtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		lmtp_reply(s, "421 4.7.0 %s Closing: BDAT framing lost", s->hostname);
		s->closing = true;
		s->be->close(s->be->ctx);
		return;
	}
	last = sp != NULL;
	if (s->state != LMTP_STATE_MAIL && s->state != LMTP_STATE_BDAT) {
		lmtp_body_begin(s, true, size, last, true);
		return;
	}
	if (s->n_rcpts == 0) {
		lmtp_body_begin(s, true, size, last, true);
		return;
	}
	if (s->state == LMTP_STATE_MAIL) {
		char *err = NULL;
		if (s->be->spool_begin(s->be->ctx, &err) < 0) {
			log_warn("%s: spool: %s", s->qid, err);
			free(err);
			s->spool_failed = true;
		} else {
			s->spool_open = true;
		}
		s->state = LMTP_STATE_BDAT;
	}
	lmtp_body_begin(s, true, size, last, false);
}

static void cmd_rset(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_transaction_reset(s);
	lmtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_reply(s, "221 2.0.0 Bye");
	s->closing = true;
	s->be->close(s->be->ctx);
}

static void cmd_vrfy(struct lmtp_session *s, char *args)
{
	(void)args;
	lmtp_reply(s, "252 2.5.2 Send some mail, I'll try my best");
}

enum {
	IN_INIT = 1 << LMTP_STATE_INIT,
	IN_READY = 1 << LMTP_STATE_READY,
	IN_MAIL = 1 << LMTP_STATE_MAIL,
	IN_BDAT = 1 << LMTP_STATE_BDAT,
	IN_ANY = IN_INIT | IN_READY | IN_MAIL | IN_BDAT,
};

struct lmtp_command_def {
	const char *name;
	unsigned states;
	const char *wrong_state; /* reply when used in another state */
	void (*handler)(struct lmtp_session *s, char *args);
};

static const struct lmtp_command_def commands[] = {
    {"LHLO", IN_ANY & ~IN_BDAT, "503 5.5.1 Error: BDAT sequence in progress", cmd_lhlo},
    {"MAIL", IN_READY, NULL, cmd_mail},
    {"RCPT", IN_MAIL, "503 5.5.1 Error: need MAIL command", cmd_rcpt},
    {"DATA", IN_MAIL, "503 5.5.1 Error: need MAIL command", cmd_data},
    {"BDAT", IN_ANY & ~IN_INIT, "503 5.5.1 Error: send LHLO first", cmd_bdat},
    {"RSET", IN_ANY, NULL, cmd_rset},
    {"NOOP", IN_ANY, NULL, cmd_noop},
    {"QUIT", IN_ANY, NULL, cmd_quit},
    {"VRFY", IN_ANY & ~IN_BDAT, "503 5.5.1 Error: BDAT sequence in progress", cmd_vrfy},
};

void lmtp_command(struct lmtp_session *s, const char *line, size_t len)
{
	char *copy = xstrndup(line, len);
	char *args = copy;
	while (*args != '\0' && *args != ' ')
		args++;
	size_t name_len = (size_t)(args - copy);
	if (*args == ' ')
		*args++ = '\0';
	const struct lmtp_command_def *def = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (name_len == 4 && strncasecmp(copy, commands[i].name, 4) == 0)
			def = &commands[i];
	if (def == NULL) {
		if (name_len == 4 &&
		    (strncasecmp(copy, "HELO", 4) == 0 || strncasecmp(copy, "EHLO", 4) == 0))
			lmtp_error(s, "500 5.5.1 Error: this is LMTP, use LHLO");
		else
			lmtp_error(s, "500 5.5.2 Error: command not recognized");
	} else if ((def->states & (1u << s->state)) == 0) {
		if (s->state == LMTP_STATE_INIT)
			lmtp_error(s, "503 5.5.1 Error: send LHLO first");
		else if (s->state == LMTP_STATE_MAIL && strcmp(def->name, "MAIL") == 0)
			lmtp_error(s, "503 5.5.1 Error: nested MAIL command");
		else if (s->state == LMTP_STATE_BDAT)
			lmtp_error(s, "503 5.5.1 Error: BDAT sequence in progress");
		else
			lmtp_error(s, "%s",
			           def->wrong_state != NULL ? def->wrong_state
			                                    : "503 5.5.1 Bad sequence");
	} else {
		def->handler(s, args);
	}
	free(copy);
}
