/* Internals shared by lmtp_session.c and lmtp_commands.c (not for other users). */
#ifndef TERN_DELIVERD_LMTP_PRIVATE_H
#define TERN_DELIVERD_LMTP_PRIVATE_H

#include <stdint.h>
#include <time.h>

#include "address.h"
#include "lmtp_parse.h"
#include "lmtp_session.h"
#include "recipient.h"

enum lmtp_state {
	LMTP_STATE_INIT,  /* before LHLO */
	LMTP_STATE_READY, /* after LHLO, no transaction */
	LMTP_STATE_MAIL,  /* MAIL accepted: RCPT, DATA, BDAT */
	LMTP_STATE_BDAT,  /* inside a BDAT sequence (more chunks until LAST) */
};

enum lmtp_wait {
	LMTP_WAIT_NONE,
	LMTP_WAIT_LOOKUP,
	LMTP_WAIT_DELIVERY,
};

struct lmtp_rcpt {
	char *address;   /* as given (after normalisation), for the reply */
	size_t *targets; /* indices into session->targets */
	size_t n_targets;
};

/* An RCPT waiting on userdb lookups, one target at a time. */
struct lmtp_pending_rcpt {
	struct address addr;
	struct recipient_targets t;
	size_t next; /* index in t of the lookup in flight */
	bool catchall_tried;
	bool tempfail;
	bool over_quota;
	struct lmtp_target *found; /* mailboxes found so far, merged at the end */
	size_t n_found;
};

struct lmtp_session {
	const struct lmtp_backend *be;
	struct lmtp_limits limits;
	const struct recipient_maps *maps;
	struct recipient_maps no_maps;
	char *hostname;
	char *peer;
	struct lmtp_parser parser;
	enum lmtp_state state;
	enum lmtp_wait wait;
	bool closing;  /* QUIT or fatal error: ignore further input */
	bool orphaned; /* connection gone while a delivery runs */
	unsigned errors;

	/* The transaction. */
	char qid[24];
	struct timespec started;
	struct address sender;
	bool smtputf8;
	uint64_t declared_size;
	struct lmtp_rcpt *rcpts;
	size_t n_rcpts;
	struct lmtp_target *targets;
	size_t n_targets;
	struct lmtp_pending_rcpt pending;
	/* relay branch: RFC 3461 parameters, as given (xtext), for the outbound queue. */
	char *dsn_ret;        /* "FULL", "HDRS" or NULL */
	char *dsn_envid;      /* ENVID or NULL */
	unsigned rcpt_notify; /* NOTIFY of the RCPT being handled (queue.h bits) */
	char *rcpt_orcpt;     /* ORCPT of the RCPT being handled */

	/* The body being received. */
	bool in_body; /* DATA or a BDAT chunk is being read */
	bool body_is_bdat;
	bool body_discard; /* chunk read only to skip it (BDAT after an error) */
	bool body_last;    /* DATA, or BDAT LAST */
	bool spool_open;
	bool spool_failed;
	bool too_big;
	uint64_t body_size;  /* all chunks so far */
	uint64_t chunk_size; /* current BDAT chunk, for its reply */
	size_t next_reply;   /* next recipient whose post-data reply is due */
	size_t n_delivered_pending;
};

void lmtp_reply(struct lmtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Counts a protocol error; closes with 421 past the cap. */
void lmtp_error(struct lmtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lmtp_transaction_reset(struct lmtp_session *s);
void lmtp_body_begin(struct lmtp_session *s, bool bdat, uint64_t size, bool last, bool discard);
/* Runs one complete command line. */
void lmtp_command(struct lmtp_session *s, const char *line, size_t len);
void lmtp_rcpt_lookup_next(struct lmtp_session *s);
void lmtp_target_free(struct lmtp_target *t);
void lmtp_pending_free(struct lmtp_pending_rcpt *p);
void lmtp_new_qid(struct lmtp_session *s);
double lmtp_elapsed(const struct lmtp_session *s);
/* Client text for a log line: sanitised (log_sanitize) into b; returns b's text. */
const char *lmtp_log_text(struct buf *b, const char *text);

#endif
