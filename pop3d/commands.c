/*
 * The POP3 command table: every command, the states it is allowed in (RFC 1939 sections
 * 4-6, RFC 2449, RFC 2595, RFC 5034) and its handler. All commands may be pipelined
 * (RFC 2449 6.6): the session runs them in order and stops reading while one waits.
 */
#include <string.h>

#include "session_private.h"

static const struct pop3_cmd_def pop3_commands[] = {
    {"CAPA", POP3_IN_AUTH | POP3_IN_TRANS, cmd_capa},
    {"QUIT", POP3_IN_AUTH | POP3_IN_TRANS, cmd_quit},
    {"STLS", POP3_IN_AUTH, cmd_stls},
    {"USER", POP3_IN_AUTH, cmd_user},
    {"PASS", POP3_IN_AUTH, cmd_pass},
    {"APOP", POP3_IN_AUTH, cmd_apop},
    {"AUTH", POP3_IN_AUTH, cmd_auth},
    {"NOOP", POP3_IN_TRANS, cmd_noop},
    {"STAT", POP3_IN_TRANS, cmd_stat},
    {"LIST", POP3_IN_TRANS, cmd_list},
    {"UIDL", POP3_IN_TRANS, cmd_uidl},
    {"RETR", POP3_IN_TRANS, cmd_retr},
    {"TOP", POP3_IN_TRANS, cmd_top},
    {"DELE", POP3_IN_TRANS, cmd_dele},
    {"RSET", POP3_IN_TRANS, cmd_rset},
};

const struct pop3_cmd_def *pop3_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++) {
		if (strcmp(pop3_commands[i].name, name) == 0)
			return &pop3_commands[i];
	}
	return NULL;
}
