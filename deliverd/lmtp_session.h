/*
 * One LMTP session (RFC 2033): the command state machine, the transaction (sender,
 * accepted recipients, the mailboxes they resolve to) and the per-recipient replies after
 * the data. The session does no I/O of its own: bytes come in through
 * lmtp_session_input(), and everything else (writing replies, mailbox lookups, spooling
 * the body, delivering it) goes through struct lmtp_backend, so the whole protocol runs
 * the same under cmocka transcripts and under libuv.
 *
 * Asynchrony: a lookup or a delivery makes the session busy; lmtp_session_input() then
 * consumes nothing more until the backend reports back (lmtp_session_lookup_done(),
 * lmtp_session_delivery_done()) and the session calls backend->resume(), after which the
 * driver feeds the rest of its buffered input again.
 */
#ifndef TERN_DELIVERD_LMTP_SESSION_H
#define TERN_DELIVERD_LMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct lmtp_session;

struct lmtp_limits {
	size_t max_line;         /* command line, without CRLF */
	uint64_t max_message;    /* body bytes after unstuffing, headers we add excluded */
	unsigned max_recipients; /* accepted RCPTs per transaction */
	unsigned max_errors;     /* protocol errors before the session is closed */
};

enum lmtp_lookup_result {
	LMTP_LOOKUP_FOUND,
	LMTP_LOOKUP_NOTFOUND,
	LMTP_LOOKUP_TEMPFAIL,
};

enum lmtp_delivery_status {
	LMTP_DELIVERED,
	LMTP_DELIVERY_NOSPACE,   /* 452 4.3.1 */
	LMTP_DELIVERY_TEMPFAIL,  /* 451 4.3.0 */
	LMTP_DELIVERY_OVERQUOTA, /* 552 5.2.2 */
	LMTP_DELIVERY_PERMFAIL,  /* 550 5.2.0 */
};

/* One mailbox (folder of one user) that receives this transaction's message. */
struct lmtp_target {
	char *key;     /* userdb key: "bob@example.test" */
	char *address; /* Delivered-To: the expanded recipient address */
	char *home;    /* the user's Maildir root, from the userdb */
	char *detail;  /* folder wanted (already checked safe), or NULL for INBOX */
	char *prefix;  /* the header lines to write before the body (Return-Path...) */
	char *orig;    /* the RCPT address that first named this target (log orig_to=) */
	uint64_t quota_bytes;
	uint64_t quota_messages;
	/* Filled by the delivery. */
	bool done;
	enum lmtp_delivery_status status;
	char *folder_used; /* "INBOX" or the folder name, for the log */
	/* relay branch: a recipient in a non-local domain, for the outbound queue (key, home
	 * and detail are NULL; folder_used gets the queue id). */
	bool remote;
	unsigned notify; /* remote targets: RFC 3461 NOTIFY (queue.h bits), 0 = not given */
	char *orcpt;     /* remote targets: ORCPT as given ("rfc822;xtext"), or NULL */
};

struct lmtp_backend {
	void *ctx;
	void (*write)(void *ctx, const void *data, size_t len);
	/* Close the connection once the queued output is written. */
	void (*close)(void *ctx);
	/* Input may be fed again (the session is no longer busy). */
	void (*resume)(void *ctx);
	/* Look up a mailbox by key; answer with lmtp_session_lookup_done(). */
	void (*lookup)(void *ctx, struct lmtp_session *s, const char *key);
	void (*lookup_abort)(void *ctx, struct lmtp_session *s);
	/* The body spool: begin a fresh one, append unstuffed bytes, drop it. */
	int (*spool_begin)(void *ctx, char **error_r);
	int (*spool_write)(void *ctx, const void *data, size_t len, char **error_r);
	void (*spool_discard)(void *ctx);
	/* Write prefix + spooled body into each target; answer each with
	 * lmtp_session_delivery_done(s, index, status). targets stay valid until then. */
	void (*deliver)(void *ctx, struct lmtp_session *s, struct lmtp_target *targets, size_t n);
	/* Optional: the session was freed (ctx may go now). */
	void (*destroyed)(void *ctx);
	/* Optional: may this sender be used? Return NULL when yes, else the reply text
	 * ("553 5.7.1 ..."). sender is "" for the null path. */
	const char *(*check_sender)(void *ctx, const char *sender);
	/* relay branch: true when recipients in non-local domains are accepted for the
	 * outbound queue (as remote targets) instead of being looked up in the userdb. */
	bool relay_remote;
};

struct lmtp_session *lmtp_session_new(const struct lmtp_backend *backend,
                                      const struct lmtp_limits *limits, const char *hostname,
                                      const char *peer_desc);
/* Sends the 220 greeting. */
void lmtp_session_start(struct lmtp_session *s);
/* Parses and runs what it can from in (consuming it); stops when busy or closing. */
void lmtp_session_input(struct lmtp_session *s, struct buf *in);
bool lmtp_session_busy(const struct lmtp_session *s);

/* home is valid only during the call. */
void lmtp_session_lookup_done(struct lmtp_session *s, enum lmtp_lookup_result result,
                              const char *home, uint64_t quota_bytes, uint64_t quota_messages);
/* The same, with the mailbox's current usage (for the quota check at RCPT time:
 * 552 5.2.2 when it is full or the declared SIZE does not fit). */
void lmtp_session_lookup_done_usage(struct lmtp_session *s, enum lmtp_lookup_result result,
                                    const char *home, uint64_t quota_bytes, uint64_t quota_messages,
                                    uint64_t used_bytes, uint64_t used_messages);
void lmtp_session_delivery_done(struct lmtp_session *s, size_t index,
                                enum lmtp_delivery_status status, const char *folder_used);

/*
 * The connection is gone. When a delivery is still running, the session stays alive
 * until its last lmtp_session_delivery_done() (which then frees it); otherwise it is
 * freed now. Either way the caller must not touch s afterwards.
 */
void lmtp_session_close(struct lmtp_session *s);

/* Set the alias maps and delimiter used at RCPT (recipient.h); not owned. */
/* relay branch: the transaction's envelope, for the outbound queue. */
const char *lmtp_session_sender(const struct lmtp_session *s);
bool lmtp_session_smtputf8(const struct lmtp_session *s);
/* RET ("FULL"/"HDRS") and ENVID (xtext) of the transaction, or NULL. */
const char *lmtp_session_dsn_ret(const struct lmtp_session *s);
const char *lmtp_session_dsn_envid(const struct lmtp_session *s);

struct recipient_maps;
void lmtp_session_set_maps(struct lmtp_session *s, const struct recipient_maps *maps);

#endif
