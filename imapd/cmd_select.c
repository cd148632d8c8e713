/* SELECT, EXAMINE, STATUS, CLOSE, UNSELECT, CHECK (RFC 3501 6.3.1-6.3.2, 6.3.10, 6.4.1-6.4.2,
 * RFC 3691 UNSELECT, RFC 8438 STATUS=SIZE). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "proto/imap_string.h"
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
	const char *name = cmd->count == 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
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

enum status_item {
	STATUS_MESSAGES = 1 << 0,
	STATUS_RECENT = 1 << 1,
	STATUS_UIDNEXT = 1 << 2,
	STATUS_UIDVALIDITY = 1 << 3,
	STATUS_UNSEEN = 1 << 4,
	STATUS_SIZE = 1 << 5,
	STATUS_HIGHESTMODSEQ = 1 << 6,
};

static const struct {
	const char *name;
	unsigned bit;
} status_names[] = {
    {"MESSAGES", STATUS_MESSAGES},           {"RECENT", STATUS_RECENT}, {"UIDNEXT", STATUS_UIDNEXT},
    {"UIDVALIDITY", STATUS_UIDVALIDITY},     {"UNSEEN", STATUS_UNSEEN}, {"SIZE", STATUS_SIZE},
    {"HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ},
};

enum imap_cmd_result cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = cmd->count == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
	unsigned items = 0;
	if (name != NULL && cmd->args[1].type == IMAP_ARG_LIST && cmd->args[1].count > 0) {
		for (size_t i = 0; i < cmd->args[1].count; i++) {
			size_t j;
			for (j = 0; j < sizeof(status_names) / sizeof(status_names[0]); j++) {
				if (imap_arg_atom_is(&cmd->args[1].list[i], status_names[j].name))
					break;
			}
			if (j == sizeof(status_names) / sizeof(status_names[0])) {
				name = NULL;
				break;
			}
			items |= status_names[j].bit;
		}
	} else {
		name = NULL;
	}
	if (name == NULL) {
		imap_session_tagged(s, "BAD", "Invalid STATUS arguments.");
		return IMAP_CMD_DONE;
	}
	char *path = folder_exists(s->home, name) ? folder_path(s->home, name) : NULL;
	struct store_mailbox *box = NULL;
	const char *error;
	if (path == NULL || store_mailbox_open(path, &box, &error) != STORE_OK) {
		free(path);
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		return IMAP_CMD_DONE;
	}
	free(path);
	size_t count = store_mailbox_count(box), unseen = 0;
	uint64_t size = 0;
	for (size_t seq = 1; seq <= count; seq++) {
		const struct store_msg *m = store_mailbox_msg(box, seq);
		unseen += !(m->flags & STORE_FLAG_SEEN);
		size += m->vsize;
	}
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* STATUS ");
	(void)imap_string_append(&line, name, strlen(name), IMAP_STRING_ALLOW_ATOM);
	(void)buf_append_str(&line, " (");
	size_t start = line.len;
#define ITEM(bit, fmt, val)                                                                        \
	if (items & (bit))                                                                         \
	(void)buf_printf(&line, "%s" fmt, line.len > start ? " " : "", val)
	ITEM(STATUS_MESSAGES, "MESSAGES %zu", count);
	ITEM(STATUS_RECENT, "RECENT %d", 0);
	ITEM(STATUS_UIDNEXT, "UIDNEXT %u", store_mailbox_uidnext(box));
	ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY %u", store_mailbox_uidvalidity(box));
	ITEM(STATUS_UNSEEN, "UNSEEN %zu", unseen);
	ITEM(STATUS_SIZE, "SIZE %llu", (unsigned long long)size);
	ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	     (unsigned long long)store_mailbox_highestmodseq(box));
#undef ITEM
	(void)buf_append_char(&line, ')');
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
	store_mailbox_close(&box);
	imap_session_tagged(s, "OK", "Status completed.");
	return IMAP_CMD_DONE;
}
