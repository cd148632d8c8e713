/*
 * Internals shared by conn.c, conn_tls.c, conn_connect.c and listener.c. Not for
 * protocol modules: they use conn.h and listener.h only.
 */
#ifndef TERN_NET_CONN_INT_H
#define TERN_NET_CONN_INT_H

#include <stddef.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "base/buf.h"
#include "net/conn.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

/* Bytes asked of the kernel per read (the scratch buffer is per thread, not per conn). */
#define CONN_READ_CHUNK (64 * 1024)
/* After conn_close(): how long queued output and the peer's FIN may take. */
#define CONN_LINGER_MS 3000
/* A TLS handshake must finish within this when no idle timeout is set. */
#define CONN_HANDSHAKE_MS 30000
/* on_data rounds per wake-up before the rest is deferred to the next loop turn. */
#define CONN_DISPATCH_ROUNDS 8

#define CONN_DEFAULT_MAX_INPUT (64 * 1024)
#define CONN_DEFAULT_MAX_OUTPUT (4 * 1024 * 1024)
#define CONN_DEFAULT_OUTPUT_LOWAT (64 * 1024)

enum conn_state {
	CONN_CONNECTING, /* client: waiting for connect() */
	CONN_HANDSHAKE,  /* implicit TLS: before on_open */
	CONN_OPEN,
	CONN_CLOSING, /* conn_close(): flushing queued output */
	CONN_LINGER,  /* write side shut down: draining input until EOF or the linger bound */
	CONN_CLOSED,  /* handles are being closed; on_close follows */
};

enum conn_tls_phase {
	TLS_PHASE_FLUSH_PLAIN, /* STARTTLS: our reply is still going out; input is discarded */
	TLS_PHASE_HANDSHAKE,
	TLS_PHASE_UP,
	TLS_PHASE_DOWN, /* close_notify sent or a fatal error: no more TLS I/O */
};

struct conn_tls {
	SSL *ssl;
	BIO *rbio; /* network -> SSL (ciphertext we read) */
	BIO *wbio; /* SSL -> network (ciphertext to send) */
	enum conn_tls_phase phase;
	bool implicit;        /* on_open waits for the handshake */
	bool established;     /* the handshake completed (stays true while closing) */
	struct buf plain_out; /* conn_write() before the handshake finished */
};

/* COMPRESS=DEFLATE (conn_compress.c): raw DEFLATE above TLS. */
struct conn_z {
	z_stream def;       /* our output; allocated per response batch (see conn_compress.c) */
	z_stream inf;       /* the peer's input; lives as long as the conn */
	bool def_ready;     /* def holds a deflate state */
	bool flush_pending; /* def took bytes since the last sync flush */
	bool inf_more;      /* the last inflate stopped for lack of room: output may be left */
	bool inf_ended;     /* the peer ended its deflate stream */
	struct buf zin;     /* compressed input not yet inflated (capped) */
	size_t zmem;        /* bytes zlib holds allocated right now */
	size_t zmem_peak;   /* the most it held at once */
	uint64_t raw_in, raw_out, wire_in, wire_out;
};

struct listener;

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t idle_timer;
	uv_timer_t session_timer; /* doubles as the linger bound once closing */
	uv_idle_t kick;           /* deferred work: resume_read, dispatch rounds past the cap */
	uv_write_t write_req;
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	int handles_open;

	uv_loop_t *loop;
	const struct conn_ops *ops;
	void *data;
	struct conn_limits limits;
	struct listener *listener;
	uint64_t id;
	enum conn_state state;

	struct buf in;
	struct buf out;        /* wire bytes queued behind the write in flight */
	struct buf out_flight; /* wire bytes of the write in flight */
	bool writing;
	bool reading;
	bool paused;
	bool fresh_input; /* bytes arrived (or resume) since on_data last ran */
	bool in_dispatch;
	bool want_drain;
	bool peer_eof;     /* EOF or close_notify: close once the input was delivered */
	bool notify_close; /* on_close is owed (on_open ran, or a client connect) */
	bool counted;      /* counted in the listener's caps */
	bool is_unix;
	int connect_error;
	size_t discarded; /* plaintext thrown away at STARTTLS */

	struct conn_tls *tls;
	struct conn_z *z; /* COMPRESS active (NULL otherwise) */
	/* Every live conn of the process, for conn_abort_all(). */
	struct conn *all_next;
	struct conn **all_prev;

	char peer_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	int peer_port;
	int local_port;
	bool have_cred;
	uid_t cred_uid;
	gid_t cred_gid;
	pid_t cred_pid;
};

