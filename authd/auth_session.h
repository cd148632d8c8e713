/*
 * One auth-client connection (Dovecot auth protocol v1, protocols.md 3.1/4.2), independent
 * of the transport: bytes in through auth_session_feed(), bytes out and close through
 * struct auth_session_io. The glue to listener/conn is in authd_server.c; tests drive
 * sessions directly.
 *
 * Handshake: nothing is sent before the client's VERSION; then VERSION, every MECH, SPID,
 * CUID, COOKIE, DONE (Postfix refuses SPID before MECH). Requests (AUTH/CONT/CANCEL) are
 * multiplexed by id; SASL steps run in the thread pool; failures are answered after the
 * per-IP penalty delay, from a timer. A malformed line, an over-long line or an unknown
 * command closes the connection with a log line.
 */
#ifndef TERN_AUTHD_AUTH_SESSION_H
#define TERN_AUTHD_AUTH_SESSION_H

#include <stddef.h>

struct authd;
struct buf;
struct auth_session;

struct auth_session_io {
	void (*write)(void *context, const char *data, size_t len);
	/* Close the transport; auth_session_free() follows from the transport's close. */
	void (*close)(void *context);
};

struct auth_session *auth_session_new(struct authd *a, const struct auth_session_io *io,
                                      void *io_context);
/* Consumes every complete line of in (buf_consume). After a protocol error the session
 * has asked io->close and ignores further input. */
void auth_session_feed(struct auth_session *s, struct buf *in);
/* The peer closed its side: pending requests are dropped. */
void auth_session_free(struct auth_session **s);

#endif
