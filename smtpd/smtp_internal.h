/*
 * The inside of a session, shared by session.c, the command table and the cmd_*.c
 * handlers. Not for use outside smtpd/.
 */
#ifndef TERN_SMTPD_SMTP_INTERNAL_H
#define TERN_SMTPD_SMTP_INTERNAL_H

#include "session.h"

enum smtp_state {
	SMTP_STATE_INIT = 1,  /* no HELO/EHLO yet */
	SMTP_STATE_READY = 2, /* greeted, no transaction */
	SMTP_STATE_MAIL = 4,  /* MAIL accepted */
	SMTP_STATE_RCPT = 8,  /* at least one RCPT accepted */
};
#define SMTP_STATE_ANY (SMTP_STATE_INIT | SMTP_STATE_READY | SMTP_STATE_MAIL | SMTP_STATE_RCPT)

enum smtp_mode {
	SMTP_MODE_COMMAND,
	SMTP_MODE_SKIP_LINE, /* discarding the rest of an over-long line */
	SMTP_MODE_DATA,
	SMTP_MODE_BDAT,
	SMTP_MODE_AUTH, /* waiting for a SASL response line */
	SMTP_MODE_CLOSED,
};

enum smtp_wait {
	SMTP_WAIT_NONE,
	SMTP_WAIT_MAIL, /* deliverd's reply to MAIL */
	SMTP_WAIT_RCPT,
	SMTP_WAIT_DATA,  /* deliverd's 354 (for DATA or the first BDAT) */
	SMTP_WAIT_END,   /* per-recipient replies */
	SMTP_WAIT_DRAIN, /* deliverd's connection is backed up */
	SMTP_WAIT_AUTH,  /* authd */
	SMTP_WAIT_DELAY, /* failed AUTH penalty */
};

struct smtp_command;

struct smtp_tx {
	void *dlv;
	char queue_id[24];
	struct smtp_path mail;
	bool smtputf8;
	char **rcpts; /* accepted */
	size_t n_rcpts;
	unsigned n_rcpt_cmds; /* RCPT commands in this transaction (cap) */
	struct smtp_path pending_rcpt;
	bool pending_relay;
	bool is_bdat;
	bool data_open;    /* deliverd answered 354 */
	bool failed;       /* the delivery side failed mid-message */
	bool backpressure; /* the delivery side asked us to pause */
	struct smtp_data_decoder dec;
	struct smtp_crlf_check crlf;
	struct smtp_msg msg;
	bool msg_started;
	unsigned long long bdat_remaining;
	bool bdat_last;
	const char *bdat_error; /* reply after the chunk is read, NULL when fine */
	unsigned end_replies;
	unsigned end_ok, end_temp, end_perm;
	char *end_fail_reply;
	char **end_texts; /* deliverd's reply per recipient (logs) */
	struct timespec start;
};

struct smtp_stat {
	unsigned ok, total;
};

struct smtp_session {
	const struct smtpd_settings *set;
	struct smtp_client client;
	const struct smtp_io *io;
	void *io_ctx;
	const struct smtp_delivery_ops *dlv;
	void *dlv_ctx;
	const struct smtp_auth_ops *auth;
	void *auth_ctx;

	struct buf *in;
	size_t scanned; /* leading bytes of in known to hold no LF (command mode) */
	struct buf out;
	enum smtp_state state;
	enum smtp_mode mode;
	enum smtp_wait wait;
	bool processing; /* re-entrancy guard for smtp_session_process */
	bool freeing;

	char *helo;
	bool esmtp;
	bool tls;
	char *client_name; /* "unknown[192.0.2.1]" */

	char *auth_user;
	char *auth_mech;
	unsigned auth_failures;
	struct auth_request *auth_req;
	char *auth_fail_reply;

	unsigned errors;
	const char *last_verb;   /* upper-case, static */
	struct smtp_stat *stats; /* per command table row */
	struct smtp_stat stat_unknown;
	unsigned n_commands, n_commands_ok;

	struct smtp_tx tx;
	bool in_tx;
};

typedef void smtp_cmd_handler(struct smtp_session *s, char *args);

struct smtp_command {
	const char *name;
	unsigned states;  /* SMTP_STATE_* where it is allowed */
	bool pipelinable; /* RFC 2920 3.1: may be followed by more commands in one group */
	smtp_cmd_handler *handler;
	const char *stat_name; /* for the disconnect line */
};

extern const struct smtp_command smtp_commands[];
extern const size_t smtp_n_commands;
const struct smtp_command *smtp_command_find(const char *verb);

/* session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A rejected command: counts an error; 421 and close past max_errors. */
void smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_flush(struct smtp_session *s);
void smtp_close(struct smtp_session *s);
void smtp_process(struct smtp_session *s);
void smtp_tx_reset(struct smtp_session *s);
void smtp_tx_begin(struct smtp_session *s);
void smtp_cmd_ok(struct smtp_session *s);
/* "NOQUEUE: reject: RCPT from unknown[ip]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>" */
void smtp_log_reject(struct smtp_session *s, const char *verb, const char *reply, const char *rcpt);
const char *smtp_protocol_name(const struct smtp_session *s);
bool smtp_auth_required(const struct smtp_session *s);
bool smtp_tls_required_first(const struct smtp_session *s);
/* A sanitised copy of client text for logs (caller frees). */
char *smtp_sanitize(const char *text);

/* cmd_data.c */
void smtp_data_input(struct smtp_session *s);
void smtp_bdat_input(struct smtp_session *s);
void smtp_data_delivery_reply(struct smtp_session *s, int code, const char *reply);
void smtp_data_drained(struct smtp_session *s);

/* cmd_mail.c */
void smtp_mail_delivery_reply(struct smtp_session *s, int code, const char *reply);
void smtp_rcpt_delivery_reply(struct smtp_session *s, int code, const char *reply);

/* cmd_auth.c */
void smtp_auth_input(struct smtp_session *s, char *line);
void smtp_auth_timer(struct smtp_session *s);
void smtp_auth_cancel(struct smtp_session *s);
/* The mechanisms to offer now (space-separated), "" for none. Caller frees. */
char *smtp_auth_offer(struct smtp_session *s);

/* cmd_basic.c, cmd_mail.c, cmd_data.c, cmd_auth.c, cmd_starttls.c */
void cmd_helo(struct smtp_session *s, char *args);
void cmd_ehlo(struct smtp_session *s, char *args);
void cmd_mail(struct smtp_session *s, char *args);
void cmd_rcpt(struct smtp_session *s, char *args);
void cmd_data(struct smtp_session *s, char *args);
void cmd_bdat(struct smtp_session *s, char *args);
void cmd_rset(struct smtp_session *s, char *args);
void cmd_noop(struct smtp_session *s, char *args);
void cmd_quit(struct smtp_session *s, char *args);
void cmd_help(struct smtp_session *s, char *args);
void cmd_vrfy(struct smtp_session *s, char *args);
void cmd_expn(struct smtp_session *s, char *args);
void cmd_starttls(struct smtp_session *s, char *args);
void cmd_auth(struct smtp_session *s, char *args);

#endif
