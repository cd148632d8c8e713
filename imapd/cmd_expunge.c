/* EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1). */
#include <stdlib.h>

#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"

enum store_error imap_mailbox_expunge_deleted(struct imap_session *s, const size_t *only,
                                              size_t n_only);

/* Removes the \Deleted messages (all, or those among `only` sequence numbers). */
enum store_error imap_mailbox_expunge_deleted(struct imap_session *s, const size_t *only,
                                              size_t n_only)
{
	struct store_mailbox *box = s->sel->box;
	size_t count = only != NULL ? n_only : store_mailbox_count(box);
	uint32_t *uids = xreallocarray(NULL, count + 1, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		const struct store_msg *msg =
		    store_mailbox_msg(box, only != NULL ? only[i] : i + 1);
		if ((msg->flags & STORE_FLAG_DELETED) && !msg->expunged)
			uids[n++] = msg->uid;
	}
	enum store_error err = n > 0 ? store_mailbox_expunge(box, uids, n) : STORE_OK;
	free(uids);
	return err;
}

enum imap_cmd_result imap_expunge_run(struct imap_session *s, const struct imap_arg *args,
                                      size_t count, bool uid)
{
	size_t *seqs = NULL, n = 0;
	const char *error;
	if (count != (uid ? 1u : 0u) || (uid && args[0].type != IMAP_ARG_ATOM)) {
		imap_session_tagged(s, "BAD", "Invalid EXPUNGE arguments.");
		return IMAP_CMD_DONE;
	}
	if (s->sel->readonly) {
		imap_session_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	if (uid && imap_mailbox_resolve(s, args[0].str, true, &seqs, &n, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	enum store_error err = imap_mailbox_expunge_deleted(s, uid ? seqs : NULL, n);
	free(seqs);
	imap_mailbox_report_changes(s, true);
	if (err != STORE_OK)
		imap_session_tagged(s, "NO", "[SERVERBUG] Expunge failed.");
	else
		imap_session_tagged(s, "OK", "Expunge completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_expunge_run(s, cmd->args, cmd->count, false);
}
