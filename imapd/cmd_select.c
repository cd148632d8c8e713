/* SELECT, EXAMINE (with CONDSTORE / QRESYNC, RFC 7162), STATUS, CLOSE, UNSELECT, CHECK (RFC
 * 3501 6.3.1-6.3.2, 6.3.10, 6.4.1-6.4.2, RFC 3691 UNSELECT, RFC 8438 STATUS=SIZE). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "imap_qresync.h"
#include "imap_select_warm.h"
#include "imap_status.h"
#include "store/folder.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"

static void reply_select_error(struct imap_session *s, enum store_error err, const char *error)
{
	if (err == STORE_ENOENT)
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
	else if (err == STORE_EINVAL)
		imap_session_tagged(s, "NO", "[CANNOT] %s.", error);
	else {
		log_warn("imap(%s): cannot open a mailbox: %s", s->user, error);
		imap_session_tagged(s, "NO", "[SERVERBUG] Could not open the mailbox.");
	}
}

/*
 * RFC 4466 select-params: CONDSTORE (RFC 7162 3.1.8) and QRESYNC (...) (3.2.5). Returns 0,
 * or -1 with *error_r for a BAD reply.
 */
static int parse_select_params(struct imap_session *s, const struct imap_arg *a, bool *condstore_r,
                               struct imap_qresync *q, bool *qresync_r, const char **error_r)
{
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		*error_r = "Invalid select parameters";
		return -1;
	}
	for (size_t i = 0; i < a->count; i++) {
		if (imap_arg_atom_is(&a->list[i], "CONDSTORE")) {
			*condstore_r = true;
		} else if (imap_arg_atom_is(&a->list[i], "QRESYNC") && !*qresync_r &&
		           i + 1 < a->count) {
			/* RFC 7162 3.2.5: BAD unless the client sent ENABLE QRESYNC. */
			if (!s->qresync_enabled) {
				*error_r = "QRESYNC is not enabled";
				return -1;
			}
			*qresync_r = true;
			if (imap_qresync_parse(&a->list[++i], q, error_r) < 0)
				return -1;
		} else {
			*error_r = "Unknown select parameter";
			return -1;
		}
	}
	return 0;
}

/* RFC 7162 3.2.5.1: what changed since the client's last sync, before the tagged OK. */
static void qresync_report(struct imap_session *s, const struct imap_qresync *q)
{
	struct store_mailbox *box = s->sel->box;
	if (q->uidvalidity != store_mailbox_uidvalidity(box))
		return; /* a different mailbox for the client: a plain select */
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* VANISHED (EARLIER) ");
	if (imap_qresync_vanished(box, q, &line) > 0)
		imap_session_send(s, "%s", buf_cstr(&line));
	size_t count = store_mailbox_count(box);
	for (size_t seq = 1; seq <= count; seq++) {
		const struct store_msg *msg = store_mailbox_msg(box, seq);
		if (msg->modseq <= q->modseq ||
		    (q->has_known_uids && !imap_seqset_contains(&q->known_uids, msg->uid)))
			continue;
		buf_reset(&line);
		(void)buf_printf(&line, "* %zu FETCH (UID %u FLAGS ", seq, msg->uid);
		imap_mailbox_flags_append(box, msg, &line);
		(void)buf_printf(&line, " MODSEQ (%llu))", (unsigned long long)msg->modseq);
		imap_session_send(s, "%s", buf_cstr(&line));
	}
	buf_free(&line);
}

/* A SELECT or EXAMINE, parsed. */
struct select_args {
	char *name;
	bool readonly, condstore, qresync;
	struct imap_qresync q;
	struct store_mailbox *opened; /* by imap_select_warm, or NULL */
};

static void select_args_free(void *arg)
{
	struct select_args *a = arg;
	store_mailbox_close(&a->opened);
	imap_qresync_free(&a->q);
	free(a->name);
	free(a);
}

