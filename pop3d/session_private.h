/*
 * The session internals shared by session.c and the cmd_*.c files. Not for other parts.
 */
#ifndef TERN_POP3D_SESSION_PRIVATE_H
#define TERN_POP3D_SESSION_PRIVATE_H

#include <time.h>

#include "base/buf.h"
#include "maildrop.h"
#include "output.h"
#include "pop3_parse.h"
#include "session.h"

/* A RETR or TOP response being streamed from the file. The read and output buffers
 * belong to the session and are reused by every message. */
struct pop3_stream {
	int fd;
	struct pop3_encoder enc;
};

struct pop3_session {
	struct pop3_settings set;
	char *remote_ip, *local_ip;
	int remote_port, local_port;
	bool tls, loopback;
	uint64_t id;
	time_t connected_at;

	const struct pop3_io_ops *io;
	void *io_ctx;
	const struct pop3_auth_ops *auth;
	void *auth_ctx;

	enum pop3_state state;
	struct pop3_line_parser parser;
	struct buf *in;
	bool processing; /* inside session_process(): callbacks must not re-enter it */
	bool busy;       /* waiting for authd, the userdb or the failure delay */
	bool blocked;    /* output past the low-water mark */
	bool closing;    /* close requested: no more commands */
	unsigned bad_commands;

	/* AUTHORIZATION */
	char *user; /* from USER; the canonical name once authenticated */
	char *mech; /* mechanism of the last attempt (logs) */
	struct auth_request *auth_req;
	void *home_lookup;
	struct pop3_open_job *open_job; /* opening the maildrop in the thread pool */
	bool sasl_continue;             /* the next line is a SASL response */
	unsigned auth_attempts;
	unsigned auth_failures;
	bool plaintext_refused;
	bool fail_close_after_delay;

	/* TRANSACTION */
	struct maildrop *md;
	struct pop3_stream *stream;
	char *stream_chunk;
	struct buf stream_out;
	unsigned top_count, retr_count, dele_count;
	uint64_t top_bytes, retr_bytes, dele_bytes;
	bool committed;
	unsigned expunged;
	unsigned msg_count; /* the snapshot, for the logout line */
	uint64_t mailbox_size;
};

/* The allowed-state bits of a command table row. */
#define POP3_IN_AUTH (1u << POP3_STATE_AUTHORIZATION)
#define POP3_IN_TRANS (1u << POP3_STATE_TRANSACTION)

struct pop3_cmd_def {
	const char *name;
	unsigned states;
	void (*handler)(struct pop3_session *s, const struct pop3_command *cmd);
};

/* The command table (commands.c). NULL when unknown. */
const struct pop3_cmd_def *pop3_cmd_find(const char *name);

/* Replies: one line, CRLF added. */
void session_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void session_write(struct pop3_session *s, const void *data, size_t len);
/* A syntax or state error: counts towards max_bad_commands. */
void session_bad_command(struct pop3_session *s, const char *text);
/* Flushes and closes; no further commands run. */
void session_close(struct pop3_session *s);
/* Whether USER/PASS and plaintext SASL mechanisms may be used on this connection. */
bool session_plaintext_allowed(const struct pop3_session *s);
/* Starts an authd request (PASS and AUTH). ir_b64 NULL = no initial response. */
void session_auth_begin(struct pop3_session *s, const char *mech, const char *ir_b64);
/* Streams message n (RETR: body_lines < 0; TOP: the count). */
void session_send_message(struct pop3_session *s, unsigned n, int64_t body_lines);
/* Checks a message number argument; replies -ERR and returns false when unusable. */
bool session_msgnum(struct pop3_session *s, const char *arg, unsigned *n_r);

/* Runs buffered commands again after a wait (authd, the delay, a drained output). */
void session_resume(struct pop3_session *s);
/* session_stream.c: drops a RETR/TOP in progress. */
void session_stream_free(struct pop3_session *s);
/* session_login.c: the Dovecot-shaped disconnect line for this session. */
void session_log_disconnect(struct pop3_session *s);
/* session_login.c: a maildrop still opening is released when it is done. */
void session_open_job_orphan(struct pop3_session *s);

/* Command handlers (cmd_*.c). */
void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_user(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_pass(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_apop(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_auth(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_stat(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_list(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_retr(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_top(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_dele(struct pop3_session *s, const struct pop3_command *cmd);
void cmd_rset(struct pop3_session *s, const struct pop3_command *cmd);

#endif
