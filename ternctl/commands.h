/*
 * ternctl's commands and the context they run in.
 *
 *   ternctl [-c FILE] COMMAND [ARGS...]
 *
 * Adding a command takes one line here and one file:
 *   1. write ternctl/cmd_<name>.c defining
 *        int cmd_<name>(struct ternctl *ctl, int argc, char **argv)
 *      (argv[0] is the command name; print to ctl->out and ctl->err; return an exit
 *      code from <sysexits.h>: EX_OK, EX_USAGE for bad arguments, EX_CONFIG when
 *      ternctl_config() fails, EX_UNAVAILABLE when a daemon cannot be reached, ...);
 *   2. add a TERNCTL_COMMAND row to TERNCTL_COMMANDS below: name, usage, one-line help.
 * The prototype, the dispatch table and `ternctl help` all come from that row.
 */
#ifndef TERN_TERNCTL_COMMANDS_H
#define TERN_TERNCTL_COMMANDS_H

#include <stdio.h>

struct config;

#define TERNCTL_DEFAULT_CONFIG "/etc/tern/tern.conf"

/* clang-format off */
#define TERNCTL_COMMANDS(TERNCTL_COMMAND)                                                          \
	TERNCTL_COMMAND(config, "[-n | --doc | -h KEY... | KEY...]",                               \
			"print the effective configuration (-n: only what differs from the defaults)") \
	TERNCTL_COMMAND(help, "[COMMAND]", "list the commands, or show how to use one")            \
	TERNCTL_COMMAND(user, "add|passwd USER [PASSWORD] | del USER | list | lookup USER",        \
			"manage virtual users in the passwd-file; lookup asks authd's userdb")     \
	TERNCTL_COMMAND(pw, "[-s SCHEME] [-p PASSWORD] [-t HASH]",                                 \
			"print a password hash for the passwd-file, like doveadm pw (-t: verify)") \
	TERNCTL_COMMAND(auth, "test USER [PASSWORD]",                                              \
			"authenticate USER with PLAIN through authd, as smtpd and imapd do")       \
	TERNCTL_COMMAND(queue, "list [--json] | flush | delete|hold|release QID...|ALL",          \
			"show or act on deliverd's outbound queue (flush: retry deferred mail now)") \
	TERNCTL_COMMAND(mailbox, "status|reindex USER [FOLDER]",                                   \
			"a user's folders (messages, unseen, UIDs); reindex: rescan files, keep UIDs") \
	/* one row per command, kept in the order `ternctl help` lists them */
/* clang-format on */

struct ternctl {
	const char *config_path; /* -c FILE, else $TERN_CONF, else TERNCTL_DEFAULT_CONFIG */
	struct config *cfg;      /* loaded by the first ternctl_config() */
	FILE *out;
	FILE *err;
};

struct ternctl_command {
	const char *name;
	int (*handler)(struct ternctl *ctl, int argc, char **argv);
	const char *usage; /* the arguments after the command name */
	const char *help;
};

#define TERNCTL_DECLARE(name, usage, help)                                                         \
	int cmd_##name(struct ternctl *ctl, int argc, char **argv);
TERNCTL_COMMANDS(TERNCTL_DECLARE)
#undef TERNCTL_DECLARE

/* Every command, in table order; ternctl_n_commands rows. */
extern const struct ternctl_command ternctl_commands[];
extern const size_t ternctl_n_commands;

/* The row named `name`, or NULL. */
const struct ternctl_command *ternctl_find_command(const char *name);

/*
 * Runs ternctl with argv as given to main() and returns the exit code. Output goes to
 * out and err (stdout/stderr in main.c, memory streams in tests).
 */
int ternctl_main(int argc, char **argv, FILE *out, FILE *err);

/*
 * The config, loaded from ctl->config_path on first use. On failure prints
 * "ternctl: file:line: problem" to ctl->err and returns NULL; the command then returns
 * EX_CONFIG.
 */
const struct config *ternctl_config(struct ternctl *ctl);

/* Prints "usage: ternctl [-c FILE] <name> <usage>" to f. */
void ternctl_print_usage(FILE *f, const struct ternctl_command *cmd);

#endif
