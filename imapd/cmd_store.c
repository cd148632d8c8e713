/* STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS, each optionally .SILENT,
 * with CONDSTORE's (UNCHANGEDSINCE n) modifier and MODIFIED response code (RFC 7162 3.1.3).
 * All messages change under one lock of the folder (STORE 1:* on a big folder). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "store/mailbox.h"

/* "(UNCHANGEDSINCE n)"; returns 0 and *value_r, or -1. */
static int parse_unchangedsince(const struct imap_arg *a, uint64_t *value_r)
{
	char *end;
	if (a->type != IMAP_ARG_LIST || a->count != 2 ||
	    !imap_arg_atom_is(&a->list[0], "UNCHANGEDSINCE") || a->list[1].type != IMAP_ARG_ATOM)
		return -1;
	*value_r = strtoull(a->list[1].str, &end, 10);
	return *end == '\0' && a->list[1].str[0] >= '0' && a->list[1].str[0] <= '9' ? 0 : -1;
}

static void send_fetch_flags(struct imap_session *s, size_t seq, bool uid)
{
	struct store_mailbox *box = s->sel->box;
	const struct store_msg *msg = store_mailbox_msg(box, seq);
	struct buf line;
	buf_init(&line, 0);
	(void)buf_printf(&line, "* %zu FETCH (", seq);
	if (uid)
		(void)buf_printf(&line, "UID %u ", msg->uid);
	(void)buf_append_str(&line, "FLAGS ");
	imap_mailbox_flags_append(box, msg, &line);
	if (s->condstore_enabled)
		(void)buf_printf(&line, " MODSEQ (%llu)", (unsigned long long)msg->modseq);
	(void)buf_append_char(&line, ')');
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
}

enum imap_cmd_result imap_store_run(struct imap_session *s, const struct imap_arg *args,
                                    size_t count, bool uid)
{
	uint64_t unchangedsince = 0;
	size_t at = 1; /* index of the item name */
	if (count == 4) {
		if (parse_unchangedsince(&args[1], &unchangedsince) < 0) {
			imap_session_tagged(s, "BAD", "Invalid STORE modifier.");
			return IMAP_CMD_DONE;
		}
		s->condstore_enabled = true;
		at = 2;
	}
	const struct imap_arg *set = &args[0];
	const struct imap_arg *item = &args[at];
	const struct imap_arg *flag_list = &args[at + 1];
	if (count != at + 2 || set->type != IMAP_ARG_ATOM || item->type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "Invalid STORE arguments.");
		return IMAP_CMD_DONE;
	}
	const char *op = item->str;
	enum store_flags_mode mode = STORE_FLAGS_REPLACE;
	if (*op == '+' || *op == '-') {
		mode = *op == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		op++;
	}
	bool silent;
	if (strcasecmp(op, "FLAGS") == 0) {
		silent = false;
	} else if (strcasecmp(op, "FLAGS.SILENT") == 0) {
		silent = true;
	} else {
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
	if (imap_mailbox_parse_flags(box, flag_list, mode != STORE_FLAGS_REMOVE, &flags, &keywords,
	                             &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	size_t *seqs, n;
	if (imap_mailbox_resolve(s, set->str, uid, &seqs, &n, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		return IMAP_CMD_DONE;
	}
	uint32_t *uids = xreallocarray(NULL, n + 1, sizeof(*uids));
	uint32_t *modified = xreallocarray(NULL, n + 1, sizeof(*modified));
	size_t n_modified = 0;
	bool expunged = false;
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *m = store_mailbox_msg(box, seqs[i]);
		uids[i] = m->uid;
		expunged |= m->expunged;
	}
	enum store_error err = store_mailbox_set_flags_many(box, uids, n, mode, flags, keywords,
	                                                    unchangedsince, modified, &n_modified);
	if (err != STORE_OK) {
		imap_session_tagged(s, "NO", "[SERVERBUG] Could not store the flags.");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *m = store_mailbox_msg(box, seqs[i]);
		bool skipped = false;
		for (size_t j = 0; j < n_modified && !skipped; j++)
			skipped = modified[j] == uids[i];
		/* RFC 7162 3.1.3: even .SILENT reports changes when CONDSTORE is in use. */
		if (!skipped && !m->expunged && (!silent || unchangedsince != 0))
			send_fetch_flags(s, seqs[i], uid);
	}
	if (n_modified > 0) {
		struct buf code;
		buf_init(&code, 0);
		for (size_t j = 0; j < n_modified; j++) {
			size_t seq = uid ? 0 : store_mailbox_seq(box, modified[j]);
			(void)buf_printf(&code, "%s%zu", j > 0 ? "," : "",
			                 uid ? (size_t)modified[j] : seq);
		}
		imap_session_tagged(s, "OK", "[MODIFIED %s] Conditional store failed.",
		                    buf_cstr(&code));
		buf_free(&code);
	} else if (expunged) {
		imap_session_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were expunged.");
	} else {
		imap_session_tagged(s, "OK", "Store completed.");
	}
out:
	free(uids);
	free(modified);
	free(seqs);
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_store_run(s, cmd->args, cmd->count, false);
}