/* conn.c */
struct conn *conn_alloc(uv_loop_t *loop, const struct conn_ops *ops,
                        const struct conn_limits *limits, bool is_unix);
void conn_fill_addresses(struct conn *c);
/* Starts an accepted connection: implicit TLS handshake, or on_open at once. */
void conn_start_server(struct conn *c, struct tls_ctx *implicit_tls);
/* The connect completed: on_open and start reading. */
void conn_start_client(struct conn *c);
/* Writes banner (best effort, never blocking) and closes without involving the protocol. */
void conn_reject(struct conn *c, const char *banner);
/* Closes every handle; on_close (when owed) runs from the last close callback. */
void conn_destroy(struct conn *c);
void conn_queue_wire(struct conn *c, const void *data, size_t len);
void conn_flush(struct conn *c);
void conn_process(struct conn *c);
void conn_notify_open(struct conn *c);
void conn_arm_handshake_timer(struct conn *c);
void conn_arm_idle_timer(struct conn *c);
/* Runs the deferred work (dispatch, compression flush) from the loop's next idle phase. */
void conn_kick(struct conn *c);
/* The buffer network input goes to: `in`, or the compressed input when COMPRESS is on. */
struct buf *conn_input_target(struct conn *c);

/* conn_tls.c */
int conn_tls_setup(struct conn *c, struct tls_ctx *tls, bool server, enum conn_tls_phase phase,
                   const char *sni);
void conn_tls_input(struct conn *c, const char *data, size_t len);
int conn_tls_pump(struct conn *c);
bool conn_tls_has_buffered(const struct conn *c);
int conn_tls_write(struct conn *c, const void *data, size_t len);
void conn_tls_plain_flushed(struct conn *c);
void conn_tls_close_notify(struct conn *c);
void conn_tls_free(struct conn *c);

/* conn_compress.c */
/* Compresses and queues (through TLS when on) bytes the protocol wrote. */
int conn_z_write(struct conn *c, const void *data, size_t len);
/* Z_SYNC_FLUSH of what was compressed since the last flush: the peer can read it all. */
int conn_z_flush(struct conn *c);
/* Inflates pending compressed input into `in` (never past its cap). -1: the stream is
 * corrupt and the conn is closing. */
int conn_z_pump(struct conn *c);
bool conn_z_has_buffered(const struct conn *c);
void conn_z_free(struct conn *c);
/*
 * The inflate step alone (also the fuzz target's entry): inflates from z->zin into out,
 * at most `room` bytes (and never past out's max), consuming what zlib used. Returns the
 * bytes produced, 0 when nothing more can be done now, or -1 on a corrupt stream
 * (error_r says why).
 */
struct conn_z *conn_z_new(void);
ssize_t conn_z_inflate_step(struct conn_z *z, struct buf *out, const char **error_r);
void conn_z_destroy(struct conn_z *z);

/* listener.c */
void listener_conn_gone(struct listener *l, const struct conn *c);
void *listener_data_of(const struct listener *l);
const char *listener_name_of(const struct listener *l);

/* tls.c */
SSL_CTX *tls_ctx_ssl(const struct tls_ctx *t);
bool tls_ctx_is_server(const struct tls_ctx *t);
bool tls_ctx_verifies(const struct tls_ctx *t);
/* The OpenSSL error queue as one line (and clears it). */
const char *tls_error_string(char *buf, size_t size);

/* addr.c */
struct net_addr {
	bool is_unix;
	bool any; /* "*:port" */
	char host[INET6_ADDRSTRLEN];
	char path[108];
	int port;
};
int net_addr_parse(const char *text, struct net_addr *a, char **error_r);
/* Numeric text of a socket address; IPv4-mapped IPv6 shown as IPv4. */
void net_addr_to_text(const struct sockaddr *sa, char ip_r[INET6_ADDRSTRLEN], int *port_r);
bool net_ip_is_loopback(const char *ip);

#endif
