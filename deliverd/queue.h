/*
 * The durable outbound queue: one file per message holding the envelope and the body, and
 * a small state file per message with each recipient's progress.
 *
 * Layout under the queue directory (created 0700 by queue_open()):
 *   tmp/<qid>     a message being written; never read, removed at open (crash leftovers)
 *   msg/<qid>     a complete message: "TERNQ 1" header lines, "end", then the body bytes
 *   state/<qid>   recipient states, replaced atomically (tmp + fsync + rename)
 *   hold/<qid>    empty marker: the message is on hold (ternctl queue hold)
 *   corrupt/<qid> a file that failed validation, kept for the admin, never sent
 *   flush         empty trigger file: ternctl queue flush asks for an immediate run
 *
 * Durability (DESIGN "life of a message", step 3): queue_writer_commit() fsyncs the file,
 * renames it from tmp/ into msg/ and fsyncs msg/ before it returns 0, so the caller may
 * answer 250 only after that. A message file is accepted by queue_load() only when its
 * header parses and the body length matches the header, so a torn or truncated file is
 * never sent. All functions block (file I/O): call them from the thread pool in a daemon.
 *
 * Header fields are xtext-encoded (RFC 3461 4), so an address may hold any byte.
 * Queue ids are 16 upper-case hex digits; queue_id_valid() guards every path made from one.
 */
#ifndef TERN_DELIVERD_QUEUE_H
#define TERN_DELIVERD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QUEUE_ID_LEN 16
#define QUEUE_MAX_RCPTS 10000
#define QUEUE_MAX_HEADER (4u * 1024 * 1024)

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING, /* not delivered yet (new or deferred) */
	QUEUE_RCPT_SENT,    /* the remote server accepted it */
	QUEUE_RCPT_BOUNCED, /* failed for good; the DSN (if any) is queued */
};

