/* Folder management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 3501 6.3.3-6.3.7).
 * Names are validated by the store (folder_name.h) before they come near a path. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "imap_commands.h"
#include "store/folder.h"
#include "store/folder_name.h"
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

enum imap_cmd_result cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	const char *arg = mailbox_arg(s, cmd, 1, 0);
	if (arg == NULL)
		return IMAP_CMD_DONE;
	/* RFC 3501 6.3.3: a trailing separator only says the client means to add children. */
	char *name = xstrdup(arg);
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == FOLDER_SEPARATOR)
		name[len - 1] = '\0';
	if (folder_name_is_inbox(name))
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

enum imap_cmd_result cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	const char *from = mailbox_arg(s, cmd, 2, 0);
	const char *to = from != NULL ? mailbox_arg(s, cmd, 2, 1) : NULL;
	if (to == NULL)
		return IMAP_CMD_DONE;
	if (folder_name_is_inbox(from)) {
		/* RFC 3501 6.3.5: renaming INBOX moves its messages; that needs the index. */
		imap_session_tagged(s, "NO", "[CANNOT] Renaming INBOX is not supported yet.");
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
