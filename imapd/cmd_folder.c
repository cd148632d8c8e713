/* Folder management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 3501 6.3.3-6.3.7).
 * Names are validated by the store (folder_name.h) before they come near a path. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "imap_commands.h"
#include "store/folder.h"
#include "store/folder_name.h"
#include "store/mailbox.h"
#include "imap_mailbox.h"
#include "store/subscriptions.h"

/* The mailbox argument at index i, or NULL after replying BAD. */
static const char *mailbox_arg(struct imap_session *s, const struct imap_command *cmd,
                               size_t want_args, size_t i)
{
	const char *name = cmd->count == want_args ? imap_arg_astring(&cmd->args[i]) : NULL;
	if (name == NULL)
		imap_session_tagged(s, "BAD", "Invalid arguments.");
	return name;
}

/* Maps a store result to the tagged reply. */
static void reply_store(struct imap_session *s, enum store_error err, const char *done)
{
	switch (err) {
	case STORE_OK:
		imap_session_tagged(s, "OK", "%s", done);
		break;
	case STORE_EEXIST:
		imap_session_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists.");
		break;
	case STORE_ENOENT:
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		break;
	case STORE_EINVAL:
		imap_session_tagged(s, "NO", "[CANNOT] Invalid mailbox name.");
		break;
	case STORE_ELIMIT:
		imap_session_tagged(s, "NO", "[LIMIT] Limit reached.");
		break;
	default:
		imap_session_tagged(s, "NO", "[SERVERBUG] Internal error.");
		break;
	}
}

/* A name is usable when the store can map it to a directory. */
static bool name_valid(struct imap_session *s, const char *name)
{
	struct buf dir;
	const char *error;
	buf_init(&dir, 0);
	int ret = folder_name_to_dir(name, &dir, &error);
	buf_free(&dir);
	if (ret < 0)
		imap_session_tagged(s, "NO", "[CANNOT] %s", error);
	return ret == 0;
}

/* Special use follows the name here: a USE list can only repeat what the name means. */
static bool use_matches(const char *name, const struct imap_arg *use)
{
	const char *mine = folder_special_use(name);
	if (use->count == 0)
		return true;
	return use->count == 1 && mine != NULL && imap_arg_atom_is(&use->list[0], mine);
}

enum imap_cmd_result cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	/* RFC 6154 3: CREATE name (USE (\\Sent)). */
	const struct imap_arg *use = NULL;
	if (cmd->count == 2 && cmd->args[1].type == IMAP_ARG_LIST && cmd->args[1].count == 2 &&
	    imap_arg_atom_is(&cmd->args[1].list[0], "USE") &&
	    cmd->args[1].list[1].type == IMAP_ARG_LIST)
		use = &cmd->args[1].list[1];
	const char *arg = mailbox_arg(s, cmd, use != NULL ? 2 : 1, 0);
	if (arg == NULL)
		return IMAP_CMD_DONE;
	/* RFC 3501 6.3.3: a trailing separator only says the client means to add children. */
	char *name = xstrdup(arg);
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == FOLDER_SEPARATOR)
		name[len - 1] = '\0';
	if (use != NULL && !use_matches(name, use))
		imap_session_tagged(s, "NO",
		                    "[USEATTR] Special-use folders are known by their "
		                    "names (Sent, Drafts, Trash, Junk, Archive).");
	else if (folder_name_is_inbox(name))
		imap_session_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists.");
	else if (name_valid(s, name))
		reply_store(s, folder_create(s->home, name), "Create completed.");
	free(name);
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = mailbox_arg(s, cmd, 1, 0);
	if (name == NULL)
		return IMAP_CMD_DONE;
	if (folder_name_is_inbox(name)) {
		imap_session_tagged(s, "NO", "[CANNOT] INBOX can't be deleted.");
		return IMAP_CMD_DONE;
	}
	if (!name_valid(s, name))
		return IMAP_CMD_DONE;
	reply_store(s, folder_delete(s->home, name, false), "Delete completed.");
	if (subscriptions_set(s->home, name, false) != STORE_OK) {
		/* The folder is gone; a stale subscription is harmless and listed as such. */
	}
	return IMAP_CMD_DONE;
}

/*
 * RFC 3501 6.3.5: renaming INBOX moves all its messages into the new mailbox and leaves
 * INBOX empty (it always exists). Each move is a copy then an expunge, so a crash in
 * between leaves a duplicate, never a loss.
 */
static enum store_error rename_inbox(struct imap_session *s, const char *to)
{
	enum store_error err = folder_create(s->home, to);
	if (err != STORE_OK)
		return err;
	char *src_path = folder_path(s->home, "INBOX"), *dst_path = folder_path(s->home, to);
	struct store_mailbox *src = NULL, *dst = NULL;
	const char *error;
	err = store_mailbox_open(src_path, &src, &error);
	if (err == STORE_OK)
		err = store_mailbox_open(dst_path, &dst, &error);
	/* Moving from the highest sequence number down keeps the lower ones valid. */
	for (size_t seq = err == STORE_OK ? store_mailbox_count(src) : 0;
	     seq > 0 && err == STORE_OK; seq--) {
		uint32_t new_uid;
		err = store_mailbox_move(src, store_mailbox_msg(src, seq)->uid, dst, &new_uid);
		if (err == STORE_ENOENT)
			err = STORE_OK; /* expunged meanwhile */
	}
	store_mailbox_close(&dst);
	store_mailbox_close(&src);
	free(src_path);
	free(dst_path);
	/* The selected INBOX learns of the expunges at its next sync. */
	if (s->sel != NULL)
		imap_mailbox_report_changes(s, true);
	return err;
}

enum imap_cmd_result cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	const char *from = mailbox_arg(s, cmd, 2, 0);
	const char *to = from != NULL ? mailbox_arg(s, cmd, 2, 1) : NULL;
	if (to == NULL)
		return IMAP_CMD_DONE;
	if (folder_name_is_inbox(from)) {
		if (name_valid(s, to))
			reply_store(s, rename_inbox(s, to), "Rename completed.");
		return IMAP_CMD_DONE;
	}
	if (!name_valid(s, from) || !name_valid(s, to))
		return IMAP_CMD_DONE;
	reply_store(s, folder_rename(s->home, from, to), "Rename completed.");
	return IMAP_CMD_DONE;
}

static enum imap_cmd_result subscribe(struct imap_session *s, const struct imap_command *cmd,
                                      bool on)
{
	const char *name = mailbox_arg(s, cmd, 1, 0);
	if (name == NULL)
		return IMAP_CMD_DONE;
	if (!name_valid(s, name))
		return IMAP_CMD_DONE;
	reply_store(s, subscriptions_set(s->home, name, on),
	            on ? "Subscribe completed." : "Unsubscribe completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	return subscribe(s, cmd, true);
}

enum imap_cmd_result cmd_unsubscribe(struct imap_session *s, const struct imap_command *cmd)
{
	return subscribe(s, cmd, false);
}
