/*
 * One POP3 session (RFC 1939): the AUTHORIZATION -> TRANSACTION -> UPDATE state machine,
 * independent of sockets, authd and the store, so transcript tests drive it directly.
 *
 * The outside world comes in through three small tables:
 *  - pop3_io_ops: the connection (server.c maps them onto conn_*; tests record bytes);
 *  - pop3_auth_ops: authd (pop3_auth.c maps them onto auth_client and userdb_client);
 *  - the mailbox: maildrop.h, opened on the home directory the userdb lookup returned.
 *
 * Memory: the session owns its maildrop, pending auth request and copies of every string
 * it keeps. pop3_session_free() drops the maildrop without applying anything (a dropped
 * connection deletes nothing); only QUIT in TRANSACTION commits.
 */
#ifndef TERN_POP3D_SESSION_H
#define TERN_POP3D_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "maildrop.h"

struct buf;
struct pop3_session;

struct pop3_settings {
	size_t max_line;      /* command line cap (RFC 2449: 255 octets) */
	size_t max_auth_line; /* AUTH lines and SASL responses */
	uint64_t auth_fail_delay_ms;
	unsigned max_auth_attempts; /* then disconnect */
	unsigned max_bad_commands;  /* then disconnect */
	bool plaintext_on_loopback; /* USER/PASS allowed on non-TLS loopback connections */
	bool tls_available;         /* STLS offered on a plaintext connection */
	enum maildrop_uidl_format uidl_format;
};

/* Fills s with the built-in defaults (what keys_pop3d.c documents). */
void pop3_settings_defaults(struct pop3_settings *s);

/* Facts about the connection, copied by pop3_session_new(). */
struct pop3_conn_info {
	const char *remote_ip;
	const char *local_ip;
	int remote_port, local_port;
	bool tls;      /* TLS active (implicit TLS listener) */
	bool loopback; /* peer is 127.0.0.0/8, ::1 or a Unix socket */
	uint64_t id;   /* for session=<...> in log lines */
};

struct pop3_io_ops {
	/* Queue output. Returns 1 when past the low-water mark (stop producing until
	 * pop3_session_drain), 0 when fine, -1 when the connection is going away. */
	int (*write)(void *io, const void *data, size_t len);
	/* Flush queued output, then close. */
	void (*close)(void *io);
	/* Start TLS after the queued "+OK" is flushed; buffered plaintext is discarded.
	 * Returns -1 when TLS cannot start. */
	int (*starttls)(void *io);
	/* One-shot timer (failed-auth delay): pop3_session_timer() when it fires. */
	void (*timer_start)(void *io, uint64_t ms);
	void (*timer_stop)(void *io);
	/* Runs work(arg) where it may block on the disk (the libuv thread pool), then
	 * done(arg) back on the loop. done always runs, even after the session is gone. */
	void (*run_blocking)(void *io, void (*work)(void *arg), void (*done)(void *arg), void *arg);
};

/* Looking up a user's Maildir after authd said OK. home is NULL unless found. */
enum pop3_home_result { POP3_HOME_FOUND, POP3_HOME_NOTFOUND, POP3_HOME_TEMPFAIL };
typedef void pop3_home_callback_t(enum pop3_home_result result, const char *home, void *context);

struct pop3_auth_ops {
	/* Mechanisms authd offers (may be empty while authd is down). */
	size_t (*mechs)(void *auth, const struct auth_mech **mechs_r);
	/* As auth_client_begin(); NULL means the request could not start (TEMPFAIL). */
	struct auth_request *(*begin)(void *auth, const struct auth_request_info *info,
	                              auth_callback_t *callback, void *context);
	void (*cont)(struct auth_request *req, const char *response_b64);
	void (*abort)(struct auth_request **req);
	/* Starts a home lookup; returns a handle for lookup_abort (callback runs later). */
	void *(*lookup_home)(void *auth, const char *user, pop3_home_callback_t *callback,
	                     void *context);
	void (*lookup_abort)(void **handle);
};

struct pop3_session *pop3_session_new(const struct pop3_settings *set,
                                      const struct pop3_conn_info *info,
                                      const struct pop3_io_ops *io, void *io_ctx,
                                      const struct pop3_auth_ops *auth, void *auth_ctx);
/* Sends the greeting. */
void pop3_session_start(struct pop3_session *s);
/* Parses and runs the complete commands in `in`, consuming what it used. `in` must stay
 * valid for the session's life (the connection's input buffer): the session comes back
 * to it when a paused command (authd, output back-pressure) finishes. */
void pop3_session_input(struct pop3_session *s, struct buf *in);
/* Output fell below the low-water mark: continue a RETR and pipelined commands. */
void pop3_session_drain(struct pop3_session *s);
/* The timer started with timer_start fired. */
void pop3_session_timer(struct pop3_session *s);
/* Idle timeout: says goodbye and asks to close. */
void pop3_session_timeout(struct pop3_session *s);
/* The connection is gone: logs the disconnect, releases the mailbox WITHOUT applying
 * deletions unless QUIT already committed them, frees. Sets *s to NULL. */
void pop3_session_free(struct pop3_session **s);

/* For tests and logs. */
enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE, /* QUIT done; the connection is closing */
};
enum pop3_state pop3_session_state(const struct pop3_session *s);

#endif
