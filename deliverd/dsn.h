/*
 * Delivery status notifications (RFC 3464) made by the relay: bounces for recipients that
 * failed for good or expired, and delay warnings.
 *
 * A DSN is a multipart/report (RFC 6522) with a human-readable text/plain part, the
 * message/delivery-status part (per-message and per-recipient fields), and the original
 * message's headers as text/rfc822-headers (or the whole message as message/rfc822 when the
 * sender asked RET=FULL and it is small enough). It goes from the null reverse-path to the
 * original envelope sender and is marked Auto-Submitted (RFC 3834).
 *
 * Who gets one (dsn_wanted): never for a null sender (RFC 5321 6.1: a bounce of a bounce
 * would loop), never for a message that is itself a DSN, and only as the recipient's
 * NOTIFY parameter allows (RFC 3461 4.1: default = FAILURE and DELAY).
 */
#ifndef TERN_DELIVERD_DSN_H
#define TERN_DELIVERD_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct buf;

enum dsn_kind {
	DSN_FAILED,  /* Action: failed */
	DSN_DELAYED, /* Action: delayed (a warning; the message stays queued) */
};

#define DSN_MAX_HEADERS (64u * 1024) /* original headers copied at most */
#define DSN_MAX_FULL (1024u * 1024)  /* RET=FULL returns bodies up to this size */

/* Whether the sender of msg gets a DSN of this kind for recipient r. */
bool dsn_wanted(const struct queue_msg *msg, const struct queue_rcpt *r, enum dsn_kind kind);

struct dsn_params {
	const char *reporting_mta; /* our host name */
	enum dsn_kind kind;
	uint64_t now_ms;
	uint64_t retry_until_ms;   /* for DSN_DELAYED: when we give up */
	const char *boundary_seed; /* makes the MIME boundary unique (the new queue id) */
};

/*
 * Builds the DSN message for the recipients rcpts[0..n) of msg (their dsn, diag and
 * remote-MTA taken from the queue state; remote_mta may be NULL). body_fd is msg's file.
 * Appends the whole message (headers and body, CRLF line ends) to out. Returns 0 or -1
 * with *error_r (reading the original failed).
 */
int dsn_build(const struct dsn_params *p, const struct queue_msg *msg,
              const struct queue_rcpt *const *rcpts, size_t n, int body_fd, struct buf *out,
              char **error_r);

/*
 * Builds the DSN and queues it (null sender, is_dsn set, one recipient: msg's sender).
 * qid_r gets the new id. Blocking (file I/O).
 */
int dsn_queue(struct queue *q, const struct dsn_params *p, const struct queue_msg *msg,
              const struct queue_rcpt *const *rcpts, size_t n, char *qid_r, char **error_r);

#endif
