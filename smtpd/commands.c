/*
 * The command table: each row names a command, the states it is allowed in, whether it
 * may be pipelined (RFC 2920 3.1) and its handler. Handlers live in cmd_*.c by group.
 */
#include <strings.h>

#include "smtp_internal.h"

#define ST_GREETED (SMTP_STATE_READY | SMTP_STATE_MAIL | SMTP_STATE_RCPT)
#define ST_TX (SMTP_STATE_MAIL | SMTP_STATE_RCPT)

const struct smtp_command smtp_commands[] = {
    {"EHLO", SMTP_STATE_ANY, false, cmd_ehlo, "ehlo"},
    {"HELO", SMTP_STATE_ANY, false, cmd_helo, "helo"},
    {"MAIL", SMTP_STATE_READY, true, cmd_mail, "mail"},
    {"RCPT", ST_TX, true, cmd_rcpt, "rcpt"},
    {"DATA", SMTP_STATE_RCPT | SMTP_STATE_MAIL, false, cmd_data, "data"},
    {"BDAT", SMTP_STATE_ANY, true, cmd_bdat, "bdat"},
    {"RSET", SMTP_STATE_ANY, true, cmd_rset, "rset"},
    {"NOOP", SMTP_STATE_ANY, false, cmd_noop, "noop"},
    {"QUIT", SMTP_STATE_ANY, false, cmd_quit, "quit"},
    {"HELP", SMTP_STATE_ANY, false, cmd_help, "help"},
    {"VRFY", SMTP_STATE_ANY, false, cmd_vrfy, "vrfy"},
    {"EXPN", SMTP_STATE_ANY, false, cmd_expn, "expn"},
    {"STARTTLS", SMTP_STATE_INIT | SMTP_STATE_READY, false, cmd_starttls, "starttls"},
    {"AUTH", SMTP_STATE_READY, false, cmd_auth, "auth"},
};

const size_t smtp_n_commands = sizeof(smtp_commands) / sizeof(smtp_commands[0]);

const struct smtp_command *smtp_command_find(const char *verb)
{
	for (size_t i = 0; i < smtp_n_commands; i++) {
		if (strcasecmp(smtp_commands[i].name, verb) == 0)
			return &smtp_commands[i];
	}
	return NULL;
}
