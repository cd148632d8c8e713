/*
 * FETCH and UID FETCH (RFC 3501 6.4.5). A fetch is a job that writes one message's
 * response at a time; body sections are streamed from the file in chunks and the job
 * waits for the output to drain whenever the connection reports back-pressure, so a
 * FETCH of many large messages never holds them in memory.
 *
 * Message files are read on the libuv thread pool, never on the loop thread: opening and
 * parsing a message plus opening a section and reading its first chunk is one piece of
 * work, each further chunk another, so a cold disk stalls this FETCH only, not every
 * session of the process. The work touches only the job's file, MIME tree, section and
 * chunk; the store and the connection stay on the loop thread. A session that closes
 * while work is in flight leaves the job to free itself when the work returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_fetch_items.h"
#include "imap_mailbox.h"
#include "imap_qresync.h"
#include "imap_section.h"
#include "imap_server.h"
#include "mime/mime_parser.h"
#include "net/conn.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"

#define FETCH_CHUNK 65536

struct fetch_job {
	struct imap_session *s;
	struct imap_fetch_items items;
	bool uid_cmd;
	bool async;
	size_t *seqs;
	size_t n_seqs;
	size_t next;       /* index into seqs of the next message to start */
	size_t seq;        /* the message being written (0 = none) */
	size_t body_index; /* next body item of that message */
	int fd;
	struct mime_part *mime;
	struct imap_section *section;
	char *chunk;
	bool expunged_seen; /* a message vanished under us */
	int binary_error;   /* IMAP_BINARY_UNKNOWN_CTE / IMAP_BINARY_TOO_BIG met, else 0 */
	/* File work on the thread pool (see the top of this file). */
	uv_work_t work;
	enum { IO_NONE, IO_PREPARE, IO_READ } io; /* in flight, or IO_NONE */
	bool orphaned;     /* the session closed meanwhile: free the job when the work returns */
	bool wait_drain;   /* output over its mark: continue from on_drain */
	char *path;        /* IO_PREPARE: the message file, when it is not open yet */
	int open_result;   /* IO_PREPARE: what imap_section_open* returned */
	bool open_failed;  /* IO_PREPARE: the file could not be opened or read */
	ssize_t io_result; /* bytes of the section in chunk; 0 at its end; -1 read error */
};

static void job_free(struct fetch_job *job)
{
	imap_section_free(&job->section);
	mime_part_free(&job->mime);
	if (job->fd >= 0)
		close(job->fd);
	imap_fetch_items_free(&job->items);
	free(job->seqs);
	free(job->chunk);
	free(job->path);
	free(job);
}

/* Adds RFC822, RFC822.HEADER and RFC822.TEXT as body sections with their own names. */
static void plan_rfc822_items(struct imap_fetch_items *items)
{
	static const struct {
		unsigned flag;
		const char *name;
		bool peek;
		enum imap_section_text text;
	} map[] = {
	    {FETCH_RFC822, "RFC822", false, SECTION_ALL},
	    {FETCH_RFC822_HEADER, "RFC822.HEADER", true, SECTION_HEADER},
	    {FETCH_RFC822_TEXT, "RFC822.TEXT", false, SECTION_TEXT},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(items->flags & map[i].flag))
			continue;
		items->bodies =
		    xreallocarray(items->bodies, items->n_bodies + 1, sizeof(*items->bodies));
		struct imap_fetch_body *b = &items->bodies[items->n_bodies++];
		memset(b, 0, sizeof(*b));
		b->kind = BODY_KIND_BODY;
		b->peek = map[i].peek;
		b->text = map[i].text;
		b->response_name = xstrdup(map[i].name);
	}
}

/* Parses the message file into a MIME tree (once per message, when a section needs it).
 * Thread pool. */