enum queue_ret {
	QUEUE_RET_DEFAULT,
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

/* RFC 3461 NOTIFY; 0 means not given (= FAILURE,DELAY). */
#define QUEUE_NOTIFY_NEVER 1u
#define QUEUE_NOTIFY_SUCCESS 2u
#define QUEUE_NOTIFY_FAILURE 4u
#define QUEUE_NOTIFY_DELAY 8u

struct queue_rcpt {
	char *address; /* the envelope recipient */
	char *orcpt;   /* RFC 3461 ORCPT ("rfc822;a@b"), or NULL */
	unsigned notify;
	/* Progress, from the state file. */
	enum queue_rcpt_state state;
	unsigned tries;
	uint64_t next_try_ms; /* 0 = as soon as possible */
	char *dsn;            /* last status code "4.4.1", or NULL */
	char *diag;           /* last diagnostic ("host x said: 450 ..."), or NULL */
};

struct queue_envelope {
	char *sender; /* "" for the null reverse-path */
	char *envid;  /* RFC 3461 ENVID, or NULL */
	enum queue_ret ret;
	bool smtputf8;
	bool body_8bit;      /* BODY=8BITMIME was given */
	bool is_dsn;         /* this message is a bounce we made (never bounced again) */
	uint64_t arrival_ms; /* ms since the epoch */
	struct queue_rcpt *rcpts;
	size_t n_rcpts;
};

struct queue_msg {
	char qid[QUEUE_ID_LEN + 1];
	struct queue_envelope env;
	bool hold;
	bool warned; /* a delay warning was sent */
	uint64_t body_offset;
	uint64_t body_size;
};

struct buf;
struct queue;
struct queue_writer;

/* Opens (creating what is missing) the queue at dir and removes tmp/ leftovers. */
int queue_open(const char *dir, struct queue **q_r, char **error_r);
/* Opens an existing queue without creating or removing anything (ternctl, mailq: the
 * daemon may be writing it). A missing queue gives -1 with errno ENOENT. */
int queue_open_existing(const char *dir, struct queue **q_r, char **error_r);
void queue_close(struct queue **q);
/* Gives the queue's directories to uid/gid (a daemon started as root, before it drops). */
int queue_chown(struct queue *q, unsigned uid, unsigned gid, char **error_r);
const char *queue_dir(const struct queue *q);

bool queue_id_valid(const char *qid);

/* Adds a recipient to an envelope being built (strings copied). */
void queue_envelope_add_rcpt(struct queue_envelope *env, const char *address, const char *orcpt,
                             unsigned notify);
void queue_envelope_free(struct queue_envelope *env);

/*
 * Writing a message: begin (writes the envelope into tmp/), write the body in pieces,
 * then commit (durable, visible to the relay) or abort (nothing left behind).
 * The writer is freed by commit and by abort, whatever they return.
 */
int queue_writer_begin(struct queue *q, const struct queue_envelope *env, struct queue_writer **w_r,
                       char **error_r);
int queue_writer_write(struct queue_writer *w, const void *data, size_t len, char **error_r);
/* On success copies the new queue id into qid_r (QUEUE_ID_LEN + 1 bytes). */
int queue_writer_commit(struct queue_writer *w, char *qid_r, char **error_r);
void queue_writer_abort(struct queue_writer *w);

/* Writes a whole message whose body is in fd (read with pread from offset 0, len bytes). */
int queue_add_fd(struct queue *q, const struct queue_envelope *env, int fd, uint64_t len,
                 char *qid_r, char **error_r);
/* The same for a body that starts at offset in fd. */
int queue_add_fd_at(struct queue *q, const struct queue_envelope *env, int fd, uint64_t offset,
                    uint64_t len, char *qid_r, char **error_r);

/*
 * Loads msg/<qid> and its state. Returns 0, -1 with *error_r when the file is missing or
 * unreadable, or -2 when it is invalid (torn, truncated, bad header): such a file is moved
 * to corrupt/ and never sent.
 */
int queue_load(struct queue *q, const char *qid, struct queue_msg **msg_r, char **error_r);
void queue_msg_free(struct queue_msg **msg);

/* Opens the message file for reading the body (at msg->body_offset). Returns an fd or -1. */
int queue_open_body(struct queue *q, const struct queue_msg *msg, char **error_r);

/* Writes msg's recipient states durably (replaces state/<qid>). */
int queue_save_state(struct queue *q, const struct queue_msg *msg, char **error_r);

/* True when every recipient is SENT or BOUNCED. */
bool queue_msg_done(const struct queue_msg *msg);

/* Removes the message and its state and hold marker (done, or ternctl queue delete). */
int queue_remove(struct queue *q, const char *qid, char **error_r);

int queue_set_hold(struct queue *q, const char *qid, bool hold, char **error_r);
bool queue_is_held(struct queue *q, const char *qid);
/* True while msg/<qid> exists (false after ternctl queue delete). */
bool queue_exists(struct queue *q, const char *qid);

/* The queue ids in msg/, sorted; *n_r gets the count. Free with queue_ids_free(). */
int queue_list_ids(struct queue *q, char ***ids_r, size_t *n_r, char **error_r);
void queue_ids_free(char **ids, size_t n);

/* The flush trigger: set by ternctl, taken (and removed) by the scheduler. */
int queue_request_flush(struct queue *q, char **error_r);
bool queue_take_flush(struct queue *q);

/* Lists every message: Postfix's mailq layout (with "Mail queue is empty" and the
 * "-- N Kbytes in M Requests." summary), or with json one object per line as
 * `postqueue -j` prints them (queue_name, queue_id, arrival_time, message_size, sender,
 * recipients[{address, tries, next_try, delay_reason}]). Only pending recipients show. */
int queue_print(struct queue *q, FILE *out, bool json, char **error_r);

/* RFC 3461 xtext, used by the file format (exported for tests and the relay). */
void queue_xtext_encode(struct buf *out, const char *s);
/* Returns a new string, or NULL when s is not valid xtext or decodes to a NUL byte. */
char *queue_xtext_decode(const char *s, size_t len);

#endif
