/*
 * The outbound relay of tern-deliverd: the scheduler that drains the queue (queue.h) on the
 * daemon's libuv loop, the SMTP client sessions it starts (relay_session.c), retries
 * (retry.h) and bounces (dsn.h).
 *
 * Life of a queued recipient: queue_writer_commit() made it durable; relay_notify_new()
 * (or the periodic scan of the queue directory, which also finds messages left by a
 * previous run) loads the message; recipients that are due are grouped by destination
 * (their domain, or the relayhost) into jobs; each destination has at most
 * relay_destination_concurrency sessions and all of them together relay_max_connections.
 * A session resolves the destination (MX, A/AAAA), connects, speaks SMTP and reports each
 * recipient's outcome: sent, deferred (retry schedule; bounce after queue_lifetime) or
 * bounced (DSN to the sender). The state file is rewritten after each job, so a restart
 * resumes where the last durable state left off (a recipient may be sent twice when the
 * daemon dies between the remote 250 and that write, never lost).
 *
 * Logs, in Postfix's shape:
 *   <qid>: to=<bob@bob.test>, relay=mx.bob.test[10.0.0.2]:25, delay=1.2, dsn=2.0.0,
 *          status=sent (250 2.0.0 Ok: queued as X)
 *   ... status=deferred (connect to mx.bob.test[10.0.0.2]:25: Connection refused)
 *   ... status=bounced (host mx.bob.test[10.0.0.2] said: 550 5.1.1 ... (in reply to RCPT TO
 * command))
 */
#ifndef TERN_DELIVERD_RELAY_H
#define TERN_DELIVERD_RELAY_H

#include <stdbool.h>
#include <uv.h>

struct config;
struct queue;

/* Opens the queue and starts the scheduler on loop. hostname names us in EHLO and DSNs. */
int relay_setup(uv_loop_t *loop, const struct config *cfg, const char *hostname, char **error_r);
/* Stops starting work; open sessions QUIT (or are aborted by the daemon's shutdown bound). */
void relay_shutdown(void);
/* The queue (for the LMTP side to add messages), or NULL before relay_setup(). */
struct queue *relay_queue(void);
/* A message was committed to the queue (call on the loop thread). */
void relay_notify_new(const char *qid);
/* Runs the queue now: every deferred recipient is due (ternctl queue flush). */
void relay_flush(void);

#endif
