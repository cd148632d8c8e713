/*
 * One SMTP session, as a pure state machine: client bytes go in through
 * smtp_session_input(), replies come out through the io callbacks, and the mail
 * transaction is handed to a delivery backend (lmtp_client.c: deliverd over LMTP) and
 * AUTH to an auth backend (auth_glue.c: authd). Nothing here touches a socket, so the
 * whole protocol is tested with transcripts (tests/smtpd/).
 *
 * Memory: the session owns its strings and the transaction; the input buffer belongs to
 * the caller (the connection) and must stay the same buffer for the session's life.
 * Backends call back (smtp_session_delivery_reply, the auth callback) any time later,
 * but never after their handle was freed.
 */
#ifndef TERN_SMTPD_SESSION_H
#define TERN_SMTPD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth_client.h"
#include "base/buf.h"
#include "headers.h"
#include "smtp_data.h"
#include "smtp_parse.h"

struct policy;
struct smtp_session;

enum smtp_role {
	SMTP_ROLE_SMTP,        /* port 25: MX intake */
	SMTP_ROLE_SUBMISSION,  /* 587: STARTTLS, AUTH before MAIL */
	SMTP_ROLE_SUBMISSIONS, /* 465: implicit TLS, AUTH before MAIL */
};

struct smtpd_settings {
	const char *hostname;
	const struct policy *policy;
	size_t max_line;         /* command line, without CRLF */
	unsigned max_recipients; /* per transaction */
	uint64_t max_message_size;
	size_t max_header_size;
	unsigned max_errors;            /* bad commands before 421 and close */
	bool strict;                    /* RFC 5321 syntax only for MAIL/RCPT */
	bool sender_login_check;        /* authenticated senders use their own addresses */
	bool vrfy_enabled;              /* VRFY answers 252; otherwise 502 */
	bool submission_tls_required;   /* submission: STARTTLS before AUTH and MAIL */
	bool loopback_plaintext_auth;   /* plaintext mechanisms allowed on loopback without TLS */
	uint64_t auth_failure_delay_ms; /* first failed AUTH; doubles per failure */
	uint64_t auth_failure_delay_max_ms;
	bool add_missing_headers; /* submission: Message-ID and Date when missing */
};

struct smtp_client {
	const char *ip; /* peer address, no brackets */
	int port;
	const char *local_ip;
	int local_port;
	bool loopback;
	enum smtp_role role;
	bool tls; /* TLS active from the start (implicit TLS) */
};

struct smtp_io {
	/* Queue output bytes. */
	void (*write)(void *ctx, const char *data, size_t len);
	/* Close after the queued output is sent. No input is processed afterwards. */
	void (*close)(void *ctx);
	/* Start TLS after the queued "220" is sent; plaintext input still buffered is
	 * discarded. Returns -1 when TLS cannot be started. */
	int (*starttls)(void *ctx);
	/* TLS can be offered (a certificate is configured). */
	bool (*tls_available)(void *ctx);
	/* Version and cipher of the active TLS (NULLs when plaintext). */
	void (*tls_info)(void *ctx, const char **version_r, const char **cipher_r);
	/* One-shot timer: call smtp_session_timer() after ms. */
	void (*set_timer)(void *ctx, uint64_t ms);
	/* The session waits for a backend: stop (false) or resume (true) reading input. */
	void (*want_input)(void *ctx, bool want);
};

struct smtp_delivery_ops {
	/* Opens a transaction (connect, LHLO, the MAIL line). Never NULL; the reply arrives
	 * through smtp_session_delivery_reply(). */
	void *(*begin)(void *ctx, struct smtp_session *s, const char *mail_line);
	void (*rcpt)(void *tx, const char *rcpt_line);
	/* DATA: the reply is the server's 354 or an error. */
	void (*data)(void *tx);
	/* Message bytes (not dot-stuffed). Returns 0, 1 when the session should pause until
	 * smtp_session_delivery_drained(), or -1 when the transaction failed. */
	int (*write)(void *tx, const char *data, size_t len);
	/* The end of the message: one reply per accepted recipient, in order. */
	void (*end)(void *tx);
	/* Ends and frees the transaction; no callback comes after. */
	void (*free)(void *tx);
};

struct smtp_auth_ops {
	size_t (*mechs)(void *ctx, const struct auth_mech **mechs_r);
	struct auth_request *(*begin)(void *ctx, const struct auth_request_info *info,
	                              auth_callback_t *callback, void *context);
	void (*cont)(struct auth_request *req, const char *response_b64);
	void (*abort)(struct auth_request **req);
};

struct smtp_session *smtp_session_new(const struct smtpd_settings *set,
                                      const struct smtp_client *client, const struct smtp_io *io,
                                      void *io_ctx);
void smtp_session_set_delivery(struct smtp_session *s, const struct smtp_delivery_ops *ops,
                               void *ctx);
void smtp_session_set_auth(struct smtp_session *s, const struct smtp_auth_ops *ops, void *ctx);
/* Sends the greeting. */
void smtp_session_start(struct smtp_session *s);
/* New input was appended to in; the session consumes what it processed. */
void smtp_session_input(struct smtp_session *s, struct buf *in);
/* TLS (after STARTTLS) is up: the session state is reset as RFC 3207 4.2 requires. */
void smtp_session_tls_started(struct smtp_session *s);
/* Idle timeout: writes 421 and closes. */
void smtp_session_timeout(struct smtp_session *s);
void smtp_session_timer(struct smtp_session *s);
/* The client is gone: logs the disconnect line, aborts the transaction, frees s. */
void smtp_session_free(struct smtp_session **s);

/* Backend callbacks. reply is one complete reply line without CRLF ("250 2.1.0 Ok"). */
void smtp_session_delivery_reply(struct smtp_session *s, const char *reply);
void smtp_session_delivery_drained(struct smtp_session *s);

/* True when the session has decided to close (tests). */
bool smtp_session_closing(const struct smtp_session *s);

#endif
