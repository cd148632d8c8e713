/*
 * The hand-off to deliverd: an LMTP client (RFC 2033) that implements the session's
 * delivery backend (struct smtp_delivery_ops). One LMTP connection per mail transaction:
 * connect, LHLO, MAIL; then each RCPT is asked live; DATA streams through dot-stuffed with
 * bounded output (back-pressure reaches the SMTP client); after the final dot one reply per
 * accepted recipient is passed on. Any failure (cannot connect, connection lost, timeout,
 * garbage) becomes "451 4.3.0" for every answer still owed: never a success.
 * Replies are always delivered from the loop, never from inside a call the session made.
 */
#ifndef TERN_SMTPD_LMTP_CLIENT_H
#define TERN_SMTPD_LMTP_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "session.h"

struct lmtp_client_config {
	uv_loop_t *loop;
	const char *socket_path; /* "unix:/run/tern/lmtp" or a plain path; "127.0.0.1:24" */
	const char *hostname;    /* for LHLO */
	uint64_t timeout_ms;
};

extern const struct smtp_delivery_ops lmtp_delivery_ops;

/* Filters ESMTP parameters of a MAIL/RCPT line to those the server advertised.
 * caps is a bit set of LMTP_CAP_*. Returns a new string (caller frees). */
#define LMTP_CAP_8BITMIME 1u
#define LMTP_CAP_SMTPUTF8 2u
#define LMTP_CAP_DSN 4u
#define LMTP_CAP_SIZE 8u
char *lmtp_filter_params(const char *line, unsigned caps);

#endif