static int job_open_message(struct fetch_job *job)
{
	job->fd = job->path != NULL ? open(job->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (job->fd < 0)
		return -1;
	struct mime_parser *p = mime_parser_new(NULL);
	ssize_t n;
	off_t off = 0;
	while ((n = pread(job->fd, job->chunk, FETCH_CHUNK, off)) > 0) {
		mime_parser_feed(p, job->chunk, (size_t)n);
		off += n;
	}
	job->mime = mime_parser_finish(&p);
	return n < 0 ? -1 : 0;
}

/* The start of a message's response: everything but the body sections. */
static void job_start_message(struct fetch_job *job)
{
	struct imap_session *s = job->s;
	struct store_mailbox *box = s->sel->box;
	const struct store_msg *msg = store_mailbox_msg(box, job->seq);
	unsigned f = job->items.flags;
	bool flags_changed = false;

	if (imap_fetch_items_set_seen(&job->items) && !s->sel->readonly &&
	    !(msg->flags & STORE_FLAG_SEEN) && !msg->expunged) {
		if (store_mailbox_set_flags(box, msg->uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0,
		                            0) == STORE_OK)
			flags_changed = true;
		msg = store_mailbox_msg(box, job->seq);
	}
	struct buf out;
	buf_init(&out, 0);
	(void)buf_printf(&out, "* %zu FETCH (", job->seq);
	size_t start = out.len;
#define SEP() (void)buf_append_str(&out, out.len > start ? " " : "")
	if (job->uid_cmd || (f & FETCH_UID)) {
		SEP();
		(void)buf_printf(&out, "UID %u", msg->uid);
	}
	if ((f & FETCH_FLAGS) || flags_changed) {
		SEP();
		(void)buf_append_str(&out, "FLAGS ");
		imap_mailbox_flags_append(box, msg, &out);
	}
	if (f & FETCH_INTERNALDATE) {
		SEP();
		(void)buf_append_str(&out, "INTERNALDATE ");
		imap_date_time_append(&out, store_mailbox_msg_info(box, job->seq)->idate);
	}
	if (f & FETCH_RFC822_SIZE) {
		SEP();
		(void)buf_printf(&out, "RFC822.SIZE %llu",
		                 (unsigned long long)store_mailbox_msg_info(box, job->seq)->vsize);
	}
	if (f & FETCH_MODSEQ) {
		SEP();
		(void)buf_printf(&out, "MODSEQ (%llu)", (unsigned long long)msg->modseq);
	}
	if (f & (FETCH_ENVELOPE | FETCH_BODY | FETCH_BODYSTRUCTURE)) {
		struct store_cache cache;
		if (store_mailbox_cache(box, job->seq, &cache) == STORE_OK) {
			if (f & FETCH_ENVELOPE) {
				SEP();
				(void)buf_printf(&out, "ENVELOPE %s", cache.envelope);
			}
			if (f & FETCH_BODY) {
				SEP();
				(void)buf_printf(&out, "BODY %s", cache.body);
			}
			if (f & FETCH_BODYSTRUCTURE) {
				SEP();
				(void)buf_printf(&out, "BODYSTRUCTURE %s", cache.bodystructure);
			}
			store_cache_free(&cache);
		} else {
			job->expunged_seen = true;
		}
	}
#undef SEP
	(void)conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	job->body_index = 0;
}

/* Thread pool: opens (and parses) the message when needed, opens the next body section
 * and reads its first chunk. */
static void job_prepare_section(struct fetch_job *job)
{
	const struct imap_fetch_body *b = &job->items.bodies[job->body_index];
	job->open_failed = false;
	job->open_result = 0;
	job->io_result = 0;
	if (job->mime == NULL && job->fd < 0 && job_open_message(job) < 0)
		job->open_failed = true;
	job->section = NULL;
	if (job->mime != NULL && b->kind == BODY_KIND_BODY)
		job->open_result = imap_section_open(job->fd, job->mime, b, &job->section);
	else if (job->mime != NULL)
		job->open_result = imap_section_open_binary(job->fd, job->mime, b, &job->section);
	if (job->open_result < 0)
		job->section = NULL;
	if (job->section != NULL && b->kind != BODY_KIND_BINARY_SIZE)
		job->io_result = imap_section_read(job->section, job->chunk, FETCH_CHUNK);
}

static void job_work(uv_work_t *w)
{
	struct fetch_job *job = w->data;
	if (job->io == IO_PREPARE)
		job_prepare_section(job);
	else
		job->io_result = imap_section_read(job->section, job->chunk, FETCH_CHUNK);
}

static void job_after_work(uv_work_t *w, int status);

/* Hands the file work to the thread pool; the job continues in job_after_work. */
static void job_submit(struct fetch_job *job, int io)
{
	job->io = io;
	job->work.data = job;
	if (io == IO_PREPARE && job->mime == NULL && job->fd < 0) {
		free(job->path);
		job->path = store_mailbox_msg_path(job->s->sel->box, job->seq);
	}
	if (uv_queue_work(imap_server.loop, &job->work, job_work, job_after_work) != 0) {
		/* Cannot happen with a valid loop; run it here rather than stall. */
		job_work(&job->work);
		job_after_work(&job->work, 0);
	}
}

/* Loop thread, after IO_PREPARE: the section's name and size, then its first chunk. */
static void job_section_prepared(struct fetch_job *job)
{
	const struct imap_fetch_body *b = &job->items.bodies[job->body_index];
	if (job->open_failed)
		job->expunged_seen = true;
	if (job->open_result < 0 && job->open_result != -1 && job->binary_error == 0)
		job->binary_error = job->open_result;
	struct buf out;
	buf_init(&out, 0);
	bool sep = job->uid_cmd || job->items.flags != 0 || job->body_index > 0;
	(void)buf_printf(&out, "%s%s ", sep ? " " : "", b->response_name);
	if (job->section == NULL) {
		(void)buf_append_str(&out, "NIL");
	} else if (b->kind == BODY_KIND_BINARY_SIZE) {
		/* RFC 3516 4.3: the size only, never the data. */
		(void)buf_printf(&out, "%llu", (unsigned long long)imap_section_size(job->section));
		imap_section_free(&job->section);
	} else {
		/* RFC 3516 4.2: a result with NUL octets must be sent as literal8. */
		bool lit8 = b->kind == BODY_KIND_BINARY && imap_section_has_nul(job->section);
		(void)buf_printf(&out, "%s{%llu}\r\n", lit8 ? "~" : "",
		                 (unsigned long long)imap_section_size(job->section));
	}
	(void)conn_write(job->s->conn, out.data, out.len);
	buf_free(&out);
	if (job->section == NULL)
		job->body_index++;
}

/* Loop thread: writes the chunk job->io_result says is there. False when the job must
 * wait for the output to drain. */
static bool job_chunk_written(struct fetch_job *job)
{
	struct imap_session *s = job->s;
	if (job->io_result > 0)
		return conn_write(s->conn, job->chunk, (size_t)job->io_result) == 0;
	/* A read error mid-literal cannot be repaired: the client would misparse everything
	 * after it. */
	if (job->io_result < 0) {
		log_warn("imap(%s): read error while fetching: closing", s->user);
		conn_abort(s->conn);
		return true;
	}
	imap_section_free(&job->section);
	job->body_index++;
	return true;
}

static void job_end_message(struct fetch_job *job)
{
	(void)conn_write(job->s->conn, ")\r\n", 3);
	mime_part_free(&job->mime);
	if (job->fd >= 0)
		close(job->fd);
	job->fd = -1;
	job->seq = 0;
}

static void job_finish(struct fetch_job *job)
{
	struct imap_session *s = job->s;
	bool async = job->async;
	s->drain_cb = NULL;
	s->drain_ctx = NULL;
	if (job->binary_error == IMAP_BINARY_UNKNOWN_CTE)
		imap_session_tagged(s, "NO", "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding.");
	else if (job->binary_error == IMAP_BINARY_TOO_BIG)
		imap_session_tagged(s, "NO", "[LIMIT] The part is too large to decode.");
	else if (job->expunged_seen)
		imap_session_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were expunged.");
	else
		imap_session_tagged(s, "OK", "Fetch completed.");
	job_free(job);
	if (async)
		imap_session_command_done(s);
}

/*
 * Writes as much as the output allows. Returns true when the job is finished; false when
 * it waits for file work (job_after_work continues) or for the output to drain.
 */
static bool job_pump(struct fetch_job *job)
{
	struct imap_session *s = job->s;
	for (;;) {
		if (conn_is_closing(s->conn))
			return true;
		if (job->section != NULL) {
			job_submit(job, IO_READ);
			return false;
		}
		if (job->seq != 0) {
			if (job->body_index < job->items.n_bodies) {
				job_submit(job, IO_PREPARE);
				return false;
			}
			job_end_message(job);
			if (conn_output_pending(s->conn) > FETCH_CHUNK * 4) {
				job->wait_drain = true;
				return false;
			}
			continue;
		}
		if (job->next == job->n_seqs)
			return true;
		job->seq = job->seqs[job->next++];
		job_start_message(job);
	}
}

static void job_after_work(uv_work_t *w, int status)
{
	struct fetch_job *job = w->data;
	int io = job->io;
	(void)status;
	job->io = IO_NONE;
	if (job->orphaned) {
		job_free(job);
		return;
	}
	if (!conn_is_closing(job->s->conn)) {
		if (io == IO_PREPARE)
			job_section_prepared(job);
		if (job->section != NULL && !job_chunk_written(job)) {
			job->wait_drain = true;
			return;
		}
	}
	if (job_pump(job))
		job_finish(job);
}

/* ctx is NULL when the session is closing: the job frees itself (at once, or when its
 * file work returns). */
static void job_on_drain(struct imap_session *s, void *ctx)
{
	struct fetch_job *job = s->drain_ctx;
	if (ctx == NULL) {
		s->drain_cb = NULL;
		s->drain_ctx = NULL;
		if (job->io != IO_NONE)
			job->orphaned = true;
		else
			job_free(job);
		return;
	}
	if (job->io != IO_NONE || !job->wait_drain)
		return;
	job->wait_drain = false;
	if (job_pump(job))
		job_finish(job);
}

/* "(CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4, 3.2.6), in any order; returns 0 with
 * *value_r and *vanished_r, or -1. */
static int parse_fetch_modifiers(const struct imap_arg *a, uint64_t *value_r, bool *vanished_r)
{
	if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 3)
		return -1;
	bool changedsince = false;
	*value_r = 0;
	*vanished_r = false;
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *m = &a->list[i];
		char *end;
		if (imap_arg_atom_is(m, "VANISHED") && !*vanished_r) {
			*vanished_r = true;
		} else if (imap_arg_atom_is(m, "CHANGEDSINCE") && !changedsince &&
		           i + 1 < a->count && a->list[i + 1].type == IMAP_ARG_ATOM &&
		           a->list[i + 1].str[0] >= '0' && a->list[i + 1].str[0] <= '9') {
			changedsince = true;
			*value_r = strtoull(a->list[++i].str, &end, 10);
			if (*end != '\0')
				return -1;
		} else {
			return -1;
		}
	}
	return changedsince ? 0 : -1;
}

