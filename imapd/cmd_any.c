/* Commands valid in any state (RFC 3501 6.1) and the small extensions: ID (RFC 2971),
 * ENABLE (RFC 5161), NAMESPACE (RFC 2342). */
#include <string.h>

#include "base/buf.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "net/conn.h"
#include "proto/imap_string.h"

#define ID_MAX_PAIRS 30
#define ID_MAX_FIELD 30
#define ID_MAX_VALUE 1024

enum imap_cmd_result cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_session_tagged(s, "BAD", "CAPABILITY takes no arguments.");
		return IMAP_CMD_DONE;
	}
	struct buf caps;
	buf_init(&caps, 0);
	imap_session_capabilities(s, &caps);
	imap_session_send(s, "* CAPABILITY %s", buf_cstr(&caps));
	buf_free(&caps);
	imap_session_tagged(s, "OK", "Capability completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_mailbox_report_changes(s, true);
	imap_session_tagged(s, "OK", "NOOP completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_session_send(s, "* BYE Logging out");
	imap_session_tagged(s, "OK", "Logout completed.");
	imap_session_close(s);
	return IMAP_CMD_DONE;
}

/* RFC 2971 3.3: NIL or a list of at most 30 field/value pairs with bounded sizes. */
static bool id_args_valid(const struct imap_command *cmd)
{
	if (cmd->count != 1)
		return false;
	const struct imap_arg *a = &cmd->args[0];
	if (imap_arg_is_nil(a))
		return true;
	if (a->type != IMAP_ARG_LIST || a->count % 2 != 0 || a->count / 2 > ID_MAX_PAIRS)
		return false;
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *v = &a->list[i];
		if (i % 2 == 1 && imap_arg_is_nil(v))
			continue;
		if (v->type != IMAP_ARG_QUOTED && v->type != IMAP_ARG_LITERAL)
			return false;
		if (v->len > (i % 2 == 0 ? ID_MAX_FIELD : ID_MAX_VALUE))
			return false;
	}
	return true;
}

enum imap_cmd_result cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (!id_args_valid(cmd)) {
		imap_session_tagged(s, "BAD", "Invalid ID parameters.");
		return IMAP_CMD_DONE;
	}
	imap_session_send(s, "* ID (\"name\" \"tern\" \"version\" \"%s\")", TERN_VERSION);
	imap_session_tagged(s, "OK", "ID completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count == 0) {
		imap_session_tagged(s, "BAD", "ENABLE needs a capability.");
		return IMAP_CMD_DONE;
	}
	for (size_t i = 0; i < cmd->count; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			imap_session_tagged(s, "BAD", "Invalid capability.");
			return IMAP_CMD_DONE;
		}
	}
	/* RFC 5161 3.1: unknown or unsupported capabilities are ignored. */
	bool condstore = false, qresync = false, utf8 = false;
	for (size_t i = 0; i < cmd->count; i++) {
		condstore |= imap_arg_atom_is(&cmd->args[i], "CONDSTORE");
		qresync |= imap_arg_atom_is(&cmd->args[i], "QRESYNC");
		utf8 |= imap_arg_atom_is(&cmd->args[i], "UTF8=ACCEPT");
	}
	/* RFC 6855 3: "ENABLE UTF8=ACCEPT" is valid only in the authenticated state, before a
	 * mailbox is selected (names seen so far were mUTF-7); refused whole, nothing enabled. */
	if (utf8 && !s->utf8_enabled && s->state == IMAP_STATE_SELECTED) {
		imap_session_tagged(s, "BAD",
		                    "ENABLE UTF8=ACCEPT must come before a mailbox is selected.");
		return IMAP_CMD_DONE;
	}
	/* RFC 5161 3.2: ENABLED names only what this command newly enabled. RFC 7162 3.2.3:
	 * QRESYNC implies CONDSTORE. */
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* ENABLED");
	if (condstore && !s->condstore_enabled)
		(void)buf_append_str(&line, " CONDSTORE");
	if (qresync && !s->qresync_enabled)
		(void)buf_append_str(&line, " QRESYNC");
	s->condstore_enabled |= condstore || qresync;
	s->qresync_enabled |= qresync;
	if (utf8 && !s->utf8_enabled) {
		s->utf8_enabled = true;
		(void)buf_append_str(&line, " UTF8=ACCEPT");
	}
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
	imap_session_tagged(s, "OK", "Enabled.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_session_tagged(s, "BAD", "NAMESPACE takes no arguments.");
		return IMAP_CMD_DONE;
	}
	imap_session_send(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_session_tagged(s, "OK", "Namespace completed.");
	return IMAP_CMD_DONE;
}
