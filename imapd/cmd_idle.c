/* IDLE (RFC 2177): the client waits for "* n EXISTS" / "* n EXPUNGE" / FETCH FLAGS pushed
 * as they happen, and ends with DONE. */
#include <stdlib.h>
#include <strings.h>

#include "imap_commands.h"
#include "imap_mailbox.h"
#include "imap_watch.h"
#include "net/conn.h"
#include "store/folder.h"

static void idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->idling = false;
	imap_watch_unsubscribe(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_session_tagged(s, "OK", "Idle completed.");
	else
		imap_session_tagged(s, "BAD", "Expected DONE.");
	imap_session_command_done(s);
}

enum imap_cmd_result cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_session_tagged(s, "BAD", "IDLE takes no arguments.");
		return IMAP_CMD_DONE;
	}
	/* Catch up first, so nothing that happened before IDLE is missed. */
	imap_mailbox_report_changes(s, true);
	imap_session_send(s, "+ idling");
	s->idling = true;
	if (s->sel != NULL) {
		char *path = folder_path(s->home, s->sel->name);
		if (path != NULL)
			imap_watch_subscribe(s, path);
		free(path);
		/* A change between the catch-up and the watch start is reported now. */
		imap_mailbox_report_changes(s, true);
	}
	s->line_handler = idle_line;
	return IMAP_CMD_ASYNC;
}
