/*
 * One IMAP connection: its state (RFC 3501 section 3), the command being executed, the
 * logged-in user and the selected mailbox. Commands run one at a time in arrival order;
 * a command that has to wait (authd, the thread pool) returns IMAP_CMD_ASYNC, input is
 * paused, and it calls imap_session_command_done() when it has replied.
 */
#ifndef TERN_IMAPD_IMAP_SESSION_H
#define TERN_IMAPD_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "imap_args.h"

struct conn;
struct imap_reader;
struct auth_request;
struct userdb_lookup;
struct imap_selected;
struct imap_watch;

enum imap_state {
	IMAP_STATE_NOT_AUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};

enum imap_cmd_result {
	IMAP_CMD_DONE,  /* the tagged reply was written */
	IMAP_CMD_ASYNC, /* the handler calls imap_session_command_done() later */
};

struct imap_session {
	struct conn *conn;
	enum imap_state state;
	struct imap_reader *reader;
	/* Unlinked temp files holding this command's streamed literals (APPEND), in order. */
	int *stream_fds;
	size_t n_stream_fds;
	struct imap_command cmd; /* the command being executed */
	bool cmd_running;
	unsigned bad_commands;

	struct auth_request *auth_req; /* AUTHENTICATE/LOGIN waiting on authd */
	struct userdb_lookup *userdb_req;
	/* While set, the next input line goes to this handler instead of the command
	 * reader (AUTHENTICATE's responses, IDLE's DONE). */
	void (*line_handler)(struct imap_session *s, const char *line, size_t len);
	char *auth_mech;
	char *login_user; /* the name LOGIN tried, for log lines */
	unsigned auth_failures;
	uint64_t connect_ms;

	char *user;           /* after login */
	char *home;           /* the user's Maildir root */
	uint64_t quota_bytes; /* from the userdb; 0 = unlimited */
	uint64_t quota_messages;

	struct imap_selected *sel; /* the selected mailbox (SELECTED state) */
	/* A command streaming output (FETCH) resumes here when the output drained. */
	void (*drain_cb)(struct imap_session *s, void *ctx);
	void *drain_ctx;
	bool in_handler; /* a handler is running: command_done only marks completion */
	bool done_early; /* the "async" command completed before its handler returned */

	bool utf8_enabled; /* ENABLE UTF8=ACCEPT */
	bool condstore_enabled;
	bool qresync_enabled; /* ENABLE QRESYNC (RFC 7162 3.2.3): expunges go out as VANISHED */
	bool tls_done;        /* STARTTLS succeeded (or implicit TLS) */

	/* IDLE: the watch on the selected folder and the list of sessions sharing it. */
	struct imap_watch *watch;
	struct imap_session *watch_next;
	bool idling;
};

/* Writes one untagged or continuation line; fmt excludes CRLF. */
void imap_session_send(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes "<tag> <status> <text>" for the current command. */
void imap_session_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes raw bytes (literal payloads). */
void imap_session_write(struct imap_session *s, const void *data, size_t len);
/* The asynchronous command finished (it has written its tagged reply). */
void imap_session_command_done(struct imap_session *s);
/* Ends the session after the output is flushed. */
void imap_session_close(struct imap_session *s);

/* TLS or loopback: plaintext passwords may be used. */
bool imap_session_secured(const struct imap_session *s);
/* The CAPABILITY list for the session's current state (no leading "CAPABILITY "). */
void imap_session_capabilities(const struct imap_session *s, struct buf *out);

/* The temp file of the command's streamed literal i, or -1. */
int imap_session_stream_fd(const struct imap_session *s, size_t i);

/* Connection callbacks for the listeners. */
extern const struct conn_ops imap_session_conn_ops;

#endif
