/*
 * QUOTA (RFC 9208; GETQUOTAROOT/GETQUOTA, from the userdb's quota_bytes/quota_messages)
 * and ACL (RFC 4314) for the user's own folders: the owner holds every right, nothing can
 * be shared, so SETACL/DELETEACL/SETQUOTA are refused. Roundcube needs RIGHTS= to offer
 * folder rename, and reads the quota for its quota bar.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "imap_commands.h"
#include "imap_utf8.h"
#include "proto/imap_string.h"
#include "store/folder.h"
#include "store/mailbox.h"

#define ALL_RIGHTS "lrswipkxtecda"

/* Total size (bytes) and count of the user's messages in every folder. */
static void quota_usage(struct imap_session *s, uint64_t *bytes_r, uint64_t *count_r)
{
	char **names;
	size_t n;
	*bytes_r = 0;
	*count_r = 0;
	if (folder_list(s->home, &names, &n) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		char *path = folder_path(s->home, names[i]);
		struct store_mailbox *box;
		const char *error;
		if (path != NULL && store_mailbox_open(path, &box, &error) == STORE_OK) {
			size_t count = store_mailbox_count(box);
			for (size_t seq = 1; seq <= count; seq++)
				*bytes_r += store_mailbox_msg_info(box, seq)->psize;
			*count_r += count;
			store_mailbox_close(&box);
		}
		free(path);
	}
	folder_list_free(names, n);
}

static void send_quota(struct imap_session *s)
{
	uint64_t bytes, count;
	quota_usage(s, &bytes, &count);
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* QUOTA \"\" (");
	if (s->quota_bytes > 0)
		(void)buf_printf(&line, "STORAGE %llu %llu",
		                 (unsigned long long)((bytes + 1023) / 1024),
		                 (unsigned long long)(s->quota_bytes / 1024));
	if (s->quota_messages > 0)
		(void)buf_printf(&line, "%sMESSAGE %llu %llu", s->quota_bytes > 0 ? " " : "",
		                 (unsigned long long)count, (unsigned long long)s->quota_messages);
	(void)buf_append_char(&line, ')');
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
}

enum imap_cmd_result cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = cmd->count == 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
	if (name == NULL) {
		imap_session_tagged(s, "BAD", "Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if (!folder_exists(s->home, name)) {
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		return IMAP_CMD_DONE;
	}
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* QUOTAROOT ");
	imap_utf8_name_append(s, &line, name);
	bool limited = s->quota_bytes > 0 || s->quota_messages > 0;
	if (limited)
		(void)buf_append_str(&line, " \"\"");
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
	if (limited)
		send_quota(s);
	imap_session_tagged(s, "OK", "Getquotaroot completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	const char *root = cmd->count == 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
	if (root == NULL) {
		imap_session_tagged(s, "BAD", "Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if (*root != '\0' || (s->quota_bytes == 0 && s->quota_messages == 0)) {
		imap_session_tagged(s, "NO", "[NONEXISTENT] No such quota root.");
		return IMAP_CMD_DONE;
	}
	send_quota(s);
	imap_session_tagged(s, "OK", "Getquota completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_session_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator.");
	return IMAP_CMD_DONE;
}

/* The mailbox argument of an ACL command, after checking it exists. */
static const char *acl_mailbox(struct imap_session *s, const struct imap_command *cmd, size_t want)
{
	const char *name = cmd->count == want ? imap_arg_astring(&cmd->args[0]) : NULL;
	if (name == NULL) {
		imap_session_tagged(s, "BAD", "Invalid arguments.");
		return NULL;
	}
	if (!folder_exists(s->home, name)) {
		imap_session_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		return NULL;
	}
	return name;
}

static void send_with_name(struct imap_session *s, const char *verb, const char *name,
                           const char *rest)
{
	struct buf line;
	buf_init(&line, 0);
	(void)buf_printf(&line, "* %s ", verb);
	imap_utf8_name_append(s, &line, name);
	(void)buf_printf(&line, " %s", rest);
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
}

enum imap_cmd_result cmd_myrights(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = acl_mailbox(s, cmd, 1);
	if (name == NULL)
		return IMAP_CMD_DONE;
	send_with_name(s, "MYRIGHTS", name, ALL_RIGHTS);
	imap_session_tagged(s, "OK", "Myrights completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_getacl(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = acl_mailbox(s, cmd, 1);
	if (name == NULL)
		return IMAP_CMD_DONE;
	struct buf rest;
	buf_init(&rest, 0);
	(void)imap_string_append(&rest, s->user, strlen(s->user), IMAP_STRING_ALLOW_ATOM);
	(void)buf_append_str(&rest, " " ALL_RIGHTS);
	send_with_name(s, "ACL", name, buf_cstr(&rest));
	buf_free(&rest);
	imap_session_tagged(s, "OK", "Getacl completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_listrights(struct imap_session *s, const struct imap_command *cmd)
{
	const char *name = acl_mailbox(s, cmd, 2);
	const char *who = name != NULL ? imap_arg_astring(&cmd->args[1]) : NULL;
	if (who == NULL) {
		if (name != NULL)
			imap_session_tagged(s, "BAD", "Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	struct buf rest;
	buf_init(&rest, 0);
	(void)imap_string_append(&rest, who, strlen(who), IMAP_STRING_ALLOW_ATOM);
	/* RFC 4314 3.7: the owner's rights are always granted; nothing is optional here. */
	(void)buf_append_str(&rest, " " ALL_RIGHTS);
	send_with_name(s, "LISTRIGHTS", name, buf_cstr(&rest));
	buf_free(&rest);
	imap_session_tagged(s, "OK", "Listrights completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_setacl(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_session_tagged(s, "NO", "[NOPERM] Folders can't be shared on this server.");
	return IMAP_CMD_DONE;
}
