/*
 * A client connection to one of authd's Unix sockets, shared by auth_client and
 * userdb_client: connect, read LF-terminated lines (capped at AUTH_PROTO_MAX_LINE), write
 * bytes. Any failure (connect refused, EOF, read error, over-long line) closes the link
 * and reports it once through on_closed.
 *
 * Memory: the link owns itself. After on_closed runs, or after the owner calls
 * auth_link_close(), the owner must forget the pointer; the memory is released from the
 * loop once libuv has closed the handle.
 */
#ifndef TERN_AUTH_AUTH_LINK_H
#define TERN_AUTH_AUTH_LINK_H

#include <stddef.h>
#include <uv.h>

struct auth_link;

struct auth_link_ops {
	/* Connected; the owner usually writes its handshake now. */
	void (*on_connected)(struct auth_link *link, void *context);
	/* One line without its LF, NUL-terminated and writable. The owner may call
	 * auth_link_close() from here; no further lines are delivered then. */
	void (*on_line)(struct auth_link *link, char *line, size_t len, void *context);
	/* The link failed or the peer closed it; `why` is for logs. Runs from the loop
	 * after the handle closed (never inside auth_link_write()); the link is freed right
	 * after. Not called once the owner called auth_link_close(). */
	void (*on_closed)(struct auth_link *link, const char *why, void *context);
};

/* Starts connecting; every outcome is reported from the loop, never from inside this call.
 * Returns NULL only when path is too long for a Unix socket. */
struct auth_link *auth_link_connect(uv_loop_t *loop, const char *path,
                                    const struct auth_link_ops *ops, void *context);
/* Queues bytes (copied). Returns 0, or -1 when the link is not connected or is closing. */
int auth_link_write(struct auth_link *link, const void *data, size_t len);
/* Closes without calling on_closed. */
void auth_link_close(struct auth_link *link);

#endif
