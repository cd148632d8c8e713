/* STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS, each optionally .SILENT. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "store/mailbox.h"

enum imap_cmd_result imap_store_run(struct imap_session *s, const struct imap_arg *args,
                                    size_t count, bool uid)
{
	if (count != 3 || args[0].type != IMAP_ARG_ATOM || args[1].type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "Invalid STORE arguments.");
		return IMAP_CMD_DONE;
	}
	const char *op = args[1].str;
	enum store_flags_mode mode = STORE_FLAGS_REPLACE;
	if (*op == '+' || *op == '-') {
		mode = *op == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		op++;
	}
	bool silent;
	if (strcasecmp(op, "FLAGS") == 0)
		silent = false;
	else if (strcasecmp(op, "FLAGS.SILENT") == 0)
		silent = true;
	else {
		imap_session_tagged(s, "BAD", "Invalid STORE item.");
		return IMAP_CMD_DONE;
	}
	if (s->sel->readonly) {
		imap_session_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	struct store_mailbox *box = s->sel->box;
	uint32_t flags, keywords;
	const char *error;
	if (imap_mailbox_parse_flags(box, &args[2], mode != STORE_FLAGS_REMOVE, &flags, &keywords,
	                             &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	size_t *seqs, n;
	if (imap_mailbox_resolve(s, args[0].str, uid, &seqs, &n, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	bool expunged = false;
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *msg = store_mailbox_msg(box, seqs[i]);
		enum store_error err =
		    store_mailbox_set_flags(box, msg->uid, mode, flags, keywords, 0);
		if (err == STORE_ENOENT) {
			expunged = true;
			continue;
		}
		if (err != STORE_OK) {
			free(seqs);
			imap_session_tagged(s, "NO", "[SERVERBUG] Could not store the flags.");
			return IMAP_CMD_DONE;
		}
		if (silent)
			continue;
		msg = store_mailbox_msg(box, seqs[i]);
		struct buf line;
		buf_init(&line, 0);
		(void)buf_printf(&line, "* %zu FETCH (", seqs[i]);
		if (uid)
			(void)buf_printf(&line, "UID %u ", msg->uid);
		(void)buf_append_str(&line, "FLAGS ");
		imap_mailbox_flags_append(box, msg, &line);
		(void)buf_append_char(&line, ')');
		imap_session_send(s, "%s", buf_cstr(&line));
		buf_free(&line);
	}
	free(seqs);
	if (expunged)
		imap_session_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were expunged.");
	else
		imap_session_tagged(s, "OK", "Store completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_store_run(s, cmd->args, cmd->count, false);
}
