/* SELECT, EXAMINE, STATUS, CLOSE, UNSELECT, CHECK (RFC 3501 6.3.1-6.3.2, 6.3.10, 6.4.1-6.4.2,
 * RFC 3691 UNSELECT, RFC 8438 STATUS=SIZE). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
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
	else
		imap_session_tagged(s, "NO", "[SERVERBUG] Could not open the mailbox.");
}

static enum imap_cmd_result select_mailbox(struct imap_session *s, const struct imap_command *cmd,
                                           bool readonly)
{
	const char *name = cmd->count >= 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
	/* RFC 7162 3.1.8: SELECT mailbox (CONDSTORE). */
	if (cmd->count == 2 && cmd->args[1].type == IMAP_ARG_LIST && cmd->args[1].count == 1 &&
	    imap_arg_atom_is(&cmd->args[1].list[0], "CONDSTORE"))
		s->condstore_enabled = true;
	else if (cmd->count != 1)
		name = NULL;
	if (name == NULL) {
		imap_session_tagged(s, "BAD", "Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	const char *error = "";
	enum store_error err = imap_mailbox_select(s, name, readonly, &error);
	if (err != STORE_OK) {
		reply_select_error(s, err, error);
		return IMAP_CMD_DONE;
	}
	struct store_mailbox *box = s->sel->box;
	size_t count = store_mailbox_count(box);
	struct buf flags;
	buf_init(&flags, 0);
	imap_mailbox_known_flags_append(box, &flags);
	imap_session_send(s, "* FLAGS (%s)", buf_cstr(&flags));
	imap_session_send(s, "* OK [PERMANENTFLAGS (%s%s)] Flags permitted.",
	                  readonly ? "" : buf_cstr(&flags), readonly ? "" : " \\*");
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
	imap_session_tagged(s, "OK", "[%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
	                    readonly ? "Examine" : "Select");
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
