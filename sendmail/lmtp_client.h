/*
 * A small blocking LMTP client over a Unix socket (the sendmail command needs nothing
 * more): one command, one reply, with a timeout on every read. Replies longer than
 * LMTP_CLIENT_MAX_REPLY are a protocol error.
 */
#ifndef TERN_SENDMAIL_LMTP_CLIENT_H
#define TERN_SENDMAIL_LMTP_CLIENT_H

#include <stddef.h>

#include "base/buf.h"

#define LMTP_CLIENT_MAX_REPLY 8192

struct lmtp_client {
	int fd;
	struct buf in;
	struct buf out;
	int timeout_ms;
};

/* Connects and reads the greeting; -1 with *error_r on failure. */
int lmtp_client_connect(struct lmtp_client *c, const char *path, int timeout_ms, char **error_r);
/* Sends one command line (CRLF added) and reads its reply into reply (whole text, lines
 * joined with '\n'). Returns the reply code, or -1 on I/O error (*error_r set). */
int lmtp_client_command(struct lmtp_client *c, const char *line, struct buf *reply, char **error_r);
/* Reads one more reply (the per-recipient replies after DATA). */
int lmtp_client_reply(struct lmtp_client *c, struct buf *reply, char **error_r);
/* Queues raw bytes (already dot-stuffed body); flushed when the buffer is large and by
 * lmtp_client_flush(). */
int lmtp_client_send(struct lmtp_client *c, const void *data, size_t len, char **error_r);
int lmtp_client_flush(struct lmtp_client *c, char **error_r);
void lmtp_client_close(struct lmtp_client *c);

#endif
