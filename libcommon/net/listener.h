/*
 * Listening sockets and the per-daemon server frame: bind (before the privilege drop),
 * accept with per-IP and global caps, shed load on EMFILE with a spare fd, and hand every
 * accepted connection to the protocol's conn_ops.
 *
 * Address syntax (config): "127.0.0.1:25", "[::1]:143", "*:25" (all IPv4+IPv6),
 * "unix:/run/tern/lmtp".
 */
#ifndef TERN_NET_LISTENER_H
#define TERN_NET_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "net/conn.h"

struct tls_ctx;
struct listener;

enum listener_tls {
	LISTENER_TLS_NONE,     /* plaintext; the protocol may offer STARTTLS with `tls` */
	LISTENER_TLS_IMPLICIT, /* TLS handshake before on_open (465, 993, 995) */
};

struct listener_config {
	const char *name;    /* "smtp", "submission", "lmtp", ... (logs, conn_listener_name) */
	const char *address; /* see above */
	enum listener_tls tls_mode;
	struct tls_ctx *tls; /* for IMPLICIT, and for STARTTLS offered by the protocol */
	/* Unix sockets: mode and (when running as root) owner/group set on the socket file. */
	mode_t unix_mode;
	uid_t unix_uid;
	gid_t unix_gid;
	/* Caps: 0 = unlimited. Past a cap the connection is closed at once (the protocol
	 * never sees it), after writing reject_banner if set ("421 4.7.0 Too many ..."). */
	unsigned max_conns;
	unsigned max_conns_per_ip;
	const char *reject_banner;
	struct conn_limits limits;
	const struct conn_ops *ops;
	void *ops_data; /* available to the protocol through listener_ops_data() */
};

/* Binds and starts listening. Returns NULL with *error_r set (caller frees) on failure. */
struct listener *listener_start(uv_loop_t *loop, const struct listener_config *cfg, char **error_r);
/* Stops accepting; open connections stay. */
void listener_stop(struct listener *l);
void *listener_ops_data(const struct conn *c);
/* Number of open connections accepted by this listener. */
unsigned listener_conn_count(const struct listener *l);
/* Replaces the TLS context for new connections (SIGHUP reload of certificates). The
 * listener holds its own reference (as it does for listener_config.tls). */
void listener_set_tls(struct listener *l, struct tls_ctx *tls);

/*
 * Additions (net branch):
 * The bound TCP port (useful with "127.0.0.1:0" in tests); 0 for Unix sockets.
 */
int listener_port(const struct listener *l);
/* Stops the listener (if running) and frees it once its last connection has closed;
 * *l is set to NULL. A listener only stopped stays allocated for the process's life. */
void listener_free(struct listener **l);

#endif
