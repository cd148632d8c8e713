/* COPY (RFC 3501 6.4.7) and MOVE (RFC 6851), with COPYUID (RFC 4315 UIDPLUS). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "store/folder.h"
#include "store/mailbox.h"

/* Appends uids as a compact set ("1:3,7"). */
static void uid_set_append(struct buf *out, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		(void)buf_printf(out, "%s%u", i > 0 ? "," : "", uids[i]);
		if (j > i)
			(void)buf_printf(out, ":%u", uids[j]);
		i = j + 1;
	}
}

enum imap_cmd_result imap_copy_run(struct imap_session *s, const struct imap_arg *args,
                                   size_t count, bool uid, bool move)
{
	const char *name = count == 2 ? imap_arg_astring(&args[1]) : NULL;
	if (name == NULL || args[0].type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if (move && s->sel->readonly) {
		imap_session_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	size_t *seqs, n;
	const char *error;
	if (imap_mailbox_resolve(s, args[0].str, uid, &seqs, &n, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	char *path = folder_exists(s->home, name) ? folder_path(s->home, name) : NULL;
	struct store_mailbox *dst = NULL;
	if (path == NULL || imap_mailbox_open(path, &dst, &error) != STORE_OK) {
		free(path);
		free(seqs);
		imap_session_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist.");
		return IMAP_CMD_DONE;
	}
	free(path);
	struct store_mailbox *src = s->sel->box;
	uint32_t *src_uids = xreallocarray(NULL, n + 1, sizeof(uint32_t));
	uint32_t *dst_uids = xreallocarray(NULL, n + 1, sizeof(uint32_t));
	size_t done = 0;
	enum store_error err = STORE_OK;
	for (size_t i = 0; i < n && err == STORE_OK; i++) {
		uint32_t u = store_mailbox_msg(src, seqs[i])->uid, nu;
		err = move ? store_mailbox_move(src, u, dst, &nu)
		           : store_mailbox_copy(src, u, dst, &nu);
		if (err == STORE_ENOENT) { /* expunged meanwhile: skip it */
			err = STORE_OK;
			continue;
		}
		if (err == STORE_OK) {
			src_uids[done] = u;
			dst_uids[done++] = nu;
		}
	}
	struct buf code;
	buf_init(&code, 0);
	if (done > 0) {
		(void)buf_printf(&code, "[COPYUID %u ", store_mailbox_uidvalidity(dst));
		uid_set_append(&code, src_uids, done);
		(void)buf_append_char(&code, ' ');
		uid_set_append(&code, dst_uids, done);
		(void)buf_append_str(&code, "] ");
	}
	store_mailbox_close(&dst);
	if (err != STORE_OK) {
		imap_session_tagged(s, "NO", "[SERVERBUG] %s failed.", move ? "Move" : "Copy");
	} else if (move) {
		/* RFC 6851 4.3: COPYUID goes in an untagged OK, then the EXPUNGEs. */
		if (done > 0)
			imap_session_send(s, "* OK %sMoved.", buf_cstr(&code));
		imap_mailbox_report_changes(s, true);
		imap_session_tagged(s, "OK", "Move completed.");
	} else {
		imap_session_tagged(s, "OK", "%sCopy completed.", buf_cstr(&code));
	}
	buf_free(&code);
	free(src_uids);
	free(dst_uids);
	free(seqs);
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_copy_run(s, cmd->args, cmd->count, false, false);
}

enum imap_cmd_result cmd_move(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_copy_run(s, cmd->args, cmd->count, false, true);
}
