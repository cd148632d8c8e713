/* UID FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE (RFC 3501 6.4.8, RFC 4315, RFC 6851). */
#include <strings.h>

#include "imap_commands.h"

enum imap_cmd_result cmd_uid(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count < 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "UID needs a command.");
		return IMAP_CMD_DONE;
	}
	const char *sub = cmd->args[0].str;
	const struct imap_arg *args = cmd->args + 1;
	size_t n = cmd->count - 1;
	if (strcasecmp(sub, "FETCH") == 0)
		return imap_fetch_run(s, cmd, args, n, true);
	if (strcasecmp(sub, "STORE") == 0)
		return imap_store_run(s, args, n, true);
	if (strcasecmp(sub, "COPY") == 0)
		return imap_copy_run(s, args, n, true, false);
	if (strcasecmp(sub, "MOVE") == 0)
		return imap_copy_run(s, args, n, true, true);
	if (strcasecmp(sub, "SEARCH") == 0)
		return imap_search_run(s, args, n, true);
	if (strcasecmp(sub, "SORT") == 0)
		return imap_sort_run(s, args, n, true);
	if (strcasecmp(sub, "THREAD") == 0)
		return imap_thread_run(s, args, n, true);
	if (strcasecmp(sub, "EXPUNGE") == 0)
		return imap_expunge_run(s, args, n, true);
	imap_session_tagged(s, "BAD", "Unknown UID command.");
	return IMAP_CMD_DONE;
}
