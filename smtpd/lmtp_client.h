/*
 * The hand-off to deliverd: an LMTP client (RFC 2033) that implements the session's
 * delivery backend (struct smtp_delivery_ops). One LMTP session per mail transaction, on
 * a fresh connection (connect, LHLO) or on one kept from an earlier transaction (after
 * RSET, in a small idle pool): MAIL; then each RCPT is asked live; DATA streams through dot-stuffed
 * with bounded output (back-pressure reaches the SMTP client); after the final dot one reply per
 * accepted recipient is passed on. Any failure (cannot connect, connection lost, timeout,
 * garbage) becomes "451 4.3.0" for every answer still owed: never a success.
 * Replies are always delivered from the loop, never from inside a call the session made.
 */
#ifndef TERN_SMTPD_LMTP_CLIENT_H
#define TERN_SMTPD_LMTP_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "session.h"

struct lmtp_conn;

struct lmtp_client_config {
	uv_loop_t *loop;
	const char *socket_path; /* "unix:/run/tern/lmtp" or a plain path; "127.0.0.1:24" */
	const char *hostname;    /* for LHLO */
	uint64_t timeout_ms;     /* deliverd must answer within this */
	/* The idle pool: connections kept (after RSET) for the next transaction. 0 = none. */
	unsigned max_idle;
	uint64_t idle_ms; /* an idle pooled connection is closed after this */
	/* Internal: the pool itself (start with NULL / 0). */
	struct lmtp_conn *idle;
	unsigned n_idle;
};

extern const struct smtp_delivery_ops lmtp_delivery_ops;

/* Closes the idle pooled connections (shutdown). */
void lmtp_client_close_idle(struct lmtp_client_config *cfg);

/* Filters ESMTP parameters of a MAIL/RCPT line to those the server advertised.
 * caps is a bit set of LMTP_CAP_*. Returns a new string (caller frees). */
#define LMTP_CAP_8BITMIME 1u
#define LMTP_CAP_SMTPUTF8 2u
#define LMTP_CAP_DSN 4u
#define LMTP_CAP_SIZE 8u
char *lmtp_filter_params(const char *line, unsigned caps);

#endif
