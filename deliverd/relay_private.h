/* Internals shared by the relay's scheduler (relay.c) and its SMTP sessions
 * (relay_session.c); not for other users. */
#ifndef TERN_DELIVERD_RELAY_PRIVATE_H
#define TERN_DELIVERD_RELAY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "queue.h"
#include "retry.h"

enum relay_tls {
	RELAY_TLS_NONE,
	RELAY_TLS_MAY,
	RELAY_TLS_ENCRYPT,
};

struct relay_settings {
	char *helo_name;
	char *relayhost; /* host name or address, NULL = none */
	int relayhost_port;
	bool relayhost_mx; /* "host:port" without brackets: MX lookup */
	char *relayhost_user;
	char *relayhost_password;
	enum relay_tls tls, relayhost_tls;
	bool relayhost_verify;
	int smtp_port;
	unsigned max_total, max_per_dest, max_rcpts, max_msgs_per_conn;
	uint64_t reuse_ms, connect_timeout_ms, command_timeout_ms, scan_interval_ms;
	struct retry_policy retry;
	char **local_domains; /* mail for these goes to our own LMTP socket */
	size_t n_local_domains;
	char *lmtp_socket;
};

struct relay_msg {
	struct queue_msg *m;
	unsigned jobs; /* in flight */
	bool seen;     /* found by the current directory scan */
	struct relay_msg *next;
};

/* Some recipients of one message, for one destination. */
struct relay_job {
	struct relay_msg *msg;
	struct relay_dest *dest;
	size_t *rcpts; /* indices into msg->m->env.rcpts */
	size_t n;
	struct relay_job *next;
};

struct relay_session;

struct relay_dest {
	char *key;  /* lower-case domain, or "[relayhost]" */
	char *name; /* what to resolve */
	bool mx;
	int port;
	bool is_relayhost;
	bool is_local; /* LMTP to our own socket (bounces to local senders) */
	struct relay_job *head, *tail;
	unsigned active; /* sessions connecting, working or idle */
	struct relay_session *idle;
	struct relay_dest *next;
};

/* The outcome of one recipient, reported by a session. */
enum relay_outcome {
	RELAY_SENT,
	RELAY_DEFERRED,
	RELAY_BOUNCED,
};

struct relay;

const struct relay_settings *relay_settings(void);
/* True once relay_shutdown() ran: sessions take no new work. */
bool relay_stopping(void);
uv_loop_t *relay_loop(void);
struct dns_resolver *relay_dns(void);
struct tls_ctx *relay_tls_ctx(bool relayhost);

/* Scheduler callbacks, from sessions. relay_desc is "host[ip]:port" or "none". */
void relay_job_result(struct relay_job *job, size_t k, enum relay_outcome o, const char *dsn,
                      const char *diag, const char *relay_desc);
/* Every recipient of the job was reported; the job is freed. */
void relay_job_done(struct relay_job *job);
/* Puts a job back at the front of d's queue (untouched: no recipient was reported). */
void relay_dest_requeue(struct relay_dest *d, struct relay_job *job);
/* The next job queued for d, or NULL. */
struct relay_job *relay_dest_next_job(struct relay_dest *d);
/* The session is gone (d->active is decremented here). */
void relay_session_gone(struct relay_dest *d, struct relay_session *s);
/* The session waits for work; relay_session_idle_expired() when nothing came. */
void relay_session_park(struct relay_dest *d, struct relay_session *s);
void relay_session_unpark(struct relay_dest *d, struct relay_session *s);

/* relay.c: "[host]:port" (no MX lookup), "[host]", "host:port", "host" (MX lookup) into
 * s->relayhost, relayhost_port (default 25) and relayhost_mx. */
int relay_parse_relayhost(const char *v, struct relay_settings *s, char **error_r);
/* The domain of a recipient address: after the last '@' ("" when there is none). */
const char *relay_rcpt_domain(const char *address);

/* relay_session.c */
void relay_session_start(struct relay_dest *d, struct relay_job *job);
/* Hands a job to a parked session. */
void relay_session_give(struct relay_session *s, struct relay_job *job);
struct relay_session *relay_session_next_parked(struct relay_session *s);
void relay_session_set_next_parked(struct relay_session *s, struct relay_session *next);
void relay_session_quit(struct relay_session *s);

/* relay_body.c: SMTP DATA encoding (RFC 5321 4.5.2 dot-stuffing, bare LF -> CRLF). */
struct relay_body_encoder {
	bool at_line_start;
	bool after_cr;
};
void relay_body_encoder_init(struct relay_body_encoder *e);
struct buf;
void relay_body_encode(struct relay_body_encoder *e, const char *data, size_t len, struct buf *out);
/* Ends the body: a CRLF when the last line had none, then ".\r\n". */
void relay_body_finish(struct relay_body_encoder *e, struct buf *out);

#endif