/* RFC 7162 3.2.6: "* VANISHED (EARLIER)" for the UIDs of set_text expunged since
 * changedsince. The set's "*" reaches up to UIDNEXT - 1: expunged UIDs may lie above
 * the largest one left. */
static void send_vanished_earlier(struct imap_session *s, const char *set_text,
                                  uint64_t changedsince)
{
	struct store_mailbox *box = s->sel->box;
	struct imap_seqset set;
	if (imap_seqset_parse(set_text, IMAP_QRESYNC_MAX_RANGES, &set) < 0 || set.dollar) {
		imap_seqset_free(&set);
		return;
	}
	uint32_t star = store_mailbox_uidnext(box) - 1;
	imap_seqset_resolve(&set, star);
	struct store_uid_range *r;
	size_t n = store_mailbox_vanished_since(box, changedsince, &r, NULL);
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* VANISHED (EARLIER) ");
	if (imap_uid_ranges_append(&line, r, n, &set) > 0)
		imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
	free(r);
	imap_seqset_free(&set);
}

enum imap_cmd_result imap_fetch_run(struct imap_session *s, const struct imap_command *cmd,
                                    const struct imap_arg *args, size_t count, bool uid)
{
	(void)cmd;
	const char *error;
	uint64_t changedsince = 0;
	bool vanished = false;
	if (count == 3 && parse_fetch_modifiers(&args[2], &changedsince, &vanished) == 0) {
		count = 2;
		s->condstore_enabled = true;
	}
	if (count != 2 || args[0].type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "Invalid FETCH arguments.");
		return IMAP_CMD_DONE;
	}
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, once QRESYNC is
	 * enabled. */
	if (vanished && (!uid || !s->qresync_enabled)) {
		imap_session_tagged(s, "BAD", "VANISHED needs UID FETCH and ENABLE QRESYNC.");
		return IMAP_CMD_DONE;
	}
	struct fetch_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->fd = -1;
	job->uid_cmd = uid;
	if (imap_fetch_items_parse(&args[1], &job->items, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		free(job);
		return IMAP_CMD_DONE;
	}
	plan_rfc822_items(&job->items);
	if (job->items.flags & FETCH_MODSEQ)
		s->condstore_enabled = true;
	/* RFC 7162 3.1.4: with CONDSTORE, a FETCH of FLAGS also returns MODSEQ; with
	 * CHANGEDSINCE it always does. */
	if ((s->condstore_enabled && (job->items.flags & FETCH_FLAGS)) || changedsince != 0)
		job->items.flags |= FETCH_MODSEQ;
	if (imap_mailbox_resolve(s, args[0].str, uid, &job->seqs, &job->n_seqs, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		job_free(job);
		return IMAP_CMD_DONE;
	}
	if (vanished)
		send_vanished_earlier(s, args[0].str, changedsince);
	if (changedsince != 0) {
		size_t kept = 0;
		for (size_t i = 0; i < job->n_seqs; i++) {
			if (store_mailbox_msg(s->sel->box, job->seqs[i])->modseq > changedsince)
				job->seqs[kept++] = job->seqs[i];
		}
		job->n_seqs = kept;
	}
	job->chunk = xmalloc(FETCH_CHUNK);
	s->drain_cb = job_on_drain;
	s->drain_ctx = job;
	if (job_pump(job)) {
		job_finish(job);
		return IMAP_CMD_DONE;
	}
	job->async = true;
	return IMAP_CMD_ASYNC;
}

enum imap_cmd_result cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_fetch_run(s, cmd, cmd->args, cmd->count, false);
}