/* Opens the mailbox and replies; frees a. */
static void select_finish(struct imap_session *s, struct select_args *a)
{
	if (a->condstore)
		s->condstore_enabled = true;
	const char *error = NULL;
	struct store_mailbox *opened = a->opened;
	a->opened = NULL; /* taken over */
	enum store_error err = imap_mailbox_select(s, a->name, a->readonly, opened, &error);
	if (err != STORE_OK) {
		reply_select_error(s, err, error);
		select_args_free(a);
		return;
	}
	struct store_mailbox *box = s->sel->box;
	size_t count = store_mailbox_count(box);
	struct buf flags;
	buf_init(&flags, 0);
	imap_mailbox_known_flags_append(box, &flags);
	imap_session_send(s, "* FLAGS (%s)", buf_cstr(&flags));
	imap_session_send(s, "* OK [PERMANENTFLAGS (%s%s)] Flags permitted.",
	                  a->readonly ? "" : buf_cstr(&flags), a->readonly ? "" : " \\*");
	buf_free(&flags);
	imap_session_send(s, "* %zu EXISTS", count);
	imap_session_send(s, "* 0 RECENT");
	for (size_t seq = 1; seq <= count; seq++) {
		if (!(store_mailbox_msg(box, seq)->flags & STORE_FLAG_SEEN)) {
			imap_session_send(s, "* OK [UNSEEN %zu] First unseen.", seq);
			break;
		}
	}
	imap_session_send(s, "* OK [UIDVALIDITY %u] UIDs valid", store_mailbox_uidvalidity(box));
	imap_session_send(s, "* OK [UIDNEXT %u] Predicted next UID", store_mailbox_uidnext(box));
	imap_session_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
	                  (unsigned long long)store_mailbox_highestmodseq(box));
	if (a->qresync)
		qresync_report(s, &a->q);
	imap_session_tagged(s, "OK", "[%s] %s completed.", a->readonly ? "READ-ONLY" : "READ-WRITE",
	                    a->readonly ? "Examine" : "Select");
	select_args_free(a);
}

/* The folder was opened on the thread pool (imap_select_warm): finish on the loop. */
static void select_warmed(struct imap_session *s, struct store_mailbox *box, void *arg)
{
	struct select_args *a = arg;
	a->opened = box;
	select_finish(s, a);
	imap_session_command_done(s);
}

static void select_dropped(struct store_mailbox *box, void *arg)
{
	store_mailbox_close(&box);
	select_args_free(arg);
}

static enum imap_cmd_result select_mailbox(struct imap_session *s, const struct imap_command *cmd,
                                           bool readonly)
{
	const char *name = cmd->count >= 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
	const char *error = "Invalid arguments";
	struct select_args *a = xcalloc(1, sizeof(*a));
	a->readonly = readonly;
	if (cmd->count == 2 &&
	    parse_select_params(s, &cmd->args[1], &a->condstore, &a->q, &a->qresync, &error) < 0)
		name = NULL;
	else if (cmd->count > 2)
		name = NULL;
	if (name == NULL) {
		select_args_free(a);
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	a->name = xstrdup(name);
	/* RFC 7162 3.2.11: the previous mailbox is closed first, and said so. */
	if (s->sel != NULL) {
		imap_session_send(s, "* OK [CLOSED] Previous mailbox closed.");
		imap_mailbox_unselect(s);
	}
	/* A folder not loaded yet may need seconds of index work: not on the loop. */
	char *path = folder_exists(s->home, name) ? folder_path(s->home, name) : NULL;
	bool queued = path != NULL && imap_select_warm(s, path, select_warmed, select_dropped, a);
	free(path);
	if (queued)
		return IMAP_CMD_ASYNC;
	select_finish(s, a);
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	return select_mailbox(s, cmd, false);
}

enum imap_cmd_result cmd_examine(struct imap_session *s, const struct imap_command *cmd)
{
	return select_mailbox(s, cmd, true);
}

/* Removes the \Deleted messages of the selected mailbox; returns a store error. */
enum store_error imap_mailbox_expunge_deleted(struct imap_session *s, const size_t *only,
                                              size_t n_only);

enum imap_cmd_result cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	/* RFC 3501 6.4.2: expunge silently, and never on a read-only mailbox. */
	if (!s->sel->readonly)
		(void)imap_mailbox_expunge_deleted(s, NULL, 0);
	imap_mailbox_unselect(s);
	imap_session_tagged(s, "OK", "Close completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_unselect(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_mailbox_unselect(s);
	imap_session_tagged(s, "OK", "Unselect completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_mailbox_report_changes(s, true);
	imap_session_tagged(s, "OK", "Check completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = cmd->count == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
	unsigned items = 0;
	if (name == NULL || imap_status_parse_items(&cmd->args[1], &items) < 0) {
		imap_session_tagged(s, "BAD", "Invalid STATUS arguments.");
		return IMAP_CMD_DONE;
	}
	struct buf line;
	buf_init(&line, 0);
	if (imap_status_line(s, name, items, &line) < 0) {
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
	} else {
		imap_session_send(s, "%s", buf_cstr(&line));
		imap_session_tagged(s, "OK", "Status completed.");
	}
	buf_free(&line);
	return IMAP_CMD_DONE;
}
