/*
 * TRANSACTION commands (RFC 1939 5 and 7): STAT, LIST, UIDL, RETR, TOP, DELE, RSET.
 * Numbers refer to the snapshot taken at login; a deleted message is invisible to every
 * command until RSET.
 */
#include "base/buf.h"
#include "session_private.h"

void cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned count;
	uint64_t size;

	(void)cmd;
	maildrop_stat(s->md, &count, &size);
	session_reply(s, "+OK %u %llu", count, (unsigned long long)size);
}

/* LIST and UIDL share their shape: one message, or a multi-line listing. */
static void list_or_uidl(struct pop3_session *s, const struct pop3_command *cmd, bool uidl)
{
	unsigned n;
	struct buf out;

	if (cmd->n_args > 1) {
		session_bad_command(s, "Too many arguments.");
		return;
	}
	if (cmd->n_args == 1) {
		if (!session_msgnum(s, cmd->args[0], &n))
			return;
		if (uidl)
			session_reply(s, "+OK %u %s", n, maildrop_uidl(s->md, n));
		else
			session_reply(s, "+OK %u %llu", n,
			              (unsigned long long)maildrop_size(s->md, n));
		return;
	}
	buf_init(&out, 0);
	(void)buf_append_str(&out, "+OK\r\n");
	for (n = 1; n <= maildrop_count(s->md); n++) {
		if (!maildrop_exists(s->md, n))
			continue;
		if (uidl)
			(void)buf_printf(&out, "%u %s\r\n", n, maildrop_uidl(s->md, n));
		else
			(void)buf_printf(&out, "%u %llu\r\n", n,
			                 (unsigned long long)maildrop_size(s->md, n));
	}
	(void)buf_append_str(&out, ".\r\n");
	session_write(s, out.data, out.len);
	buf_free(&out);
}

void cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	list_or_uidl(s, cmd, false);
}

void cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	list_or_uidl(s, cmd, true);
}

void cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned n;

	if (cmd->n_args != 1) {
		session_bad_command(s, "RETR needs a message number.");
		return;
	}
	if (!session_msgnum(s, cmd->args[0], &n))
		return;
	s->retr_count++;
	s->retr_bytes += maildrop_size(s->md, n);
	/* RETR marks the message \Seen (applied with the rest at QUIT). */
	maildrop_mark_seen(s->md, n);
	session_send_message(s, n, -1);
}

void cmd_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned n, lines;

	if (cmd->n_args != 2) {
		session_bad_command(s, "TOP needs a message number and a line count.");
		return;
	}
	if (!session_msgnum(s, cmd->args[0], &n))
		return;
	if (pop3_parse_count(cmd->args[1], &lines) < 0) {
		session_reply(s, "-ERR Invalid line count: %s", cmd->args[1]);
		return;
	}
	s->top_count++;
	s->top_bytes += maildrop_size(s->md, n);
	session_send_message(s, n, (int64_t)lines);
}

void cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned n;

	if (cmd->n_args != 1) {
		session_bad_command(s, "DELE needs a message number.");
		return;
	}
	if (!session_msgnum(s, cmd->args[0], &n))
		return;
	maildrop_mark_deleted(s->md, n);
	s->dele_count++;
	session_reply(s, "+OK Marked to be deleted.");
}

void cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned count;
	uint64_t size;

	(void)cmd;
	maildrop_reset(s->md);
	maildrop_stat(s->md, &count, &size);
	session_reply(s, "+OK %u messages, %llu octets", count, (unsigned long long)size);
}
