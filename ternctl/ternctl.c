/*
 * ternctl's dispatcher: global options, the command table built from TERNCTL_COMMANDS
 * (commands.h), the config every command shares, and the exit code. Commands live in
 * cmd_<name>.c.
 */
#include "commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config/config.h"

#define TERNCTL_ROW(name, usage, help) {#name, cmd_##name, usage, help},
const struct ternctl_command ternctl_commands[] = {TERNCTL_COMMANDS(TERNCTL_ROW)};
#undef TERNCTL_ROW
const size_t ternctl_n_commands = sizeof(ternctl_commands) / sizeof(ternctl_commands[0]);

const struct ternctl_command *ternctl_find_command(const char *name)
{
	for (size_t i = 0; i < ternctl_n_commands; i++) {
		if (strcmp(ternctl_commands[i].name, name) == 0)
			return &ternctl_commands[i];
	}
	return NULL;
}

void ternctl_print_usage(FILE *f, const struct ternctl_command *cmd)
{
	fprintf(f, "usage: ternctl [-c FILE] %s %s\n", cmd->name, cmd->usage);
}

const struct config *ternctl_config(struct ternctl *ctl)
{
	if (ctl->cfg != NULL)
		return ctl->cfg;
	char *error = NULL;
	if (config_load(ctl->config_path, &ctl->cfg, &error) < 0) {
		fprintf(ctl->err, "ternctl: %s\n", error);
		free(error);
		return NULL;
	}
	return ctl->cfg;
}

static void short_usage(FILE *f)
{
	fprintf(f, "usage: ternctl [-c FILE] COMMAND [ARGS...]\n"
	           "       ternctl help    lists the commands\n");
}

int ternctl_main(int argc, char **argv, FILE *out, FILE *err)
{
	struct ternctl ctl = {.out = out, .err = err};
	const char *conf_opt = NULL;
	int c;
	optind = 0; /* glibc: start afresh, ternctl_main may run more than once (tests) */
	opterr = 0;
	while ((c = getopt(argc, argv, "+c:h")) != -1) {
		switch (c) {
		case 'c':
			conf_opt = optarg;
			break;
		case 'h':
			return cmd_help(&ctl, 1, (char *[]){"help", NULL});
		default:
			if (optopt == 'c')
				fprintf(err, "ternctl: option -c needs a file name\n");
			else
				fprintf(err, "ternctl: unknown option -%c\n", optopt);
			short_usage(err);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		short_usage(err);
		return EX_USAGE;
	}
	const struct ternctl_command *cmd = ternctl_find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(err, "ternctl: unknown command '%s' (see 'ternctl help')\n", argv[optind]);
		return EX_USAGE;
	}
	const char *env = getenv("TERN_CONF");
	if (conf_opt != NULL)
		ctl.config_path = conf_opt;
	else if (env != NULL && env[0] != '\0')
		ctl.config_path = env;
	else
		ctl.config_path = TERNCTL_DEFAULT_CONFIG;

	int ret = cmd->handler(&ctl, argc - optind, argv + optind);
	config_free(&ctl.cfg);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(err, "ternctl: write error: %s\n", strerror(errno));
		if (ret == EX_OK)
			ret = EX_IOERR;
	}
	return ret;
}
