/*
 * APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315). The message is a literal: small
 * ones arrive in memory, large ones were streamed to an unlinked temp file by the session
 * (imap_session_stream_fd) as they arrived. Either way the store writes the message
 * crash-safely and gives it its UID.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_date.h"
#include "imap_mailbox.h"
#include "store/folder.h"
#include "store/mailbox.h"

/* Copies the streamed literal's file into the append. */
static enum store_error append_from_fd(struct store_append *app, int fd, uint64_t size)
{
	char *chunk = xmalloc(65536);
	uint64_t off = 0;
	enum store_error err = STORE_OK;
	while (off < size && err == STORE_OK) {
		size_t want = size - off < 65536 ? (size_t)(size - off) : 65536;
		ssize_t n = pread(fd, chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = STORE_ETEMP;
			break;
		}
		err = store_mailbox_append_write(app, chunk, (size_t)n);
		off += (uint64_t)n;
	}
	free(chunk);
	return err;
}

/* The destination: the selected mailbox when it is the same, else opened here. */
static struct store_mailbox *append_open(struct imap_session *s, const char *name, bool *own_r)
{
	*own_r = false;
	if (s->sel != NULL && strcmp(s->sel->name, name) == 0)
		return s->sel->box;
	char *path = folder_exists(s->home, name) ? folder_path(s->home, name) : NULL;
	struct store_mailbox *box = NULL;
	const char *error;
	if (path != NULL && imap_mailbox_open(path, &box, &error) == STORE_OK)
		*own_r = true;
	free(path);
	return box;
}

enum imap_cmd_result cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->count, i = 1;
	const char *name = n >= 2 ? imap_arg_astring(&a[0]) : NULL;
	const struct imap_arg *flags_arg = NULL;
	const char *date = NULL;
	if (name != NULL && i < n && a[i].type == IMAP_ARG_LIST)
		flags_arg = &a[i++];
	if (name != NULL && i < n && a[i].type == IMAP_ARG_QUOTED)
		date = a[i++].str;
	const struct imap_arg *msg = name != NULL && i == n - 1 ? &a[i] : NULL;
	/* RFC 6855 4: "UTF8 (literal8)" carries a message with UTF-8 headers; it is stored
	 * as it is. Only a client that enabled UTF8=ACCEPT may send it. */
	if (name != NULL && i == n - 2 && imap_arg_atom_is(&a[i], "UTF8")) {
		if (!s->utf8_enabled) {
			imap_session_tagged(s, "BAD",
			                    "APPEND UTF8 needs ENABLE UTF8=ACCEPT first.");
			return IMAP_CMD_DONE;
		}
		if (a[i + 1].type == IMAP_ARG_LIST && a[i + 1].count == 1)
			msg = &a[i + 1].list[0];
	}
	/* A literal8 is accepted as BINARY is advertised (RFC 3516 4.4). */
	if (msg == NULL || (msg->type != IMAP_ARG_LITERAL && msg->type != IMAP_ARG_STREAMED)) {
		imap_session_tagged(s, "BAD", "Invalid APPEND arguments.");
		return IMAP_CMD_DONE;
	}
	time_t idate = 0;
	if (date != NULL && imap_date_time_parse(date, &idate) < 0) {
		imap_session_tagged(s, "BAD", "Invalid date-time.");
		return IMAP_CMD_DONE;
	}
	bool own;
	struct store_mailbox *box = append_open(s, name, &own);
	if (box == NULL) {
		imap_session_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist.");
		return IMAP_CMD_DONE;
	}
	uint32_t flags = 0, keywords = 0, uid = 0;
	const char *error;
	enum store_error err = STORE_OK;
	struct store_append *app = NULL;
	if (flags_arg != NULL &&
	    imap_mailbox_parse_flags(box, flags_arg, true, &flags, &keywords, &error) < 0) {
		imap_session_tagged(s, "BAD", "%s.", error);
		goto out;
	}
	err = store_mailbox_append_begin(box, flags, keywords, idate, &app);
	if (err == STORE_OK && msg->type == IMAP_ARG_LITERAL)
		err = store_mailbox_append_write(app, msg->str, msg->len);
	else if (err == STORE_OK)
		err = append_from_fd(app, imap_session_stream_fd(s, msg->stream_index),
		                     msg->stream_size);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	if (err == STORE_OK)
		err = store_mailbox_append_commit(&app, &uid);
	else
		store_mailbox_append_abort(&app);
	/* The new message is reported (EXISTS) before the tagged reply. */
	if (own)
		store_mailbox_close(&box);
	else
		imap_mailbox_report_changes(s, true);
	if (err != STORE_OK)
		imap_session_tagged(s, "NO", "[SERVERBUG] Could not save the message.");
	else
		imap_session_tagged(s, "OK", "[APPENDUID %u %u] Append completed.", uidvalidity,
		                    uid);
	return IMAP_CMD_DONE;
out:
	if (own)
		store_mailbox_close(&box);
	return IMAP_CMD_DONE;
}
