/*
 * Connections on the libuv loop: TCP and Unix stream sockets, plaintext or TLS, accepted
 * by a listener (listener.h) or opened by conn_connect_unix(). A protocol module sees only
 * bytes in (on_data) and writes out (conn_write); TLS, back-pressure, output caps and
 * timeouts are handled here.
 *
 * Memory: struct conn is owned by this module. The protocol's session pointer (conn_data)
 * belongs to the protocol and must be released in on_close, after which the conn is gone.
 * A struct conn pointer is valid until on_close returns; conn_close() may be called from
 * any callback, and on_close then runs later from the loop (never re-entrantly).
 */
#ifndef TERN_NET_CONN_H
#define TERN_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct buf;
struct conn;
struct tls_ctx;

struct conn_ops {
	/* The connection is ready (for implicit TLS: after the handshake). Send a greeting. */
	void (*on_open)(struct conn *c);
	/* New bytes were appended to `in` (plaintext after TLS). Consume what you parse with
	 * buf_consume(); unconsumed bytes stay for the next call. `in` is capped at the
	 * limit given in conn_limits.max_input: when it is full and nothing is consumed,
	 * on_overflow runs. */
	void (*on_data)(struct conn *c, struct buf *in);
	/* Output fell below the low-water mark after conn_write() reported back-pressure.
	 * Optional: used to resume streaming of big responses. */
	void (*on_drain)(struct conn *c);
	/* The input buffer is full and the protocol consumed nothing. Optional; the default
	 * closes the connection. */
	void (*on_overflow)(struct conn *c);
	/* Idle or session timeout fired. Optional: write a goodbye; the conn closes after. */
	void (*on_timeout)(struct conn *c);
	/* The connection is closed (peer gone, error, timeout or conn_close). Free the
	 * session here. Always called exactly once per conn that reached on_open, and also
	 * for a client connection whose connect failed. */
	void (*on_close)(struct conn *c);
};

struct conn_limits {
	size_t max_input;    /* input buffer cap (default 64 KiB) */
	size_t max_output;   /* queued output cap; past it the conn is closed (default 4 MiB) */
	size_t output_lowat; /* on_drain threshold (default 64 KiB) */
	uint64_t idle_ms;    /* no input for this long -> on_timeout, close (0 = none) */
	uint64_t session_ms; /* whole-session cap (0 = none) */
};

/* Protocol data. */
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);

/*
 * Queues bytes for output. Returns 1 when the output queue is now past the low-water
 * mark (the caller should stop producing until on_drain), 0 otherwise, or -1 when the
 * connection is closing or the output cap was passed (the conn is then being closed).
 */
int conn_write(struct conn *c, const void *data, size_t len);
int conn_write_str(struct conn *c, const char *s);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t conn_output_pending(const struct conn *c);

/* Closes after the queued output is flushed (bounded by a short linger timeout). */
void conn_close(struct conn *c);
/* Closes now, dropping queued output. */
void conn_abort(struct conn *c);
bool conn_is_closing(const struct conn *c);

/* Stop / resume delivering on_data (e.g. while a command waits on authd). Input that
 * arrives is kept in the input buffer up to max_input. */
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);

/*
 * STARTTLS: the reply already queued ("220 ready") is flushed in plaintext, then the TLS
 * server handshake starts. Any plaintext input already received and not consumed, and
 * anything that arrives before the handshake, is DISCARDED (CVE-2011-0411 class).
 * Returns -1 when TLS is not configured or already active.
 */
int conn_starttls(struct conn *c, struct tls_ctx *tls);
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3" and the cipher name, or NULL when plaintext. Valid while the conn lives. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);

void conn_set_idle_timeout(struct conn *c, uint64_t ms);

/* Addresses: "192.0.2.1" / "2001:db8::1" (no brackets) or "unix"; ports 0 for Unix. */
const char *conn_peer_ip(const struct conn *c);
const char *conn_local_ip(const struct conn *c);
int conn_peer_port(const struct conn *c);
int conn_local_port(const struct conn *c);
/* True for 127.0.0.0/8, ::1, and Unix sockets. */
bool conn_is_loopback(const struct conn *c);
/* Unix sockets: the peer's credentials from SO_PEERCRED; -1 when not Unix. */
int conn_peer_cred(const struct conn *c, uid_t *uid_r, gid_t *gid_r, pid_t *pid_r);
/* The listener's name ("smtp", "submission"...), or NULL for a client connection. */
const char *conn_listener_name(const struct conn *c);
/* A process-unique id for log lines. */
uint64_t conn_id(const struct conn *c);
uv_loop_t *conn_loop(const struct conn *c);

/*
 * Opens a client connection to a Unix socket. on_open runs when connected; on failure
 * on_close runs (with on_open never called) and conn_connect_error() tells why.
 * Returns the conn (for conn_set_data before the loop runs) or NULL on immediate failure.
 */
struct conn *conn_connect_unix(uv_loop_t *loop, const char *path, const struct conn_ops *ops,
                               const struct conn_limits *limits, void *data);
/* Opens a TCP client connection to ip:port (numeric address). */
struct conn *conn_connect_tcp(uv_loop_t *loop, const char *ip, int port, const struct conn_ops *ops,
                              const struct conn_limits *limits, void *data);
/* The libuv error code (negative) of a failed connect, 0 otherwise. */
int conn_connect_error(const struct conn *c);
/* Client-side STARTTLS / TLS start for outgoing connections (relay client). */
int conn_start_tls_client(struct conn *c, struct tls_ctx *tls, const char *sni);

/*
 * Additions (net branch):
 * Closes every connection of loop now (conn_abort), e.g. when the shutdown bound passed;
 * each on_close still runs once, from the loop. Returns how many were still in session
 * (connections already closing are ended too, but not counted).
 */
unsigned conn_abort_all(uv_loop_t *loop);
/* Connections of loop that are not yet freed (including ones closing). */
unsigned conn_count(uv_loop_t *loop);

/*
 * Additions (compress branch): COMPRESS=DEFLATE (RFC 4978).
 * From this call on, every byte read and written is raw DEFLATE (RFC 1951, no zlib
 * header), layered above TLS. Call it right after queueing the last uncompressed reply
 * (IMAP's tagged OK): queued output still goes out as written. Input the protocol has
 * not consumed yet is taken as compressed. Output is sync-flushed (Z_SYNC_FLUSH) before
 * the loop waits for the peer, so a reply is never stuck in the compressor. Inflated
 * input goes into the same capped `in` buffer, in steps no bigger than its free room, so
 * a decompression bomb costs no more memory than a plaintext flood and a line longer
 * than max_input ends in on_overflow as in plaintext; a corrupt stream closes the conn.
 * Returns -1 when compression is already on, the conn is not open, or a TLS handshake
 * is pending.
 */
int conn_start_compress(struct conn *c);
bool conn_is_compressed(const struct conn *c);
/* Bytes zlib holds for this conn now, and the most it held at once (0 when off). */
size_t conn_compress_memory(const struct conn *c, size_t *peak_r);
/* Byte counts: uncompressed and on-the-wire (before TLS), each way. Zero when off. */
void conn_compress_stats(const struct conn *c, uint64_t *raw_in_r, uint64_t *wire_in_r,
                         uint64_t *raw_out_r, uint64_t *wire_out_r);

#endif
