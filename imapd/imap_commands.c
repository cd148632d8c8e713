/* The table of IMAP commands and the states they are allowed in (RFC 3501 6). */
#include "imap_commands.h"

#include <string.h>

#define ANY (IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define NOT_AUTH IMAP_STATE_NOT_AUTH
#define AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define SELECTED IMAP_STATE_SELECTED

static const struct imap_command_def commands[] = {
    {"CAPABILITY", ANY, cmd_capability},
    {"NOOP", ANY, cmd_noop},
    {"LOGOUT", ANY, cmd_logout},
    {"ID", ANY, cmd_id},
    {"STARTTLS", NOT_AUTH, cmd_starttls},
    {"COMPRESS", AUTHED, cmd_compress},
    {"LOGIN", NOT_AUTH, cmd_login},
    {"AUTHENTICATE", NOT_AUTH, cmd_authenticate},
    {"ENABLE", AUTHED, cmd_enable},
    {"NAMESPACE", AUTHED, cmd_namespace},
    {"IDLE", AUTHED, cmd_idle},
    {"CREATE", AUTHED, cmd_create},
    {"DELETE", AUTHED, cmd_delete},
    {"RENAME", AUTHED, cmd_rename},
    {"SUBSCRIBE", AUTHED, cmd_subscribe},
    {"UNSUBSCRIBE", AUTHED, cmd_unsubscribe},
    {"LIST", AUTHED, cmd_list},
    {"LSUB", AUTHED, cmd_lsub},
    {"STATUS", AUTHED, cmd_status},
    {"APPEND", AUTHED, cmd_append},
    {"GETQUOTAROOT", AUTHED, cmd_getquotaroot},
    {"GETQUOTA", AUTHED, cmd_getquota},
    {"SETQUOTA", AUTHED, cmd_setquota},
    {"MYRIGHTS", AUTHED, cmd_myrights},
    {"GETACL", AUTHED, cmd_getacl},
    {"LISTRIGHTS", AUTHED, cmd_listrights},
    {"SETACL", AUTHED, cmd_setacl},
    {"DELETEACL", AUTHED, cmd_setacl},
    {"SELECT", AUTHED, cmd_select},
    {"EXAMINE", AUTHED, cmd_examine},
    {"CLOSE", SELECTED, cmd_close},
    {"UNSELECT", SELECTED, cmd_unselect},
    {"CHECK", SELECTED, cmd_check},
    {"FETCH", SELECTED, cmd_fetch},
    {"STORE", SELECTED, cmd_store},
    {"COPY", SELECTED, cmd_copy},
    {"MOVE", SELECTED, cmd_move},
    {"SEARCH", SELECTED, cmd_search},
    {"EXPUNGE", SELECTED, cmd_expunge},
    {"UID", SELECTED, cmd_uid},
    {"SORT", SELECTED, cmd_sort},
    {"THREAD", SELECTED, cmd_thread},
};

const struct imap_command_def *imap_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}
